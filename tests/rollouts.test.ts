import { strict as assert } from "assert";
import { analysisChanges, Change, describe_, diff, exceptAnalysis, Result, run, runInvalid } from "./harness";

// Minimal blast radius: each operator action, as the one `pulumi config set --path` it is, changes
// the fewest objects possible and replaces none. Diffs compare the registered resources of two
// configs by identity and inputs, as `pulumi preview` does.

const DATA_KINDS = ["StatefulSet", "Secret", "PersistentVolumeClaim"];

function assertSafe(changes: Change[]): void {
    assert.deepEqual(changes.filter((c) => c.replace).map((c) => `${c.kind}/${c.name}`), [], "nothing is replaced");
    assert.deepEqual(changes.filter((c) => DATA_KINDS.includes(c.kind) || /^(postgres|redis)/.test(c.name)).map((c) => `${c.kind}/${c.name}`), [],
        "no app-level action touches Postgres, Redis, their Secrets or volumes");
}

describe("canary weights", () => {
    it("behind nginx: changing the weight updates only the canary Ingress", async () => {
        const before = await run("staging");
        const after = await run("staging", { "platform:apps.api.canary.weight": 50 });
        const changes = diff(before, after);
        assert.deepEqual(describe_(exceptAnalysis(changes)), ["update Ingress/api-canary"]);
        assert.deepEqual(analysisChanges(changes), ["create Job/api-analysis-<hash>", "delete Job/api-analysis-<hash>"], "the step runs its own analysis");
        assertSafe(changes);
        assert.equal(after.object("Ingress", "api-canary").metadata.annotations!["nginx.ingress.kubernetes.io/canary-weight"], "50");
        assert.deepEqual(after.outputs.apps.api.traffic, { stable: 50, canary: 50 });
    });

    it("behind a Gateway: changing the weight updates only the HTTPRoute, with weights 100-w and w", async () => {
        const canary = { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 };
        const before = await run("production", canary);
        const after = await run("production", { ...canary, "platform:apps.api.canary.weight": 50 });
        const changes = diff(before, after);
        assert.deepEqual(describe_(exceptAnalysis(changes)), ["update HTTPRoute/api"]);
        assertSafe(changes);
        const refs = after.object("HTTPRoute", "api").spec.rules[0].backendRefs;
        assert.deepEqual(refs.map((b: any) => [b.name, b.weight]), [["api-stable", 50], ["api-canary", 50]]);
    });

    it("with replicas routing: the split is the pod ratio, and only the two Deployments change", async () => {
        const before = await run("local");
        const after = await run("local", { "platform:apps.api.canary.weight": 50, "platform:apps.api.replicas": 4 });
        const quarter = await run("local", { "platform:apps.api.canary.weight": 25, "platform:apps.api.replicas": 4 });
        const half = await run("local", { "platform:apps.api.canary.weight": 50, "platform:apps.api.replicas": 4 });
        assert.deepEqual(describe_(diff(quarter, half)), ["update Deployment/api-canary", "update Deployment/api-stable"]);
        assert.equal(half.object("Deployment", "api-canary").spec.replicas, 2);
        assert.equal(half.object("Deployment", "api-stable").spec.replicas, 2);
        assert.equal(quarter.object("Deployment", "api-canary").spec.replicas, 1);
        assert.equal(quarter.outputs.apps.api.traffic.approximate, true);
        assert.equal(quarter.outputs.apps.api.traffic.canary, 25);
        assertSafe(diff(before, after));
        // One shared Service selects both tracks: that is the router.
        assert.deepEqual(Object.keys(half.object("Service", "api").spec.selector).sort(), ["app.kubernetes.io/instance", "app.kubernetes.io/name"]);
    });

    it("weight 0 sends everything to stable and scales the canary away; weight 100 sends everything to the canary", async () => {
        const zero = await run("staging", { "platform:apps.api.canary.weight": 0 });
        assert.ok(!zero.has("Deployment", "api-canary"));
        assert.ok(!zero.has("Ingress", "api-canary"));
        assert.deepEqual(zero.outputs.apps.api.traffic, { stable: 100, canary: 0 });
        const full = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 100 });
        assert.deepEqual(full.object("HTTPRoute", "api").spec.rules[0].backendRefs.map((b: any) => b.weight), [0, 100]);
        assert.deepEqual(full.outputs.apps.api.traffic, { stable: 0, canary: 100 });
    });

    it("promotion is stable := canary tag and weight 0, and its migration does not run again", async () => {
        const at100 = await run("staging", { "platform:apps.api.canary.weight": 100 });
        const promoted = await run("staging", { "platform:apps.api.canary.stable": "2.8.0", "platform:apps.api.canary.weight": 0 });
        const changes = diff(at100, promoted);
        assertSafe(changes);
        assert.equal(promoted.object("Deployment", "api-stable").spec.template.spec.containers[0].image, "europe-docker.pkg.dev/acme-staging/apps/api:2.8.0");
        const migrations = (r: Result) => r.ofKind("Job").filter((j) => j.metadata.name.startsWith("api-migrate-")).map((j) => j.metadata.name);
        const canaryMigration = migrations(at100).find((n) => at100.object("Job", n).spec.template.spec.containers[0].image.endsWith(":2.8.0"))!;
        assert.ok(migrations(promoted).includes(canaryMigration), "the 2.8.0 migration Job is the same object");
        assert.ok(!changes.some((c) => c.name === canaryMigration));
        assert.match(at100.outputs.apps.api.commands.promote, /canary\.stable' 2\.8\.0 --stack staging && pulumi config set --path 'apps\.api\.canary\.weight' 0/);
    });

    it("outputs the next step and the abort as exact commands", async () => {
        const r = await run("staging");
        assert.equal(r.outputs.apps.api.commands.next, "pulumi config set --path 'apps.api.canary.weight' 50 --stack staging");
        assert.equal(r.outputs.apps.api.commands.abort, "pulumi config set --path 'apps.api.canary.weight' 0 --stack staging");
    });
});

describe("blue/green", () => {
    it("switching activeColor changes exactly the active and preview Services", async () => {
        const before = await run("staging");
        const after = await run("staging", { "platform:apps.web.blueGreen.activeColor": "green" });
        const changes = diff(before, after);
        assert.deepEqual(describe_(exceptAnalysis(changes)), ["update Service/web", "update Service/web-preview"]);
        assert.deepEqual(analysisChanges(changes), ["create Job/web-analysis-<hash>", "delete Job/web-analysis-<hash>"], "the switch runs its own analysis");
        assertSafe(changes);
        assert.equal(after.object("Service", "web").spec.selector["platform.dev/track"], "green");
        assert.equal(after.object("Service", "web-preview").spec.selector["platform.dev/track"], "blue");
        assert.deepEqual(after.outputs.apps.web.traffic, { active: "green", preview: "blue", green: 100, blue: 0 });
    });

    it("rollback is the same one-value change back, touching only the two Services", async () => {
        const switched = await run("staging", { "platform:apps.web.blueGreen.activeColor": "green" });
        const back = await run("staging", { "platform:apps.web.blueGreen.activeColor": "blue" });
        assert.deepEqual(describe_(exceptAnalysis(diff(switched, back))), ["update Service/web", "update Service/web-preview"]);
        assert.equal(switched.outputs.apps.web.commands.rollback, "pulumi config set --path 'apps.web.blueGreen.activeColor' blue --stack staging");
    });

    it("a new tag on the idle colour changes only that colour's Deployment and its Jobs", async () => {
        const before = await run("staging");
        const after = await run("staging", { "platform:apps.web.blueGreen.green": "1.6.0" });
        const changes = diff(before, after);
        assertSafe(changes);
        const kinds = changes.map((c) => `${c.op} ${c.kind}`);
        assert.ok(changes.some((c) => c.op === "update" && c.kind === "Deployment" && c.name === "web-green"));
        assert.ok(exceptAnalysis(changes).filter((c) => c.kind === "Job").every((c) => c.name.startsWith("web-smoke-green-")), kinds.join());
        assert.deepEqual(changes.filter((c) => !["Job", "Deployment"].includes(c.kind)), [], "no Service, route or other object changes");
        assert.deepEqual(changes.filter((c) => c.kind === "Deployment").map((c) => c.name), ["web-green"]);
    });

    it("runs the smoke test against the colour's own Service, in the colour's image when a command is given", async () => {
        const r = await run("staging");
        const job = r.ofKind("Job").find((j) => j.metadata.name.startsWith("web-smoke-green-"))!;
        const c = job.spec.template.spec.containers[0];
        assert.equal(c.image, "europe-docker.pkg.dev/acme-staging/apps/web:1.5.0");
        assert.deepEqual(c.command, ["/app/bin/smoke", "--url-from-env"]);
        assert.equal(c.env.find((e: any) => e.name === "SMOKE_TEST_URL").value, "http://web-green.platform-staging.svc.cluster.local:80/healthz");
        const local = await run("local");
        const curl = local.ofKind("Job").find((j) => j.metadata.name.startsWith("web-smoke-blue-"))!.spec.template.spec.containers[0];
        assert.ok(curl.command.includes("--fail") && curl.command.at(-1) === "http://web-blue.platform-local.svc.cluster.local:80/healthz");
    });

    it("idleReplicas 0 scales the old colour away; its Services go with it and nothing waits for endpoints", async () => {
        const r = await run("staging", { "platform:apps.web.blueGreen.idleReplicas": 0 });
        assert.ok(!r.has("Deployment", "web-green"));
        assert.ok(!r.has("Service", "web-preview"));
        assert.equal(r.object("Deployment", "web-blue").spec.replicas, 2);
        const before = await run("staging");
        for (const s of ["web-preview", "web-green", "web-blue"]) assert.equal(before.object("Service", s).metadata.annotations?.["pulumi.com/skipAwait"], "true", s);
        assert.equal(before.object("Service", "web").metadata.annotations, undefined, "the active Service waits for endpoints");
    });

    it("keeps colour identities fixed: names and selectors do not depend on which colour is active", async () => {
        const blue = await run("staging");
        const green = await run("staging", { "platform:apps.web.blueGreen.activeColor": "green", "platform:apps.web.blueGreen.green": "9.9.9" });
        for (const d of ["web-blue", "web-green"]) assert.deepEqual(blue.object("Deployment", d).spec.selector, green.object("Deployment", d).spec.selector);
    });
});

describe("migrations", () => {
    it("run the image being rolled out with the app's database settings, once per version, never deleted by a TTL", async () => {
        const r = await run("staging");
        const jobs = r.ofKind("Job").filter((j) => j.metadata.name.startsWith("api-migrate-"));
        assert.deepEqual(jobs.map((j) => j.spec.template.spec.containers[0].image).sort(),
            ["europe-docker.pkg.dev/acme-staging/apps/api:2.7.0", "europe-docker.pkg.dev/acme-staging/apps/api:2.8.0"]);
        for (const j of jobs) {
            const c = j.spec.template.spec.containers[0];
            assert.deepEqual(c.command, ["/app/bin/migrate", "up"]);
            assert.ok(c.env.some((e: any) => e.name === "DATABASE_URL" && e.valueFrom.secretKeyRef.name === "postgres-credentials"));
            assert.equal(j.spec.ttlSecondsAfterFinished, undefined);
            assert.equal(j.spec.template.spec.restartPolicy, "Never");
            assert.equal(j.spec.template.metadata.labels["platform.dev/uses-postgres"], "true", "the migration may reach Postgres");
        }
        const again = await run("staging");
        assert.deepEqual(diff(r, again), [], "an unchanged config changes nothing: no Job churn");
    });

    it("must finish before the Deployment that runs that version changes", async () => {
        const r = await run("staging");
        const canaryJob = r.ofKind("Job").find((j) => j.metadata.name.startsWith("api-migrate-") && j.spec.template.spec.containers[0].image.endsWith(":2.8.0"))!;
        assert.ok(r.dependsOn("Deployment", "api-canary").includes(`Job/${canaryJob.metadata.name}`));
    });

    it("a new canary tag gives a new migration Job and leaves the old version's Job alone", async () => {
        const before = await run("staging");
        const after = await run("staging", { "platform:apps.api.canary.canary": "2.9.0" });
        const jobs = diff(before, after).filter((c) => c.kind === "Job" && c.name.startsWith("api-migrate-"));
        assert.deepEqual(jobs.map((c) => c.op).sort(), ["create", "delete"]);
    });
});

describe("outputs", () => {
    it("say per app the strategy, live images, traffic split, Services and commands", async () => {
        const r = await run("staging");
        const web = r.outputs.apps.web;
        assert.equal(web.strategy, "blueGreen");
        assert.deepEqual(web.images, { blue: "europe-docker.pkg.dev/acme-staging/apps/web:1.4.2", green: "europe-docker.pkg.dev/acme-staging/apps/web:1.5.0" });
        assert.equal(web.services.active, "web.platform-staging.svc.cluster.local");
        assert.equal(web.services.preview, "web-preview.platform-staging.svc.cluster.local");
        assert.equal(web.commands.switch, "pulumi config set --path 'apps.web.blueGreen.activeColor' green --stack staging");
        assert.deepEqual(r.outputs.apps.worker.traffic, { main: 100 });
    });
});

describe("failed releases end in minutes and leave nothing to clean up by hand", () => {
    it("a track that cannot become ready fails `pulumi up` after rolloutTimeoutSeconds (default 300 s), not Pulumi's 10 minutes", async () => {
        const r = await run("staging");
        for (const d of r.ofKind("Deployment").filter((d) => d.metadata.labels?.["app.kubernetes.io/version"])) {
            assert.equal(d.spec.progressDeadlineSeconds, 300, d.metadata.name);
            assert.deepEqual(r.resource("Deployment", d.metadata.name).customTimeouts, { create: "360s", update: "360s", delete: "" }, d.metadata.name);
        }
        const fast = await run("staging", { "platform:apps.web.rolloutTimeoutSeconds": 60 });
        assert.equal(fast.object("Deployment", "web-blue").spec.progressDeadlineSeconds, 60);
        const smoke = fast.ofKind("Job").find((j) => j.metadata.name.startsWith("web-smoke-"))!;
        assert.equal(smoke.spec.activeDeadlineSeconds, 60);
        assert.equal(fast.resource("Job", smoke.metadata.name).customTimeouts.create, "120s");
    });

    it("a failed migration, smoke test or pre-migration backup Job is replaced by the next `pulumi up` (pulumi.com/replaceUnready)", async () => {
        const r = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 });
        const jobs = r.ofKind("Job");
        for (const prefix of ["api-migrate-", "api-smoke-", "web-smoke-"]) assert.ok(jobs.some((j) => j.metadata.name.startsWith(prefix)), prefix);
        for (const j of jobs) assert.equal(j.metadata.annotations?.["pulumi.com/replaceUnready"], "true", j.metadata.name);
        const backup = jobs.find((j) => j.metadata.name.endsWith("-backup"))!;
        assert.ok(backup, "production backs up before each migration");
        assert.equal(r.resource("Job", backup.metadata.name).customTimeouts.create, `${3 * 3600 + 60}s`, "a long backup is waited for");
    });

    it("refuses a rollout timeout outside 30–3600 s", async () => {
        const bad = await runInvalid("staging", { "platform:apps.web.rolloutTimeoutSeconds": 10 });
        assert.match(bad.message, /platform:apps\.web\.rolloutTimeoutSeconds must be an integer from 30 to 3600 \(got 10\)/);
        assert.equal(bad.registered, 0);
    });
});
