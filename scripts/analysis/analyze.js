#!/usr/bin/env node
// analyze.js — verifies a version after traffic moved to it: HTTP checks and Prometheus checks.
// Contract (environment, output line, exit codes): scripts/analysis/README.md. No dependencies:
// Node.js 20 built-ins only, so it runs from a ConfigMap in a stock node image.
"use strict";

const fs = require("fs");

const EXIT = { passed: 0, failed: 1, usage: 2 };

/** Reads and checks the spec; throws an Error whose message is one sentence naming the bad field. */
function parseSpec(text) {
    let spec;
    try {
        spec = JSON.parse(text);
    } catch {
        throw new Error("ANALYSIS_SPEC is not JSON");
    }
    const bad = (what) => { throw new Error(`ANALYSIS_SPEC ${what}`); };
    if (!spec || typeof spec !== "object") bad("must be an object");
    if (typeof spec.app !== "string" || !spec.app) bad(".app must name the app");
    const http = spec.http ?? [];
    const prom = spec.prometheus;
    if (!Array.isArray(http)) bad(".http must be a list");
    http.forEach((c, i) => {
        if (!c || typeof c.url !== "string" || !/^https?:\/\//.test(c.url)) bad(`.http[${i}].url must be an http(s) URL`);
        for (const k of ["expectStatus", "attempts", "intervalSeconds"]) if (!Number.isInteger(c[k]) || c[k] < 0) bad(`.http[${i}].${k} must be a non-negative integer`);
    });
    if (prom !== undefined) {
        if (typeof prom.address !== "string" || !/^https?:\/\//.test(prom.address)) bad(".prometheus.address must be an http(s) URL");
        if (!Array.isArray(prom.checks)) bad(".prometheus.checks must be a list");
        prom.checks.forEach((c, i) => {
            if (typeof c.query !== "string" || !c.query) bad(`.prometheus.checks[${i}].query must be a PromQL query`);
            if (typeof c.threshold !== "number") bad(`.prometheus.checks[${i}].threshold must be a number`);
            if (!["below", "above"].includes(c.direction)) bad(`.prometheus.checks[${i}].direction must be "below" or "above"`);
            for (const k of ["intervalSeconds", "count", "failureLimit"]) if (!Number.isInteger(c[k]) || c[k] < 0) bad(`.prometheus.checks[${i}].${k} must be a non-negative integer`);
            if (!["fail", "pass"].includes(c.onMissing)) bad(`.prometheus.checks[${i}].onMissing must be "fail" or "pass"`);
        });
        if (!["fail", "pass"].includes(prom.onUnreachable)) bad(".prometheus.onUnreachable must be \"fail\" or \"pass\"");
    }
    const rate = spec.errorRate;
    if (rate !== undefined) {
        if (!rate || typeof rate.url !== "string" || !/^https?:\/\//.test(rate.url)) bad(".errorRate.url must be an http(s) URL");
        for (const k of ["requests", "concurrency"]) if (!Number.isInteger(rate[k]) || rate[k] < 1) bad(`.errorRate.${k} must be a positive integer`);
        if (typeof rate.maxErrorRate !== "number" || rate.maxErrorRate < 0 || rate.maxErrorRate >= 1) bad(".errorRate.maxErrorRate must be a fraction from 0 to below 1");
    }
    if (http.length === 0 && !rate && !(prom && prom.checks.length)) bad("has no check");
    return { ...spec, http, prometheus: prom, errorRate: rate };
}

const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
const log = (line) => process.stderr.write(`${line}\n`);

/** GET until the expected status comes back, at most `attempts` times. */
async function httpCheck(c, timeoutSeconds) {
    let last = "no attempt";
    const attempts = Math.max(1, c.attempts);
    for (let i = 1; i <= attempts; i++) {
        try {
            const res = await fetch(c.url, { redirect: "manual", signal: AbortSignal.timeout(timeoutSeconds * 1000) });
            await res.arrayBuffer();
            last = `HTTP ${res.status}`;
            if (res.status === c.expectStatus) {
                return { passed: true, measured: last, detail: `attempt ${i} of ${attempts}` };
            }
        } catch (e) {
            last = describeFetchError(e);
        }
        log(`  ${c.name}: attempt ${i} of ${attempts}: ${last}`);
        if (i < attempts) await sleep(c.intervalSeconds);
    }
    return { passed: false, measured: last, detail: `${attempts} attempt${attempts === 1 ? "" : "s"}` };
}

/**
 * `requests` GETs of `url` through the Service of the track that took traffic, `concurrency` at a
 * time. A request fails on a status outside 2xx, a reset or a timeout. The check fails as soon as
 * more than `maxErrorRate` of all requests have failed (no need to send the rest: over the limit
 * means roll back now), and passes otherwise.
 */
async function errorRateCheck(c, timeoutSeconds) {
    const allowed = Math.floor(c.requests * c.maxErrorRate + 1e-9);
    const reasons = {};
    let sent = 0;
    let failed = 0;
    const one = async () => {
        try {
            const res = await fetch(c.url, { redirect: "manual", signal: AbortSignal.timeout(timeoutSeconds * 1000) });
            await res.arrayBuffer();
            return res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}`;
        } catch (e) {
            return describeFetchError(e);
        }
    };
    const worker = async () => {
        while (sent < c.requests && failed <= allowed) {
            sent++;
            const why = await one();
            if (why) {
                failed++;
                reasons[why] = (reasons[why] ?? 0) + 1;
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(c.concurrency, c.requests) }, worker));
    const why = Object.entries(reasons).sort((a, b) => b[1] - a[1]).map(([r, n]) => `${n} ${r}`).join(", ");
    const detail = `${failed} of ${sent} requests failed${why ? `: ${why}` : ""}${sent < c.requests ? `; stopped early of ${c.requests}` : ""}`;
    log(`  ${c.name}: ${detail}`);
    return { passed: failed <= allowed, measured: fmt(failed / sent), detail };
}

function describeFetchError(e) {
    const cause = e && e.cause && (e.cause.code || e.cause.message);
    if (e && e.name === "TimeoutError") return "timed out";
    return cause ? `unreachable (${cause})` : `unreachable (${e && e.message})`;
}

/**
 * One instant query. Returns { value } (the largest value when the query gives several series,
 * for "below"; the smallest for "above": the worst one decides), { missing: true } for an
 * empty result or NaN, or { unreachable: reason }.
 */
async function queryOnce(address, c, timeoutSeconds) {
    const url = `${address.replace(/\/+$/, "")}/api/v1/query?query=${encodeURIComponent(c.query)}`;
    let body;
    try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutSeconds * 1000) });
        const text = await res.text();
        if (res.status !== 200) {
            // 400/422: the query itself is wrong; the server answered, so it is not "unreachable".
            let reason = `HTTP ${res.status}`;
            try { reason = `${reason}: ${JSON.parse(text).error}`; } catch { /* not JSON */ }
            return res.status === 400 || res.status === 422 ? { error: reason } : { unreachable: reason };
        }
        body = JSON.parse(text);
    } catch (e) {
        return { unreachable: describeFetchError(e) };
    }
    const data = body && body.data;
    let values = [];
    if (data && data.resultType === "vector") values = data.result.map((r) => Number(r.value[1]));
    else if (data && data.resultType === "scalar") values = [Number(data.result[1])];
    else return { error: `unsupported result type ${data && data.resultType}` };
    values = values.filter((v) => !Number.isNaN(v));
    if (values.length === 0) return { missing: true };
    return { value: c.direction === "below" ? Math.max(...values) : Math.min(...values) };
}

const ok = (c, v) => (c.direction === "below" ? v < c.threshold : v > c.threshold);

/**
 * `count` measurements `intervalSeconds` apart; the check fails as soon as more than
 * `failureLimit` measurements failed (no need to wait for the rest: traffic is at stake).
 */
async function prometheusCheck(prom, c, timeoutSeconds) {
    let failures = 0;
    let worst;
    let last;
    const count = Math.max(1, c.count);
    for (let i = 1; i <= count; i++) {
        const r = await queryOnce(prom.address, c, timeoutSeconds);
        let failed;
        if (r.error) return { passed: false, measured: `query error (${r.error})`, detail: "the query was refused" };
        if (r.unreachable) {
            last = `Prometheus unreachable (${r.unreachable})`;
            failed = prom.onUnreachable === "fail";
        } else if (r.missing) {
            last = "no data (missing series)";
            failed = c.onMissing === "fail";
        } else {
            last = r.value;
            failed = !ok(c, r.value);
            // The failure line reports the worst failed measurement.
            if (failed) worst = worst === undefined ? r.value : c.direction === "below" ? Math.max(worst, r.value) : Math.min(worst, r.value);
        }
        if (failed) failures++;
        log(`  ${c.name}: measurement ${i} of ${count}: ${typeof last === "number" ? fmt(last) : last}${failed ? " (failed)" : ""}`);
        if (failures > c.failureLimit) {
            return { passed: false, measured: worst !== undefined ? fmt(worst) : last, detail: `${failures} of ${i} measurements failed, failure limit ${c.failureLimit}` };
        }
        if (i < count) await sleep(c.intervalSeconds);
    }
    return { passed: true, measured: typeof last === "number" ? fmt(last) : last, detail: `${failures} of ${count} measurements failed, failure limit ${c.failureLimit}` };
}

const fmt = (v) => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4))));

/** Runs every check in order; stops at the first failure. Returns the result line and whether it passed. */
async function analyze(spec, options = {}) {
    const timeoutSeconds = options.timeoutSeconds ?? 5;
    const target = spec.target ? ` ${spec.target}` : "";
    const checks = [
        ...spec.http.map((c, i) => ({ kind: "http", c: { ...c, name: c.name || `http-${i}` } })),
        ...(spec.errorRate ? [{ kind: "errorRate", c: { ...spec.errorRate, name: spec.errorRate.name || "http-errors" } }] : []),
        ...(spec.prometheus ? spec.prometheus.checks.map((c, i) => ({ kind: "prometheus", c: { ...c, name: c.name || `prometheus-${i}` } })) : []),
    ];
    const passed = [];
    for (const { kind, c } of checks) {
        const r = kind === "http" ? await httpCheck(c, timeoutSeconds)
            : kind === "errorRate" ? await errorRateCheck(c, timeoutSeconds)
                : await prometheusCheck(spec.prometheus, c, timeoutSeconds);
        const threshold = kind === "http" ? `HTTP ${c.expectStatus}` : kind === "errorRate" ? `at most ${fmt(c.maxErrorRate)}` : `${c.direction} ${c.threshold}`;
        if (!r.passed) {
            return {
                passed: false,
                line: `analysis failed: app ${spec.app}${target}, check ${c.name}: measured ${r.measured}, threshold ${threshold} (${r.detail})`,
                check: c.name, measured: r.measured, threshold,
            };
        }
        passed.push(`${c.name} ${r.measured}`);
        log(`  ${c.name}: passed, measured ${r.measured}, threshold ${threshold} (${r.detail})`);
    }
    return { passed: true, line: `analysis passed: app ${spec.app}${target}, ${checks.length} check${checks.length === 1 ? "" : "s"} (${passed.join(", ")})` };
}

async function main() {
    let spec;
    try {
        spec = parseSpec(process.env.ANALYSIS_SPEC ?? (process.argv[2] ? fs.readFileSync(process.argv[2], "utf8") : ""));
    } catch (e) {
        process.stdout.write(`analysis error: ${e.message}\n`);
        return EXIT.usage;
    }
    const timeoutSeconds = Number(process.env.ANALYSIS_TIMEOUT_SECONDS ?? 5);
    const result = await analyze(spec, { timeoutSeconds });
    process.stdout.write(`${result.line}\n`);
    // Kubernetes shows the termination message in the pod's status: the line survives the logs.
    const termination = process.env.ANALYSIS_TERMINATION_LOG ?? "/dev/termination-log";
    try { fs.writeFileSync(termination, `${result.line}\n`); } catch { /* not in a pod */ }
    return result.passed ? EXIT.passed : EXIT.failed;
}

module.exports = { parseSpec, analyze, httpCheck, errorRateCheck, EXIT };

if (require.main === module) {
    main().then((code) => process.exit(code), (e) => {
        process.stdout.write(`analysis error: ${e && e.message}\n`);
        process.exit(EXIT.usage);
    });
}
