import { spawn } from "child_process";
import * as path from "path";
import { readAnalysisResults } from "../components/live";
import { AppChange, notify, Notice, runUrl } from "./notify";
import { changeCommand, ConfigChange, fromTags, restorePlan, StackApps, TAG_PREFIX, toTags, Validated, validatedFrom } from "./release";

// npm run deploy -- --stack <stack> [--cwd <project dir>] [-- <extra pulumi up arguments>]
//
// The one way CI and operators deploy a stack: announce, `pulumi up` (whose analysis Jobs verify
// every traffic move), and on success record the release as the last validated one (stack tags).
// When the update or its analysis fails: set the validated release back (`pulumi config set
// --path`), `pulumi up` again with the restored state's analysis re-run, print one summary,
// announce, exit non-zero. It reads stack outputs and tags only; the program stays the one plan.
//
// Exit codes: 0 deployed and validated; 1 failed and rolled back (or nothing to roll back to);
// 2 the rollback failed too (act now); 3 usage.

export interface Options {
    stack: string;
    cwd: string;
    upArgs: string[];
    env: NodeJS.ProcessEnv;
    /** Where progress and the summary go. */
    out: (line: string) => void;
}

export interface CommandResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs the Pulumi CLI; `tee` streams its output as it comes (long updates must show progress). */
export function pulumiCli(o: Options) {
    const run = (args: string[], tee = false): Promise<CommandResult> => new Promise((resolve) => {
        const p = spawn("pulumi", [...args, "--stack", o.stack, "--non-interactive"], { cwd: o.cwd, env: o.env });
        let stdout = "", stderr = "";
        p.stdout.on("data", (d) => { stdout += d; if (tee) process.stdout.write(d); });
        p.stderr.on("data", (d) => { stderr += d; if (tee) process.stderr.write(d); });
        p.on("error", (e) => resolve({ code: 127, stdout, stderr: `${stderr}${e.message}` }));
        p.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
    const json = async (args: string[]): Promise<any> => {
        const r = await run(args);
        if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed: ${lastLines(r.stderr + r.stdout, 3)}`);
        return JSON.parse(r.stdout || "null");
    };
    /** An object-valued config key (`pulumi config --json` gives it as objectValue or JSON text). */
    const configObject = async (key: string): Promise<Record<string, unknown>> => {
        const v = ((await json(["config", "--json"])) ?? {})[key];
        return v?.objectValue ?? (v?.value ? JSON.parse(v.value) : {});
    };
    return {
        run,
        outputs: async (): Promise<StackApps> => ((await json(["stack", "output", "--json", "--show-secrets=false"])) ?? {}).apps ?? {},
        tags: async (): Promise<Record<string, string>> => (await json(["stack", "tag", "ls", "--json"])) ?? {},
        appsConfig: () => configObject("platform:apps"),
        urnsOfJobs: async (names: string[]): Promise<string[]> => {
            const state = await json(["stack", "export"]);
            return (state?.deployment?.resources ?? [])
                .filter((r: any) => r.type === "kubernetes:batch/v1:Job" && names.includes(r.inputs?.metadata?.name))
                .map((r: any) => r.urn);
        },
        /** What the failed analysis Jobs' pods said (pulumi reports only that the Job failed). */
        analysisResults: async (jobs: string[]): Promise<string[]> => {
            const namespace = await json(["stack", "output", "namespace", "--json"]);
            const context = (await configObject("platform:kubernetes")).context as string | undefined;
            return readAnalysisResults({ namespace, jobs, context });
        },
        lastUpdateSucceeded: async (): Promise<boolean> => {
            const h = (await json(["stack", "history", "--json", "--page-size", "1"])) ?? [];
            return h[0]?.result === "succeeded";
        },
    };
}

export type Cli = ReturnType<typeof pulumiCli>;

/** The last lines of a command's output that say what went wrong (analysis line first). */
export function failureLines(output: string, n = 3): string {
    const lines = output.split("\n").map((l) => l.trim()).filter(Boolean);
    const analysis = [...new Set(lines.filter((l) => /analysis failed: app /.test(l)))];
    if (analysis.length) return analysis.slice(0, n).join(" | ");
    // Pulumi's diagnostics ("error: <why>") before its generic "error: update failed".
    const unique = (ls: string[]) => [...new Set(ls)];
    const starts = unique(lines.filter((l) => /^error:/i.test(l)));
    const specific = starts.filter((l) => !/^error: update failed$/i.test(l));
    const errors = specific.length ? specific : starts.length ? starts : unique(lines.filter((l) => /\berror\b/i.test(l)));
    return (errors.length ? errors.slice(0, n) : lines.slice(-n)).join(" | ");
}

/**
 * The analysis Jobs that pulumi's diagnostics report as run and failed in the cluster (their pods
 * hold the result): not those the engine failed to create or write.
 */
export function failedAnalysisJobs(output: string): string[] {
    const jobs = new Set<string>();
    const blocks = output.split(/\n(?=  \S[^\n]* \([^\n]*\):\n)/);
    for (const b of blocks) {
        const m = /^\s*kubernetes:batch\/v1:Job \(([a-z0-9-]+-analysis-[0-9a-f]{8})\):/.exec(b);
        if (m && /BackoffLimitExceeded|DeadlineExceeded|failed to fully initialize or become live/.test(b)) jobs.add(m[1]);
    }
    return [...jobs];
}

/** Why the update failed: the analysis result when an analysis Job failed, else pulumi's diagnostics. */
async function whyFailed(cli: Cli, output: string): Promise<{ why: string; note?: string }> {
    const why = failureLines(output);
    const jobs = failedAnalysisJobs(output);
    if (jobs.length === 0 || /analysis failed: app /.test(why)) return { why };
    try {
        const results = (await cli.analysisResults(jobs)).filter((l) => l.startsWith("analysis failed"));
        return results.length ? { why: results.join(" | ") } : { why, note: `${jobs.join(", ")} left no result line (see kubectl logs job/${jobs[0]})` };
    } catch (e) {
        return { why, note: `the result of ${jobs.join(", ")} could not be read: ${(e as Error).message}` };
    }
}

const lastLines = (s: string, n: number) => s.trim().split("\n").slice(-n).join(" | ");

/** Per app, versions and traffic before and after; only the apps in `only` when given. */
function changesOf(before: StackApps, after: StackApps, only?: Set<string>): AppChange[] {
    return [...new Set([...Object.keys(before), ...Object.keys(after)])].sort().filter((a) => !only || only.has(a)).map((app) => ({
        app,
        versionsBefore: before[app]?.images, versionsAfter: after[app]?.images,
        trafficBefore: before[app]?.traffic, trafficAfter: after[app]?.traffic,
    }));
}

export interface DeployOutcome {
    code: 0 | 1 | 2;
    summary: string[];
    /** Seconds from the detected failure to the restored traffic (when a rollback ran). */
    rollbackSeconds?: number;
    restored?: ConfigChange[];
}

async function readValidated(cli: Cli, out: (l: string) => void): Promise<Validated | undefined> {
    try {
        const tagged = fromTags(await cli.tags());
        if (tagged) return tagged;
        // A stack deployed before this command existed: its outputs are validated if its last update succeeded.
        if (await cli.lastUpdateSucceeded()) return validatedFrom(await cli.outputs(), new Date());
    } catch (e) {
        out(`deploy: could not read the last validated release: ${(e as Error).message}`);
    }
    return undefined;
}

async function recordValidated(cli: Cli, v: Validated): Promise<void> {
    const old = await cli.tags();
    const tags = toTags(v);
    for (const [k, value] of Object.entries(tags)) {
        const r = await cli.run(["stack", "tag", "set", k, value]);
        if (r.code !== 0) throw new Error(`pulumi stack tag set ${k} failed: ${lastLines(r.stderr, 2)}`);
    }
    for (const k of Object.keys(old)) {
        if (k.startsWith(`${TAG_PREFIX}-`) && !(k in tags)) await cli.run(["stack", "tag", "rm", k]);
    }
}

export async function deploy(o: Options, cli: Cli = pulumiCli(o)): Promise<DeployOutcome> {
    const link = runUrl(o.env);
    const announce = async (n: Omit<Notice, "stack" | "runUrl">) => o.out(await notify({ ...n, stack: o.stack, runUrl: link }, o.env.PLATFORM_WEBHOOK_URL));
    const validated = await readValidated(cli, o.out);
    const before = await cli.outputs().catch(() => ({} as StackApps));
    await announce({ event: "start", summary: `pulumi up of ${o.stack}`, apps: changesOf(before, {}) });

    const started = Date.now();
    const up = await cli.run(["up", "--yes", "--skip-preview", ...o.upArgs], true);
    const upSeconds = (Date.now() - started) / 1000;
    if (up.code === 0) {
        const after = await cli.outputs();
        const summary = [`deploy ${o.stack}: succeeded in ${upSeconds.toFixed(1)} s (with its analysis, where configured); recorded as the last validated release`];
        try {
            await recordValidated(cli, validatedFrom(after, new Date()));
        } catch (e) {
            summary.push(`  warning: ${(e as Error).message} (the next failed deploy rolls back to the release before this one)`);
        }
        const changed = new Set(Object.keys(after).filter((a) => JSON.stringify([before[a]?.images, before[a]?.traffic]) !== JSON.stringify([after[a]?.images, after[a]?.traffic])));
        for (const c of changesOf(before, after, changed)) summary.push(`  ${c.app}: traffic ${JSON.stringify(c.trafficBefore ?? null)} -> ${JSON.stringify(c.trafficAfter ?? null)}`);
        if (changed.size === 0) summary.push("  no app's versions or traffic changed");
        await announce({ event: "success", summary: `deployed in ${upSeconds.toFixed(0)} s${changed.size ? "" : "; no app's versions or traffic changed"}`, apps: changesOf(before, after, changed) });
        return { code: 0, summary };
    }

    const failedAt = Date.now();
    const { why, note } = await whyFailed(cli, up.stdout + "\n" + up.stderr);
    const summary = [`deploy ${o.stack}: FAILED after ${upSeconds.toFixed(1)} s: ${why}`, ...(note ? [`  (${note})`] : [])];
    await announce({ event: "failure", summary: why, apps: changesOf(before, {}) });
    if (!validated) {
        summary.push("  no validated release is recorded for this stack: nothing to roll back to; traffic is where the failed update left it");
        summary.push(`  look: pulumi stack output apps --json --stack ${o.stack}`);
        return { code: 1, summary };
    }

    const { changes, missing } = restorePlan(validated, await cli.appsConfig());
    summary.push(`  rolling back to the release validated at ${validated.at}`);
    for (const c of changes) {
        const r = await cli.run(["config", "set", "--path", c.key, String(c.value)]);
        if (r.code !== 0) throw new Error(`${changeCommand(c, o.stack)} failed: ${lastLines(r.stderr, 2)}`);
        summary.push(`  restored ${c.key.replace(/^platform:/, "")}: ${JSON.stringify(c.was ?? null)} -> ${JSON.stringify(c.value)}`);
    }
    if (changes.length === 0) summary.push("  the config already names the validated release (the failure is elsewhere): re-applying it");
    for (const app of missing) summary.push(`  ${app}: removed from the config by the failed release; not restored`);
    // The restored state's analysis runs again even where its Job still exists from before.
    const restoredApps = new Set(changes.map((c) => c.app));
    const jobs = Object.entries(validated.apps).filter(([a, v]) => restoredApps.has(a) && v.analysisJob).map(([, v]) => v.analysisJob!);
    const replace = (await cli.urnsOfJobs(jobs)).flatMap((u) => ["--replace", u]);
    const restore = await cli.run(["up", "--yes", "--skip-preview", ...replace, ...o.upArgs], true);
    const rollbackSeconds = (Date.now() - failedAt) / 1000;
    const after = await cli.outputs().catch(() => ({} as StackApps));
    const apps = changesOf(before, after, restoredApps.size ? restoredApps : undefined);
    if (restore.code !== 0) {
        const rwhy = (await whyFailed(cli, restore.stdout + "\n" + restore.stderr)).why;
        summary.push(`  ROLLBACK FAILED after ${rollbackSeconds.toFixed(1)} s: ${rwhy}`);
        summary.push(`  act now: docs/operations.md, "When the automatic rollback fails"`);
        await announce({ event: "rollback-failed", summary: rwhy, apps });
        return { code: 2, summary, rollbackSeconds, restored: changes };
    }
    summary.push(`  rolled back in ${rollbackSeconds.toFixed(1)} s (failure to restored traffic)${jobs.length ? `; re-ran ${jobs.join(", ")}: passed` : ""}`);
    for (const c of apps) summary.push(`  ${c.app}: traffic ${JSON.stringify(c.trafficBefore ?? null)} before, ${JSON.stringify(c.trafficAfter ?? null)} now`);
    summary.push(`  the config of this checkout now names the validated release; fix the failed release, then deploy again (docs/operations.md, "After an automatic rollback")`);
    await announce({ event: "rollback", summary: `${why}; back on the release validated at ${validated.at} in ${rollbackSeconds.toFixed(0)} s`, apps });
    return { code: 1, summary, rollbackSeconds, restored: changes };
}

export function parseArgs(argv: string[]): { stack: string; cwd: string; upArgs: string[] } {
    const dash = argv.indexOf("--");
    const own = dash >= 0 ? argv.slice(0, dash) : argv;
    const upArgs = dash >= 0 ? argv.slice(dash + 1) : [];
    let stack = "";
    let cwd = path.resolve(__dirname, "..");
    for (let i = 0; i < own.length; i++) {
        if (own[i] === "--stack") stack = own[++i] ?? "";
        else if (own[i] === "--cwd") cwd = path.resolve(own[++i] ?? ".");
        else throw new Error(`unknown argument ${own[i]} (usage: npm run deploy -- --stack <stack> [--cwd <dir>] [-- <pulumi up arguments>])`);
    }
    if (!stack) throw new Error("--stack is required (usage: npm run deploy -- --stack <stack> [--cwd <dir>] [-- <pulumi up arguments>])");
    return { stack, cwd, upArgs };
}

if (require.main === module) {
    let args: ReturnType<typeof parseArgs>;
    try {
        args = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`deploy: ${(e as Error).message}\n`);
        process.exit(3);
    }
    const out = (line: string) => process.stdout.write(`${line}\n`);
    deploy({ ...args, env: process.env, out }).then((r) => {
        out("");
        out("==== deploy summary");
        for (const line of r.summary) out(line);
        process.exit(r.code);
    }, (e) => {
        process.stderr.write(`deploy: ${(e as Error).message}\n`);
        process.exit(2);
    });
}
