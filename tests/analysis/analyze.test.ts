import * as assert from "assert";
import { spawn } from "child_process";
import * as path from "path";
import { App, Exporter, freePort, Prometheus } from "./servers";

// scripts/analysis/analyze.js against a real Prometheus that scrapes exporters whose error ratio and
// latency the test sets, and against real HTTP servers; run as the pod runs it (node, env, exit code).

const SCRIPT = path.join(__dirname, "..", "..", "scripts", "analysis", "analyze.js");

interface Outcome { code: number | null; stdout: string; stderr: string; seconds: number }

function analyze(spec: unknown, env: Record<string, string> = {}): Promise<Outcome> {
    const t = Date.now();
    return new Promise((resolve) => {
        const p = spawn(process.execPath, [SCRIPT], {
            env: { PATH: process.env.PATH, ANALYSIS_SPEC: JSON.stringify(spec), ANALYSIS_TERMINATION_LOG: "/dev/null", ...env },
        });
        let stdout = "", stderr = "";
        p.stdout.on("data", (d) => (stdout += d));
        p.stderr.on("data", (d) => (stderr += d));
        p.on("exit", (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - t) / 1000 }));
    });
}

const ERROR_RATIO = (job: string) =>
    `sum(rate(http_requests_total{job="${job}",code=~"5.."}[5s])) / sum(rate(http_requests_total{job="${job}"}[5s]))`;
const P90 = (job: string) =>
    `histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{job="${job}"}[5s])))`;

const check = (name: string, query: string, threshold: number, extra: Record<string, unknown> = {}) => ({
    name, query, threshold, direction: "below", intervalSeconds: 1, count: 3, failureLimit: 0, onMissing: "fail", ...extra,
});

describe("analysis program (scripts/analysis/analyze.js) against a real Prometheus", function () {
    this.timeout(120_000);
    const exporters = {
        healthy: new Exporter({ errorRatio: 0.01, latencySeconds: 0.02 }),
        erroring: new Exporter({ errorRatio: 0.2, latencySeconds: 0.02 }),
        slow: new Exporter({ errorRatio: 0, latencySeconds: 0.8 }),
    };
    let prometheus: Prometheus;
    const timings: Record<string, number> = {};
    const spec = (job: string, extra: Record<string, unknown> = {}) => ({
        app: "api", target: "canary 2.8.0",
        prometheus: {
            address: prometheus.address, onUnreachable: "fail",
            checks: [check("error-rate", ERROR_RATIO(job), 0.1), check("latency-p90", P90(job), 0.5)],
            ...extra,
        },
    });

    before(async () => {
        for (const e of Object.values(exporters)) await e.start();
        prometheus = await new Prometheus(Object.fromEntries(Object.entries(exporters).map(([k, e]) => [k, e.port]))).start();
        for (const job of Object.keys(exporters)) {
            await prometheus.waitFor(ERROR_RATIO(job));
            await prometheus.waitFor(P90(job));
        }
    });

    after(async () => {
        await prometheus?.stop();
        for (const e of Object.values(exporters)) await e.stop();
        process.stdout.write(`      analysis wall times (s): ${JSON.stringify(timings)}\n`);
    });

    it("passes a healthy version (1 % errors, 20 ms): both checks, exit 0, one line naming the app", async () => {
        const r = await analyze(spec("healthy"));
        timings.healthy = r.seconds;
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /^analysis passed: app api canary 2\.8\.0, 2 checks \(error-rate 0\.01\d*, latency-p90 0\.0\d+\)\n$/);
    });

    it("fails 20 % errors with one line: app, check, measured value, threshold; exit 1", async () => {
        const s = spec("erroring");
        s.prometheus.checks[0].count = 10;
        const r = await analyze(s);
        timings.erroring = r.seconds;
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stdout, /^analysis failed: app api canary 2\.8\.0, check error-rate: measured 0\.2, threshold below 0\.1 \(1 of 1 measurements failed, failure limit 0\)\n$/);
        // It stops at the first failure beyond the limit instead of waiting out 10 measurements 1 s apart.
        assert.ok(r.seconds < 6, `took ${r.seconds} s`);
    });

    it("fails a slow version on the latency check although its error rate is fine", async () => {
        const r = await analyze(spec("slow"));
        timings.slow = r.seconds;
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stdout, /check latency-p90: measured 0\.9\d*, threshold below 0\.5/);
    });

    it("tolerates up to failureLimit failed measurements", async () => {
        const s = spec("erroring");
        s.prometheus.checks = [check("error-rate", ERROR_RATIO("erroring"), 0.1, { count: 2, failureLimit: 2 })];
        const r = await analyze(s);
        assert.equal(r.code, 0, r.stdout + r.stderr);
    });

    it("direction above: a minimum (e.g. request rate) must be exceeded", async () => {
        const s = spec("healthy");
        s.prometheus.checks = [check("traffic", `sum(rate(http_requests_total{job="healthy"}[5s]))`, 1000, { direction: "above" })];
        const r = await analyze(s);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stdout, /check traffic: measured \d+(\.\d+)?, threshold above 1000/);
    });

    it("a missing series fails by default and passes with onMissing: pass", async () => {
        const missing = `sum(rate(http_requests_total{job="absent"}[5s]))`;
        const s = spec("healthy");
        s.prometheus.checks = [check("error-rate", missing, 0.1)];
        const failed = await analyze(s);
        assert.equal(failed.code, 1, failed.stdout);
        assert.match(failed.stdout, /check error-rate: measured no data \(missing series\), threshold below 0\.1/);
        s.prometheus.checks = [check("error-rate", missing, 0.1, { onMissing: "pass" })];
        const passed = await analyze(s);
        assert.equal(passed.code, 0, passed.stdout);
    });

    it("an unreachable Prometheus fails by default and passes with onUnreachable: pass", async () => {
        const dead = `http://127.0.0.1:${await freePort()}`;
        const failed = await analyze(spec("healthy", { address: dead }));
        assert.equal(failed.code, 1, failed.stdout);
        assert.match(failed.stdout, /check error-rate: measured Prometheus unreachable \(unreachable \(ECONNREFUSED\)\), threshold below 0\.1/);
        const passed = await analyze(spec("erroring", { address: dead, onUnreachable: "pass" }));
        assert.equal(passed.code, 0, passed.stdout);
    });

    it("a query Prometheus refuses fails the check and says so (not counted as unreachable)", async () => {
        const s = spec("healthy", { onUnreachable: "pass" });
        s.prometheus.checks = [check("broken", "sum(rate(http_requests_total[5s]", 0.1)];
        const r = await analyze(s);
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stdout, /check broken: measured query error \(HTTP 400: .*\)/);
    });
});

describe("analysis program: HTTP checks and its contract", function () {
    this.timeout(60_000);
    let app: App;
    before(async () => (app = await new App().start()));
    after(async () => app.stop());

    const http = (extra: Record<string, unknown> = {}) => ({ name: "health", url: app.url(), expectStatus: 200, attempts: 3, intervalSeconds: 1, ...extra });

    it("passes when the expected status comes back", async () => {
        app.status = 200;
        const r = await analyze({ app: "web", target: "green 1.6.0", http: [http()] });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(r.stdout, "analysis passed: app web green 1.6.0, 1 check (health HTTP 200)\n");
    });

    it("retries `attempts` times, then fails naming the status it got", async () => {
        app.status = 503;
        const before = app.requests;
        const r = await analyze({ app: "web", http: [http()] });
        assert.equal(r.code, 1);
        assert.equal(app.requests - before, 3);
        assert.equal(r.stdout, "analysis failed: app web, check health: measured HTTP 503, threshold HTTP 200 (3 attempts)\n");
    });

    it("a version that recovers within its attempts passes", async () => {
        app.status = 503;
        setTimeout(() => (app.status = 200), 1200);
        const r = await analyze({ app: "web", http: [http({ attempts: 5 })] });
        assert.equal(r.code, 0, r.stdout + r.stderr);
    });

    const errorRate = (extra: Record<string, unknown> = {}) => ({ url: app.url("/"), requests: 100, concurrency: 4, maxErrorRate: 0.1, ...extra });

    it("error rate: 100 requests with 5 % answered 500 pass (at most 10 % may fail)", async () => {
        Object.assign(app, { status: 200, errorRatio: 0.05, resetRatio: 0 });
        const before = app.requests;
        const r = await analyze({ app: "api", target: "canary 2.8.0", errorRate: errorRate() });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(app.requests - before, 100);
        assert.equal(r.stdout, "analysis passed: app api canary 2.8.0, 1 check (http-errors 0.05)\n");
    });

    it("error rate: 30 % answered 500 fails as soon as more than 10 % failed, naming what failed", async () => {
        Object.assign(app, { status: 200, errorRatio: 0.3, resetRatio: 0 });
        const before = app.requests;
        const r = await analyze({ app: "api", target: "canary 2.8.0", errorRate: errorRate() });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        // 11 failures cross the limit: at 30 % that is about 37 requests, not all 100.
        assert.ok(app.requests - before < 60, `sent ${app.requests - before}`);
        assert.match(r.stdout, /^analysis failed: app api canary 2\.8\.0, check http-errors: measured 0\.\d+, threshold at most 0\.1 \(1[1-4] of \d+ requests failed: 1[1-4] HTTP 500; stopped early of 100\)\n$/);
    });

    it("error rate: connection resets count as failures; a limit of exactly 10 % passes", async () => {
        Object.assign(app, { status: 200, errorRatio: 0, resetRatio: 0.2 });
        const resets = await analyze({ app: "api", errorRate: errorRate({ concurrency: 1 }) });
        assert.equal(resets.code, 1, resets.stdout + resets.stderr);
        assert.match(resets.stdout, /requests failed: 11 unreachable \(/);
        Object.assign(app, { errorRatio: 0.1, resetRatio: 0 });
        app.requests = 0;
        const edge = await analyze({ app: "api", errorRate: errorRate({ concurrency: 1 }) });
        assert.equal(edge.code, 0, edge.stdout + edge.stderr);
        assert.match(edge.stdout, /http-errors 0\.1\)/);
        app.errorRatio = 0;
    });

    it("an invalid spec is exit 2 with one sentence naming the field", async () => {
        const r = await analyze({ app: "web", http: [{ url: "ftp://x", expectStatus: 200, attempts: 1, intervalSeconds: 1 }] });
        assert.equal(r.code, 2);
        assert.equal(r.stdout, "analysis error: ANALYSIS_SPEC .http[0].url must be an http(s) URL\n");
        const none = await analyze({ app: "web" });
        assert.equal(none.code, 2);
        assert.match(none.stdout, /has no check/);
        const rate = await analyze({ app: "web", errorRate: { url: app.url(), requests: 10, concurrency: 1, maxErrorRate: 10 } });
        assert.equal(rate.stdout, "analysis error: ANALYSIS_SPEC .errorRate.maxErrorRate must be a fraction from 0 to below 1\n");
    });
});
