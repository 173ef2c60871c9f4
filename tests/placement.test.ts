import { strict as assert } from "assert";
import { describe_, diff, run } from "./harness";
import { problemsOf, refused } from "./validation/helpers";

// Where an app's pods run (nodeSelector, tolerations), how their image is pulled, and the nodePort of
// the Service clients use: what a local cluster with a real node (scripts/ensure-node) needs, and
// what a real user of a tainted node pool or a kind cluster also sets.

const REAL_NODE = {
    "platform:apps.web.nodeSelector": { "platform.dev/node": "real" },
    "platform:apps.web.tolerations": [{ key: "platform.dev/real-node", operator: "Equal", value: "true", effect: "NoSchedule" }],
    "platform:apps.web.imagePullPolicy": "Never",
    "platform:apps.web.smokeTest": { command: ["/platform-testapp", "smoke"] },
    "platform:apps.web.nodePort": 30080,
};

describe("placement: nodeSelector, tolerations, imagePullPolicy, nodePort; kubernetes.placement", () => {
    it("puts every pod that runs the app's image on the selected nodes, with its pull policy", async () => {
        const r = await run("local", REAL_NODE);
        const pods = [...r.ofKind("Deployment").filter((d) => d.metadata.name.startsWith("web-")), ...r.ofKind("Job").filter((j) => j.metadata.name.startsWith("web-smoke-"))]
            .map((o) => [o.metadata.name, o.spec.template.spec] as const);
        assert.ok(pods.length >= 3, `expected both colours and a smoke Job, got ${pods.map(([n]) => n)}`);
        for (const [name, spec] of pods) {
            assert.deepEqual(spec.nodeSelector, { "platform.dev/node": "real" }, name);
            assert.deepEqual(spec.tolerations, [{ key: "platform.dev/real-node", operator: "Equal", value: "true", effect: "NoSchedule" }], name);
            assert.equal(spec.containers[0].imagePullPolicy, "Never", name);
        }
        // Other apps are left where the scheduler puts them.
        const api = r.object("Deployment", "api-stable").spec.template.spec;
        assert.deepEqual([api.nodeSelector, api.tolerations, api.containers[0].imagePullPolicy], [undefined, undefined, undefined]);
    });

    it("exposes the active Service on the nodePort; a switch moves its selector and nothing else", async () => {
        const blue = await run("local", REAL_NODE);
        const active = blue.object("Service", "web");
        assert.equal(active.spec.type, "NodePort");
        assert.equal(active.spec.ports[0].nodePort, 30080);
        for (const s of blue.ofKind("Service").filter((s) => s.metadata.name !== "web")) assert.equal(s.spec.type, undefined, s.metadata.name);
        const green = await run("local", { ...REAL_NODE, "platform:apps.web.blueGreen.activeColor": "green" });
        const changes = describe_(diff(blue, green)).filter((c) => !c.includes("analysis"));
        assert.deepEqual(changes.filter((c) => c.includes("Service/web ") || c.endsWith("Service/web")), ["update Service/web"]);
        assert.deepEqual(green.object("Service", "web").spec.ports, active.spec.ports);
        assert.equal(green.object("Service", "web").spec.selector["platform.dev/track"], "green");
    });

    it("a replicas canary and a rolling app expose their app Service", async () => {
        const r = await run("local", { "platform:apps.api.nodePort": 30081, "platform:apps.worker.nodePort": 30082 });
        assert.deepEqual([r.object("Service", "api").spec.type, r.object("Service", "api").spec.ports[0].nodePort], ["NodePort", 30081]);
        assert.deepEqual([r.object("Service", "worker").spec.type, r.object("Service", "worker").spec.ports[0].nodePort], ["NodePort", 30082]);
        assert.equal(r.object("Service", "api-canary").spec.type, undefined);
    });

    it("kubernetes.placement puts the platform's own pods (data services, backups, drills, analysis) on the selected nodes, not the apps", async () => {
        const placement = { nodeSelector: { "platform.dev/node": "real" }, tolerations: [{ key: "platform.dev/real-node", operator: "Equal", value: "true", effect: "NoSchedule" }] };
        const r = await run("staging", {
            "platform:kubernetes.placement": placement, "platform:postgres.backup.beforeMigrations": true,
            "platform:apps.worker.analysis": { http: [{ name: "health", path: "/healthz", attempts: 1, intervalSeconds: 1 }] },
        });
        const podSpec = (o: any) => (o.kind === "CronJob" ? o.spec.jobTemplate.spec.template.spec : o.spec.template.spec);
        const own = [...r.ofKind("StatefulSet"), ...r.ofKind("CronJob"), ...r.ofKind("Job").filter((j) => /backup|analysis/.test(j.metadata.name))];
        const names = own.map((o) => `${o.kind}/${o.metadata.name}`);
        for (const expected of ["StatefulSet/postgres", "StatefulSet/redis", "CronJob/postgres-backup", "CronJob/postgres-restore-drill", "CronJob/redis-backup"]) {
            assert.ok(names.includes(expected), `${expected} missing from ${names}`);
        }
        assert.ok(names.some((n) => n.startsWith("Job/") && n.includes("analysis")), `no analysis Job in ${names}`);
        assert.ok(names.some((n) => n.startsWith("Job/") && n.includes("backup")), `no one-off backup Job in ${names}`);
        for (const o of own) {
            assert.deepEqual(podSpec(o).nodeSelector, placement.nodeSelector, `${o.kind}/${o.metadata.name}`);
            assert.deepEqual(podSpec(o).tolerations, placement.tolerations, `${o.kind}/${o.metadata.name}`);
        }
        // Apps keep their own placement (none here), and a stack without the key places nothing.
        for (const d of r.ofKind("Deployment")) assert.equal(d.spec.template.spec.nodeSelector, undefined, d.metadata.name);
        const plain = await run("staging", {});
        for (const o of plain.ofKind("StatefulSet")) assert.deepEqual([podSpec(o).nodeSelector, podSpec(o).tolerations], [undefined, undefined], o.metadata.name);
    });

    it("refuses what Kubernetes or the traffic model would refuse, naming the key", () => {
        const p = problemsOf("local", {
            "platform:apps.web.nodeSelector": { "bad key!": "x", "platform.dev/node": "no spaces" },
            "platform:apps.web.tolerations": [{ operator: "Equal", value: "x" }, { key: "a", operator: "Exists", value: "v" }, { key: "b", effect: "Sometimes" }],
            "platform:apps.web.imagePullPolicy": "Sometimes",
            "platform:apps.web.nodePort": 80,
        });
        refused(p, "platform:apps.web.nodeSelector", "invalid label key \"bad key!\"");
        refused(p, "platform:apps.web.nodeSelector.platform.dev/node", "label value");
        refused(p, "platform:apps.web.tolerations[0].key", "required unless operator is \"Exists\"");
        refused(p, "platform:apps.web.tolerations[1].value", "absent with operator \"Exists\"");
        refused(p, "platform:apps.web.tolerations[2].effect", "NoSchedule");
        refused(p, "platform:apps.web.imagePullPolicy", "Always", "IfNotPresent", "Never");
        refused(p, "platform:apps.web.nodePort", "30000", "32767");
        refused(problemsOf("local", { "platform:apps.web.nodePort": 30080, "platform:apps.worker.nodePort": 30080 }), "platform:apps.worker.nodePort", "already the nodePort of apps.web");
        refused(problemsOf("staging", { "platform:apps.api.nodePort": 30080 }), "platform:apps.api.nodePort", "canary routed by nginx has none");
        refused(problemsOf("production", { "platform:apps.worker.nodePort": 30080 }), "platform:apps.worker.nodePort", "not allowed in production");
        assert.deepEqual(problemsOf("local", REAL_NODE), []);
        const k = problemsOf("local", { "platform:kubernetes.placement": { nodeSelector: { "bad key!": "x" }, tolerations: [{ operator: "Equal" }], imagePullPolicy: "Never" } });
        refused(k, "platform:kubernetes.placement.nodeSelector", "invalid label key \"bad key!\"");
        refused(k, "platform:kubernetes.placement.tolerations[0].key", "required unless operator is \"Exists\"");
        refused(k, "platform:kubernetes.placement.imagePullPolicy", "not a known key");
    });
});
