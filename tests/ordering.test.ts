import { strict as assert } from "assert";
import { describe_, diff, exceptAnalysis, run } from "./harness";

// Rollout safety under scale, proven through the dependency edges the engine receives and the
// diffs between configs. Pulumi applies an object only after everything it depends on is done,
// and deletes objects that left the program only after all creates and updates: so "A depends
// on B" means B is rolled out and ready first, and a removed track drains last.

const job = (names: string[], prefix: string) => names.find((n) => n.startsWith(prefix));

describe("capacity first, drain last: blue/green", () => {
    it("release: the active Service waits for its colour's rollout and smoke test; the idle colour waits for the Service", async () => {
        const r = await run("staging");
        const deps = r.dependsOn("Service", "web");
        assert.ok(deps.includes("Deployment/web-blue"), deps.join());
        assert.ok(job(deps, "Job/web-smoke-blue-"), deps.join());
        assert.ok(r.dependsOn("Deployment", "web-green").includes("Service/web"), "the colour losing traffic changes after the switch");
        assert.ok(r.dependsOn("Service", "web-preview").includes("Service/web"));
        const smoke = r.ofKind("Job").find((j) => j.metadata.name.startsWith("web-smoke-green-"))!.metadata.name;
        assert.deepEqual(r.dependsOn("Job", smoke).filter((d) => !d.startsWith("Namespace")), ["Deployment/web-green", "Service/web-green"]);
    });

    it("switch: after the flip the new active colour gates the Service and the old one drains after it", async () => {
        const r = await run("staging", { "platform:apps.web.blueGreen.activeColor": "green" });
        assert.ok(r.dependsOn("Service", "web").includes("Deployment/web-green"));
        assert.ok(job(r.dependsOn("Service", "web"), "Job/web-smoke-green-"));
        assert.ok(r.dependsOn("Deployment", "web-blue").includes("Service/web"));
        assert.ok(!r.dependsOn("Deployment", "web-green").includes("Service/web"));
    });

    it("rollback to a colour idleReplicas 0 scaled away: it is re-created at full size before the switch, the other drains last", async () => {
        const idleGone = { "platform:apps.web.blueGreen.idleReplicas": 0, "platform:apps.web.blueGreen.activeColor": "green" };
        const before = await run("staging", idleGone);
        assert.ok(!before.has("Deployment", "web-blue"));
        const after = await run("staging", { ...idleGone, "platform:apps.web.blueGreen.activeColor": "blue" });
        const changes = describe_(diff(before, after));
        assert.ok(changes.includes("create Deployment/web-blue"), changes.join());
        assert.ok(changes.includes("delete Deployment/web-green"), "the old colour is removed, which the engine does last");
        assert.equal(after.object("Deployment", "web-blue").spec.replicas, 2);
        assert.ok(after.dependsOn("Service", "web").includes("Deployment/web-blue"));
        assert.ok(job(after.dependsOn("Service", "web"), "Job/web-smoke-blue-"));
    });

    it("isolation: replicas resize the active colour; the idle colour follows idleReplicas", async () => {
        const pinned = { "platform:apps.web.blueGreen.idleReplicas": 1 };
        const before = await run("staging", pinned);
        const after = await run("staging", { ...pinned, "platform:apps.web.replicas": 5 });
        assert.deepEqual(describe_(diff(before, after)), ["update Deployment/web-blue"]);
        assert.equal(after.object("Deployment", "web-blue").spec.replicas, 5);
        assert.equal(after.object("Deployment", "web-green").spec.replicas, 1);
    });
});

describe("capacity first, drain last: canary", () => {
    it("ramp up: the route moves only after the canary is rolled out, smoke-tested, and stable is ready", async () => {
        const r = await run("staging", { "platform:apps.api.canary.weight": 50 });
        for (const ingress of ["api", "api-canary"]) {
            const deps = r.dependsOn("Ingress", ingress);
            assert.ok(deps.includes("Deployment/api-canary") && deps.includes("Deployment/api-stable"), deps.join());
            assert.ok(job(deps, "Job/api-smoke-canary-"), deps.join());
        }
    });

    it("ramp up from 0: the canary is created at a size for all of the traffic before the route gives it any", async () => {
        const before = await run("production");
        const after = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 });
        const changes = describe_(diff(before, after));
        assert.ok(changes.includes("create Deployment/api-canary") && changes.includes("update HTTPRoute/api"), changes.join());
        assert.ok(after.dependsOn("HTTPRoute", "api").includes("Deployment/api-canary"));
        assert.equal(after.object("Deployment", "api-canary").spec.replicas, 6, "autoscaled: starts at minReplicas, like stable");
    });

    it("abort: the route returns to stable first, and the canary is removed afterwards", async () => {
        const before = await run("staging", { "platform:apps.api.canary.weight": 50 });
        const after = await run("staging", { "platform:apps.api.canary.weight": 0 });
        const changes = describe_(diff(before, after));
        assert.ok(changes.includes("delete Deployment/api-canary"), changes.join());
        assert.ok(changes.includes("delete Ingress/api-canary"), changes.join());
        assert.ok(!changes.some((c) => c.includes("api-stable")), "stable is untouched and ready throughout");
    });

    it("promote: stable rolls to the new version before the route shifts back to it; stable stayed full size at weight 100", async () => {
        const at100 = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 100 });
        assert.equal(at100.object("Deployment", "api-stable").spec.replicas, 6);
        const promoted = await run("production", { "platform:apps.api.canary.stable": "2.8.0", "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 0 });
        const changes = describe_(diff(at100, promoted));
        assert.ok(changes.includes("update Deployment/api-stable") && changes.includes("update HTTPRoute/api") && changes.includes("delete Deployment/api-canary"), changes.join());
        assert.ok(promoted.dependsOn("HTTPRoute", "api").includes("Deployment/api-stable"));
    });

    it("replicas routing: the canary grows before stable gives pods away", async () => {
        const r = await run("local", { "platform:apps.api.canary.weight": 50, "platform:apps.api.replicas": 4 });
        assert.ok(r.dependsOn("Deployment", "api-stable").includes("Deployment/api-canary"));
    });

    it("isolation: replicas size stable; a pinned canaryReplicas sizes the canary", async () => {
        const pinned = { "platform:apps.api.canary.canaryReplicas": 1 };
        const before = await run("staging", pinned);
        const after = await run("staging", { ...pinned, "platform:apps.api.replicas": 8 });
        assert.deepEqual(describe_(diff(before, after)), ["update Deployment/api-stable"]);
        assert.equal(after.object("Deployment", "api-canary").spec.replicas, 1);
    });
});

describe("autoscaling without fights", () => {
    it("gives each live track an autoscaling/v2 HPA and leaves its replica count to it", async () => {
        const r = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 });
        for (const d of ["api-stable", "api-canary", "web-green"]) {
            const hpa = r.object("HorizontalPodAutoscaler", d);
            assert.equal(hpa.apiVersion, "autoscaling/v2");
            assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: d });
            assert.deepEqual(r.resource("Deployment", d).ignoreChanges, ["spec.replicas"], d);
        }
        assert.ok(!r.has("HorizontalPodAutoscaler", "web-blue"), "the idle colour is not autoscaled");
        assert.deepEqual(r.resource("Deployment", "web-blue").ignoreChanges, [], "the idle colour's size is asserted");
        assert.equal(r.object("Deployment", "web-blue").spec.replicas, 4, "the idle colour waits at the autoscaler's floor");
    });

    it("a release on an autoscaled track does not reset its replicas (the field is ignored, so only the image changes)", async () => {
        // (without the pre-deploy backup a release runs in production: tests/deploy/backup.test.ts)
        const autoscaled = { "platform:apps.worker.autoscaling": { minReplicas: 2, maxReplicas: 6 }, "platform:postgres.backup.beforeDeploy": false };
        const before = await run("production", autoscaled);
        const after = await run("production", { ...autoscaled, "platform:apps.worker.tag": "2.7.1" });
        assert.deepEqual(describe_(exceptAnalysis(diff(before, after))), ["update Deployment/worker"], "the HPA is untouched");
        assert.deepEqual(after.resource("Deployment", "worker").ignoreChanges, ["spec.replicas"]);
        assert.equal(after.object("Deployment", "worker").spec.replicas, 2, "declared once, at the floor, for the first rollout");
        assert.ok(before.has("HorizontalPodAutoscaler", "worker"));
    });

    it("a switch at peak: the incoming colour is sized to what the autoscaler made the outgoing one, asserted once, before the Service moves", async () => {
        // production: green serves, its autoscaler has it at 9; the operator switches to blue (idle at the floor, 4)
        const peak = { replicas: { "web-green": 9, "web-blue": 4 }, selectedTracks: { web: "green" } };
        const r = await run("production", { "platform:apps.web.blueGreen.activeColor": "blue" }, { live: peak });
        assert.equal(r.object("Deployment", "web-blue").spec.replicas, 9);
        assert.deepEqual(r.resource("Deployment", "web-blue").ignoreChanges, [], "the incoming colour's size is asserted in the switch");
        assert.ok(r.dependsOn("Service", "web").includes("Deployment/web-blue"), "the Service moves only once that size is ready");
        // once blue serves, its size is the autoscaler's again
        const after = await run("production", { "platform:apps.web.blueGreen.activeColor": "blue" }, { live: { replicas: { "web-blue": 9, "web-green": 9 }, selectedTracks: { web: "blue" } } });
        assert.deepEqual(after.resource("Deployment", "web-blue").ignoreChanges, ["spec.replicas"]);
        // a quiet switch keeps the floor: the autoscaler grows it when the traffic comes
        const quiet = await run("production", { "platform:apps.web.blueGreen.activeColor": "blue" }, { live: { replicas: { "web-green": 3 }, selectedTracks: { web: "green" } } });
        assert.equal(quiet.object("Deployment", "web-blue").spec.replicas, 4);
        assert.deepEqual(quiet.resource("Deployment", "web-blue").ignoreChanges, ["spec.replicas"]);
    });

    it("abort or promote: stable is sized to take back the canary's pods before the route moves", async () => {
        const live = { replicas: { "api-stable": 7, "api-canary": 11 }, selectedTracks: {} };
        const promote = await run("production", { "platform:apps.api.canary.stable": "2.8.0", "platform:apps.api.canary.canary": "2.8.0" }, { live });
        assert.equal(promote.object("Deployment", "api-stable").spec.replicas, 18);
        assert.deepEqual(promote.resource("Deployment", "api-stable").ignoreChanges, []);
        assert.ok(promote.dependsOn("HTTPRoute", "api").includes("Deployment/api-stable"));
        // while the canary runs, each track's size stays the autoscaler's
        const during = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 50 }, { live });
        assert.deepEqual(during.resource("Deployment", "api-stable").ignoreChanges, ["spec.replicas"]);
        assert.equal(during.object("Deployment", "api-stable").spec.replicas, 6);
    });

    it("refuses an idle colour below the autoscaler's floor and autoscaling with replicas routing", async () => {
        const { runInvalid } = await import("./harness");
        const low = await runInvalid("production", { "platform:apps.web.blueGreen.idleReplicas": 2 });
        assert.match(low.message, /platform:apps\.web\.blueGreen\.idleReplicas must be 0 or at least autoscaling\.minReplicas \(4\)/);
        const mixed = await runInvalid("local", { "platform:apps.api.autoscaling": { minReplicas: 2, maxReplicas: 4 } });
        assert.match(mixed.message, /platform:apps\.api\.autoscaling cannot be combined with routing\.kind "replicas"/);
    });
});

describe("no perpetual diffs", () => {
    it("writes out what the API server would default on HTTPRoute backendRefs", async () => {
        const r = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 });
        for (const ref of r.object("HTTPRoute", "api").spec.rules[0].backendRefs) {
            assert.equal(ref.group, "");
            assert.equal(ref.kind, "Service");
            assert.equal(typeof ref.weight, "number");
            assert.equal(ref.port, 80);
        }
        assert.deepEqual(r.object("HTTPRoute", "api").spec.parentRefs[0], { group: "gateway.networking.k8s.io", kind: "Gateway", name: "public", namespace: "gateway-system", sectionName: "https" });
    });
});
