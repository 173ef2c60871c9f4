import * as assert from "assert";
import * as path from "path";
import { jobFailed, jobSucceeded, Kube, ns, Obj, Recorder, rolledOut, WatchEvent } from "./kube";
import { exportsOf, Project, ROOT, Run } from "./project";
import { EXITS_1, labelIs, NEVER_READY, Stages, STARTING_JOB_POD } from "./stages";

// End-to-end on a live control plane (scripts/ensure-cluster: kube-apiserver, controller manager,
// scheduler, kwok's simulated nodes): `pulumi up` of the cluster stack drives every rollout, gate,
// failure and rollback, and every assertion reads what the API server says. Ordering claims
// ("ready before traffic moves") are read from watch events in etcd revision order.
//
// What the simulator cannot show: pods are Ready the instant they run (no probe is executed, no
// process serves traffic), nothing routes packets, and no gateway or ingress controller programs a
// proxy (kwok publishes the Ingress status a controller would). See docs/operations.md.

const STACK = "cluster";
const LABEL_TRACK = "platform.dev/track";
const LABEL_VERSION = "app.kubernetes.io/version";
/** The stack's rolloutTimeoutSeconds (60) + the await margin (60) + engine start-up: a bad release fails within this. */
const FAILURE_LIMIT_SECONDS = 200;

let project: Project;
let kube: Kube;
let NS = "";
let paths: ReturnType<typeof ns>;
let stages: Stages;
const figures: Record<string, number> = {};

const set = (key: string, value: string | number) => project.pulumi(["config", "set", "--path", key, String(value)]);
const unset = (key: string) => project.pulumi(["config", "rm", "--path", key]);

/** `pulumi up` while recording the namespace's changes; fails the test if the update fails (unless allowFail). */
async function up(label: string, opts: { allowFail?: boolean } = {}): Promise<{ run: Run; events: WatchEvent[] }> {
    const rec: Recorder = await kube.record([paths.deployments, paths.services, paths.jobs, paths.pods, paths.httproutes, paths.ingresses]);
    try {
        const run = await project.pulumiAsync(["up", "--yes", "--skip-preview"], { label, allowFail: opts.allowFail });
        figures[label] = run.seconds;
        return { run, events: rec.events };
    } finally {
        await rec.stop();
    }
}

const deployment = (name: string) => kube.get(`${paths.deployments}/${name}`);

/**
 * Asserts a Deployment is rolled out, allowing its controller a few seconds to count the last old
 * pod gone: `pulumi up` returns once the new pods are available, and `status.replicas` may still
 * include a terminating surge pod for a moment (seen once in CI).
 */
async function assertRolledOut(name: string, message = `Deployment ${name} is not rolled out`): Promise<Obj> {
    const deadline = Date.now() + 10000;
    for (;;) {
        const d = await deployment(name);
        if (d && rolledOut(d)) return d;
        if (Date.now() > deadline) assert.fail(`${message}: ${JSON.stringify(d?.status)}`);
        await new Promise((r) => setTimeout(r, 250));
    }
}
const service = (name: string) => kube.get(`${paths.services}/${name}`);
const selectedTrack = async (name: string) => (await service(name))?.spec.selector[LABEL_TRACK];
const imageOf = (d: Obj | undefined) => d?.spec.template.spec.containers[0].image;

/** Sets a Deployment's size through its scale subresource, as an autoscaler does, and waits for the rollout. */
async function scale(name: string, replicas: number): Promise<void> {
    await kube.patch(`${paths.deployments}/${name}/scale`, { spec: { replicas } });
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
        const d = await deployment(name);
        if (d && d.spec.replicas === replicas && rolledOut(d)) return;
        await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${name} did not reach ${replicas} ready replicas`);
}

/** Each Deployment's generation: it changes exactly when its spec does. */
async function generations(): Promise<Record<string, number>> {
    return Object.fromEntries((await kube.list(paths.deployments)).map((d) => [d.metadata.name, d.metadata.generation]));
}

async function routeWeights(name: string): Promise<Record<string, number>> {
    const r = await kube.get(`${paths.httproutes}/${name}`);
    return Object.fromEntries(r!.spec.rules[0].backendRefs.map((b: Obj) => [b.name, b.weight]));
}

/** Revision of the first event of `kind`/`name` for which `test` holds (Infinity when none). */
function firstRevision(events: WatchEvent[], kind: string, name: string, test: (o: Obj, e: WatchEvent) => boolean): number {
    const e = events.find((e) => e.object?.kind === kind && e.object?.metadata?.name === name && test(e.object, e));
    return e ? e.revision : Infinity;
}

/** Revision at which a Deployment was first fully rolled out with `image` and at least `replicas` pods. */
const readyRevision = (events: WatchEvent[], name: string, image: string, replicas = 1) =>
    firstRevision(events, "Deployment", name, (d) => imageOf(d) === image && rolledOut(d) && d.spec.replicas >= replicas);

/**
 * The objects that carry traffic, as the server has them: compared before and after a failed update.
 * A failed release may leave its own track's Service behind (created before the traffic moves); it
 * carries no traffic as long as every object that routed before is unchanged, so only those count.
 */
async function unchangedSince(before: Obj): Promise<void> {
    const now = await trafficState();
    for (const kind of Object.keys(before)) {
        for (const [name, spec] of Object.entries(before[kind])) assert.deepEqual(now[kind][name], spec, `${kind} ${name} changed in a failed update`);
        const added = Object.keys(now[kind]).filter((n) => !(n in before[kind]));
        if (kind !== "services") assert.deepEqual(added, [], `a failed update created ${kind} ${added}`);
    }
}

async function trafficState(): Promise<Obj> {
    const services = Object.fromEntries((await kube.list(paths.services)).map((s) => [s.metadata.name, s.spec.selector]));
    const routes = Object.fromEntries((await kube.list(paths.httproutes)).map((r) => [r.metadata.name, r.spec.rules]));
    const ingresses = Object.fromEntries((await kube.list(paths.ingresses)).map((i) => [i.metadata.name, {
        rules: i.spec.rules, weight: i.metadata.annotations?.["nginx.ingress.kubernetes.io/canary-weight"] ?? null,
    }]));
    return { services, routes, ingresses };
}

describe("`pulumi up` against a live API server (the cluster stack)", function () {
    this.timeout(30 * 60 * 1000);

    before(async function () {
        const t = Date.now();
        const cluster = exportsOf(path.join(ROOT, "scripts", "ensure-cluster"), ["start"]);
        figures["ensure-cluster start"] = (Date.now() - t) / 1000;
        project = new Project(STACK, { KUBECONFIG: cluster.KUBECONFIG });
        kube = new Kube(cluster.KUBECONFIG!);
        stages = new Stages(kube);
        // A namespace of its own per run: a developer's `npm run up:cluster` namespace is left alone.
        NS = `e2e-${Date.now().toString(36)}`;
        paths = ns(NS);
        stages.namespace = NS;
        set("namespace", NS);
    });

    after(async function () {
        await stages?.removeAll();
        if (project && !process.env.PLATFORM_E2E_KEEP) {
            const d = project.pulumi(["destroy", "--yes", "--skip-preview"], { allowFail: true, label: "destroy" });
            if (d.status !== 0) process.stdout.write(`      destroy failed:\n${d.stdout.slice(-2000)}\n`);
        }
        process.stdout.write(`      pulumi up wall times (s): ${JSON.stringify(figures)}\n`);
        project?.dispose();
    });

    it("a first `pulumi up` on an empty cluster: every workload available, Job complete, Service with ready endpoints, pod admitted by restricted", async function () {
        const { run } = await up("up (empty cluster)");
        const out = run.stdout + run.stderr;
        assert.doesNotMatch(out, /PodSecurity|would violate/i, "the API server warned about Pod Security");

        const namespace = await kube.get(`/api/v1/namespaces/${NS}`);
        assert.equal(namespace!.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");

        const deployments = await kube.list(paths.deployments);
        assert.ok(deployments.length >= 5, `expected the apps' Deployments, got ${deployments.map((d) => d.metadata.name)}`);
        for (const d of deployments) assert.ok(rolledOut(d), `Deployment ${d.metadata.name} is not rolled out: ${JSON.stringify(d.status)}`);
        const statefulSets = await kube.list(paths.statefulsets);
        assert.deepEqual(statefulSets.map((s) => s.metadata.name).sort(), ["postgres", "redis"]);
        for (const s of statefulSets) assert.equal(s.status.readyReplicas, s.spec.replicas, `StatefulSet ${s.metadata.name} not ready`);
        for (const c of await kube.list(paths.pvcs)) assert.equal(c.status.phase, "Bound", `claim ${c.metadata.name} is ${c.status.phase}`);

        const jobs = await kube.list(paths.jobs);
        assert.ok(jobs.length >= 3, "expected migration and smoke-test Jobs");
        for (const j of jobs) assert.ok(jobSucceeded(j), `Job ${j.metadata.name} did not complete`);

        const slices = await kube.list(paths.endpointslices);
        for (const s of await kube.list(paths.services)) {
            const ready = slices.filter((e) => e.metadata.labels["kubernetes.io/service-name"] === s.metadata.name)
                .flatMap((e) => e.endpoints ?? []).filter((e: Obj) => e.conditions?.ready);
            assert.ok(ready.length > 0, `Service ${s.metadata.name} has no ready endpoint`);
        }
        // Every pod the controllers wanted was admitted: no ReplicaSet or Job reports a refused pod.
        const refused = (await kube.list(paths.events)).filter((e) => e.reason === "FailedCreate");
        assert.deepEqual(refused.map((e) => e.message), []);
        for (const i of await kube.list(paths.ingresses)) assert.ok(i.status?.loadBalancer?.ingress?.length, `Ingress ${i.metadata.name} not published`);
    });

    it("no perpetual diff: a second `pulumi up` changes nothing, and after `pulumi refresh` neither does a preview", async function () {
        project.pulumi(["up", "--yes", "--expect-no-changes"], { label: "up (no changes)" });
        project.pulumi(["refresh", "--yes", "--skip-preview"], { label: "refresh" });
        const pv = JSON.parse(project.pulumi(["preview", "--json", "--expect-no-changes"], { label: "preview after refresh" }).stdout);
        const changes = Object.entries(pv.changeSummary ?? {}).filter(([op, n]) => op !== "same" && (n as number) > 0);
        assert.deepEqual(changes, [], `after a refresh the preview wants changes: ${JSON.stringify(pv.changeSummary)}`);
    });

    it("blue/green: release to the idle colour, switch, rollback, retire the idle colour, roll back onto it", async function () {
        // release: only the idle colour changes; traffic stays on blue
        set("apps.web.blueGreen.green", "1.5.0");
        let r = await up("blue/green release");
        assert.equal(imageOf(await deployment("web-green")), "registry.local/acme/web:1.5.0");
        await assertRolledOut("web-green");
        assert.equal(await selectedTrack("web"), "blue");
        assert.equal(await selectedTrack("web-preview"), "green");
        const smoke = (await kube.list(paths.jobs)).find((j) => j.metadata.labels[LABEL_VERSION] === "1.5.0" && j.metadata.name.startsWith("web-smoke-green"));
        assert.ok(smoke && jobSucceeded(smoke), "the green smoke test did not complete");
        assert.ok(readyRevision(r.events, "web-green", "registry.local/acme/web:1.5.0") < firstRevision(r.events, "Job", smoke!.metadata.name, jobSucceeded));

        // switch
        set("apps.web.blueGreen.activeColor", "green");
        r = await up("blue/green switch");
        assert.equal(await selectedTrack("web"), "green");
        assert.equal(await selectedTrack("web-preview"), "blue");
        await assertRolledOut("web-blue", "the old colour is kept for a fast rollback");

        // rollback: one value; the Services move, no Deployment changes
        const gens = await generations();
        set("apps.web.blueGreen.activeColor", "blue");
        await up("blue/green rollback");
        assert.equal(await selectedTrack("web"), "blue");
        assert.deepEqual(await generations(), gens, "a rollback changed a Deployment's spec");

        // retire the idle colour
        set("apps.web.blueGreen.idleReplicas", 0);
        await up("blue/green idleReplicas 0");
        assert.equal(await deployment("web-green"), undefined);
        assert.equal(await service("web-preview"), undefined);
        assert.equal(await selectedTrack("web"), "blue");

        // roll back onto the removed colour: it is re-created at full size and ready before the switch
        set("apps.web.blueGreen.activeColor", "green");
        r = await up("blue/green rollback to a removed colour");
        await assertRolledOut("web-green");
        const readyAt = readyRevision(r.events, "web-green", "registry.local/acme/web:1.5.0", 2);
        const switchedAt = firstRevision(r.events, "Service", "web", (s) => s.spec.selector[LABEL_TRACK] === "green");
        assert.ok(Number.isFinite(switchedAt), "the Service never switched to green");
        assert.ok(readyAt < switchedAt, `the Service moved (revision ${switchedAt}) before web-green was ready (revision ${readyAt})`);
        unset("apps.web.blueGreen.idleReplicas");
        await up("blue/green idle colour back");
        await assertRolledOut("web-blue");
    });

    it("canary through the Gateway API: 0 → 10 → 50 → 100 → promote, then abort from 50", async function () {
        const stableImage = "registry.local/acme/api:2.7.0";
        set("apps.api.canary.canary", "2.8.0");
        set("apps.api.canary.weight", 10);
        let r = await up("canary 0 → 10");
        assert.deepEqual(await routeWeights("api"), { "api-stable": 90, "api-canary": 10 });
        const migration = (await kube.list(paths.jobs)).find((j) => j.metadata.name.startsWith("api-migrate-") && j.metadata.labels[LABEL_VERSION] === "2.8.0");
        assert.ok(migration && jobSucceeded(migration), "the 2.8.0 migration did not complete");
        const migratedAt = firstRevision(r.events, "Job", migration!.metadata.name, jobSucceeded);
        const canaryPodAt = Math.min(...r.events.filter((e) => e.object.kind === "Pod" && e.type === "ADDED" &&
            e.object.metadata.labels[LABEL_VERSION] === "2.8.0" && e.object.metadata.labels[LABEL_TRACK] === "canary").map((e) => e.revision));
        assert.ok(migratedAt < canaryPodAt, `a 2.8.0 pod started (revision ${canaryPodAt}) before its migration completed (${migratedAt})`);
        const canaryReady = readyRevision(r.events, "api-canary", "registry.local/acme/api:2.8.0");
        const routed = firstRevision(r.events, "HTTPRoute", "api", (o) => o.spec.rules[0].backendRefs.some((b: Obj) => b.name === "api-canary" && b.weight === 10));
        assert.ok(canaryReady < routed, `the route sent traffic (revision ${routed}) before the canary was ready (${canaryReady})`);

        const gens = await generations();
        set("apps.api.canary.weight", 50);
        await up("canary 10 → 50");
        assert.deepEqual(await routeWeights("api"), { "api-stable": 50, "api-canary": 50 });
        assert.deepEqual(await generations(), gens, "a weight step changed a Deployment");
        set("apps.api.canary.weight", 100);
        await up("canary 50 → 100");
        assert.deepEqual(await routeWeights("api"), { "api-stable": 0, "api-canary": 100 });
        assert.equal(imageOf(await deployment("api-stable")), stableImage);

        // promote: stable takes the canary's version, then the route moves back, then the canary goes
        set("apps.api.canary.stable", "2.8.0");
        set("apps.api.canary.weight", 0);
        r = await up("canary promote");
        assert.deepEqual(await routeWeights("api"), { "api-stable": 100 });
        assert.equal(imageOf(await deployment("api-stable")), "registry.local/acme/api:2.8.0");
        assert.equal(await deployment("api-canary"), undefined);
        const stableReady = readyRevision(r.events, "api-stable", "registry.local/acme/api:2.8.0");
        const back = firstRevision(r.events, "HTTPRoute", "api", (o) => o.spec.rules[0].backendRefs.length === 1);
        assert.ok(stableReady < back, "the route left the canary before stable ran the promoted version");

        // abort from 50
        set("apps.api.canary.canary", "2.9.0");
        set("apps.api.canary.weight", 10);
        await up("canary 0 → 10 (2.9.0)");
        set("apps.api.canary.weight", 50);
        await up("canary 10 → 50 (2.9.0)");
        set("apps.api.canary.weight", 0);
        await up("canary abort from 50");
        assert.deepEqual(await routeWeights("api"), { "api-stable": 100 });
        assert.equal(await deployment("api-canary"), undefined);
        assert.equal(imageOf(await deployment("api-stable")), "registry.local/acme/api:2.8.0");
    });

    it("canary behind ingress-nginx: the canary Ingress carries the weight, promote removes it", async function () {
        const weight = async () => (await kube.get(`${paths.ingresses}/shop-canary`))?.metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"];
        set("apps.shop.canary.canary", "3.2.0");
        set("apps.shop.canary.weight", 10);
        await up("nginx canary 0 → 10");
        assert.equal(await weight(), "10");
        const canaryIngress = (await kube.get(`${paths.ingresses}/shop-canary`))!;
        assert.equal(canaryIngress.metadata.annotations["nginx.ingress.kubernetes.io/canary"], "true");
        assert.equal(canaryIngress.spec.rules[0].http.paths[0].backend.service.name, "shop-canary");
        set("apps.shop.canary.weight", 50);
        await up("nginx canary 10 → 50");
        assert.equal(await weight(), "50");
        set("apps.shop.canary.stable", "3.2.0");
        set("apps.shop.canary.weight", 0);
        await up("nginx canary promote");
        assert.equal(await kube.get(`${paths.ingresses}/shop-canary`), undefined);
        assert.equal((await kube.get(`${paths.ingresses}/shop`))!.spec.rules[0].http.paths[0].backend.service.name, "shop-stable");
        assert.equal(imageOf(await deployment("shop-stable")), "registry.local/acme/shop:3.2.0");
    });

    it("a rolling release runs its migration to completion before the first new pod starts", async function () {
        set("apps.worker.tag", "2.8.0");
        const r = await up("rolling release with migration");
        const d = await assertRolledOut("worker");
        assert.equal(imageOf(d), "registry.local/acme/worker:2.8.0");
        const job = (await kube.list(paths.jobs)).find((j) => j.metadata.name.startsWith("worker-migrate-") && j.metadata.labels[LABEL_VERSION] === "2.8.0")!;
        assert.ok(jobSucceeded(job));
        const migratedAt = firstRevision(r.events, "Job", job.metadata.name, jobSucceeded);
        const newPods = r.events.filter((e) => e.object.kind === "Pod" && e.type === "ADDED" && e.object.metadata.labels[LABEL_VERSION] === "2.8.0" &&
            !e.object.metadata.name.startsWith("worker-migrate-"));
        assert.ok(newPods.length > 0, "no new worker pod was seen");
        assert.ok(migratedAt < Math.min(...newPods.map((e) => e.revision)), "a new worker pod started before the migration completed");
    });

    it("autoscaled: a switch and a canary promote at peak land on the live size, ready before traffic moves", async function () {
        // as an autoscaler would at peak (the simulator has no metrics server): the serving colour grows to 5
        const from = (await selectedTrack("web"))!;
        const to = from === "blue" ? "green" : "blue";
        await scale(`web-${from}`, 5);
        set("apps.web.blueGreen.activeColor", to);
        let r = await up("autoscaled switch at peak");
        const incoming = (await deployment(`web-${to}`))!;
        assert.equal(incoming.spec.replicas, 5, "the incoming colour did not come up at the live size");
        const readyAt = readyRevision(r.events, `web-${to}`, imageOf(incoming), 5);
        const switchedAt = firstRevision(r.events, "Service", "web", (s) => s.spec.selector[LABEL_TRACK] === to);
        assert.ok(readyAt < switchedAt, `the Service moved (revision ${switchedAt}) before 5 pods of web-${to} were ready (${readyAt})`);
        // from now on the autoscaler owns the size again: nothing to change
        project.pulumi(["preview", "--expect-no-changes"], { label: "preview after the switch at peak" });

        // a canary at 100 % that its autoscaler grew to 6; promote: stable takes all of it
        set("apps.api.canary.canary", "4.0.0");
        set("apps.api.canary.weight", 100);
        await up("canary 0 → 100 (4.0.0)");
        await scale("api-canary", 6);
        const liveStable = (await deployment("api-stable"))!.spec.replicas;
        set("apps.api.canary.stable", "4.0.0");
        set("apps.api.canary.weight", 0);
        r = await up("canary promote at peak");
        const stable = (await deployment("api-stable"))!;
        assert.equal(stable.spec.replicas, liveStable + 6);
        const stableReady = readyRevision(r.events, "api-stable", "registry.local/acme/api:4.0.0", liveStable + 6);
        const back = firstRevision(r.events, "HTTPRoute", "api", (o) => o.spec.rules[0].backendRefs.length === 1);
        assert.ok(stableReady < back, `the route moved to stable (revision ${back}) before it had ${liveStable + 6} ready pods (${stableReady})`);
        assert.equal(await deployment("api-canary"), undefined);
    });

    it("failure: a release whose pods never become ready fails `pulumi up` in minutes and moves no traffic; the next release succeeds", async function () {
        await stages.add(`e2e-never-ready-${NS}`, [labelIs(LABEL_VERSION, "3.0.0"),
            { key: ".metadata.ownerReferences.[].kind", operator: "NotIn", values: ["Job"] },
            { key: ".metadata.deletionTimestamp", operator: "DoesNotExist" }, { key: ".status.podIP", operator: "DoesNotExist" }], NEVER_READY);
        const before = await trafficState();
        set("apps.api.canary.canary", "3.0.0");
        set("apps.api.canary.weight", 10);
        const { run } = await up("never-ready release (fails)", { allowFail: true });
        assert.notEqual(run.status, 0, "`pulumi up` succeeded with pods that never became ready");
        assert.ok(run.seconds < FAILURE_LIMIT_SECONDS, `the failure took ${run.seconds} s`);
        assert.match(run.stdout + run.stderr, /api-canary/);
        await unchangedSince(before);
        figures["never-ready: failed after"] = run.seconds;

        set("apps.api.canary.canary", "3.0.1");
        await up("release after a never-ready one");
        assert.deepEqual(await routeWeights("api"), { "api-stable": 90, "api-canary": 10 });
        set("apps.api.canary.weight", 0);
        await up("abort the 3.0.1 canary");
        await stages.remove(`e2e-never-ready-${NS}`);
    });

    it("failure: a failing smoke test stops the switch; after the fix a plain `pulumi up` retries it by itself", async function () {
        const active = await selectedTrack("web");
        const idle = active === "blue" ? "green" : "blue";
        await stages.add(`e2e-smoke-fails-${NS}`, [labelIs(LABEL_VERSION, "1.6.0"), labelIs("app.kubernetes.io/component", "smoke-test"), ...STARTING_JOB_POD], EXITS_1);
        const before = await trafficState();
        set(`apps.web.blueGreen.${idle}`, "1.6.0");
        set("apps.web.blueGreen.activeColor", idle);
        const { run } = await up("release + switch, smoke test fails", { allowFail: true });
        assert.notEqual(run.status, 0, "`pulumi up` succeeded although the smoke test failed");
        assert.ok(run.seconds < FAILURE_LIMIT_SECONDS, `the failure took ${run.seconds} s`);
        await unchangedSince(before);
        const failed = (await kube.list(paths.jobs)).find((j) => j.metadata.labels[LABEL_VERSION] === "1.6.0" && j.metadata.labels["app.kubernetes.io/component"] === "smoke-test")!;
        assert.ok(jobFailed(failed), "the smoke Job is not marked failed");

        // the dependency the smoke test needed is back: the same config, no hand deletion
        await stages.remove(`e2e-smoke-fails-${NS}`);
        await up("retry after the smoke test is fixed");
        const retried = (await kube.get(`${paths.jobs}/${failed.metadata.name}`))!;
        assert.notEqual(retried.metadata.uid, failed.metadata.uid, "the failed smoke Job was not replaced");
        assert.ok(jobSucceeded(retried));
        assert.equal(await selectedTrack("web"), idle);
    });

    it("failure: a failing migration keeps the old version serving; after the fix a plain `pulumi up` retries it", async function () {
        await stages.add(`e2e-migration-fails-${NS}`, [labelIs(LABEL_VERSION, "2.9.0"), labelIs("app.kubernetes.io/component", "migration"), ...STARTING_JOB_POD], EXITS_1);
        const before = await trafficState();
        set("apps.worker.tag", "2.9.0");
        const { run } = await up("rolling release, migration fails", { allowFail: true });
        assert.notEqual(run.status, 0, "`pulumi up` succeeded although the migration failed");
        assert.ok(run.seconds < FAILURE_LIMIT_SECONDS, `the failure took ${run.seconds} s`);
        await unchangedSince(before);
        assert.equal(imageOf(await deployment("worker")), "registry.local/acme/worker:2.8.0", "the Deployment changed before its migration succeeded");
        const pods = (await kube.list(paths.pods)).filter((p) => p.metadata.labels["app.kubernetes.io/name"] === "worker");
        assert.ok(pods.length > 0 && pods.every((p) => p.metadata.labels[LABEL_VERSION] === "2.8.0"), "a 2.9.0 worker pod exists");

        await stages.remove(`e2e-migration-fails-${NS}`);
        await up("retry after the migration is fixed");
        assert.equal(imageOf(await deployment("worker")), "registry.local/acme/worker:2.9.0");
        await assertRolledOut("worker");
    });
});
