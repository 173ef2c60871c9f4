import { strict as assert } from "assert";
import { MANAGED, Result, run } from "./harness";
import { canConnect, Endpoint } from "./netpolicy";

// What the namespace's NetworkPolicies let through, read as a CNI enforces them (tests/netpolicy.ts).

function pod(r: Result, owner: string): Endpoint {
    const [kind, name] = owner.split("/");
    const m = r.object(kind, name);
    const t = kind === "CronJob" ? m.spec.jobTemplate.spec.template : m.spec.template;
    return { labels: t.metadata.labels, namespace: m.metadata.namespace! };
}

describe("network policies", () => {
    let staging: Result;
    let production: Result;
    let managed: Result;
    before(async () => {
        staging = await run("staging");
        production = await run("production");
        managed = await run("production", MANAGED);
    });

    it("deny all ingress and egress in the namespace by default, DNS excepted", () => {
        const deny = staging.object("NetworkPolicy", "default-deny");
        assert.deepEqual(deny.spec.podSelector.matchLabels, {});
        assert.deepEqual(deny.spec.policyTypes, ["Ingress", "Egress"]);
        assert.deepEqual([deny.spec.ingress, deny.spec.egress], [[], []]);
        const ns = staging.ofKind("Namespace")[0].metadata.name;
        const dns: Endpoint = { namespace: "kube-system", labels: { "k8s-app": "kube-dns" } };
        for (const owner of ["Deployment/worker", "StatefulSet/postgres", "CronJob/postgres-backup"]) assert.ok(canConnect(staging, pod(staging, owner), dns, 53), owner);
        assert.ok(!canConnect(staging, pod(staging, "Deployment/worker"), { namespace: "kube-system", labels: { app: "other" } }, 53));
        assert.ok(ns);
    });

    it("admit app traffic from the router, from declared callers and from the app's smoke tests only", () => {
        const api = pod(staging, "Deployment/api-stable");
        const ingressNginx: Endpoint = { namespace: "ingress-nginx", labels: { "app.kubernetes.io/name": "ingress-nginx" } };
        assert.ok(canConnect(staging, ingressNginx, api, 8080), "router → api");
        assert.ok(!canConnect(staging, { namespace: "elsewhere", labels: {} }, api, 8080), "another namespace → api");
        assert.ok(canConnect(staging, pod(staging, "Deployment/web-blue"), api, 8080), "web calls api");
        assert.ok(!canConnect(staging, pod(staging, "Deployment/worker"), api, 8080), "worker does not declare it calls api");
        assert.ok(!canConnect(staging, pod(staging, "Deployment/api-stable"), pod(staging, "Deployment/web-blue"), 8080), "api does not call web");
        const smoke = staging.ofKind("Job").find((j) => j.metadata.name.startsWith("api-smoke-canary"))!;
        assert.ok(canConnect(staging, { labels: smoke.spec.template.metadata.labels, namespace: smoke.metadata.namespace! }, pod(staging, "Deployment/api-canary"), 8080), "smoke test → its app");
        assert.ok(!canConnect(staging, { labels: smoke.spec.template.metadata.labels, namespace: smoke.metadata.namespace! }, pod(staging, "Deployment/web-blue"), 8080), "smoke test → another app");
        const gatewayNs = { namespace: "gateway-system", labels: {} };
        assert.ok(canConnect(production, gatewayNs, pod(production, "Deployment/api-stable"), 8080), "the Gateway's namespace → api");
    });

    it("limit egress to the data services an app uses, the apps it calls and nothing else", () => {
        const postgres = pod(staging, "StatefulSet/postgres");
        assert.ok(canConnect(staging, pod(staging, "Deployment/api-stable"), postgres, 5432));
        assert.ok(!canConnect(staging, pod(staging, "Deployment/web-blue"), postgres, 5432), "web does not use postgres");
        const internet: Endpoint = { namespace: "", labels: {}, ip: "203.0.113.9" };
        assert.ok(!canConnect(staging, pod(staging, "Deployment/api-stable"), internet, 443), "app → internet");
        assert.ok(!canConnect(staging, postgres, internet, 443), "postgres → internet");
        const withCidr = (overrides: Record<string, unknown>) => run("staging", overrides);
        return withCidr({ "platform:apps.worker.egressCidrs": ["203.0.113.0/24"] }).then((r) => {
            assert.ok(canConnect(r, pod(r, "Deployment/worker"), internet, 443), "declared egressCidrs");
        });
    });

    it("let only the Workload Identity backup pods reach the metadata server and Google APIs", () => {
        const metadataServer: Endpoint = { namespace: "", labels: {}, ip: "169.254.169.254" };
        const google: Endpoint = { namespace: "", labels: {}, ip: "142.250.0.1" };
        assert.ok(canConnect(production, pod(production, "CronJob/postgres-backup"), metadataServer, 80));
        assert.ok(canConnect(production, pod(production, "CronJob/postgres-backup"), google, 443));
        assert.ok(!canConnect(production, pod(production, "Deployment/api-stable"), metadataServer, 80), "apps never get tokens");
        assert.ok(!canConnect(staging, pod(staging, "CronJob/postgres-backup"), metadataServer, 80), "pvc backups need no Google");
        assert.ok(canConnect(staging, pod(staging, "CronJob/postgres-backup"), pod(staging, "StatefulSet/postgres"), 5432));
    });

    it("reach a managed data service at its private address only from its users", () => {
        const apiPolicy = managed.object("NetworkPolicy", "api");
        const blocks = apiPolicy.spec.egress.flatMap((r: any) => r.to.map((t: any) => t.ipBlock?.cidr)).filter(Boolean);
        assert.ok(blocks.length >= 2 && blocks.every((b: string) => /^10\.\d+\.\d+\.\d+\/32$/.test(b)), JSON.stringify(blocks));
        const web = managed.object("NetworkPolicy", "web");
        assert.ok(!JSON.stringify(web.spec.egress).includes("/32"), "web uses no data service");
    });

    it("let an analysis Job reach its app's pods and Prometheus, and nothing else", async () => {
        const analysis = (address: string) => ({
            http: [{ name: "health", path: "/healthz", attempts: 1, intervalSeconds: 1 }],
            prometheus: { address, checks: [{ name: "errors", query: "vector(0)", threshold: 0.1, count: 2, failureLimit: 1, intervalSeconds: 5 }] },
        });
        const r = await run("staging", { "platform:apps.worker.analysis": analysis("http://prometheus.monitoring.svc:9090") });
        const job = r.ofKind("Job").find((j) => j.metadata.name.startsWith("worker-analysis-"))!;
        const pods: Endpoint = { labels: job.spec.template.metadata.labels, namespace: job.metadata.namespace! };
        const worker = pod(r, "Deployment/worker");
        assert.ok(canConnect(r, pods, worker, 9090), "analysis → its app (HTTP checks)");
        assert.ok(!canConnect(r, pods, worker, 22), "analysis → its app on another port");
        assert.ok(canConnect(r, pods, { namespace: "monitoring", labels: { "app.kubernetes.io/name": "prometheus" } }, 9090), "analysis → Prometheus's namespace");
        assert.ok(!canConnect(r, pods, pod(r, "Deployment/api-stable"), 8080), "analysis → another app");
        assert.ok(!canConnect(r, pods, pod(r, "StatefulSet/postgres"), 5432), "analysis → postgres");
        assert.ok(!canConnect(r, pods, { namespace: "", labels: {}, ip: "203.0.113.9" }, 443), "analysis → internet");
        assert.ok(!canConnect(r, pod(r, "Deployment/web-blue"), pods, 8080), "nothing calls the analysis");
        // An address outside the cluster: that IP, or a public host at the address's port only.
        const byIp = await run("staging", { "platform:apps.worker.analysis": analysis("http://10.20.0.5:9090") });
        const ipPods = byIp.ofKind("Job").find((j) => j.metadata.name.startsWith("worker-analysis-"))!.spec.template.metadata.labels;
        assert.ok(canConnect(byIp, { labels: ipPods, namespace: job.metadata.namespace! }, { namespace: "", labels: {}, ip: "10.20.0.5" }, 9090));
        assert.ok(!canConnect(byIp, { labels: ipPods, namespace: job.metadata.namespace! }, { namespace: "", labels: {}, ip: "10.20.0.6" }, 9090));
        const hosted = await run("staging", { "platform:apps.worker.analysis": analysis("https://prometheus.example.com") });
        const hostedPods = { labels: hosted.ofKind("Job").find((j) => j.metadata.name.startsWith("worker-analysis-"))!.spec.template.metadata.labels, namespace: job.metadata.namespace! };
        assert.ok(canConnect(hosted, hostedPods, { namespace: "", labels: {}, ip: "203.0.113.9" }, 443));
        assert.ok(!canConnect(hosted, hostedPods, { namespace: "", labels: {}, ip: "203.0.113.9" }, 22));
    });
});
