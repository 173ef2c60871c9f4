import { strict as assert } from "assert";
import { describe_, diff, run, runInvalid } from "../harness";
import { schemaErrors } from "../schemas";

// The analysis in the program: config validation, which Job runs for which traffic state, and
// that `pulumi up` reaches it only after the traffic moved (the Job's dependencies).

const PROM = "http://prometheus.monitoring.svc:9090";
const ERRORS = 'sum(rate(nginx_ingress_controller_requests{exported_namespace="{{namespace}}",exported_service="{{service}}",status=~"5.."}[1m])) / sum(rate(nginx_ingress_controller_requests{exported_namespace="{{namespace}}",exported_service="{{service}}"}[1m]))';
const ANALYSIS = {
    http: [{ name: "health", path: "/healthz", attempts: 3, intervalSeconds: 2 }],
    prometheus: { address: PROM, checks: [{ name: "error-rate", query: ERRORS, threshold: 0.1, count: 4, failureLimit: 1, intervalSeconds: 15 }] },
};
const withAnalysis = (app: string, extra: Record<string, unknown> = {}) => ({ [`platform:apps.${app}.analysis`]: ANALYSIS, ...extra });
const analysisJobs = (r: Awaited<ReturnType<typeof run>>, app = "api") => r.ofKind("Job").filter((j) => new RegExp(`^${app}-analysis-[0-9a-f]{8}$`).test(j.metadata.name));
const specOf = (job: any) => JSON.parse(job.spec.template.spec.containers[0].env.find((e: any) => e.name === "ANALYSIS_SPEC").value);

describe("analysis config (apps.<app>.analysis)", () => {
    it("reports every problem with its config path, and declares nothing", async () => {
        const { message, registered } = await runInvalid("staging", {
            "platform:apps.api.analysis": {
                http: [{ path: "healthz", expectStatus: 700 }, { name: "health", path: "/", attempts: 0 }],
                prometheus: {
                    onUnreachable: "ignore",
                    checks: [
                        { name: "health", query: "up", threshold: "ten", direction: "sideways", count: 2, failureLimit: 2 },
                        { name: "Bad Name", query: "", threshold: 1 },
                    ],
                    timeout: 3,
                },
            },
        });
        const expected = [
            'platform:apps.api.analysis.http[0].path must be an HTTP path starting with / (got "healthz")',
            "platform:apps.api.analysis.http[0].expectStatus must be an integer from 100 to 599 (got 700)",
            "platform:apps.api.analysis.http[1].attempts must be an integer from 1 to 100 (got 0)",
            "platform:apps.api.analysis.prometheus.timeout is not a known key (allowed under apps.api.analysis.prometheus: address, onUnreachable, checks) (got 3)",
            "platform:apps.api.analysis.prometheus.checks[0].failureLimit must be below count (2), or the check could never fail (got 2)",
            'platform:apps.api.analysis.prometheus.checks[0].threshold must be a number (got "ten")',
            'platform:apps.api.analysis.prometheus.checks[0].direction must be one of "below", "above" (got "sideways")',
            "platform:apps.api.analysis.prometheus.checks[1].name must be a short name: lower-case letters, digits and '-' (got \"Bad Name\")",
            "platform:apps.api.analysis.prometheus.checks[1].query must not be empty (a PromQL expression); remove the key to leave it unset (got \"\")",
            "platform:apps.api.analysis.prometheus.address is required (the Prometheus base URL, e.g. http://prometheus.monitoring.svc:9090)",
            'platform:apps.api.analysis.prometheus.onUnreachable must be one of "fail", "pass" (got "ignore")',
            'platform:apps.api.analysis has more than one check named "health": names must be unique (a name is what the result line reports) (got "health")',
        ];
        for (const line of expected) assert.ok(message.includes(`  - ${line}\n`) || message.endsWith(`  - ${line}`), `missing «${line}» in:\n${message}`);
        assert.match(message, /^Invalid stack config \(12 problems\):/);
        assert.equal(registered, 0);
    });

    it("numbers may be decimal strings as `pulumi config set --path` stores them", async () => {
        const r = await run("staging", withAnalysis("api", {
            "platform:apps.api.analysis.prometheus.checks": [{ name: "p90", query: "x", threshold: "0.25", count: "3" }],
            "platform:apps.api.analysis.errorRate": { maxErrorRate: "0.05", requests: "200" },
        }));
        const spec = specOf(analysisJobs(r)[0]);
        const check = spec.prometheus.checks[0];
        assert.deepEqual([check.threshold, check.count, check.direction, check.onMissing, check.failureLimit], [0.25, 3, "below", "fail", 0]);
        assert.deepEqual([spec.errorRate.maxErrorRate, spec.errorRate.requests], [0.05, 200]);
    });

    it("staging and production verify every app by default: 3 health attempts and at most 10 % failed requests, no Prometheus needed", async () => {
        for (const stack of ["staging", "production"]) {
            const r = await run(stack);
            for (const app of ["api", "web", "worker"]) {
                const [job] = analysisJobs(r, app);
                assert.ok(job, `${stack}: ${app} has an analysis Job`);
                const spec = specOf(job);
                // through the Service of the track that took traffic (canary, active colour, the rolling track)
                const url = spec.http[0].url;
                assert.match(url, new RegExp(`^http://${app}(-canary|-stable|-blue|-green)?\\.[a-z-]+\\.svc\\.cluster\\.local/healthz$`));
                assert.deepEqual(spec.http, [{ name: "health", url, expectStatus: 200, attempts: 3, intervalSeconds: 5 }]);
                assert.deepEqual(spec.errorRate, { name: "http-errors", url, requests: 100, concurrency: 4, maxErrorRate: 0.1 });
                assert.equal(spec.prometheus, undefined);
                // Pulumi waits for the whole window, not its own 10 minutes.
                const timeouts = r.resource("Job", job.metadata.name).customTimeouts;
                assert.equal(timeouts.create, `${job.spec.activeDeadlineSeconds + 120}s`);
                assert.equal(timeouts.update, timeouts.create);
            }
        }
        // The local stack renders only: it verifies what declares analysis.
        assert.deepEqual(analysisJobs(await run("local")), []);
    });

    it("an app opts out only with a reason, which production refuses", async () => {
        const skip = { "platform:apps.worker.analysis": { skipReason: "a queue consumer: no HTTP traffic to verify" } };
        const r = await run("staging", skip);
        assert.deepEqual(analysisJobs(r, "worker"), []);
        assert.equal(analysisJobs(r, "api").length, 1);
        const prod = await runInvalid("production", skip);
        assert.match(prod.message, /platform:apps\.worker\.analysis\.skipReason is not allowed in production: every production deploy is verified by its analysis \(remove the key\) \(got "a queue consumer: no HTTP traffic to verify"\)/);
        assert.equal(prod.registered, 0);
        const short = await runInvalid("staging", { "platform:apps.worker.analysis": { skipReason: "no" } });
        assert.match(short.message, /platform:apps\.worker\.analysis\.skipReason must be why this app is not verified after a deploy \(at least 10 characters\) \(got "no"\)/);
        const both = await runInvalid("staging", { "platform:apps.worker.analysis": { skipReason: "a queue consumer: no HTTP", http: [{ path: "/" }] } });
        assert.match(both.message, /skipReason turns the analysis off, so the app's checks would never run/);
    });

    it("a window that cannot fit is a config error naming how long it could take", async () => {
        const { message } = await runInvalid("staging", { "platform:apps.api.analysis": { http: [{ path: "/healthz", attempts: 100, intervalSeconds: 600 }] } });
        assert.match(message, /platform:apps\.api\.analysis can take up to 60625 s \(every attempt, request and measurement timing out at 5 s\), more than the 1200 s an analysis may hold a release/);
        const rate = await runInvalid("staging", { "platform:apps.api.analysis": { errorRate: { maxErrorRate: 1.5 } } });
        assert.match(rate.message, /platform:apps\.api\.analysis\.errorRate\.maxErrorRate must be a fraction from 0 to below 1/);
    });
});

describe("analysis after each traffic move", () => {
    it("a canary step: one Job verifies the canary through its own Service, after the canary Ingress changed", async () => {
        const r = await run("staging", withAnalysis("api"));
        const [job] = analysisJobs(r);
        assert.match(job.metadata.name, /^api-analysis-[0-9a-f]{8}$/);
        const spec = specOf(job);
        assert.equal(spec.target, "canary 2.8.0");
        assert.equal(spec.http[0].url, "http://api-canary.platform-staging.svc.cluster.local/healthz");
        assert.equal(spec.prometheus.onUnreachable, "fail");
        assert.match(spec.prometheus.checks[0].query, /exported_namespace="platform-staging",exported_service="api-canary",status=~"5\.\."/);
        assert.deepEqual(r.dependsOn("Job", job.metadata.name), [
            "ConfigMap/analysis-scripts", "Deployment/api-canary", "Deployment/api-stable", "Ingress/api", "Ingress/api-canary", `Job/${r.ofKind("Job").find((j) => /^api-smoke-canary-/.test(j.metadata.name))!.metadata.name}`, "Namespace/platform-staging",
        ]);
        assert.equal(job.spec.backoffLimit, 0);
        // re-running it (`pulumi up --replace` after a rollback) deletes the finished Job first
        assert.equal(r.resource("Job", job.metadata.name).deleteBeforeReplace, true);
        // every attempt, request (100, 4 at a time) and measurement timing out at 5 s, plus a minute
        assert.equal(job.spec.activeDeadlineSeconds, 3 * (2 + 5) + 25 * 5 + 4 * (15 + 5) + 60);
        const pod = job.spec.template.spec;
        assert.match(pod.containers[0].image, /^node:20\.18\.1-bookworm-slim@sha256:[0-9a-f]{64}$/);
        assert.deepEqual(pod.containers[0].command, ["node", "/scripts/analyze.js"]);
        assert.deepEqual([pod.securityContext.runAsNonRoot, pod.containers[0].securityContext.readOnlyRootFilesystem, pod.automountServiceAccountToken], [true, true, false]);
        assert.equal(schemaErrors(job), "");
        assert.equal(schemaErrors(r.object("ConfigMap", "analysis-scripts")), "");
        assert.equal(r.object("ConfigMap", "analysis-scripts").data["analyze.js"].includes("analysis failed: app"), true);
        assert.equal(spec.errorRate.url, "http://api-canary.platform-staging.svc.cluster.local/healthz");
        assert.deepEqual(r.outputs.apps.api.analysis, { job: job.metadata.name, track: "canary", version: "2.8.0", checks: 3 });
    });

    it("each weight step runs its own analysis; an unchanged stack runs none", async () => {
        const at10 = await run("staging", withAnalysis("api"));
        const again = await run("staging", withAnalysis("api"));
        assert.deepEqual(diff(at10, again), []);
        const at50 = await run("staging", withAnalysis("api", { "platform:apps.api.canary.weight": 50 }));
        const [old] = analysisJobs(at10), [now] = analysisJobs(at50);
        assert.notEqual(old.metadata.name, now.metadata.name);
        assert.deepEqual(describe_(diff(at10, at50)).sort(), [`create Job/${now.metadata.name}`, `delete Job/${old.metadata.name}`, "update Ingress/api-canary"].sort());
    });

    it("an abort (weight 0) verifies stable once the route is back on it", async () => {
        const r = await run("staging", withAnalysis("api", { "platform:apps.api.canary.weight": 0 }));
        const [job] = analysisJobs(r);
        assert.equal(specOf(job).target, "stable 2.7.0");
        assert.equal(specOf(job).http[0].url, "http://api-stable.platform-staging.svc.cluster.local/healthz");
        assert.ok(r.dependsOn("Job", job.metadata.name).includes("Ingress/api-canary") === false);
        assert.ok(r.dependsOn("Job", job.metadata.name).includes("Ingress/api"));
    });

    it("a blue/green switch verifies the newly active colour after the active Service moved", async () => {
        const blue = await run("staging", withAnalysis("web"));
        const green = await run("staging", withAnalysis("web", { "platform:apps.web.blueGreen.activeColor": "green" }));
        const [b] = analysisJobs(blue, "web"), [g] = analysisJobs(green, "web");
        assert.equal(specOf(b).target, "blue 1.4.2");
        assert.equal(specOf(g).target, "green 1.5.0");
        assert.equal(specOf(g).http[0].url, "http://web-green.platform-staging.svc.cluster.local/healthz");
        assert.ok(green.dependsOn("Job", g.metadata.name).includes("Service/web"));
        // a rollback to blue is the same traffic state as before: the same Job name, so it runs again
        const back = await run("staging", withAnalysis("web", { "platform:apps.web.blueGreen.activeColor": "blue" }));
        assert.equal(analysisJobs(back, "web")[0].metadata.name, b.metadata.name);
    });

    it("a rolling release verifies the new tag after its Deployment rolled out", async () => {
        const r = await run("staging", withAnalysis("worker", { "platform:apps.worker.tag": "2.8.0" }));
        const [job] = analysisJobs(r, "worker");
        assert.equal(specOf(job).target, "main 2.8.0");
        assert.ok(r.dependsOn("Job", job.metadata.name).includes("Deployment/worker"));
    });

    it("apps without analysis get no Job and no ConfigMap; every app outputs its release", async () => {
        const skip = { skipReason: "tested elsewhere: this test is about the outputs" };
        const r = await run("staging", { "platform:apps.api.analysis": skip, "platform:apps.web.analysis": skip, "platform:apps.worker.analysis": skip });
        assert.deepEqual(analysisJobs(r), []);
        assert.equal(r.has("ConfigMap", "analysis-scripts"), false);
        assert.deepEqual(r.outputs.apps.api.release, { "canary.stable": "2.7.0", "canary.canary": "2.8.0", "canary.weight": 10 });
        assert.deepEqual(r.outputs.apps.web.release, { "blueGreen.activeColor": "blue", "blueGreen.blue": "1.4.2", "blueGreen.green": "1.5.0" });
        assert.deepEqual(r.outputs.apps.worker.release, { tag: "2.7.0" });
    });
});
