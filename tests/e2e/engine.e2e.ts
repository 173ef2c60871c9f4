import * as assert from "assert";
import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import { engineWorkspace, ensurePulumi } from "../../tools/engine";
import { schemaErrors } from "../schemas";

// End-to-end: the real Pulumi engine (scripts/ensure-pulumi) runs the real program on the local
// stack, whose kubernetes provider writes YAML to out/local instead of talking to a cluster.
// Everything happens in a temporary copy of the project with its own file backend, so neither a
// developer's .pulumi-state nor out/local is touched. Run with `npm run test:e2e`.

const ROOT = path.resolve(__dirname, "..", "..");
// The project to test: this repository, or PLATFORM_E2E_SOURCE (another checkout or copy).
const SOURCE = path.resolve(process.env.PLATFORM_E2E_SOURCE ?? ROOT);
const STACK = "local";
const CANARY_APP = "api";
const BLUE_GREEN_APP = "web";

interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
    seconds: number;
}

let work = "";
let env: NodeJS.ProcessEnv = {};
const timings: Record<string, number> = {};

function run(cmd: string, args: string[], opts: { allowFail?: boolean; label?: string } = {}): Run {
    const t = Date.now();
    const r: SpawnSyncReturns<string> = spawnSync(cmd, args, { cwd: work, env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
    const result = { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", seconds: (Date.now() - t) / 1000 };
    if (opts.label) timings[opts.label] = result.seconds;
    if (!opts.allowFail && r.status !== 0) {
        throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}\n--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`);
    }
    return result;
}

const tail = (s: string, n = 60) => s.split("\n").slice(-n).join("\n");
const pulumi = (args: string[], opts: { allowFail?: boolean; label?: string } = {}) =>
    run("pulumi", [...args, "--stack", STACK, "--non-interactive"], opts);

// ---- manifests ------------------------------------------------------------------------------

type Obj = Record<string, any>;
const REDACTED = "<redacted>";

function readManifests(dir: string): Obj[] {
    const out: Obj[] = [];
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) walk(p);
            else if (/\.ya?ml$/.test(e.name)) for (const doc of yaml.loadAll(fs.readFileSync(p, "utf8"))) if (doc) out.push(doc as Obj);
        }
    };
    walk(dir);
    return out;
}

const isEmpty = (v: any) => v === undefined || v === null || (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0);

/**
 * Field order, empty values and Secret encodings removed: what both renders must agree on.
 * Empty lists and maps count as absent (the provider leaves `env: []` out of the YAML it writes,
 * and Kubernetes reads both the same way).
 */
function normalise(m: Obj): Obj {
    const sortDeep = (v: any): any => {
        if (Array.isArray(v)) return v.map(sortDeep);
        if (v && typeof v === "object") {
            const o: Obj = {};
            for (const k of Object.keys(v).sort()) {
                const x = sortDeep(v[k]);
                if (!isEmpty(x)) o[k] = x;
            }
            return o;
        }
        return v;
    };
    const out = sortDeep(m);
    if (out.kind === "Secret") {
        // The provider turns stringData into base64 data; the offline render redacts both.
        const keys = [...Object.keys(out.data ?? {}), ...Object.keys(out.stringData ?? {})].sort();
        delete out.stringData;
        out.data = Object.fromEntries(keys.map((k) => [k, REDACTED]));
        if (keys.length === 0) delete out.data;
    }
    return out;
}

const key = (m: Obj) => `${m.apiVersion} ${m.kind} ${m.metadata?.namespace ?? ""}/${m.metadata?.name}`;

function byKey(ms: Obj[]): Map<string, Obj> {
    return new Map(ms.map((m) => [key(m), normalise(m)]));
}

/** The offline render (npm run render) of the same copy of the project. */
function offlineRender(extra: string[] = []): { manifests: Obj[]; dir: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-render-"));
    run(path.join(work, "node_modules", ".bin", "ts-node"), ["--transpile-only", "tools/render.ts", "--stack", STACK, "--out", dir, ...extra]);
    return { manifests: readManifests(dir), dir };
}

// ---- preview --------------------------------------------------------------------------------

interface Step { op: string; urn: string; type: string; kind?: string; name?: string }

/** Steps of `pulumi preview --json` that change something, Kubernetes objects named Kind/name. */
function previewSteps(): { steps: Step[]; raw: any } {
    const r = pulumi(["preview", "--json"], { label: "preview (after a config change)" });
    const raw = JSON.parse(r.stdout);
    const steps: Step[] = (raw.steps ?? [])
        .filter((s: any) => s.op !== "same" && s.op !== "read")
        .map((s: any) => {
            const state = s.newState ?? s.oldState ?? {};
            const inputs = state.inputs ?? {};
            return { op: s.op, urn: s.urn, type: state.type ?? s.urn.split("::")[2], kind: inputs.kind, name: inputs.metadata?.name };
        });
    return { steps, raw };
}

const describeStep = (s: Step) => `${s.op} ${s.kind ? `${s.kind}/${s.name}` : s.type}`;

/** What the offline render says changes: Kind/name of objects whose manifests differ. */
function renderDiff(before: Obj[], after: Obj[]): string[] {
    const a = byKey(before), b = byKey(after);
    const changed: string[] = [];
    for (const [k, v] of b) {
        if (!a.has(k)) changed.push(`create ${v.kind}/${v.metadata.name}`);
        else if (JSON.stringify(a.get(k)) !== JSON.stringify(v)) changed.push(`update ${v.kind}/${v.metadata.name}`);
    }
    for (const [k, v] of a) if (!b.has(k)) changed.push(`delete ${v.kind}/${v.metadata.name}`);
    return changed.sort();
}

/** Runs `fn` with the stack file as it is now, then puts the file back. */
function withConfig<T>(fn: () => T): T {
    const file = path.join(work, `Pulumi.${STACK}.yaml`);
    const saved = fs.readFileSync(file, "utf8");
    try {
        return fn();
    } finally {
        fs.writeFileSync(file, saved);
    }
}

// ---- the tests ------------------------------------------------------------------------------

describe("the real Pulumi engine on the local stack", function () {
    this.timeout(30 * 60 * 1000);
    let baselineCache: Obj[] | undefined;
    const baseline = () => (baselineCache ??= offlineRender().manifests);

    before(function () {
        const t = Date.now();
        const pulumiEnv = ensurePulumi();
        timings["ensure-pulumi"] = (Date.now() - t) / 1000;
        ({ work, env } = engineWorkspace(SOURCE, "platform-e2e-", pulumiEnv));
        run("pulumi", ["stack", "select", "--create", STACK, "--non-interactive"]);
    });

    after(function () {
        process.stdout.write(`      wall times (s): ${JSON.stringify(timings)}\n`);
        if (work && !process.env.PLATFORM_E2E_KEEP) fs.rmSync(work, { recursive: true, force: true });
        else if (work) process.stdout.write(`      kept ${work}\n`);
    });

    it("`pulumi up` succeeds from a fresh clone and a second `pulumi up` changes nothing", function () {
        pulumi(["preview"], { label: "preview (fresh)" });
        pulumi(["up", "--yes", "--skip-preview"], { label: "up (fresh)" });
        // --expect-no-changes makes `pulumi up` fail if anything would change.
        const again = pulumi(["up", "--yes", "--expect-no-changes"], { label: "up (no changes)" });
        assert.doesNotMatch(again.stdout, /\+ \d+ to create|~ \d+ to update|\+-\d+ to replace|- \d+ to delete/);
        const pv = JSON.parse(pulumi(["preview", "--json", "--expect-no-changes"], { label: "preview (no changes)" }).stdout);
        const changes = Object.entries(pv.changeSummary ?? {}).filter(([op, n]) => op !== "same" && (n as number) > 0);
        assert.deepEqual(changes, [], `a second preview wants changes: ${JSON.stringify(pv.changeSummary)}`);
    });

    it("writes the same manifests as the offline render (field order and secret redaction aside)", function () {
        const engine = readManifests(path.join(work, "out", STACK));
        assert.ok(engine.length > 0, "the engine wrote no manifests under out/local");
        const e = byKey(engine), o = byKey(baseline());
        assert.deepEqual([...e.keys()].sort(), [...o.keys()].sort(), "the engine and the offline render wrote different sets of objects");
        for (const [k, v] of o) assert.deepStrictEqual(e.get(k), v, `${k} differs between the engine and the offline render`);
    });

    it("every manifest the engine wrote validates against the Kubernetes schemas", function () {
        const engine = readManifests(path.join(work, "out", STACK));
        const errors = engine.map(schemaErrors).filter(Boolean);
        assert.deepEqual(errors, []);
    });

    it(`a canary weight change (apps.${CANARY_APP}.canary.weight 50) previews as the updates the offline render predicts, no replacement`, function () {
        withConfig(() => {
            pulumi(["config", "set", "--path", `apps.${CANARY_APP}.canary.weight`, "50"]);
            const { steps } = previewSteps();
            const after = offlineRender(["--set", `apps.${CANARY_APP}.canary.weight=50`]).manifests;
            assert.deepEqual(steps.filter((s) => s.op !== "update").map(describeStep), [], "expected only updates (no create, replace or delete)");
            const changed = steps.map(describeStep).sort();
            assert.deepEqual(changed, renderDiff(baseline(), after));
            process.stdout.write(`      canary weight 50 on the stack as committed: ${changed.join(", ") || "no object changes"}\n`);
        });
    });

    it(`with 4 replicas, moving the canary weight 25 -> 50 updates exactly the two Deployments, no replacement`, function () {
        // With replicas routing the split is the pod ratio; 4 replicas make 25 and 50 differ.
        withConfig(() => {
            pulumi(["config", "set", "--path", `apps.${CANARY_APP}.replicas`, "4"]);
            pulumi(["config", "set", "--path", `apps.${CANARY_APP}.canary.weight`, "25"]);
            pulumi(["up", "--yes", "--skip-preview"], { label: "up (replicas 4, weight 25)" });
            const before = offlineRender(["--set", `apps.${CANARY_APP}.replicas=4`, "--set", `apps.${CANARY_APP}.canary.weight=25`]).manifests;
            pulumi(["config", "set", "--path", `apps.${CANARY_APP}.canary.weight`, "50"]);
            const { steps } = previewSteps();
            const after = offlineRender(["--set", `apps.${CANARY_APP}.replicas=4`, "--set", `apps.${CANARY_APP}.canary.weight=50`]).manifests;
            assert.deepEqual(steps.filter((s) => s.op !== "update").map(describeStep), [], "expected only updates (no create, replace or delete)");
            const changed = steps.map(describeStep).sort();
            assert.deepEqual(changed, renderDiff(before, after));
            assert.deepEqual(changed, [`update Deployment/${CANARY_APP}-canary`, `update Deployment/${CANARY_APP}-stable`]);
            process.stdout.write(`      canary weight 25 -> 50 at 4 replicas: ${changed.join(", ")}\n`);
        });
        // back to the stack as committed, for the tests that follow
        pulumi(["up", "--yes", "--skip-preview"], { label: "up (back to the stack file)" });
    });

    it("behind ingress-nginx, a canary weight change updates exactly one object: the canary Ingress", function () {
        const nginx = { kind: "nginx", host: "api.local.test", ingressClassName: "nginx" };
        const sets = Object.entries(nginx).flatMap(([k, v]) => ["--set", `apps.${CANARY_APP}.routing.${k}=${v}`]);
        withConfig(() => {
            for (const [k, v] of Object.entries(nginx)) pulumi(["config", "set", "--path", `apps.${CANARY_APP}.routing.${k}`, v]);
            pulumi(["up", "--yes", "--skip-preview"], { label: "up (nginx routing)" });
            const before = offlineRender(sets).manifests;
            pulumi(["config", "set", "--path", `apps.${CANARY_APP}.canary.weight`, "50"]);
            const { steps } = previewSteps();
            const after = offlineRender([...sets, "--set", `apps.${CANARY_APP}.canary.weight=50`]).manifests;
            const changed = steps.map(describeStep).sort();
            assert.deepEqual(changed, [`update Ingress/${CANARY_APP}-canary`]);
            assert.deepEqual(changed, renderDiff(before, after));
            process.stdout.write(`      canary weight 10 -> 50 behind nginx: ${changed.join(", ")}\n`);
        });
        pulumi(["up", "--yes", "--skip-preview"], { label: "up (back to the stack file)" });
    });

    it(`switching apps.${BLUE_GREEN_APP}.blueGreen.activeColor updates exactly the Services`, function () {
        withConfig(() => {
            const color = readStackColor() === "green" ? "blue" : "green";
            pulumi(["config", "set", "--path", `apps.${BLUE_GREEN_APP}.blueGreen.activeColor`, color]);
            const { steps } = previewSteps();
            const after = offlineRender(["--set", `apps.${BLUE_GREEN_APP}.blueGreen.activeColor=${color}`]).manifests;
            assert.deepEqual(steps.filter((s) => s.op !== "update" || s.kind !== "Service").map(describeStep), [], "only Services may change");
            const changed = steps.map(describeStep).sort();
            assert.ok(changed.length >= 1, "switching the colour changes nothing");
            assert.deepEqual(changed, renderDiff(baseline(), after));
            process.stdout.write(`      activeColor ${color}: ${changed.join(", ")}\n`);
        });
    });

    it("the engine never type-checks: `pulumi preview` runs a program with a type error that npm test's tsc rejects", function () {
        const index = path.join(work, "index.ts");
        const saved = fs.readFileSync(index, "utf8");
        try {
            // index.ts exports a promise of the outputs (`export =`, emitted last): the probe joins them there.
            const anchor = "export = runProgram().then((environment) => ({";
            assert.ok(saved.includes(anchor), "index.ts no longer exports its outputs as expected");
            fs.writeFileSync(index, saved.replace(anchor,
                `const typeCheckProbe: number = String("not type-checked at deploy time");\n${anchor}\n    typeCheckProbe,`));
            const r = pulumi(["preview", "--diff"], { label: "preview (type error in index.ts)" });
            assert.match(r.stdout, /typeCheckProbe\s*:\s*"not type-checked at deploy time"/);
            const tsc = run(path.join(work, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", "."], { allowFail: true });
            assert.notEqual(tsc.status, 0, "tsc accepted the type error");
            assert.match(tsc.stdout, /index\.ts\(\d+,\d+\): error TS2322/);
        } finally {
            fs.writeFileSync(index, saved);
        }
    });

    it("an invalid value makes `pulumi preview` fail with the unit tests' message", function () {
        withConfig(() => {
            pulumi(["config", "set", "--path", `apps.${CANARY_APP}.canary.weight`, "150"]);
            const r = pulumi(["preview"], { allowFail: true });
            assert.notEqual(r.status, 0, "preview accepted weight 150");
            // tests/config.test.ts expects exactly this problem text for weight 150.
            assert.match(r.stdout + r.stderr, /platform:apps\.api\.canary\.weight must be an integer from 0 to 100 \(got 150\)/);
        });
    });

    it("`pulumi stack output` shows each app's traffic split, as the offline render computes it", function () {
        const outputs = JSON.parse(pulumi(["stack", "output", "--json"]).stdout);
        const expected = renderedTraffic(fs.readFileSync(path.join(offlineRender().dir, "summary.txt"), "utf8"));
        const apps = Object.keys(outputs.apps ?? {});
        assert.deepEqual(apps.sort(), Object.keys(expected).sort(), "the stack outputs and the offline render name different apps");
        for (const app of apps) {
            const traffic = outputs.apps[app].traffic;
            assert.ok(traffic && typeof traffic === "object", `apps.${app}.traffic missing`);
            assert.deepStrictEqual(traffic, expected[app], `apps.${app}.traffic is not what the offline render computes`);
            process.stdout.write(`      ${app}: ${JSON.stringify(traffic)}\n`);
        }
    });
});

/** The per-app traffic lines of the offline render's summary.txt ("  app: strategy" ... "    traffic  {json}"). */
function renderedTraffic(summary: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let app = "";
    for (const line of summary.split("\n")) {
        const a = /^  (\S+): \S+$/.exec(line);
        if (a) app = a[1];
        const t = /^    traffic  (.*)$/.exec(line);
        if (t && app) out[app] = JSON.parse(t[1]);
    }
    return out;
}

function readStackColor(): string | undefined {
    const doc = yaml.load(fs.readFileSync(path.join(work, `Pulumi.${STACK}.yaml`), "utf8")) as any;
    return doc?.config?.["platform:apps"]?.[BLUE_GREEN_APP]?.blueGreen?.activeColor;
}
