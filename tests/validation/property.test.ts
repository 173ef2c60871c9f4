import { strict as assert } from "assert";
import * as fc from "fast-check";
import { ConfigError, parseRawConfig } from "../../components/config/validate";
import { validateStackConfig } from "../../components/plan/rules";
import { configStrings, evaluate, lastRegistered } from "../../tools/evaluate";
import { toManifests } from "../../tools/render";
import { apiServerProblems, configArbitrary, configOf, GeneratedConfig, structuralArbitrary } from "../configgen";
import { STACKS } from "../harness";
import { schemaErrors } from "../schemas";

// A fixed seed keeps CI reproducible (how many generated configs are accepted varies by seed);
// PROPERTY_SEED explores others.
const PROPERTY_SEED = 20261123;
const seed = Number(process.env.PROPERTY_SEED ?? PROPERTY_SEED);

// The validator's contract, as a property over adversarial configs (tests/configgen.ts): a config
// it accepts yields objects the official schemas and the API server's own rules accept; a config it
// refuses does so with a ConfigError of `platform:` problems and registers nothing at all. Any other
// exception (a TypeError from code that ran on unchecked config) breaks the contract.

/**
 * Checks one generated config against the contract; says whether it was accepted. The validator
 * sees what the program reads: values as the engine passes them (a string "{}" reads as an object).
 * `checked` holds the accepted configs already rendered: the program is deterministic, so one that
 * comes again (a deleted section that was absent anyway) is not evaluated twice.
 */
async function contractHolds(g: GeneratedConfig, checked = new Set<string>()): Promise<boolean> {
    const cfg = configOf(g);
    const strings = configStrings(cfg);
    let problems: string[] | undefined;
    try {
        validateStackConfig(parseRawConfig(strings), g.stack);
    } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        problems = e.problems;
    }
    if (problems) {
        assert.ok(problems.length > 0 && problems.every((p) => p.startsWith("platform:")), problems.join("\n"));
        await assert.rejects(evaluate(g.stack, cfg), /Invalid stack config/);
        assert.equal(lastRegistered().length, 0, "a refused config registered resources");
        return false;
    }
    const key = JSON.stringify(Object.entries(strings).sort(([a], [b]) => a.localeCompare(b)));
    if (checked.has(key)) return true;
    checked.add(key);
    const manifests = toManifests(await evaluate(g.stack, cfg));
    const found = [...manifests.map(schemaErrors).filter((x) => x), ...apiServerProblems(manifests)];
    assert.deepEqual(found, [], `accepted ${JSON.stringify(g)}`);
    return true;
}

describe("validation: property over generated configs", function () {
    this.timeout(600_000);

    it("accepted configs render valid objects; refused ones register nothing", async () => {
        let accepted = 0;
        let refused = 0;
        await fc.assert(fc.asyncProperty(configArbitrary, async (g) => {
            if (await contractHolds(g)) accepted++;
            else refused++;
        }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 60), seed });
        // Both sides of the contract were exercised.
        assert.ok(accepted >= 5 && refused >= 5, `accepted ${accepted}, refused ${refused}`);
    });

    // Sections deleted or replaced by a string, number, boolean, null or list, strategies and modes
    // switched without their section: what hand edits do. Never a crash, whatever the shape.
    for (const stack of STACKS) {
        it(`${stack}: structurally broken configs are refused as platform: problems, never with another error`, async () => {
            let accepted = 0;
            let refused = 0;
            const rendered = new Set<string>();
            await fc.assert(fc.asyncProperty(structuralArbitrary(stack), async (g) => {
                if (await contractHolds(g, rendered)) accepted++;
                else refused++;
            }), { numRuns: Number(process.env.STRUCTURE_RUNS ?? 1000), seed });
            assert.ok(accepted >= 5 && refused >= 5, `accepted ${accepted} (${rendered.size} distinct, rendered), refused ${refused}`);
            process.stdout.write(`      ${accepted} accepted (${rendered.size} distinct, rendered), ${refused} refused\n`);
        });
    }

    it("the API-server rules catch what they claim to (a broken object fails them)", async () => {
        const manifests = toManifests(await evaluate("staging", configOf({ stack: "staging", overrides: {} })));
        assert.deepEqual(apiServerProblems(manifests), []);
        const broken = structuredClone(manifests);
        const d = broken.find((m) => m.kind === "Deployment")!;
        d.spec.template.metadata.labels["app.kubernetes.io/version"] = "_x";
        d.spec.template.spec.containers[0].resources.requests.memory = "8Gi";
        const ing = broken.filter((m) => m.kind === "Ingress" && !m.metadata.annotations?.["nginx.ingress.kubernetes.io/canary"]);
        ing[1].spec.rules[0].host = ing[0].spec.rules[0].host;
        broken.push(structuredClone(broken.find((m) => m.kind === "Service")!));
        const text = apiServerProblems(broken).join("\n");
        for (const want of ["label app.kubernetes.io/version=_x", "requests.memory 8Gi > limits", "already defined in Ingress", "declared twice"]) assert.ok(text.includes(want), `${want} in\n${text}`);
    });
});
