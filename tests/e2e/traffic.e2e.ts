import * as assert from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { Kube, ns, Obj } from "./kube";
import { assertNoFailedRequests, LoadResult, REAL_NODE, startLoad, startNode, summary, TESTAPP } from "./node";
import { Project } from "./project";

// Real pods, real traffic: the cluster stack's apps run the test app on the real node
// (scripts/ensure-node), each behind the NodePort of the Service its clients use, and loadgen sends
// 100 requests/s to 127.0.0.1:<nodePort> through every operator action (`pulumi up` of one changed
// value). Each test asserts failed requests and the versions clients saw. The data services stay on
// the simulated nodes. Needs root (containers, iptables), as .ci/run has.
//
// Failed requests: the goal is 0; the one bound, for a stray of this machine's loopback NodePort, is
// stated and asserted by assertNoFailedRequests (tests/e2e/node.ts).

const STACK = "cluster";
const RATE = 100;
const PORTS = { web: 30080, shop: 30081, worker: 30082 };
const LABEL_TRACK = "platform.dev/track";

const onRealNode = (extra: Obj) => ({
    image: TESTAPP, port: 8080, healthPath: "/healthz", rolloutTimeoutSeconds: 60,
    nodeSelector: REAL_NODE.nodeSelector, tolerations: REAL_NODE.tolerations, imagePullPolicy: "Never",
    // Small requests: a dozen pods share the node's 2 cores; the limit stays generous (a tiny CPU
    // limit makes start-up take seconds, docs/node.md).
    resources: { requests: { cpu: "20m", memory: "32Mi" }, limits: { cpu: "500m", memory: "64Mi" } },
    smokeTest: { command: ["/app/bin/platform-testapp", "smoke"] },
    ...extra,
});

/** The apps of the cluster stack that run on the real node; api (Gateway, simulated) is left out. */
const APPS = {
    web: onRealNode({ component: "frontend", replicas: 2, strategy: "blueGreen", blueGreen: { activeColor: "blue", blue: "v1", green: "v1" }, nodePort: PORTS.web }),
    shop: onRealNode({ component: "frontend", replicas: 4, strategy: "canary", canary: { stable: "v1", weight: 0 }, routing: { kind: "replicas" }, nodePort: PORTS.shop }),
    worker: onRealNode({
        component: "worker", replicas: 2, strategy: "rolling", tag: "v1", uses: ["postgres", "redis"],
        // The cluster stack's Postgres is simulated (kwok): the test app's migrate would connect to it
        // (DATABASE_URL is injected) and fail. The migration Job stands in by resolving the database's
        // name through the cluster DNS; a real migration against a real Postgres is the data tier's.
        migrations: { command: ["/app/bin/platform-testapp", "resolve", "postgres"] }, nodePort: PORTS.worker,
    }),
};

describe("real pods, real traffic: zero failed requests through every rollout (cluster stack on the real node)", function () {
    this.timeout(40 * 60 * 1000);
    let project: Project;
    let kube: Kube;
    let loadgen = "";
    let paths: ReturnType<typeof ns>;
    const table: { action: string; sent: number; failed: number; versions: string; seconds: number; note: string }[] = [];

    const set = (key: string, value: string | number) => project.pulumi(["config", "set", "--path", key, String(value)]);
    const up = (label: string, allowFail = false) => project.pulumiAsync(["up", "--yes", "--skip-preview"], { label, allowFail });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    /** Runs `action` under load on the app's NodePort; returns loadgen's result and the action's start (loadgen ms). */
    async function underLoad(label: string, app: keyof typeof PORTS, action: () => Promise<unknown>): Promise<{ r: LoadResult; at: number; seconds: number }> {
        const load = await startLoad(loadgen, `http://127.0.0.1:${PORTS[app]}/`, { rate: RATE, maxSeconds: 600 });
        await sleep(2000); // a baseline before the action
        const t = Date.now();
        await action();
        const seconds = (Date.now() - t) / 1000;
        await sleep(3000); // and after: the old version's pods drain meanwhile
        const r = await load.stop();
        const at = t - r.startEpochMs;
        const versions = Object.entries(r.versions).map(([v, s]) => `${v} ${s.count} (${((s.firstMs - at) / 1000).toFixed(1)} → ${((s.lastMs - at) / 1000).toFixed(1)} s)`).join(", ");
        table.push({ action: label, sent: r.sent, failed: r.failed, versions, seconds, note: "" });
        process.stdout.write(`      ${label}: ${summary(r)}\n`);
        return { r, at, seconds };
    }

    /** 0 failed requests, or strays only (assertNoFailedRequests, tests/e2e/node.ts). */
    function noFailedRequests(r: LoadResult, label: string): void {
        const note = assertNoFailedRequests(r, label);
        if (note) table[table.length - 1].note = note;
    }

    /** The versions clients were answered by, in the order they were first seen. */
    const versionsSeen = (r: LoadResult) => Object.entries(r.versions).sort((a, b) => a[1].firstMs - b[1].firstMs).map(([v]) => v);

    before(async function () {
        const env = startNode();
        loadgen = env.PLATFORM_NODE_LOADGEN;
        project = new Project(STACK, { KUBECONFIG: env.KUBECONFIG });
        kube = new Kube(env.KUBECONFIG);
        const NS = `e2e-traffic-${Date.now().toString(36)}`;
        paths = ns(NS);
        // The stack file of the throwaway copy: the apps on the real node (operator actions below
        // are one `pulumi config set --path` each, as an operator types them).
        const file = path.join(project.work, `Pulumi.${STACK}.yaml`);
        const doc = yaml.load(fs.readFileSync(file, "utf8")) as Obj;
        doc.config["platform:namespace"] = NS;
        doc.config["platform:apps"] = APPS;
        fs.writeFileSync(file, yaml.dump(doc));
        await up("first up (real node)");
        for (const app of Object.keys(PORTS) as (keyof typeof PORTS)[]) {
            const probe = await startLoad(loadgen, `http://127.0.0.1:${PORTS[app]}/`, { rate: 20, maxSeconds: 30 });
            await sleep(1500);
            const r = await probe.stop();
            assert.ok(r.ok > 0 && Object.keys(r.versions).every((v) => v === "v1"), `${app} does not serve v1 on its NodePort: ${summary(r)}`);
        }
    });

    after(async function () {
        if (project && !process.env.PLATFORM_E2E_KEEP) project.pulumi(["destroy", "--yes", "--skip-preview"], { allowFail: true, label: "destroy" });
        process.stdout.write("      | action | requests | failed | versions seen (first → last answer, s after the action started) | pulumi up (s) |\n");
        for (const t of table) process.stdout.write(`      | ${t.action} | ${t.sent} | ${t.failed}${t.note ? ` (${t.note})` : ""} | ${t.versions} | ${t.seconds.toFixed(1)} |\n`);
        project?.dispose();
    });

    it("rolling release v1 → v2 (with its migration): no failed request, then only v2", async function () {
        const { r, at } = await underLoad("rolling release v1 → v2", "worker", async () => {
            set("apps.worker.tag", "v2");
            await up("rolling release");
        });
        noFailedRequests(r, "rolling release");
        assert.deepEqual(versionsSeen(r), ["v1", "v2"]);
        assert.ok(r.versions.v1.lastMs < r.durationMs - 2000, "v1 still answered at the end");
        assert.ok(r.versions.v2.firstMs > at, "v2 answered before the release started");
    });

    it("blue/green: release to the idle colour (clients see only v1), switch, rollback", async function () {
        let { r } = await underLoad("blue/green release v2 to green", "web", async () => {
            set("apps.web.blueGreen.green", "v2");
            await up("blue/green release");
        });
        noFailedRequests(r, "release to the idle colour");
        assert.deepEqual(Object.keys(r.versions), ["v1"], "clients saw the idle colour's version");

        const switched = await underLoad("blue/green switch to green", "web", async () => {
            set("apps.web.blueGreen.activeColor", "green");
            await up("blue/green switch");
        });
        noFailedRequests(switched.r, "switch");
        assert.deepEqual(versionsSeen(switched.r), ["v1", "v2"]);
        // One Service write moves every new connection: no v1 answer after the first v2 one.
        assert.ok(switched.r.versions.v1.lastMs <= switched.r.versions.v2.firstMs + 100, `v1 answered ${switched.r.versions.v1.lastMs - switched.r.versions.v2.firstMs} ms after the first v2 answer`);

        ({ r } = await underLoad("blue/green rollback to blue", "web", async () => {
            set("apps.web.blueGreen.activeColor", "blue");
            await up("blue/green rollback");
        }));
        noFailedRequests(r, "rollback");
        assert.deepEqual(versionsSeen(r), ["v2", "v1"]);
        assert.ok(r.versions.v2.lastMs <= r.versions.v1.firstMs + 100);
    });

    it("blue/green idleReplicas 0 and back, and a scale change, under load", async function () {
        let { r } = await underLoad("idleReplicas 0 (idle colour removed)", "web", async () => {
            set("apps.web.blueGreen.idleReplicas", 0);
            await up("idleReplicas 0");
        });
        noFailedRequests(r, "idleReplicas 0");
        assert.deepEqual(Object.keys(r.versions), ["v1"]);
        assert.equal(await kube.get(`${paths.deployments}/web-green`), undefined);

        ({ r } = await underLoad("idleReplicas back (idle colour re-created)", "web", async () => {
            project.pulumi(["config", "rm", "--path", "apps.web.blueGreen.idleReplicas"]);
            await up("idleReplicas back");
        }));
        noFailedRequests(r, "idle colour back");
        assert.deepEqual(Object.keys(r.versions), ["v1"]);

        ({ r } = await underLoad("scale 2 → 4 → 2", "web", async () => {
            set("apps.web.replicas", 4);
            await up("scale 2 → 4");
            set("apps.web.replicas", 2);
            await up("scale 4 → 2");
        }));
        noFailedRequests(r, "scale change");
        assert.ok(Object.keys(r.pods).length >= 4, `clients reached ${Object.keys(r.pods).length} pods while web had 4`);
    });

    it("canary by replicas: 0 → 10 → 50 → 100 → promote, then abort from 50; the mix follows the split", async function () {
        /** The canary's share of answers in the last `seconds` before the action ended, against the plan's split. */
        const share = async (r: LoadResult, version: string, at: number) => {
            const after = r.timeline.filter((t) => t.s * 1000 >= at + 0);
            const total = after.reduce((n, t) => n + t.ok, 0);
            const canary = after.reduce((n, t) => n + (t.versions?.[version] ?? 0), 0);
            return total ? canary / total : 0;
        };
        const step = async (weight: number, version: string) => {
            const { r, seconds } = await underLoad(`canary → ${weight}`, "shop", async () => {
                set("apps.shop.canary.weight", weight);
                await up(`canary → ${weight}`);
            });
            noFailedRequests(r, `canary → ${weight}`);
            // The split after the step, measured for a few seconds with nothing moving.
            const m = await startLoad(loadgen, `http://127.0.0.1:${PORTS.shop}/`, { rate: RATE, maxSeconds: 60 });
            await sleep(5000);
            const steady = await m.stop();
            noFailedRequests(steady, `steady at ${weight}`);
            const traffic = JSON.parse(project.pulumi(["stack", "output", "apps", "--json"]).stdout).shop.traffic;
            const pods = (await kube.list(`${paths.deployments}`)).filter((d) => d.metadata.name.startsWith("shop-")).reduce((n, d) => n + d.spec.replicas, 0);
            const measured = await share(steady, version, 0);
            // Within one pod's share of the planned split (kube-proxy picks an endpoint at random).
            assert.ok(Math.abs(measured - traffic.canary / 100) <= 1 / pods + 0.05,
                `at weight ${weight} the plan says ${traffic.canary} % on the canary (${pods} pods), clients saw ${(measured * 100).toFixed(1)} %`);
            table[table.length - 1].note += `${table[table.length - 1].note ? "; " : ""}canary ${(measured * 100).toFixed(0)} % of answers (plan ${traffic.canary} %)`;
            return { r, seconds };
        };
        set("apps.shop.canary.canary", "v2");
        await step(10, "v2");
        await step(50, "v2");
        await step(100, "v2");
        const { r } = await underLoad("canary promote (stable takes v2)", "shop", async () => {
            set("apps.shop.canary.stable", "v2");
            set("apps.shop.canary.weight", 0);
            await up("canary promote");
        });
        noFailedRequests(r, "promote");
        assert.deepEqual(Object.keys(r.versions), ["v2"], "a promote from 100 % sends no request to the old version");

        set("apps.shop.canary.canary", "v3");
        await step(10, "v3");
        await step(50, "v3");
        const abort = await underLoad("canary abort from 50", "shop", async () => {
            set("apps.shop.canary.weight", 0);
            await up("canary abort");
        });
        noFailedRequests(abort.r, "abort");
        assert.ok(abort.r.versions.v3.lastMs < abort.r.durationMs - 2000, "v3 still answered after the abort");
        assert.equal(await kube.get(`${paths.deployments}/shop-canary`), undefined);
    });

    it("a release whose readiness never passes: `pulumi up` fails, no request reaches it, none fails", async function () {
        const before = (await kube.get(`${paths.deployments}/worker`))!;
        const { r, seconds } = await underLoad("never-ready release (tag bad)", "worker", async () => {
            set("apps.worker.tag", "bad");
            const run = await up("never-ready release", true);
            assert.notEqual(run.status, 0, "`pulumi up` succeeded with a release that never became ready");
        });
        noFailedRequests(r, "never-ready release");
        assert.deepEqual(Object.keys(r.versions), ["v2"], "a request reached the never-ready version");
        assert.ok(seconds < 200, `the failure took ${seconds} s`);
        // The kubelet probed it: its pod exists, runs and is not ready.
        const bad = (await kube.list(paths.pods)).filter((p) => p.metadata.labels["app.kubernetes.io/version"] === "bad" && p.metadata.labels[LABEL_TRACK]);
        assert.ok(bad.length > 0 && bad.every((p) => p.status.phase === "Running" && !(p.status.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True")),
            `the bad pods: ${JSON.stringify(bad.map((p) => [p.status.phase, p.status.conditions]))}`);
        assert.equal((await kube.get(`${paths.deployments}/worker`))!.status.readyReplicas, before.status.readyReplicas);
        // The fix: back to v2, which rolls the bad pods away.
        set("apps.worker.tag", "v2");
        await up("release after a never-ready one");
    });
});
