import { spawnSync } from "child_process";
import * as path from "path";
import { performance } from "perf_hooks";
import type { ConfigValues } from "./evaluate";
import { pulumiTsNodeOptions, runtimeBootstrap } from "./runtime";

// One program evaluation in a fresh Node.js process, loaded the way Pulumi's runtime loads it
// (tools/runtime.ts), under the mock monitor of tools/evaluate.ts: what every `pulumi preview`
// pays on the Node.js side before the engine's own work. Milestones are times since the process
// started, so module loading and evaluation can be told apart.

const ROOT = path.resolve(__dirname, "..");

export interface FreshSpec {
    /** Stack file to evaluate. */
    stack: string;
    /** Replace the stack's apps by this many generated ones (cycling through the stack's own apps). */
    apps?: number;
}

/** Phases of a fresh evaluation, in order; `harness` (the mock harness) is not part of a real run. */
export const PHASES = ["nodeReady", "pulumiSdk", "tsNode", "harness", "programModules", "evaluated"] as const;
export type Phase = typeof PHASES[number];

export interface FreshResult {
    /** Wall time of the whole child process, as its parent saw it (ms). */
    wall: number;
    /** When each phase ended: [wall ms since the process started, CPU ms used so far]. */
    marks: Record<Phase, [number, number]>;
    resources: number;
    /** @pulumi packages the process loaded. */
    sdks: string[];
}

/**
 * `apps` apps made from the stack's own apps, renamed app0, app1, ...: a valid stack of that size.
 * What must be unique per app is made so (the router host gets the app's name in front, a
 * NodePort is dropped), and `calls` is dropped, since it names the template's apps.
 */
export function generatedApps(config: ConfigValues, apps: number): ConfigValues {
    const template = Object.values(config["platform:apps"] as Record<string, Record<string, any>>);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < apps; i++) {
        const app = JSON.parse(JSON.stringify(template[i % template.length]));
        delete app.calls;
        delete app.nodePort;
        if (app.routing?.host) app.routing.host = `app${i}.${app.routing.host}`;
        out[`app${i}`] = app;
    }
    return { ...config, "platform:apps": out };
}

/** Runs one fresh-process evaluation and returns its timings. */
export function evaluateInFreshProcess(spec: FreshSpec): FreshResult {
    const code = runtimeBootstrap(pulumiTsNodeOptions(ROOT), `require(${JSON.stringify(path.join(ROOT, "tools", "fresh.ts"))}).child();`);
    const env: NodeJS.ProcessEnv = { ...process.env, PLATFORM_FRESH: JSON.stringify(spec) };
    delete env.TS_NODE_TRANSPILE_ONLY;
    const t = performance.now();
    const r = spawnSync(process.execPath, ["-e", code], { cwd: ROOT, env, encoding: "utf8" });
    const wall = performance.now() - t;
    if (r.status !== 0) throw new Error(`fresh evaluation of ${JSON.stringify(spec)} failed (exit ${r.status}):\n${r.stderr}`);
    const line = r.stdout.trim().split("\n").pop() ?? "";
    return { wall, ...JSON.parse(line) };
}

/** The child's side: evaluate, then print one JSON line. */
export async function child(): Promise<void> {
    const mark = (globalThis as any).__platformMark as (name: Phase) => void;
    const marks = (globalThis as any).__platformMarks as FreshResult["marks"];
    const spec = JSON.parse(process.env.PLATFORM_FRESH ?? "{}") as FreshSpec;
    // The mock harness (not part of a real run): measured apart and left out of the phases.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { evaluate, readStackFile } = require("./evaluate") as typeof import("./evaluate");
    mark("harness");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require("../components/program");
    mark("programModules");
    let config = readStackFile(spec.stack);
    if (spec.apps !== undefined) config = generatedApps(config, spec.apps);
    const evaluation = await evaluate(spec.stack, config);
    mark("evaluated");
    const sdks = [...new Set(Object.keys(require.cache)
        .map((f) => /node_modules\/(@pulumi\/[^/]+)\//.exec(f)?.[1])
        .filter((s): s is string => !!s))].sort();
    process.stdout.write(`${JSON.stringify({ marks, resources: evaluation.resources.length, sdks })}\n`);
}
