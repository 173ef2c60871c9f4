import * as assert from "assert";
import * as fc from "fast-check";
import * as path from "path";
import { ConfigError } from "../../components/config/validate";
import { validateStackConfig } from "../../components/plan/rules";
import { evaluate } from "../../tools/evaluate";
import { Manifest, toManifests } from "../../tools/render";
import { configArbitrary, configOf } from "../configgen";
import { Kube, Obj } from "./kube";
import { exportsOf, ROOT } from "./project";

// A fixed seed keeps CI reproducible (how many generated configs are accepted varies by seed);
// PROPERTY_SEED explores others.
const PROPERTY_SEED = 20261123;

// The validator's contract on a live API server (the local control plane): every object of a
// generated config that the validator accepts is admitted by a server-side dry run — schema, field
// validation (strict: no unknown field), CEL rules of the Gateway API CRDs, defaulting, admission —
// and raises no warning (Pod Security "restricted" warns on workload templates). Refused configs
// register nothing: tests/validation/property.test.ts.

const RUNS = Number(process.env.DRY_RUN_CONFIGS ?? 60);

/** The collection a manifest is created in. */
function collection(m: Manifest, namespace: string): string {
    const plural = m.kind.toLowerCase().replace(/([^aeiou])y$/, "$1ie").replace(/s$/, "se") + "s";
    const base = m.apiVersion === "v1" ? "/api/v1" : `/apis/${m.apiVersion}`;
    return m.metadata?.namespace ? `${base}/namespaces/${namespace}/${plural}` : `${base}/${plural}`;
}

describe("server-side dry run of generated configs on the local control plane", function () {
    this.timeout(30 * 60 * 1000);
    let kube: Kube;
    const NS = `dryrun-${Date.now().toString(36)}`;

    before(async function () {
        const env = exportsOf(path.join(ROOT, "scripts", "ensure-cluster"), ["start"]);
        kube = new Kube(env.KUBECONFIG!);
        await kube.create("/api/v1/namespaces", {
            metadata: { name: NS, labels: { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted" } },
        });
    });

    after(async function () {
        await kube?.delete(`/api/v1/namespaces/${NS}`);
    });

    it(`every object of ${RUNS} accepted configs is admitted, without a warning`, async function () {
        let accepted = 0, objects = 0;
        await fc.assert(fc.asyncProperty(configArbitrary, async (g) => {
            const cfg = configOf(g);
            try {
                validateStackConfig(cfg, g.stack);
            } catch (e) {
                if (e instanceof ConfigError) return;
                throw e;
            }
            accepted++;
            const problems: string[] = [];
            for (const m of toManifests(await evaluate(g.stack, cfg))) {
                const o: Obj = structuredClone(m);
                if (o.metadata.namespace) o.metadata.namespace = NS;
                // the stack's own Namespace may exist in this cluster already (npm run up:cluster): a fresh name
                if (o.kind === "Namespace") o.metadata.name = `${NS}-own`;
                const r = await kube.request("POST", `${collection(m, NS)}?dryRun=All&fieldValidation=Strict`, o);
                objects++;
                if (r.status >= 300) problems.push(`${m.kind}/${m.metadata.name}: ${r.body.message ?? r.status}`);
                for (const w of r.warnings) problems.push(`${m.kind}/${m.metadata.name}: warning: ${w}`);
            }
            assert.deepEqual(problems, [], `the API server refused objects of an accepted config ${JSON.stringify(g)}:\n${problems.join("\n")}`);
        }), { numRuns: RUNS, seed: Number(process.env.PROPERTY_SEED ?? PROPERTY_SEED) });
        process.stdout.write(`      ${accepted} accepted configs, ${objects} objects dry-run\n`);
        // the generator is adversarial: about one config in five to eight is accepted
        assert.ok(accepted >= 3, `only ${accepted} of ${RUNS} generated configs were accepted`);
    });

    it("the dry run does refuse what a real API server refuses (a broken object fails it)", async function () {
        const m = toManifests(await evaluate("staging", configOf({ stack: "staging", overrides: {} }))).find((x) => x.kind === "Deployment")!;
        const broken: Obj = structuredClone(m);
        broken.metadata.namespace = NS;
        broken.spec.template.metadata.labels["app.kubernetes.io/version"] = "_x";
        const r = await kube.request("POST", `${collection(m, NS)}?dryRun=All&fieldValidation=Strict`, broken);
        assert.equal(r.status, 422);
        // a pod template that escalates privileges: admitted as a Deployment, but Pod Security warns
        const escalating: Obj = structuredClone(m);
        escalating.metadata.namespace = NS;
        escalating.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
        const w = await kube.request("POST", `${collection(m, NS)}?dryRun=All`, escalating);
        assert.ok(w.status < 300, `${w.status} ${w.body.message}`);
        assert.ok(w.warnings.some((x) => /PodSecurity|restricted/.test(x)), `no Pod Security warning: ${JSON.stringify(w.warnings)}`);
    });
});
