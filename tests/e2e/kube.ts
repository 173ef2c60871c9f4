import * as fs from "fs";
import * as https from "https";
import * as yaml from "js-yaml";

// A small client for what the cluster tests read from the API server: the objects as the server
// holds them (after defaulting and controllers), and ordered change streams (watches). It reads the
// kubeconfig scripts/ensure-cluster generates (client certificate authentication).

export type Obj = Record<string, any>;

export interface WatchEvent {
    type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
    object: Obj;
    /** etcd's revision of this change: one global order across every kind (an etcd3 fact the tests rely on). */
    revision: number;
    /** When this process received it (ms since the epoch): for timings, never for ordering. */
    seenAt: number;
}

export class Kube {
    private readonly server: URL;
    private readonly agent: https.Agent;

    constructor(kubeconfigPath: string) {
        const kc = yaml.load(fs.readFileSync(kubeconfigPath, "utf8")) as Obj;
        const ctx = kc.contexts.find((c: Obj) => c.name === kc["current-context"]).context;
        const cluster = kc.clusters.find((c: Obj) => c.name === ctx.cluster).cluster;
        const user = kc.users.find((u: Obj) => u.name === ctx.user).user;
        this.server = new URL(cluster.server);
        this.agent = new https.Agent({
            ca: fs.readFileSync(cluster["certificate-authority"]),
            cert: fs.readFileSync(user["client-certificate"]),
            key: fs.readFileSync(user["client-key"]),
            keepAlive: true,
        });
    }

    request(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<{ status: number; body: Obj; warnings: string[] }> {
        return new Promise((resolve, reject) => {
            const data = body === undefined ? undefined : JSON.stringify(body);
            const req = https.request({
                host: this.server.hostname, port: this.server.port, path, method, agent: this.agent,
                headers: { Accept: "application/json", ...(data ? { "Content-Type": contentType, "Content-Length": Buffer.byteLength(data) } : {}) },
            }, (res) => {
                let text = "";
                res.setEncoding("utf8");
                res.on("data", (c) => (text += c));
                res.on("end", () => {
                    let parsed: Obj = {};
                    try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = { text }; }
                    // Warning headers: `299 - "text"` (admission warnings, Pod Security among them)
                    const w = res.headers.warning;
                    const warnings = (Array.isArray(w) ? w : w ? [w] : []).map((x) => x.replace(/^\d{3} \S+ "?|"$/g, ""));
                    resolve({ status: res.statusCode ?? 0, body: parsed, warnings });
                });
            });
            req.on("error", reject);
            if (data) req.write(data);
            req.end();
        });
    }

    async get(path: string): Promise<Obj | undefined> {
        const r = await this.request("GET", path);
        if (r.status === 404) return undefined;
        if (r.status >= 300) throw new Error(`GET ${path}: ${r.status} ${r.body.message ?? ""}`);
        return r.body;
    }

    async list(path: string): Promise<Obj[]> {
        return (await this.get(path))?.items ?? [];
    }

    async create(path: string, body: Obj): Promise<Obj> {
        const r = await this.request("POST", path, body);
        if (r.status >= 300) throw new Error(`POST ${path}: ${r.status} ${r.body.message ?? ""}`);
        return r.body;
    }

    async patch(path: string, body: Obj, type: "merge" | "strategic" = "merge"): Promise<Obj> {
        const ct = type === "merge" ? "application/merge-patch+json" : "application/strategic-merge-patch+json";
        const r = await this.request("PATCH", path, body, ct);
        if (r.status >= 300) throw new Error(`PATCH ${path}: ${r.status} ${r.body.message ?? ""}`);
        return r.body;
    }

    async delete(path: string): Promise<void> {
        const r = await this.request("DELETE", path);
        if (r.status >= 300 && r.status !== 404) throw new Error(`DELETE ${path}: ${r.status} ${r.body.message ?? ""}`);
    }

    /**
     * Records every change of the given collections from now on, until `stop()`. Each watch starts at
     * the revision of its own initial list, so nothing between the list and the watch is missed.
     */
    async record(collections: string[]): Promise<Recorder> {
        const events: WatchEvent[] = [];
        const requests: ReturnType<typeof https.request>[] = [];
        for (const path of collections) {
            const listed = await this.get(path);
            const rv = listed?.metadata?.resourceVersion;
            const sep = path.includes("?") ? "&" : "?";
            const req = https.request({
                host: this.server.hostname, port: this.server.port, agent: new https.Agent({ ...this.agent.options, keepAlive: false }),
                path: `${path}${sep}watch=1&allowWatchBookmarks=false&resourceVersion=${rv}&timeoutSeconds=1800`,
                method: "GET", headers: { Accept: "application/json" },
            }, (res) => {
                let buf = "";
                res.setEncoding("utf8");
                res.on("data", (chunk) => {
                    buf += chunk;
                    let nl: number;
                    while ((nl = buf.indexOf("\n")) >= 0) {
                        const line = buf.slice(0, nl).trim();
                        buf = buf.slice(nl + 1);
                        if (!line) continue;
                        const e = JSON.parse(line);
                        events.push({ type: e.type, object: e.object, revision: Number(e.object?.metadata?.resourceVersion ?? 0), seenAt: Date.now() });
                    }
                });
            });
            req.on("error", () => undefined);
            req.end();
            requests.push(req);
        }
        return {
            events,
            stop: async () => {
                await new Promise((r) => setTimeout(r, 300));
                for (const r of requests) r.destroy();
                events.sort((a, b) => a.revision - b.revision);
            },
        };
    }
}

export interface Recorder {
    /** In etcd revision order once stopped. */
    events: WatchEvent[];
    stop(): Promise<void>;
}

export const ns = (namespace: string) => ({
    deployments: `/apis/apps/v1/namespaces/${namespace}/deployments`,
    statefulsets: `/apis/apps/v1/namespaces/${namespace}/statefulsets`,
    services: `/api/v1/namespaces/${namespace}/services`,
    pods: `/api/v1/namespaces/${namespace}/pods`,
    jobs: `/apis/batch/v1/namespaces/${namespace}/jobs`,
    cronjobs: `/apis/batch/v1/namespaces/${namespace}/cronjobs`,
    pvcs: `/api/v1/namespaces/${namespace}/persistentvolumeclaims`,
    endpointslices: `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
    ingresses: `/apis/networking.k8s.io/v1/namespaces/${namespace}/ingresses`,
    httproutes: `/apis/gateway.networking.k8s.io/v1/namespaces/${namespace}/httproutes`,
    hpas: `/apis/autoscaling/v2/namespaces/${namespace}/horizontalpodautoscalers`,
    events: `/api/v1/namespaces/${namespace}/events`,
});

/** A Deployment that has rolled out completely: every replica updated, ready and available. */
export function rolledOut(d: Obj): boolean {
    const want = d.spec.replicas ?? 1;
    const s = d.status ?? {};
    return (s.observedGeneration ?? 0) >= d.metadata.generation && (s.updatedReplicas ?? 0) === want &&
        (s.readyReplicas ?? 0) === want && (s.availableReplicas ?? 0) === want && (s.replicas ?? 0) === want;
}

export const jobSucceeded = (j: Obj) => (j.status?.conditions ?? []).some((c: Obj) => c.type === "Complete" && c.status === "True");
export const jobFailed = (j: Obj) => (j.status?.conditions ?? []).some((c: Obj) => c.type === "Failed" && c.status === "True");
