import * as path from "path";
import { AppChange, notify, Notice, runUrl } from "./notify";
import { Cli, pulumiCli } from "./pulumi-cli";
import { APP_COMPONENT, failedAnalysisJobs, failedAppsOf, failureLines, stackLocked } from "./pulumi-output";
import {
    changeCommand, ConfigChange, currentRelease, FAILED_TAG_PREFIX, releaseChanged, FailedReleases, failedFromTags, fromTags, hasRecord, heldApps,
    restorePlan, StackApps, TAG_PREFIX, toTags, Validated, validatedFrom,
} from "./release";

export { failedAnalysisJobs, failureLines } from "./pulumi-output";
export { Cli, CommandResult, pulumiCli } from "./pulumi-cli";

// npm run deploy -- --stack <stack> [--cwd <dir>] [--retry-failed] [--no-rollback] [-- <pulumi up arguments>]
//
// The one way CI and operators deploy a stack: announce, `pulumi up` (whose analysis Jobs verify
// every traffic move), and on success record the release as the last validated one (stack tags).
// When the update or its analysis fails: remember the failed release of each app that failed, set
// those apps back to their validated release (a canary to weight 0), `pulumi up` only them with the
// restored state's analysis re-run, print one summary, announce, exit non-zero. A later deploy whose
// config still names a failed release keeps that app where it is until its release keys change (or
// --retry-failed). It reads stack outputs, state and tags only; the program stays the one plan.
// docs/operations.md, "Exit codes and notices", has the table below with what to do for each.

export const EXIT = {
    deployed: 0,
    rolledBack: 1,
    rollbackFailed: 2,
    usage: 3,
    heldFailedRelease: 4,
    refused: 5,
    locked: 6,
    notRecorded: 7,
    interrupted: 130,
    terminated: 143,
} as const;
export type ExitCode = typeof EXIT[keyof typeof EXIT];

export interface Options {
    stack: string;
    cwd: string;
    upArgs: string[];
    env: NodeJS.ProcessEnv;
    /** Try releases that failed before (their config still names them) instead of holding them back. */
    retryFailed?: boolean;
    /** Deploy even when the validated release cannot be read: nothing to roll back to. */
    noRollback?: boolean;
    /** Where progress and the summary go. */
    out: (line: string) => void;
    /** What the command is doing now (for an interruption's report). */
    onPhase?: (phase: string) => void;
    /** How long a notice may take before the command goes on without it. */
    noticeTimeoutMs?: number;
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
const message = (e: unknown) => (e as Error).message ?? String(e);

/** Per app, versions and traffic before and after; only the apps in `only` when given. */
function changesOf(before: StackApps, after: StackApps, only?: Set<string>): AppChange[] {
    return [...new Set([...Object.keys(before), ...Object.keys(after)])].sort().filter((a) => !only || only.has(a)).map((app) => ({
        app,
        versionsBefore: before[app]?.images, versionsAfter: after[app]?.images,
        trafficBefore: before[app]?.traffic, trafficAfter: after[app]?.traffic,
    }));
}

export interface DeployOutcome {
    code: ExitCode;
    summary: string[];
    /** Seconds from the detected failure to the restored traffic (when a rollback ran). */
    rollbackSeconds?: number;
    restored?: ConfigChange[];
    /** Apps kept at their validated release because their config names a release that failed. */
    held?: string[];
}

/** Writes a record's tags and drops its stale chunks; throws on the first tag Pulumi refuses. */
async function writeRecord(cli: Cli, old: Record<string, string>, tags: Record<string, string>, prefix: string): Promise<void> {
    for (const [k, value] of Object.entries(tags)) {
        if (old[k] === value) continue;
        const r = await cli.run(["stack", "tag", "set", k, value]);
        if (r.code !== 0) throw new Error(`pulumi stack tag set ${k} failed: ${lastLines(r.stderr + r.stdout, 2)}`);
    }
    for (const k of Object.keys(old)) {
        if ((k === prefix || k.startsWith(`${prefix}-`)) && !(k in tags)) {
            const r = await cli.run(["stack", "tag", "rm", k]);
            if (r.code !== 0) throw new Error(`pulumi stack tag rm ${k} failed: ${lastLines(r.stderr + r.stdout, 2)}`);
        }
    }
}

/** The last validated release, or why it cannot be known (then nothing is deployed). */
async function readRecords(cli: Cli): Promise<{ tags: Record<string, string>; validated?: Validated; failed?: FailedReleases; unreadable?: string }> {
    let tags: Record<string, string>;
    try {
        tags = await cli.tags();
    } catch (e) {
        return { tags: {}, unreadable: `the stack tags cannot be read (${message(e)})` };
    }
    const failed = failedFromTags(tags);
    if (hasRecord(tags, FAILED_TAG_PREFIX) && !failed) return { tags, unreadable: `the failed-release record in the stack tags (${FAILED_TAG_PREFIX}-*) is damaged` };
    const validated = fromTags(tags);
    if (validated) return { tags, validated, failed };
    if (hasRecord(tags, TAG_PREFIX)) return { tags, failed, unreadable: `the validated-release record in the stack tags (${TAG_PREFIX}-*) is damaged` };
    try {
        // A stack deployed before this command existed: its outputs are validated if its last update succeeded.
        if (await cli.lastUpdateSucceeded()) return { tags, failed, validated: validatedFrom(await cli.outputs(), new Date()) };
    } catch (e) {
        return { tags, failed, unreadable: `the stack's history or outputs cannot be read (${message(e)})` };
    }
    return { tags, failed };
}

export async function deploy(o: Options, cli: Cli = pulumiCli(o)): Promise<DeployOutcome> {
    const link = runUrl(o.env);
    const phase = (p: string) => o.onPhase?.(p);
    // A notice never holds the deploy or its rollback for long: each is bounded, and the failure
    // notice is sent while the rollback runs.
    const announce = (n: Omit<Notice, "stack" | "runUrl">) => notify({ ...n, stack: o.stack, runUrl: link }, o.env.PLATFORM_WEBHOOK_URL, o.noticeTimeoutMs ?? 10_000).then(o.out);

    phase("reading the last validated release");
    const records = await readRecords(cli);
    if (records.unreadable && !o.noRollback) {
        return {
            code: EXIT.refused,
            summary: [
                `deploy ${o.stack}: REFUSED, nothing deployed: ${records.unreadable}, so a failed update would have no release to roll back to`,
                "  fix the tags (docs/operations.md, \"Exit codes and notices\"), or deploy with --no-rollback knowing that a failure stays in place",
            ],
        };
    }
    const { validated, tags } = records;
    const failed: FailedReleases = records.failed ?? { apps: {} };
    const summary: string[] = [];
    if (records.unreadable) summary.push(`  warning: ${records.unreadable}; deploying with --no-rollback: a failure stays in place`);

    phase("reading the stack's config and outputs");
    let config: Record<string, unknown>;
    try {
        config = await cli.appsConfig();
    } catch (e) {
        return { code: EXIT.refused, summary: [`deploy ${o.stack}: REFUSED, nothing deployed: the stack config cannot be read (${message(e)})`] };
    }
    const before = await cli.outputs().catch(() => ({} as StackApps));

    // A release that failed is not deployed again by itself: its app stays where it is.
    const held = o.retryFailed ? [] : heldApps(failed, validated, config);
    try {
        await holdBack(held);
    } catch (e) {
        return { code: EXIT.refused, summary: [`deploy ${o.stack}: REFUSED, nothing deployed: ${message(e)}; the checkout's config may name the validated release for some of ${held.join(", ")}`] };
    }
    async function holdBack(apps: string[]): Promise<void> {
        for (const app of apps) {
            const f = failed.apps[app];
            if (validated?.apps[app]) {
                const { changes } = restorePlan(validated, config, { only: new Set([app]) });
                for (const c of changes) {
                    const r = await cli.run(["config", "set", "--path", c.key, String(c.value)]);
                    if (r.code !== 0) throw new Error(`${changeCommand(c, o.stack)} failed: ${lastLines(r.stderr, 2)}`);
                }
                summary.push(`  ${app}: HELD at its validated release: the config names the release that failed at ${f.at} (${f.why}); change its release keys, or deploy with --retry-failed`);
            } else {
                const r = await cli.run(["config", "rm", "--path", `apps.${app}`]);
                if (r.code !== 0) throw new Error(`pulumi config rm --path apps.${app} failed: ${lastLines(r.stderr, 2)}`);
                summary.push(`  ${app}: HELD back (not deployed): it was added by a release that failed at ${f.at} (${f.why}); change its release keys, or deploy with --retry-failed`);
            }
        }
    }

    await announce({ event: "start", summary: `pulumi up of ${o.stack}${held.length ? `; held at their validated release: ${held.join(", ")}` : ""}`, apps: changesOf(before, {}) });
    phase("pulumi up");
    const started = Date.now();
    const up = await cli.run(["up", "--yes", "--skip-preview", ...o.upArgs], true);
    const upSeconds = (Date.now() - started) / 1000;
    const upOutput = `${up.stdout}\n${up.stderr}`;

    if (up.code === 0) {
        phase("recording the validated release");
        const after = await cli.outputs();
        const code: ExitCode = held.length ? EXIT.heldFailedRelease : EXIT.deployed;
        summary.unshift(`deploy ${o.stack}: succeeded in ${upSeconds.toFixed(1)} s, every traffic move verified by its analysis; recorded as the last validated release`);
        try {
            await writeRecord(cli, tags, toTags(validatedFrom(after, new Date())), TAG_PREFIX);
            // Only the releases still held stay failed: the others were changed (or retried) and deployed.
            const stillFailed: FailedReleases = { apps: Object.fromEntries(Object.entries(failed.apps).filter(([app]) => held.includes(app))) };
            await writeRecord(cli, tags, Object.keys(stillFailed.apps).length ? toTags(stillFailed, FAILED_TAG_PREFIX) : {}, FAILED_TAG_PREFIX);
        } catch (e) {
            summary[0] = `deploy ${o.stack}: DEPLOYED BUT NOT RECORDED: the update succeeded in ${upSeconds.toFixed(1)} s, but ${message(e)}`;
            summary.push("  the last validated release is still the previous one: a later failure would roll back past this release; record it by hand (docs/operations.md, \"Exit codes and notices\")");
            await announce({ event: "not-recorded", summary: `deployed, but the validated release was not recorded: ${message(e)}`, apps: changesOf(before, after) });
            return { code: EXIT.notRecorded, summary, held };
        }
        const changed = new Set(Object.keys(after).filter((a) => JSON.stringify([before[a]?.images, before[a]?.traffic]) !== JSON.stringify([after[a]?.images, after[a]?.traffic])));
        for (const c of changesOf(before, after, changed)) summary.push(`  ${c.app}: traffic ${JSON.stringify(c.trafficBefore ?? null)} -> ${JSON.stringify(c.trafficAfter ?? null)}`);
        if (changed.size === 0) summary.push("  no app's versions or traffic changed");
        await announce({
            event: "success",
            summary: `deployed in ${upSeconds.toFixed(0)} s${changed.size ? "" : "; no app's versions or traffic changed"}${held.length ? `; HELD at the validated release (a failed release is named): ${held.join(", ")}` : ""}`,
            apps: changesOf(before, after, changed),
        });
        return { code, summary, held };
    }

    if (stackLocked(upOutput)) {
        summary.unshift(`deploy ${o.stack}: NOT STARTED: another update holds the stack (${failureLines(upOutput, 1)}); nothing was changed and nothing is rolled back`);
        summary.push("  wait for it, then deploy again; if no update is running, `pulumi cancel` clears the lock (docs/operations.md)");
        await announce({ event: "locked", summary: "another update of the stack is running: this deploy changed nothing", apps: [] });
        return { code: EXIT.locked, summary, held };
    }

    // From here on, every error is a failed rollback: announced, exit 2.
    const failedAt = Date.now();
    const notices: Promise<void>[] = [];
    try {
        return await rollBack();
    } catch (e) {
        const why = message(e);
        summary.push(`  ROLLBACK FAILED: ${why}`);
        summary.push(`  act now: docs/operations.md, "When the automatic rollback fails"`);
        await Promise.all(notices);
        await announce({ event: "rollback-failed", summary: why, apps: [] });
        return { code: EXIT.rollbackFailed, summary, held };
    }

    async function rollBack(): Promise<DeployOutcome> {
        phase("reading why the update failed");
        const { why, note } = await whyFailed(cli, upOutput);
        summary.unshift(`deploy ${o.stack}: FAILED after ${upSeconds.toFixed(1)} s: ${why}`);
        if (note) summary.splice(1, 0, `  (${note})`);
        notices.push(announce({ event: "failure", summary: why, apps: changesOf(before, {}) }));
        if (!validated) {
            summary.push("  no validated release is recorded for this stack: nothing to roll back to; traffic is where the failed update left it");
            summary.push(`  look: pulumi stack output apps --json --stack ${o.stack}`);
            await Promise.all(notices);
            return { code: EXIT.rolledBack, summary, held };
        }

        // Which apps failed: those the errors name; when an error names no app, every app whose
        // release changed is suspect.
        const resources = await cli.resources();
        const names = [...new Set([...Object.keys(config), ...Object.keys(validated.apps)])];
        const attributed = failedAppsOf(upOutput, resources, names);
        const changedApps = Object.keys(config).filter((a) => releaseChanged(a, config[a], validated));
        if (attributed.unattributed.length) summary.push(`  errors that name no app: ${attributed.unattributed.join(", ")}: every app whose release changed is rolled back`);
        const failedApps = [...new Set([...attributed.apps, ...(attributed.unattributed.length || attributed.apps.length === 0 ? changedApps : [])])]
            .filter((a) => !held.includes(a)).sort();
        const restorable = new Set(failedApps.filter((a) => validated.apps[a] && config[a] !== undefined));
        const added = failedApps.filter((a) => !validated.apps[a] && config[a] !== undefined);

        // Remember what failed, so the next deploy of the same config does not bring it back.
        const at = new Date().toISOString();
        const record: FailedReleases = { apps: { ...failed.apps } };
        for (const app of [...restorable, ...added]) record.apps[app] = { release: currentRelease(app, config[app], validated, before[app]?.releaseKeys), at, why: why.slice(0, 200) };
        await writeRecord(cli, tags, toTags(record, FAILED_TAG_PREFIX), FAILED_TAG_PREFIX).catch((e) => {
            summary.push(`  warning: the failed release was not recorded (${message(e)}): the next deploy of this config will try it again`);
        });

        for (const app of added) summary.push(`  ${app}: added by the failed release: it had no traffic to restore; not re-applied (held until its release keys change)`);
        if (restorable.size === 0) {
            summary.push(`  no app with a validated release failed${attributed.unattributed.length ? ` (errors outside the apps: ${attributed.unattributed.join(", ")})` : ""}: nothing to roll back`);
            await Promise.all(notices);
            return { code: EXIT.rolledBack, summary, held };
        }

        phase("rolling back");
        const { changes } = restorePlan(validated, config, { only: restorable, abort: true });
        summary.push(`  rolling back ${[...restorable].join(", ")} to the release validated at ${validated.at}${changes.some((c) => validated.apps[c.app].abort?.[c.key.replace(`platform:apps.${c.app}.`, "")] !== undefined) ? " (a canary aborts to weight 0)" : ""}`);
        for (const c of changes) {
            const r = await cli.run(["config", "set", "--path", c.key, String(c.value)]);
            if (r.code !== 0) throw new Error(`${changeCommand(c, o.stack)} failed: ${lastLines(r.stderr, 2)}`);
            summary.push(`  restored ${c.key.replace(/^platform:/, "")}: ${JSON.stringify(c.was ?? null)} -> ${JSON.stringify(c.value)}`);
        }
        if (changes.length === 0) summary.push("  the config already names the validated release (the failure is elsewhere): re-applying it");
        // Only the failed apps are updated: what else the release changed stays as it is. Their
        // restored state's analysis runs again even where its Job still exists from before.
        const targets = resources.filter((r) => r.type === APP_COMPONENT && restorable.has(r.urn.slice(r.urn.lastIndexOf("::") + 2))).flatMap((r) => ["--target", r.urn]);
        const jobs = [...restorable].map((a) => validated.apps[a].analysisJob).filter((j): j is string => !!j);
        const replace = resources.filter((r) => r.type === "kubernetes:batch/v1:Job" && jobs.includes(r.urn.slice(r.urn.lastIndexOf("::") + 2))).flatMap((r) => ["--replace", r.urn]);
        const restore = await cli.run(["up", "--yes", "--skip-preview", ...targets, ...(targets.length ? ["--target-dependents"] : []), ...replace, ...o.upArgs], true);
        const rollbackSeconds = (Date.now() - failedAt) / 1000;
        const after = await cli.outputs().catch(() => ({} as StackApps));
        const apps = changesOf(before, after, restorable);
        if (restore.code !== 0) {
            const rwhy = (await whyFailed(cli, `${restore.stdout}\n${restore.stderr}`)).why;
            summary.push(`  ROLLBACK FAILED after ${rollbackSeconds.toFixed(1)} s: ${rwhy}`);
            summary.push(`  act now: docs/operations.md, "When the automatic rollback fails"`);
            await Promise.all(notices);
            await announce({ event: "rollback-failed", summary: rwhy, apps });
            return { code: EXIT.rollbackFailed, summary, rollbackSeconds, restored: changes, held };
        }
        summary.push(`  rolled back in ${rollbackSeconds.toFixed(1)} s (failure to restored traffic); the restored state's analysis passed`);
        for (const c of apps) summary.push(`  ${c.app}: traffic ${JSON.stringify(c.trafficBefore ?? null)} before, ${JSON.stringify(c.trafficAfter ?? null)} now`);
        // The restored apps are validated again (their analysis passed); the others keep their record.
        const fresh = validatedFrom(after, new Date(), restorable);
        await writeRecord(cli, { ...tags, ...toTags(record, FAILED_TAG_PREFIX) }, toTags({ at: fresh.at, apps: { ...validated.apps, ...fresh.apps } }, TAG_PREFIX), TAG_PREFIX);
        summary.push(`  the failed release is recorded: deploying the same config again keeps ${[...restorable, ...added].join(", ")} where ${restorable.size + added.length === 1 ? "it is" : "they are"} (exit ${EXIT.heldFailedRelease}); commit the restored release keys or a fix (docs/operations.md, "After an automatic rollback")`);
        await Promise.all(notices);
        await announce({ event: "rollback", summary: `${why}; ${[...restorable].join(", ")} back on the release validated at ${validated.at} in ${rollbackSeconds.toFixed(0)} s`, apps });
        return { code: EXIT.rolledBack, summary, rollbackSeconds, restored: changes, held };
    }
}

export function parseArgs(argv: string[]): { stack: string; cwd: string; upArgs: string[]; retryFailed: boolean; noRollback: boolean } {
    const usage = "usage: npm run deploy -- --stack <stack> [--cwd <dir>] [--retry-failed] [--no-rollback] [-- <pulumi up arguments>]";
    const dash = argv.indexOf("--");
    const own = dash >= 0 ? argv.slice(0, dash) : argv;
    const upArgs = dash >= 0 ? argv.slice(dash + 1) : [];
    let stack = "";
    let cwd = path.resolve(__dirname, "..");
    let retryFailed = false, noRollback = false;
    for (let i = 0; i < own.length; i++) {
        if (own[i] === "--stack") stack = own[++i] ?? "";
        else if (own[i] === "--cwd") cwd = path.resolve(own[++i] ?? ".");
        else if (own[i] === "--retry-failed") retryFailed = true;
        else if (own[i] === "--no-rollback") noRollback = true;
        else throw new Error(`unknown argument ${own[i]} (${usage})`);
    }
    if (!stack) throw new Error(`--stack is required (${usage})`);
    return { stack, cwd, upArgs, retryFailed, noRollback };
}

/** What an interrupted deploy prints and announces: where it stopped and how to clean up. */
export function interruptionReport(stack: string, phase: string, signal: NodeJS.Signals): string[] {
    return [
        `deploy ${stack}: INTERRUPTED by ${signal} while ${phase}: nothing was rolled back; traffic is where the update left it`,
        `  if an update was running, its lock stays: pulumi cancel --stack ${stack} --yes`,
        `  then look and act: docs/operations.md, "An interrupted deploy"`,
    ];
}

if (require.main === module) {
    let args: ReturnType<typeof parseArgs>;
    try {
        args = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`deploy: ${(e as Error).message}\n`);
        process.exit(EXIT.usage);
    }
    const out = (line: string) => process.stdout.write(`${line}\n`);
    let current = "starting";
    const stop = (signal: NodeJS.Signals) => {
        const lines = interruptionReport(args.stack, current, signal);
        out("");
        out("==== deploy summary");
        for (const line of lines) out(line);
        const code = signal === "SIGINT" ? EXIT.interrupted : EXIT.terminated;
        // The notice gets a few seconds; CI sends SIGKILL soon after SIGTERM.
        notify({ event: "interrupted", stack: args.stack, summary: lines[0], runUrl: runUrl(process.env) }, process.env.PLATFORM_WEBHOOK_URL, 4000)
            .then(out, () => undefined).finally(() => process.exit(code));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    deploy({ ...args, env: process.env, out, onPhase: (p) => (current = p) }).then((r) => {
        out("");
        out("==== deploy summary");
        for (const line of r.summary) out(line);
        process.exit(r.code);
    }, (e) => {
        process.stderr.write(`deploy: ${(e as Error).message}\n`);
        process.exit(EXIT.rollbackFailed);
    });
}
