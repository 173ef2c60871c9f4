import { Problems, isObject, integer, object, oneOf, patterns, requiredObject, string } from "./check";
import { Tier } from "./types";

// `apps.<app>.analysis`: the checks that verify a version after traffic moved to it
// (scripts/analysis/README.md has what each field does at run time). In staging and production
// every app is verified unless it opts out with a reason (`skipReason`, refused in production): a
// health check retried 3 times and an active error-rate check through the Service of the track that
// took traffic, needing no Prometheus; `prometheus` checks add to them.

export interface HttpCheckConfig {
    name: string;
    path: string;
    expectStatus: number;
    attempts: number;
    intervalSeconds: number;
}

export interface PrometheusCheckConfig {
    name: string;
    /** PromQL; {{namespace}}, {{app}}, {{track}}, {{version}} and {{service}} are filled in per step. */
    query: string;
    threshold: number;
    /** The value must stay strictly below (or above) the threshold. */
    direction: "below" | "above";
    intervalSeconds: number;
    count: number;
    failureLimit: number;
    onMissing: "fail" | "pass";
}

/** N requests through the Service of the track that took traffic; more than maxErrorRate failed fails it. */
export interface ErrorRateCheckConfig {
    path: string;
    requests: number;
    concurrency: number;
    /** Fraction of requests that may fail (non-2xx, reset, timeout): 0.1 is the "over 10 % rolls back" rule. */
    maxErrorRate: number;
}

export interface AnalysisConfig {
    http: HttpCheckConfig[];
    errorRate: ErrorRateCheckConfig;
    prometheus?: {
        address: string;
        onUnreachable: "fail" | "pass";
        checks: PrometheusCheckConfig[];
    };
}

const CHECK_NAME = { pattern: /^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/, means: "a short name: lower-case letters, digits and '-'" };
const URL = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*)?$/;

/** A number given as a number or as decimal text (what `pulumi config set --path` stores). */
function number(p: Problems, path: string, value: unknown): number | undefined {
    if (value === undefined) {
        p.add(path, "is required (a number)");
        return undefined;
    }
    const n = typeof value === "string" && /^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(value.trim()) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isFinite(n)) {
        p.add(path, "must be a number", value);
        return undefined;
    }
    return n;
}

function list(p: Problems, path: string, value: unknown): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
        p.add(path, "must be a list", value);
        return [];
    }
    return value;
}

function uniqueNames(p: Problems, path: string, names: string[]): void {
    for (const n of new Set(names.filter((n, i) => names.indexOf(n) !== i))) {
        p.add(path, `has more than one check named "${n}": names must be unique (a name is what the result line reports)`, n);
    }
}

/** Per-request timeout of the analysis program (ANALYSIS_TIMEOUT_SECONDS). */
export const ANALYSIS_TIMEOUT_SECONDS = 5;
/**
 * The longest an analysis may run: its Job deadline and `pulumi up`'s wait are derived from the
 * checks, and a longer window would hold a bad release in front of users (and the deploy workflow's
 * timeout) for longer than a rollback is worth.
 */
export const ANALYSIS_MAX_SECONDS = 1200;
/** The name the error-rate check reports in the result line (reserved among the check names). */
export const ERROR_RATE_CHECK = "http-errors";
/** Health attempts of the default check: 3 failed attempts fail it. */
export const DEFAULT_HEALTH_ATTEMPTS = 3;

/**
 * The longest the checks can take, every attempt and measurement timing out: the Job's deadline
 * (plus a minute to start) and what `pulumi up` waits for (plus the pod's scheduling).
 */
export function analysisSeconds(a: AnalysisConfig): number {
    return a.http.reduce((s, c) => s + c.attempts * (c.intervalSeconds + ANALYSIS_TIMEOUT_SECONDS), 0) +
        Math.ceil(a.errorRate.requests / a.errorRate.concurrency) * ANALYSIS_TIMEOUT_SECONDS +
        (a.prometheus?.checks ?? []).reduce((s, c) => s + c.count * (c.intervalSeconds + ANALYSIS_TIMEOUT_SECONDS), 0);
}

/**
 * Which apps are verified: in staging and production every app, unless `analysis.skipReason` says
 * why not (refused in production); in the local tier only apps that declare `analysis`.
 */
export function validateAnalysis(p: Problems, path: string, value: unknown, tier: Tier, healthPath: string): AnalysisConfig | undefined {
    const problemsBefore = p.list.length;
    const verifiedByDefault = tier !== "local";
    if (value === undefined && !verifiedByDefault) return undefined;
    const v = value === undefined ? {} : object(p, path, value, ["http", "errorRate", "prometheus", "skipReason"]);
    if (!v) return undefined;
    if (v.skipReason !== undefined) {
        const reason = string(p, `${path}.skipReason`, v.skipReason, { pattern: /\S.{9,}/, means: "why this app is not verified after a deploy (at least 10 characters)" });
        if (tier === "production") {
            p.add(`${path}.skipReason`, "is not allowed in production: every production deploy is verified by its analysis (remove the key)", v.skipReason);
        } else if (Object.keys(v).length > 1) {
            p.add(`${path}.skipReason`, "turns the analysis off, so the app's checks would never run: remove either the checks or skipReason", v.skipReason);
        }
        if (reason !== undefined) return undefined;
    }
    const http: HttpCheckConfig[] = [];
    if (v.http === undefined) {
        http.push({ name: "health", path: healthPath, expectStatus: 200, attempts: DEFAULT_HEALTH_ATTEMPTS, intervalSeconds: 5 });
    }
    list(p, `${path}.http`, v.http).forEach((item, i) => {
        const at = `${path}.http[${i}]`;
        const c = requiredObject(p, at, item, ["name", "path", "expectStatus", "attempts", "intervalSeconds"]);
        if (!c) return;
        const checkPath = string(p, `${at}.path`, c.path, { required: true, pattern: patterns.httpPath, means: "an HTTP path starting with /" }) ?? "/";
        http.push({
            name: string(p, `${at}.name`, c.name, CHECK_NAME) ?? `http-${i}`,
            path: checkPath,
            expectStatus: integer(p, `${at}.expectStatus`, c.expectStatus, 100, 599, 200) ?? 200,
            attempts: integer(p, `${at}.attempts`, c.attempts, 1, 100, DEFAULT_HEALTH_ATTEMPTS) ?? DEFAULT_HEALTH_ATTEMPTS,
            intervalSeconds: integer(p, `${at}.intervalSeconds`, c.intervalSeconds, 0, 600, 5) ?? 5,
        });
    });

    let prometheus: AnalysisConfig["prometheus"];
    const prom = object(p, `${path}.prometheus`, v.prometheus, ["address", "onUnreachable", "checks"]);
    if (prom) {
        const checks: PrometheusCheckConfig[] = [];
        const items = list(p, `${path}.prometheus.checks`, prom.checks);
        if (items.length === 0 && Array.isArray(prom.checks)) p.add(`${path}.prometheus.checks`, "must have at least one check", prom.checks);
        if (prom.checks === undefined) p.add(`${path}.prometheus.checks`, "is required (a list of {name, query, threshold, …})");
        items.forEach((item, i) => {
            const at = `${path}.prometheus.checks[${i}]`;
            const c = requiredObject(p, at, item, ["name", "query", "threshold", "direction", "intervalSeconds", "count", "failureLimit", "onMissing"]);
            if (!c) return;
            const count = integer(p, `${at}.count`, c.count, 1, 100, 5) ?? 5;
            const failureLimit = integer(p, `${at}.failureLimit`, c.failureLimit, 0, 99, 0) ?? 0;
            if (failureLimit >= count) p.add(`${at}.failureLimit`, `must be below count (${count}), or the check could never fail`, c.failureLimit);
            checks.push({
                name: string(p, `${at}.name`, c.name, { required: true, ...CHECK_NAME }) ?? `prometheus-${i}`,
                query: string(p, `${at}.query`, c.query, { required: true, means: "a PromQL expression" }) ?? "",
                threshold: number(p, `${at}.threshold`, c.threshold) ?? 0,
                direction: oneOf(p, `${at}.direction`, c.direction, ["below", "above"] as const, "below") ?? "below",
                intervalSeconds: integer(p, `${at}.intervalSeconds`, c.intervalSeconds, 1, 3600, 30) ?? 30,
                count,
                failureLimit,
                onMissing: oneOf(p, `${at}.onMissing`, c.onMissing, ["fail", "pass"] as const, "fail") ?? "fail",
            });
        });
        prometheus = {
            address: string(p, `${path}.prometheus.address`, prom.address, {
                required: true, pattern: URL, means: "the Prometheus base URL, e.g. http://prometheus.monitoring.svc:9090",
            }) ?? "",
            onUnreachable: oneOf(p, `${path}.prometheus.onUnreachable`, prom.onUnreachable, ["fail", "pass"] as const, "fail") ?? "fail",
            checks,
        };
    }
    const rate = object(p, `${path}.errorRate`, v.errorRate, ["path", "requests", "concurrency", "maxErrorRate"]) ?? {};
    const maxErrorRate = number(p, `${path}.errorRate.maxErrorRate`, rate.maxErrorRate ?? 0.1);
    if (maxErrorRate !== undefined && !(maxErrorRate >= 0 && maxErrorRate < 1)) {
        p.add(`${path}.errorRate.maxErrorRate`, "must be a fraction from 0 to below 1 (0.1: more than 10 % failed requests fail the analysis)", rate.maxErrorRate);
    }
    const errorRate: ErrorRateCheckConfig = {
        path: string(p, `${path}.errorRate.path`, rate.path, { pattern: patterns.httpPath, means: "an HTTP path starting with /" }) ?? healthPath,
        requests: integer(p, `${path}.errorRate.requests`, rate.requests, 10, 10000, 100) ?? 100,
        concurrency: integer(p, `${path}.errorRate.concurrency`, rate.concurrency, 1, 50, 4) ?? 4,
        maxErrorRate: maxErrorRate ?? 0.1,
    };
    if (isObject(value) && Array.isArray(v.http) && v.http.length === 0 && !prometheus) {
        // An explicit empty list would drop the health check: say so rather than verify less.
        p.add(`${path}.http`, "must not be empty: remove the key for the default health check", v.http);
    }
    uniqueNames(p, path, [...http.map((c) => c.name), ERROR_RATE_CHECK, ...(prometheus?.checks ?? []).map((c) => c.name)]);
    const analysis = { http, errorRate, prometheus };
    const seconds = analysisSeconds(analysis);
    if (p.list.length === problemsBefore && seconds > ANALYSIS_MAX_SECONDS) {
        p.add(path, `can take up to ${seconds} s (every attempt, request and measurement timing out at ${ANALYSIS_TIMEOUT_SECONDS} s), more than the ${ANALYSIS_MAX_SECONDS} s an analysis may hold a release: use fewer attempts, requests or measurements, or shorter intervals`, value);
    }
    return analysis;
}
