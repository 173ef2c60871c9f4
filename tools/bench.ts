import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import { engineBuilt, engineWorkspace, ensurePulumi, exportsOf, ROOT } from "./engine";
import { evaluateInFreshProcess, FreshResult, FreshSpec } from "./fresh";

// npm run bench [-- --runs N] [-- --only evaluation|engine|cluster]
//
// 1. Program evaluation in a fresh process (tools/fresh.ts), as every `pulumi preview` pays it:
//    the stacks, and 1/10/50/100 generated apps to show the cost is linear in apps. The physical
//    limit is an empty `node` process (what any Node.js program pays before its first line).
// 2. The operator loop with the real engine (scripts/ensure-pulumi), side by side in one run on a
//    throwaway copy of the local stack: `pulumi preview`, and `pulumi up` for a canary weight step,
//    a blue/green switch and its rollback. The local stack renders to out/local, so the physical
//    limit is writing the same manifest files (what the render-only kubernetes provider does).
// 3. The same actions on the cluster stack against the local control plane (scripts/ensure-cluster,
//    started if it is built), next to a `kubectl patch` of the same objects on the same API server.
// Every figure is printed with the load average, since this 2-core machine is often busy.

const args = process.argv.slice(2);
const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i === -1 ? undefined : args[i + 1];
};
const RUNS = Number(opt("runs") ?? 3);
const ONLY = opt("only");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms: number) => (ms / 1000).toFixed(2);
const load = () => os.loadavg()[0].toFixed(1);
const ratio = (a: number, b: number) => `${(a / b).toFixed(a / b >= 100 ? 0 : 1)}×`;

function table(header: string[], rows: string[][]): void {
    console.log(`| ${header.join(" | ")} |`);
    console.log(`| ${header.map(() => "---").join(" | ")} |`);
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
    console.log("");
}

// ---- 1. fresh-process evaluation --------------------------------------------------------------

/** ms a real run pays in Node.js for each phase (the mock harness's own loading left out). */
function phases(r: FreshResult): { total: number; cpu: number; node: number; sdk: number; ts: number; modules: number; declare: number } {
    const m = r.marks;
    const harness = m.harness[0] - m.tsNode[0];
    const harnessCpu = m.harness[1] - m.tsNode[1];
    return {
        total: m.evaluated[0] - harness,
        cpu: m.evaluated[1] - harnessCpu,
        node: m.nodeReady[0],
        sdk: m.pulumiSdk[0] - m.nodeReady[0],
        ts: m.tsNode[0] - m.pulumiSdk[0],
        modules: m.programModules[0] - m.harness[0],
        declare: m.evaluated[0] - m.programModules[0],
    };
}

function emptyNode(): number {
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
        const t = performance.now();
        spawnSync(process.execPath, ["-e", "0"]);
        samples.push(performance.now() - t);
    }
    return median(samples);
}

function benchEvaluation(): void {
    console.log(`## Program evaluation in a fresh process (median of ${RUNS}; load ${load()} at start)\n`);
    const floor = emptyNode();
    const cases: [string, FreshSpec][] = [
        ["local", { stack: "local" }],
        ["staging", { stack: "staging" }],
        ["production", { stack: "production" }],
        ["1 app", { stack: "staging", apps: 1 }],
        ["10 apps", { stack: "staging", apps: 10 }],
        ["50 apps", { stack: "staging", apps: 50 }],
        ["100 apps", { stack: "staging", apps: 100 }],
    ];
    const rows: string[][] = [];
    const totals: Record<string, number> = {};
    for (const [label, spec] of cases) {
        const runs = Array.from({ length: RUNS }, () => phases(evaluateInFreshProcess(spec)));
        const med = (k: keyof ReturnType<typeof phases>) => median(runs.map((r) => r[k]));
        totals[label] = med("total");
        const target = label === "production" ? " (< 1 s)" : label === "50 apps" ? " (< 3 s)" : "";
        rows.push([`${label}${target}`, s(med("total")), s(med("cpu")), ratio(med("total"), floor), s(med("node")), s(med("sdk")), s(med("ts")), s(med("modules")), s(med("declare")), load()]);
    }
    table(["stack", "seconds", "CPU s", "× empty node", "node start", "@pulumi/pulumi", "typescript + ts-node", "program modules", "declaring resources", "load"], rows);
    console.log(`Physical limit: an empty node process, ${s(floor)} s.`);
    const per = (a: string, b: string, n: number) => (totals[b] - totals[a]) / n;
    const p10 = per("1 app", "10 apps", 9), p50 = per("10 apps", "50 apps", 40), p100 = per("50 apps", "100 apps", 50);
    console.log(`Marginal cost per app: ${p10.toFixed(0)} ms (1→10), ${p50.toFixed(0)} ms (10→50), ${p100.toFixed(0)} ms (50→100): linear when these agree.`);
    console.log(`production ${totals.production < 1000 ? "within" : "OVER"} 1 s; 50 apps ${totals["50 apps"] < 3000 ? "within" : "OVER"} 3 s.\n`);
}

// ---- 2. the operator loop with the real engine ------------------------------------------------

// Preloaded into every Node.js process the language host starts (NODE_OPTIONS), it appends one
// JSON line per process to $PLATFORM_MARKS: epoch ms of the process start, of the program's
// entry (index.ts) being required and returning, and of the process exit.
const PRELOAD = `
const fs = require("fs"), Module = require("module"), { performance } = require("perf_hooks");
const now = () => performance.timeOrigin + performance.now();
const marks = { start: performance.timeOrigin };
const entry = require("path").join(process.cwd(), "index.ts");
const load = Module._load;
Module._load = function (request, parent, isMain) {
    let file; try { file = Module._resolveFilename(request, parent, isMain); } catch (e) {}
    if (file !== entry || marks.programStart) return load.apply(this, arguments);
    marks.programStart = now();
    try { return load.apply(this, arguments); } finally { marks.programEnd = now(); }
};
process.on("exit", () => { marks.exit = now(); fs.appendFileSync(process.env.PLATFORM_MARKS, JSON.stringify(marks) + "\\n"); });
`;

interface ProgramMarks { start: number; programStart?: number; programEnd?: number; exit: number }

/** Installs the preload in a workspace's env; `phases` then explains one CLI run from its marks. */
function recordMarks(work: string, env: NodeJS.ProcessEnv): { reset(): void; phases(start: number, end: number): string[] } {
    const marksFile = path.join(work, "marks.jsonl");
    fs.writeFileSync(path.join(work, "preload.js"), PRELOAD);
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ""} --require ${path.join(work, "preload.js")}`.trim();
    env.PLATFORM_MARKS = marksFile;
    return {
        reset: () => fs.writeFileSync(marksFile, ""),
        phases: (start, end) => {
            const procs = fs.readFileSync(marksFile, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as ProgramMarks);
            return explain(start, end, procs);
        },
    };
}

const PHASES = ["CLI + engine start", "node + SDK + ts-node", "program", "engine + provider (+ awaits)", "engine finish"];

/**
 * The operator actions both benches time, in this order (each starts from the state the previous
 * one left): `canaryApp` is a canary behind ingress-nginx at weight 10, `web` blue/green on blue.
 */
function operatorActions(canaryApp: string): Action[] {
    const weight = `apps.${canaryApp}.canary.weight`;
    return [
        { label: "`pulumi preview` (no change)", args: ["preview"] },
        { label: "canary weight step 10→50: `pulumi up --skip-preview`", set: [weight, "50"], args: ["up", "--yes", "--skip-preview"] },
        { label: "blue/green switch to green: `pulumi up --skip-preview`", set: ["apps.web.blueGreen.activeColor", "green"], args: ["up", "--yes", "--skip-preview"] },
        { label: "rollback to blue: `pulumi up --skip-preview`", set: ["apps.web.blueGreen.activeColor", "blue"], args: ["up", "--yes", "--skip-preview"] },
        { label: "canary weight step 50→10: `pulumi up --yes` (preview + update)", set: [weight, "10"], args: ["up", "--yes"] },
    ];
}

/** Runs a command in a workspace; a non-zero exit throws with the end of its output. */
function runner(work: string, env: NodeJS.ProcessEnv) {
    return (cmd: string, a: string[]) => {
        const r = spawnSync(cmd, a, { cwd: work, env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
        if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${a.join(" ")} exited ${r.status}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
        return r;
    };
}

interface Action {
    label: string;
    /** `pulumi config set --path` before the run. */
    set?: [string, string];
    args: string[];
}

const OUT = (work: string) => path.join(work, "out", "local");

function snapshot(dir: string): Map<string, string> {
    const files = new Map<string, string>();
    const walk = (d: string) => {
        if (!fs.existsSync(d)) return;
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) walk(p);
            else files.set(p, fs.readFileSync(p, "utf8"));
        }
    };
    walk(dir);
    return files;
}

/** The physical limit: writing the changed manifests again, in this process and in a fresh one. */
function writeLimit(files: [string, string][]): { inProcess: number; process: number } {
    const samples: number[] = [];
    for (let i = 0; i < 50; i++) {
        const t = performance.now();
        for (const [f, c] of files) fs.writeFileSync(f, c);
        samples.push(performance.now() - t);
    }
    const code = `const fs=require("fs");for(const [f,c] of JSON.parse(process.env.FILES))fs.writeFileSync(f,c);`;
    const proc: number[] = [];
    for (let i = 0; i < 5; i++) {
        const t = performance.now();
        spawnSync(process.execPath, ["-e", code], { env: { ...process.env, FILES: JSON.stringify(files) } });
        proc.push(performance.now() - t);
    }
    return { inProcess: median(samples), process: median(proc) };
}

function benchEngine(): void {
    console.log(`## The operator loop with the real engine (local stack, render-only; load ${load()} at start)\n`);
    if (!engineBuilt()) {
        console.log('not measured: the engine is not built (run `eval "$(scripts/ensure-pulumi)"` first, ~15 min cold).\n');
        return;
    }
    const { work, env } = engineWorkspace(ROOT, "platform-bench-", ensurePulumi());
    const marks = recordMarks(work, env);
    const run = runner(work, env);
    const pulumi = (a: string[]) => run("pulumi", [...a, "--stack", "local", "--non-interactive"]);
    try {
        run("pulumi", ["stack", "select", "--create", "local", "--non-interactive"]);
        // Behind ingress-nginx a canary weight step is one object (the canary Ingress), like the
        // one-object patch Argo Rollouts or Flagger would make.
        for (const [k, v] of Object.entries({ kind: "nginx", host: "api.local.test", ingressClassName: "nginx" })) {
            pulumi(["config", "set", "--path", `apps.api.routing.${k}`, v]);
        }
        let t = performance.now();
        pulumi(["up", "--yes", "--skip-preview"]);
        console.log(`set-up: first \`pulumi up\` of the local stack (47 objects): ${s(performance.now() - t)} s (load ${load()})\n`);

        const actions = operatorActions("api");
        const rows: string[][] = [];
        const breakdown: string[][] = [];
        for (const a of actions) {
            if (a.set) pulumi(["config", "set", "--path", a.set[0], a.set[1]]);
            const before = snapshot(OUT(work));
            marks.reset();
            const start = Date.now();
            t = performance.now();
            pulumi(a.args);
            const wall = performance.now() - t;
            const end = Date.now();
            const after = snapshot(OUT(work));
            const changed = [...after].filter(([f, c]) => before.get(f) !== c);
            const names = changed.map(([f]) => path.basename(f).replace(/\.yaml$/, "")).join(", ") || "none";
            const limit = changed.length ? writeLimit(changed) : undefined;
            rows.push([
                a.label, s(wall), names,
                limit ? `${(limit.inProcess * 1000).toFixed(0)} µs` : "—", limit ? ratio(wall, limit.inProcess) : "—",
                limit ? s(limit.process) : "—", limit ? ratio(wall, limit.process) : "—",
                load(),
            ]);
            breakdown.push([a.label, ...marks.phases(start, end)]);
        }
        table(["operator action", "engine s", "objects written", "limit: write them", "ratio", "limit: a process writing them", "ratio", "load"], rows);
        console.log("Where the seconds go (s): CLI/engine start (backend, plugins, language host) until the program's node process starts; node start, @pulumi/pulumi and ts-node until index.ts is required; the program (our modules, SDKs, declaring resources); registrations (engine steps and provider calls, awaits) until node exits; the engine finishing (state, summary). With `pulumi up --yes` two program runs are summed.\n");
        table(["operator action", ...PHASES], breakdown);
    } finally {
        if (process.env.PLATFORM_BENCH_KEEP) console.log(`kept ${work}`);
        else fs.rmSync(work, { recursive: true, force: true });
    }
}

/** The five phases of one CLI run from the program processes' marks (epoch ms). */
function explain(start: number, end: number, procs: ProgramMarks[]): string[] {
    // The language host's own short `node` (locating @pulumi/pulumi/cmd/run) requires no program:
    // it counts as language host start.
    const programs = procs.filter((p) => p.programStart && p.programEnd);
    if (programs.length === 0) return ["?", "?", "?", "?", "?"];
    let cursor = start;
    const sum = [0, 0, 0, 0];
    for (const p of programs) {
        sum[0] += p.start - cursor;
        sum[1] += p.programStart! - p.start;
        sum[2] += p.programEnd! - p.programStart!;
        sum[3] += p.exit - p.programEnd!;
        cursor = p.exit;
    }
    return [...sum.map(s), s(end - cursor)];
}

// ---- 3. the same actions against the local control plane ----------------------------------------

/** The kinds an operator action can change, as kubectl names them. */
const KINDS = "services,ingresses.networking.k8s.io,httproutes.gateway.networking.k8s.io,deployments.apps,jobs.batch";

/** What an operator action changes on an object: its labels, annotations and spec (not status). */
type Intent = { labels: Record<string, string>; annotations: Record<string, string>; spec: unknown };
const intent = (o: Record<string, any>): Intent => ({ labels: o.metadata.labels ?? {}, annotations: o.metadata.annotations ?? {}, spec: o.spec });
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** RFC 7386 merge patch from `before` to `after` (arrays are replaced whole, removed keys are null). */
function mergePatch(before: unknown, after: unknown): unknown {
    const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
    if (!isObject(before) || !isObject(after)) return after;
    const patch: Record<string, unknown> = {};
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
        if (!(k in after)) patch[k] = null;
        else if (!same(before[k], after[k])) patch[k] = mergePatch(before[k], after[k]);
    }
    return patch;
}

/**
 * The operator loop against the local control plane (scripts/ensure-cluster): `pulumi up` of a
 * throwaway copy of the cluster stack, in a namespace of its own, for the same actions as above,
 * next to the physical limit of the same change made by `kubectl patch` of the same objects on the
 * same API server. Pulumi's time includes the awaits that gate traffic (a Service that takes traffic
 * waits for ready endpoints, instant on simulated pods); kubectl returns when the write is stored.
 */
function benchCluster(): void {
    console.log(`## The same actions against the local control plane (load ${load()} at start)\n`);
    const script = path.join(ROOT, "scripts", "ensure-cluster");
    if (!engineBuilt() || spawnSync(script, ["--check"], { stdio: "ignore" }).status !== 0) {
        console.log("not measured: the engine or the local control plane is not built (`scripts/ensure-pulumi`; `scripts/ensure-cluster install`, ~15 min cold).\n");
        return;
    }
    const cluster = exportsOf(script, ["start"]);
    const kubectlPath = cluster.PLATFORM_KUBECTL!;
    const { work, env } = engineWorkspace(ROOT, "platform-bench-cluster-", ensurePulumi());
    env.KUBECONFIG = cluster.KUBECONFIG;
    const marks = recordMarks(work, env);
    const namespace = `bench-${Date.now().toString(36)}`;
    const run = runner(work, env);
    const pulumi = (a: string[]) => run("pulumi", [...a, "--stack", "cluster", "--non-interactive"]);
    const kubectl = (a: string[]) => run(kubectlPath, ["-n", namespace, ...a]);
    const objects = (): Map<string, Record<string, any>> => {
        const items = JSON.parse(kubectl(["get", KINDS, "-o", "json"]).stdout).items as Record<string, any>[];
        return new Map(items.map((o) => [`${o.kind.toLowerCase()}/${o.metadata.name}`, o]));
    };
    try {
        run("pulumi", ["stack", "select", "--create", "cluster", "--non-interactive"]);
        pulumi(["config", "set", "namespace", namespace]);
        // shop: a canary behind ingress-nginx, so a weight step is one object (the canary Ingress).
        pulumi(["config", "set", "--path", "apps.shop.canary.canary", "3.2.0"]);
        pulumi(["config", "set", "--path", "apps.shop.canary.weight", "10"]);
        let t = performance.now();
        pulumi(["up", "--yes", "--skip-preview"]);
        console.log(`set-up: first \`pulumi up\` of the cluster stack in namespace ${namespace}: ${s(performance.now() - t)} s (load ${load()})\n`);

        const actions = operatorActions("shop");
        const measured: { label: string; wall: number; load: string; changes: [string, Intent, Intent][]; phases: string[] }[] = [];
        for (const a of actions) {
            if (a.set) pulumi(["config", "set", "--path", a.set[0], a.set[1]]);
            const before = objects();
            marks.reset();
            const start = Date.now();
            t = performance.now();
            pulumi(a.args);
            const wall = performance.now() - t;
            const phases = marks.phases(start, Date.now());
            const after = objects();
            const changes: [string, Intent, Intent][] = [];
            for (const [name, o] of after) {
                const b = before.get(name);
                if (!b) throw new Error(`${a.label} created ${name}: an operator action should only change objects`);
                if (!same(intent(b), intent(o))) changes.push([name, intent(b), intent(o)]);
            }
            measured.push({ label: a.label, wall, load: load(), changes, phases });
        }

        // The physical limit, after Pulumi's runs: the same changes, in the same order from the same
        // states, by `kubectl patch` (one process per object, as an operator would type it). Pulumi
        // is not run again, so kubectl taking over the patched fields' ownership does not matter.
        const rows: string[][] = [];
        for (const m of measured) {
            if (m.changes.length === 0) {
                rows.push([m.label, s(m.wall), "none", "—", "—", m.load]);
                continue;
            }
            let limit = 0;
            for (const [name, b, a] of m.changes) {
                const patch = { metadata: mergePatch({ labels: b.labels, annotations: b.annotations }, { labels: a.labels, annotations: a.annotations }), spec: mergePatch(b.spec, a.spec) };
                t = performance.now();
                kubectl(["patch", name, "--type", "merge", "-p", JSON.stringify(patch)]);
                limit += performance.now() - t;
                const now = objects().get(name);
                if (!now || !same(intent(now), a)) throw new Error(`kubectl patch of ${name} did not make the change Pulumi made`);
            }
            rows.push([m.label, s(m.wall), m.changes.map(([n]) => n).join(", "), s(limit), ratio(m.wall, limit), m.load]);
        }
        table(["operator action (cluster stack, live API server)", "pulumi s", "objects changed", "kubectl patch s (same objects)", "ratio", "load"], rows);
        console.log("Where the seconds go (s), as above; against a cluster `engine + provider` includes the awaits (a Service that takes traffic: ready endpoints, then the provider's fixed 10 s for them to settle).\n");
        table(["operator action", ...PHASES], measured.map((m) => [m.label, ...m.phases]));
    } finally {
        // Deleting the namespace takes every object with it, without another engine run.
        spawnSync(kubectlPath, ["delete", "namespace", namespace, "--wait=false"], { env, stdio: "ignore" });
        if (process.env.PLATFORM_BENCH_KEEP) console.log(`kept ${work}`);
        else fs.rmSync(work, { recursive: true, force: true });
    }
}

function main(): void {
    console.log(`platform bench: ${new Date().toISOString()}, ${os.cpus().length} cores, node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}\n`);
    if (!ONLY || ONLY === "evaluation") benchEvaluation();
    if (!ONLY || ONLY === "engine") benchEngine();
    if (!ONLY || ONLY === "cluster") benchCluster();
}

main();
