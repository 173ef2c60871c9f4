import type { LiveJob, LiveWorkloads } from "../components/live";

// The hourly health check's decisions, as plain functions over the stack outputs and what the
// cluster says (components/live.ts): is each service's last backup recent, did its last restore
// drill pass, are the tracks of an app without a route ready. Each answer is a Finding that says
// what was measured and the limit it was held to; tools/healthcheck.ts prints and announces them.

export interface HealthLimits {
    /** A service's last successful backup must be younger than this (a daily schedule and 2 h of slack). */
    backupMaxAgeHours: number;
    /** Its last successful restore drill must be younger than this (a monthly schedule and a day). */
    drillMaxAgeDays: number;
}

export const DEFAULT_LIMITS: HealthLimits = { backupMaxAgeHours: 26, drillMaxAgeDays: 32 };

/** One thing checked in one stack. */
export interface Finding {
    /** What: an app name, "postgres backup", "redis restore drill", "stack outputs", "cluster". */
    subject: string;
    passed: boolean;
    measured: string;
    limit: string;
    /** The app it is about, for the notice's versions and traffic. */
    app?: string;
}

export function findingLine(stack: string, f: Finding): string {
    return `${stack} ${f.subject}: ${f.passed ? "healthy" : "UNHEALTHY"}: ${f.measured}; limit ${f.limit}`;
}

/** The part of `pulumi stack output --json` the health check reads. */
export interface HealthOutputs {
    namespace?: string;
    apps?: Record<string, AppHealthOutputs>;
    backups?: Record<string, { cronJobs?: { backup?: string; drill?: string } }>;
}

export interface AppHealthOutputs {
    healthUrl?: string;
    /** Track → Deployment name (components/app.ts). */
    deployments?: Record<string, string>;
    /** Track → replicas, or "autoscaled <min>-<max>". */
    replicas?: Record<string, number | string>;
    images?: Record<string, string>;
    traffic?: Record<string, unknown>;
}

/** Outputs that cannot be right for a deployed environment: nothing to check is a failure, never a pass. */
export function outputsFindings(o: HealthOutputs): Finding[] {
    const out: Finding[] = [];
    const apps = Object.keys(o.apps ?? {});
    if (apps.length === 0) {
        out.push({
            subject: "stack outputs", passed: false, limit: "at least one app",
            measured: o.apps ? "`apps` names no app" : "no `apps` output (never deployed, destroyed, or not this program's stack)",
        });
    }
    if (!o.namespace && (apps.some((a) => !o.apps![a].healthUrl) || Object.keys(o.backups ?? {}).length > 0)) {
        out.push({ subject: "stack outputs", passed: false, measured: "no `namespace` output", limit: "the namespace to read backups and Deployments in" });
    }
    return out;
}

/** Whether the stack has anything only the cluster can answer (backups, apps without a route). */
export function needsCluster(o: HealthOutputs): boolean {
    return Object.keys(o.backups ?? {}).length > 0 || Object.values(o.apps ?? {}).some((a) => !a.healthUrl);
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const hours = (ms: number) => `${(ms / HOUR).toFixed(1)} h`;
const days = (ms: number) => `${(ms / DAY).toFixed(1)} d`;
const since = (now: Date, iso: string) => now.getTime() - Date.parse(iso);

/** The Job a CronJob created last (by creation time), if its history still holds one. */
export function lastRun(jobs: LiveJob[], cronJob: string): LiveJob | undefined {
    return jobs.filter((j) => j.cronJob === cronJob).sort((a, b) => Date.parse(b.created) - Date.parse(a.created) || b.name.localeCompare(a.name))[0];
}

/**
 * The age of a CronJob's last success against `limitMs`. One that never succeeded is measured from
 * its creation: a new environment is not reported before its first run was due, an old one is.
 */
function age(live: LiveWorkloads, name: string, now: Date, limitMs: number, fmt: (ms: number) => string): { passed: boolean; measured: string } {
    const c = live.cronJobs[name];
    if (!c) return { passed: false, measured: `CronJob ${name} not found` };
    if (c.lastSuccessfulTime) {
        const ms = since(now, c.lastSuccessfulTime);
        return { passed: ms < limitMs, measured: `last success ${fmt(ms)} ago (${c.lastSuccessfulTime}, CronJob ${name})` };
    }
    const ms = since(now, c.created);
    return { passed: ms < limitMs, measured: `no success since CronJob ${name} was created ${fmt(ms)} ago` };
}

/** A service's backup and restore drill, from the CronJobs its outputs name. */
export function backupFindings(service: string, o: { cronJobs?: { backup?: string; drill?: string } }, live: LiveWorkloads, now: Date,
    limits: HealthLimits): Finding[] {
    const backupLimit = `${limits.backupMaxAgeHours} h since the last successful backup`;
    const drillLimit = `last drill passed, ${limits.drillMaxAgeDays} d since the last successful one`;
    const unnamed = (key: string) => `the stack outputs name no CronJob (backups.${service}.cronJobs.${key}; \`pulumi up\` adds it)`;
    const out: Finding[] = [];

    const backup = o.cronJobs?.backup;
    if (!backup) out.push({ subject: `${service} backup`, passed: false, measured: unnamed("backup"), limit: backupLimit });
    else {
        const a = age(live, backup, now, limits.backupMaxAgeHours * HOUR, hours);
        const last = lastRun(live.jobs, backup);
        // A failed run within the limit is not yet a failure (the next run is the retry); it is said.
        const note = last?.outcome === "failed" ? `; last run ${last.name} failed${last.reason ? ` (${last.reason})` : ""}` : "";
        out.push({ subject: `${service} backup`, ...a, measured: `${a.measured}${note}`, limit: backupLimit });
    }

    const drill = o.cronJobs?.drill;
    if (!drill) out.push({ subject: `${service} restore drill`, passed: false, measured: unnamed("drill"), limit: drillLimit });
    else {
        const a = age(live, drill, now, limits.drillMaxAgeDays * DAY, days);
        const last = lastRun(live.jobs, drill);
        const failed = last?.outcome === "failed";
        const measured = failed
            ? `last run ${last!.name} FAILED${last!.reason ? ` (${last!.reason})` : ""}${last!.finishedAt ? ` ${days(since(now, last!.finishedAt))} ago` : ""}; ${a.measured}`
            : a.measured;
        out.push({ subject: `${service} restore drill`, passed: a.passed && !failed, measured, limit: drillLimit });
    }
    return out;
}

/** The floor of "autoscaled <min>-<max>", or the declared count. */
function planned(replicas: number | string | undefined): number {
    if (typeof replicas === "number") return replicas;
    const m = /^autoscaled (\d+)-\d+$/.exec(replicas ?? "");
    return m ? Number(m[1]) : 0;
}

/**
 * An app without a route: every Deployment of its tracks has as many ready pods as it should have
 * (the declared count, or what the autoscaler asks for, at least its floor), and the app more than 0.
 */
export function replicaFinding(app: string, o: AppHealthOutputs, live: LiveWorkloads): Finding {
    const limit = "every track's Deployment has its replicas ready, the app more than 0";
    const tracks = Object.entries(o.deployments ?? {}).sort(([a], [b]) => a.localeCompare(b));
    if (tracks.length === 0) {
        return { subject: app, app, passed: false, limit, measured: `no route, and the stack outputs name no Deployment (apps.${app}.deployments; \`pulumi up\` adds it)` };
    }
    let passed = true, ready = 0;
    const parts: string[] = [];
    for (const [track, name] of tracks) {
        const d = live.deployments[name];
        if (!d) {
            passed = false;
            parts.push(`Deployment ${name} not found`);
            continue;
        }
        const want = Math.max(planned(o.replicas?.[track]), d.replicas);
        ready += d.readyReplicas;
        if (d.readyReplicas < want) passed = false;
        parts.push(`Deployment ${name} ${d.readyReplicas}/${want} ready`);
    }
    if (ready === 0) passed = false;
    return { subject: app, app, passed, limit, measured: `no route; ${parts.join(", ")}` };
}
