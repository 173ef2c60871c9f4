import { ANALYSIS_TIMEOUT_SECONDS, analysisSeconds, ERROR_RATE_CHECK } from "../config/analysis";
import { AppPlan, TrackPlan } from "./apps";
import { shortHash } from "./names";

// Which analysis runs for which traffic state. One Job per state: its name is keyed by the state
// (every track's version, the split or active colour) and by the checks, so each canary step,
// switch or release runs its own analysis and an unchanged stack runs none.

/** What scripts/analysis/analyze.js reads from ANALYSIS_SPEC (its README has the contract). */
export interface AnalysisSpec {
    app: string;
    target: string;
    http: { name: string; url: string; expectStatus: number; attempts: number; intervalSeconds: number }[];
    errorRate: { name: string; url: string; requests: number; concurrency: number; maxErrorRate: number };
    prometheus?: {
        address: string;
        onUnreachable: "fail" | "pass";
        checks: {
            name: string; query: string; threshold: number; direction: "below" | "above";
            intervalSeconds: number; count: number; failureLimit: number; onMissing: "fail" | "pass";
        }[];
    };
}

export interface AnalysisPlan {
    job: string;
    /** The track that just took traffic and is verified. */
    track: string;
    version: string;
    spec: AnalysisSpec;
    /** The Job's activeDeadlineSeconds: every attempt and measurement with its timeout, plus a minute. */
    deadlineSeconds: number;
    /**
     * How long `pulumi up` waits for the Job (its customTimeouts): the deadline plus two minutes
     * for scheduling and the image pull. Pulumi's own default (10 minutes) would fail every update
     * whose analysis window is longer, and roll a healthy release back.
     */
    awaitSeconds: number;
}

export { ANALYSIS_TIMEOUT_SECONDS };

/**
 * The track a traffic state puts at risk: the canary while it has weight, the active colour, the
 * single track of a rolling app; stable once a canary is aborted or promoted.
 */
export function analysedTrack(plan: AppPlan): TrackPlan {
    const by = (name: string) => plan.tracks.find((t) => t.track === name);
    switch (plan.config.strategy) {
        case "canary":
            return by("canary") ?? by("stable")!;
        case "blueGreen":
            return by(String(plan.traffic.active))!;
        default:
            return by("main")!;
    }
}

export function planAnalysis(plan: AppPlan, namespace: string, servicePort: number): AnalysisPlan | undefined {
    const app = plan.config;
    const a = app.analysis;
    if (!a) return undefined;
    const t = analysedTrack(plan);
    const host = `${t.service}.${namespace}.svc.cluster.local`;
    const fill = (query: string) => query
        .replace(/\{\{namespace\}\}/g, namespace)
        .replace(/\{\{app\}\}/g, app.name)
        .replace(/\{\{track\}\}/g, t.track)
        .replace(/\{\{version\}\}/g, t.version)
        .replace(/\{\{service\}\}/g, t.service);
    const url = (p: string) => `http://${host}${servicePort === 80 ? "" : `:${servicePort}`}${p}`;
    const spec: AnalysisSpec = {
        app: app.name,
        target: `${t.track} ${t.version}`,
        http: a.http.map((c) => ({
            name: c.name, url: url(c.path),
            expectStatus: c.expectStatus, attempts: c.attempts, intervalSeconds: c.intervalSeconds,
        })),
        errorRate: {
            name: ERROR_RATE_CHECK, url: url(a.errorRate.path),
            requests: a.errorRate.requests, concurrency: a.errorRate.concurrency, maxErrorRate: a.errorRate.maxErrorRate,
        },
        ...(a.prometheus ? {
            prometheus: {
                address: a.prometheus.address,
                onUnreachable: a.prometheus.onUnreachable,
                checks: a.prometheus.checks.map((c) => ({ ...c, query: fill(c.query) })),
            },
        } : {}),
    };
    const state = JSON.stringify({ versions: plan.tracks.map((x) => [x.track, x.version]), traffic: plan.traffic, spec });
    const seconds = analysisSeconds(a);
    return {
        job: `${app.name}-analysis-${shortHash(state)}`,
        track: t.track,
        version: t.version,
        spec,
        deadlineSeconds: seconds + 60,
        awaitSeconds: seconds + 60 + 120,
    };
}
