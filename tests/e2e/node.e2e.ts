import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import { Kube, ns, Obj, rolledOut } from "./kube";
import { APP_UID, assertNoFailedRequests, ENSURE_NODE, NodeEnv, REAL_NODE, startLoad, startNode, stopNode, summary, TESTAPP } from "./node";

// The real node (scripts/ensure-node), without the Pulumi program: real pods whose probes the
// kubelet runs, a NodePort that kube-proxy serves on 127.0.0.1, and loadgen counting every failed
// request while a Service moves from one version to another. Then `ensure-node stop` must leave
// nothing behind on the host. Needs root (containers, iptables, cgroups), as .ci/run is.

const NS = `node-e2e-${Date.now().toString(36)}`;
const paths = ns(NS);
const HOST_PATHS = ["/run/containerd", "/var/lib/cni", "/var/lib/kubelet", "/run/netns"];
const figures: Record<string, number | string> = {};

let env: NodeEnv;
let kube: Kube;
let nodePort = 0;
const existedBefore = new Set<string>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const since = (t: number) => Math.round((Date.now() - t) / 100) / 10;

/** The program's Deployment shape (components/app.ts), placed on the real node. */
function deployment(name: string, tag: string, replicas: number, extraEnv: Obj[] = []): Obj {
    const labels = { app: "web", track: name };
    const http = { path: "/healthz", port: "http" };
    return {
        apiVersion: "apps/v1", kind: "Deployment", metadata: { name, labels },
        spec: {
            replicas, selector: { matchLabels: labels },
            strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
            template: {
                metadata: { labels: { ...labels, version: tag } },
                spec: {
                    nodeSelector: REAL_NODE.nodeSelector, tolerations: REAL_NODE.tolerations,
                    securityContext: { runAsNonRoot: true, runAsUser: APP_UID, runAsGroup: APP_UID, seccompProfile: { type: "RuntimeDefault" } },
                    automountServiceAccountToken: false,
                    terminationGracePeriodSeconds: 30,
                    containers: [{
                        name: "app", image: `${TESTAPP}:${tag}`, imagePullPolicy: "Never",
                        ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
                        env: extraEnv,
                        resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { cpu: "500m", memory: "64Mi" } },
                        securityContext: {
                            runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
                            capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" },
                        },
                        volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
                        startupProbe: { httpGet: http, periodSeconds: 1, failureThreshold: 60 },
                        readinessProbe: { httpGet: http, periodSeconds: 1, timeoutSeconds: 2, failureThreshold: 3 },
                        livenessProbe: { httpGet: http, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
                        lifecycle: { preStop: { sleep: { seconds: 10 } } },
                    }],
                    volumes: [{ name: "tmp", emptyDir: {} }],
                },
            },
        },
    };
}

async function waitFor<T>(what: string, seconds: number, probe: () => Promise<T | undefined | false>): Promise<T> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        const v = await probe();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`${what} within ${seconds}s`);
        await sleep(100);
    }
}

const rolledOutNow = async (name: string) => {
    const d = await kube.get(`${paths.deployments}/${name}`);
    return d && rolledOut(d) ? d : undefined;
};
const podsOf = async (track: string) => kube.list(`${paths.pods}?labelSelector=track%3D${track}`);
const ready = (p: Obj) => (p.status?.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True");
const selectTrack = (track: string) => kube.patch(`${paths.services}/web`, { spec: { selector: { app: "web", track } } });
const url = () => `http://127.0.0.1:${nodePort}/`;

function sh(cmd: string, args: string[]): string {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    if (r.error) throw new Error(`${cmd} is missing; install it with: scripts/ensure-node install`);
    return r.stdout ?? "";
}

describe("the real node (scripts/ensure-node): real pods, probes and traffic", function () {
    this.timeout(15 * 60 * 1000);

    before(async function () {
        const running = spawnSync(ENSURE_NODE, ["status"], { stdio: "ignore" }).status === 0;
        if (!running) for (const p of HOST_PATHS) if (fs.existsSync(p)) existedBefore.add(p);
        const t = Date.now();
        env = startNode();
        figures["ensure-node start (s)"] = since(t);
        kube = new Kube(env.KUBECONFIG);
        await kube.create("/api/v1/namespaces", {
            metadata: { name: NS, labels: { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted" } },
        });
    });

    after(async function () {
        process.stdout.write(`      figures: ${JSON.stringify(figures)}\n`);
        if (kube) await kube.delete(`/api/v1/namespaces/${NS}`).catch(() => undefined);
    });

    it("a Deployment of v1 on the real node becomes Ready through the kubelet's probes and answers through a NodePort on 127.0.0.1", async function () {
        const t = Date.now();
        const created = await kube.request("POST", paths.deployments, deployment("v1", "v1", 2));
        assert.ok(created.status < 300, JSON.stringify(created.body));
        assert.deepEqual(created.warnings, [], "Pod Security warned");
        await waitFor("v1 rolled out", 120, () => rolledOutNow("v1"));
        figures["create → 2 pods Ready (s)"] = since(t);
        const pods = await podsOf("v1");
        for (const p of pods) {
            assert.equal(p.spec.nodeName, REAL_NODE.name);
            assert.match(p.status.podIP, /^10\.88\.0\./);
            assert.equal(p.status.containerStatuses[0].ready, true);
        }
        const svc = await kube.create(paths.services, {
            metadata: { name: "web" },
            spec: { type: "NodePort", selector: { app: "web", track: "v1" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
        });
        nodePort = svc.spec.ports[0].nodePort;
        const answer = await waitFor("an answer through the NodePort", 30, async () => {
            try {
                const r = await fetch(url(), { signal: AbortSignal.timeout(2000) });
                return r.status === 200 ? { body: await r.text(), version: r.headers.get("x-version") } : undefined;
            } catch { return undefined; }
        });
        assert.match(answer.body, /version=v1/);
        assert.equal(answer.version, "v1");
    });

    it("cluster DNS: a pod resolves <service>.<namespace>.svc.cluster.local and its short name to the Service's ClusterIP; a name outside the cluster fails at once", async function () {
        const web = (await kube.get(`${paths.services}/web`))!;
        const kubernetes = (await kube.get("/api/v1/namespaces/default/services/kubernetes"))!;
        const dns = await kube.get("/api/v1/namespaces/kube-system/services/kube-dns");
        assert.equal(dns?.spec.clusterIP, "10.96.0.10", "the kube-dns Service has the documented address");
        const names = [`web.${NS}.svc.cluster.local`, "web", "kubernetes.default", `missing.${NS}.svc.cluster.local`, "example.com"];
        const t = Date.now();
        await kube.create(paths.pods, {
            metadata: { name: "dns-check" },
            spec: {
                nodeSelector: REAL_NODE.nodeSelector, tolerations: REAL_NODE.tolerations, restartPolicy: "Never", automountServiceAccountToken: false,
                securityContext: { runAsNonRoot: true, runAsUser: APP_UID, runAsGroup: APP_UID, seccompProfile: { type: "RuntimeDefault" } },
                containers: [{
                    name: "resolve", image: `${TESTAPP}:v1`, imagePullPolicy: "Never", command: ["/app/bin/platform-testapp", "resolve", ...names],
                    resources: { requests: { cpu: "20m", memory: "16Mi" }, limits: { cpu: "200m", memory: "32Mi" } },
                    securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" } },
                }],
            },
        });
        const pod = await waitFor("the DNS check pod finished", 60, async () => {
            const p = await kube.get(`${paths.pods}/dns-check`);
            return p?.status?.containerStatuses?.[0]?.state?.terminated ? p : undefined;
        });
        figures["DNS check pod: create → finished (s)"] = since(t);
        const done = pod.status.containerStatuses[0].state.terminated;
        const lines: Record<string, string> = Object.fromEntries(done.message.trim().split("\n").map((l: string) => [l.split(" ")[0], l.slice(l.indexOf(" ") + 1)]));
        assert.equal(lines[names[0]], web.spec.clusterIP, `the full name: ${done.message}`);
        assert.equal(lines.web, web.spec.clusterIP, `the short name (search path): ${done.message}`);
        assert.equal(lines["kubernetes.default"], kubernetes.spec.clusterIP, done.message);
        for (const missing of names.slice(3)) {
            const m = /^error \((\d+) ms\)/.exec(lines[missing] ?? "");
            assert.ok(m && Number(m[1]) < 2000, `${missing} should fail at once: ${lines[missing]}`);
        }
        assert.equal(done.exitCode, 1, "resolve exits 1 when a name is missing");
        await kube.delete(`${paths.pods}/dns-check`);
    });

    it("the Service moves from v1 to v2 and v1 is deleted under 200 requests/s: 0 failed requests", async function () {
        await kube.create(paths.deployments, deployment("v2", "v2", 2));
        await waitFor("v2 rolled out", 120, () => rolledOutNow("v2"));
        const load = await startLoad(env.PLATFORM_NODE_LOADGEN, url());
        await sleep(3000);
        const switched = Date.now();
        await selectTrack("v2");
        await sleep(3000);
        const deleted = Date.now();
        await kube.delete(`${paths.deployments}/v1`);
        // the preStop sleep (10 s) then SIGTERM: v1's pods keep serving until they are gone
        await waitFor("v1's pods gone", 60, async () => (await podsOf("v1")).length === 0);
        figures["v1 pods deleted → gone (s)"] = since(deleted);
        await sleep(2000);
        const r = await load.stop();
        figures["switch: load"] = summary(r);
        const v1 = r.versions.v1, v2 = r.versions.v2;
        assert.ok(v1 && v2, `both versions answered: ${summary(r)}`);
        figures["switch → first v2 answer (ms)"] = v2.firstEpochMs - switched;
        figures["switch → last v1 answer (ms)"] = v1.lastEpochMs - switched;
        const stray = assertNoFailedRequests(r, "the switch");
        if (stray) figures["switch: stray"] = stray;
        assert.ok(r.sent >= 200 * 15, `loadgen sent ${r.sent}`);
        assert.equal(r.ok + r.failed, r.sent);
        assert.ok(v1.lastEpochMs < switched + 5000, "v1 still answered long after the switch");
        assert.ok(v2.firstEpochMs > switched - 100, "v2 answered before the switch");
    });

    it("a pod of tag `bad` is probed and stays unready: it never gets a request, though the Service selects it", async function () {
        await kube.create(paths.deployments, deployment("bad", "bad", 1));
        const load = await startLoad(env.PLATFORM_NODE_LOADGEN, url());
        // Select every web pod: v2 (ready) and bad (never ready).
        await kube.patch(`${paths.services}/web`, { spec: { selector: { app: "web", track: null } } });
        const running = await waitFor("the bad pod running", 60, async () => {
            const [p] = await podsOf("bad");
            return p?.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
        });
        await sleep(8000); // eight readiness periods
        const r = await load.stop();
        figures["bad: load"] = summary(r);
        const [pod] = await podsOf("bad");
        assert.equal(pod.metadata.name, running.metadata.name);
        assert.equal(ready(pod), false, "the bad pod became Ready");
        assert.equal(pod.status.containerStatuses[0].ready, false);
        const slices = await kube.list(`${paths.endpointslices}?labelSelector=kubernetes.io%2Fservice-name%3Dweb`);
        const endpoint = slices.flatMap((s) => s.endpoints ?? []).find((e: Obj) => e.targetRef?.name === pod.metadata.name);
        assert.ok(endpoint, `the Service's EndpointSlice does not list the bad pod: ${JSON.stringify(slices.map((s) => s.endpoints))}`);
        assert.equal(slices.flatMap((s) => s.endpoints ?? []).filter((e: Obj) => e.conditions.ready).length, 2, "v2's two pods are ready endpoints");
        assert.equal(endpoint.conditions.ready, false);
        const events = await kube.list(`${paths.events}?fieldSelector=involvedObject.name%3D${pod.metadata.name}`);
        assert.ok(events.some((e) => e.reason === "Unhealthy" && /probe failed/i.test(e.message) && e.source?.host === REAL_NODE.name),
            `no probe failure reported by the kubelet: ${events.map((e) => `${e.reason}: ${e.message}`).join("; ")}`);
        assertNoFailedRequests(r, "a never-ready pod selected");
        assert.equal(r.versions.bad, undefined, `the bad pod answered: ${summary(r)}`);
        assert.ok(r.versions.v2?.count === r.ok);
        await selectTrack("v2");
        await kube.delete(`${paths.deployments}/bad`);
    });

    it("the measurement sees a broken switch: the Service pointed at no pod for 2 s fails requests", async function () {
        const load = await startLoad(env.PLATFORM_NODE_LOADGEN, url());
        await sleep(2000);
        await selectTrack("none");
        await sleep(2000);
        await selectTrack("v2");
        await sleep(2000);
        const r = await load.stop();
        figures["broken: load"] = summary(r);
        assert.ok(r.failed >= 100, `a 2 s gap in endpoints should fail ~400 requests at 200/s: ${summary(r)}`);
        assert.ok(r.failedWindow && r.failedWindow.lastMs - r.failedWindow.firstMs < 4000, JSON.stringify(r.failedWindow));
    });

    it("`ensure-node stop` leaves nothing: no process, KUBE- chain, bridge, mount, cgroup, Node, DNS Service or volume", async function () {
        await kube.delete(`/api/v1/namespaces/${NS}`);
        const t = Date.now();
        stopNode(process.env);
        figures["ensure-node stop (s)"] = since(t);

        const procs = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).flatMap((p) => {
            try { return [fs.readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ")]; } catch { return []; }
        });
        assert.deepEqual(procs.filter((c) => c.includes(env.PLATFORM_NODE_RUN) || /platform-testapp|\/pause\b/.test(c)), [], "processes left");
        for (const table of ["filter", "nat", "mangle"]) {
            const rules = sh("iptables", ["-t", table, "-S"]);
            assert.doesNotMatch(rules, /KUBE-|CNI-/, `iptables ${table} still has kube-proxy or CNI chains:\n${rules}`);
        }
        assert.equal(spawnSync("ip", ["link", "show", env.PLATFORM_NODE_BRIDGE], { stdio: "ignore" }).status !== 0, true, "the bridge is left");
        const mounts = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "");
        assert.deepEqual(mounts.filter((m) => m.startsWith(`${env.PLATFORM_NODE_RUN}/`) || m === `${env.PLATFORM_NODE_RUN}/kubelet` || m.startsWith("/run/netns")), [], "mounts left");
        const cgroups = fs.readdirSync("/sys/fs/cgroup").filter((h) => fs.existsSync(`/sys/fs/cgroup/${h}/${env.PLATFORM_NODE_CGROUP}`));
        assert.deepEqual(cgroups, [], `cgroup /${env.PLATFORM_NODE_CGROUP} left in these hierarchies`);
        for (const p of HOST_PATHS) if (!existedBefore.has(p)) assert.equal(fs.existsSync(p), false, `${p} is left`);
        assert.equal(await kube.get(`/api/v1/nodes/${REAL_NODE.name}`), undefined, "the Node is still in the API");
        assert.equal(await kube.get(`/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${REAL_NODE.name}`), undefined, "the node's Lease is left");
        // the cluster DNS and the volumes go with the node
        assert.equal(await kube.get("/api/v1/namespaces/kube-system/services/kube-dns"), undefined, "the kube-dns Service is left");
        assert.deepEqual((await kube.list("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkube-dns")).map((e) => e.metadata.name), [], "kube-dns EndpointSlices left");
        assert.deepEqual((await kube.list("/api/v1/persistentvolumes?labelSelector=platform.dev%2Fnode-volume%3Dtrue")).map((v) => v.metadata.name), [], "the node's PersistentVolumes are left");
        assert.equal(await kube.get("/apis/storage.k8s.io/v1/storageclasses/platform-node-local"), undefined, "the StorageClass is left");
        assert.equal(fs.existsSync(`${env.PLATFORM_NODE_RUN}/volumes`), false, "the volumes' directories are left");
    });
});
