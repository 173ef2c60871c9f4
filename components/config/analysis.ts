import { Problems, isObject, integer, object, oneOf, patterns, requiredObject, string } from "./check";

// `apps.<app>.analysis`: the checks that verify a version after traffic moved to it
// (scripts/analysis/README.md has what each field does at run time).

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

export interface AnalysisConfig {
    http: HttpCheckConfig[];
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

export function validateAnalysis(p: Problems, path: string, value: unknown): AnalysisConfig | undefined {
    const v = object(p, path, value, ["http", "prometheus"]);
    if (!v) return undefined;
    const http: HttpCheckConfig[] = [];
    list(p, `${path}.http`, v.http).forEach((item, i) => {
        const at = `${path}.http[${i}]`;
        const c = requiredObject(p, at, item, ["name", "path", "expectStatus", "attempts", "intervalSeconds"]);
        if (!c) return;
        const checkPath = string(p, `${at}.path`, c.path, { required: true, pattern: patterns.httpPath, means: "an HTTP path starting with /" }) ?? "/";
        http.push({
            name: string(p, `${at}.name`, c.name, CHECK_NAME) ?? `http-${i}`,
            path: checkPath,
            expectStatus: integer(p, `${at}.expectStatus`, c.expectStatus, 100, 599, 200) ?? 200,
            attempts: integer(p, `${at}.attempts`, c.attempts, 1, 100, 5) ?? 5,
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
    if (http.length === 0 && !prometheus && isObject(value)) {
        p.add(path, "must declare at least one check (http or prometheus)", value);
    }
    uniqueNames(p, path, [...http.map((c) => c.name), ...(prometheus?.checks ?? []).map((c) => c.name)]);
    return { http, prometheus };
}
