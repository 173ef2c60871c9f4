import { execFileSync } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import { PART_OF } from "./plan/names";

// What the cluster runs now, read while the program runs (in `pulumi preview` and `pulumi up`):
// the size the autoscaler gave each live track and the track each traffic Service selects. The plan
// sizes a track that takes over traffic (the incoming colour of a switch, stable absorbing an
// aborted or promoted canary) from these, so a switch at peak lands on as many pods as served it.

export interface LiveState {
    /** Deployment name → spec.replicas, for the Deployments that exist. */
    replicas: Record<string, number>;
    /** Service name → the value of its selector's track label, for the Services that exist. */
    selectedTracks: Record<string, string>;
}

export interface LiveQuery {
    namespace: string;
    deployments: string[];
    services: string[];
    /** kubeconfig context (`kubernetes.context`); the current context when absent. */
    context?: string;
}

export type LiveReader = (q: LiveQuery) => Promise<LiveState>;

export const NOTHING_LIVE: LiveState = { replicas: {}, selectedTracks: {} };

const TRACK_LABEL = "platform.dev/track";

let reader: LiveReader = readFromCluster;

/** Replaces how live state is read (the offline evaluator answers from the test's own cluster model). */
export function setLiveReader(r: LiveReader): void {
    reader = r;
}

export async function readLiveState(q: LiveQuery): Promise<LiveState> {
    if (q.deployments.length === 0 && q.services.length === 0) return NOTHING_LIVE;
    return reader(q);
}

/**
 * The result lines (scripts/analysis/analyze.js) that the pods of these analysis Jobs left as their
 * termination message: pulumi reports only that a Job failed, the pod says why. For `npm run deploy`.
 */
export async function readAnalysisResults(q: { namespace: string; jobs: string[]; context?: string }): Promise<string[]> {
    const c = connect(q.context, "the analysis results");
    const lines: string[] = [];
    for (const job of q.jobs) {
        const pods = await get(c, `/api/v1/namespaces/${q.namespace}/pods?labelSelector=${encodeURIComponent(`job-name=${job}`)}`);
        for (const pod of pods?.items ?? []) {
            for (const s of pod.status?.containerStatuses ?? []) {
                const message: string = s.state?.terminated?.message ?? s.lastState?.terminated?.message ?? "";
                lines.push(...message.split("\n").map((l) => l.trim()).filter((l) => /^analysis (failed|passed): app /.test(l)));
            }
        }
    }
    return [...new Set(lines)];
}

// ---- what the hourly health check reads (tools/healthcheck.ts) ------------------------------

/** A CronJob as the health check sees it: its name and what its controller last recorded. */
export interface LiveCronJob {
    name: string;
    created: string;
    /** status.lastSuccessfulTime: the completion of its last Job that succeeded (absent: never). */
    lastSuccessfulTime?: string;
    lastScheduleTime?: string;
}

export interface LiveJob {
    name: string;
    /** The CronJob that created it (ownerReferences), if any. */
    cronJob?: string;
    created: string;
    /** "running" until a Complete or Failed condition is True. */
    outcome: "running" | "succeeded" | "failed";
    /** When it finished (the condition's transition time), and why it failed. */
    finishedAt?: string;
    reason?: string;
}

export interface LiveDeployment {
    name: string;
    /** spec.replicas: what it wants now (the autoscaler's choice for an autoscaled track). */
    replicas: number;
    /** status.readyReplicas; 0 when the controller has not written it. */
    readyReplicas: number;
}

export interface LiveWorkloads {
    cronJobs: Record<string, LiveCronJob>;
    jobs: LiveJob[];
    deployments: Record<string, LiveDeployment>;
}

export interface WorkloadsQuery { namespace: string; context?: string }

export function cronJobOf(o: Obj): LiveCronJob {
    return {
        name: o.metadata.name, created: o.metadata.creationTimestamp,
        ...(o.status?.lastSuccessfulTime ? { lastSuccessfulTime: o.status.lastSuccessfulTime } : {}),
        ...(o.status?.lastScheduleTime ? { lastScheduleTime: o.status.lastScheduleTime } : {}),
    };
}

export function jobOf(o: Obj): LiveJob {
    const conditions: Obj[] = o.status?.conditions ?? [];
    const done = (type: string) => conditions.find((c) => c.type === type && c.status === "True");
    const failed = done("Failed");
    const complete = done("Complete");
    const owner = (o.metadata.ownerReferences ?? []).find((r: Obj) => r.kind === "CronJob");
    return {
        name: o.metadata.name, created: o.metadata.creationTimestamp,
        ...(owner ? { cronJob: owner.name } : {}),
        outcome: failed ? "failed" : complete ? "succeeded" : "running",
        ...(failed || complete ? { finishedAt: (failed ?? complete)!.lastTransitionTime ?? o.status?.completionTime } : {}),
        ...(failed?.reason ? { reason: failed.reason } : {}),
    };
}

export function deploymentOf(o: Obj): LiveDeployment {
    return { name: o.metadata.name, replicas: o.spec?.replicas ?? 1, readyReplicas: o.status?.readyReplicas ?? 0 };
}

/** The objects this program manages in a namespace: one LIST per kind (CronJobs, Jobs, Deployments). */
export async function readWorkloads(q: WorkloadsQuery): Promise<LiveWorkloads> {
    const c = connect(q.context, "the backups and Deployments");
    const selector = `labelSelector=${encodeURIComponent(`app.kubernetes.io/part-of=${PART_OF}`)}`;
    const [cronJobs, jobs, deployments] = await Promise.all([
        list(c, `/apis/batch/v1/namespaces/${q.namespace}/cronjobs?${selector}`),
        list(c, `/apis/batch/v1/namespaces/${q.namespace}/jobs?${selector}`),
        list(c, `/apis/apps/v1/namespaces/${q.namespace}/deployments?${selector}`),
    ]);
    return {
        cronJobs: Object.fromEntries(cronJobs.map((o) => [o.metadata.name, cronJobOf(o)])),
        jobs: jobs.map(jobOf),
        deployments: Object.fromEntries(deployments.map((o) => [o.metadata.name, deploymentOf(o)])),
    };
}

// ---- reading a real cluster, with the kubeconfig the kubernetes provider uses ----------------

type Obj = Record<string, any>;

interface Connection { server: URL; agent: https.Agent; token?: string }

async function readFromCluster(q: LiveQuery): Promise<LiveState> {
    const c = connect(q.context, "the live sizes of the autoscaled tracks");
    const out: LiveState = { replicas: {}, selectedTracks: {} };
    for (const d of q.deployments) {
        const o = await get(c, `/apis/apps/v1/namespaces/${q.namespace}/deployments/${d}`);
        if (o) out.replicas[d] = o.spec?.replicas ?? 1;
    }
    for (const s of q.services) {
        const o = await get(c, `/api/v1/namespaces/${q.namespace}/services/${s}`);
        const track = o?.spec?.selector?.[TRACK_LABEL];
        if (track) out.selectedTracks[s] = track;
    }
    return out;
}

function kubeconfigFiles(): string[] {
    const env = process.env.KUBECONFIG;
    if (env) return env.split(path.delimiter).filter((f) => f && fs.existsSync(f));
    const home = path.join(os.homedir(), ".kube", "config");
    return fs.existsSync(home) ? [home] : [];
}

function connect(context: string | undefined, reading: string): Connection {
    const fail = (what: string): never => {
        throw new Error(`platform: cannot read ${reading} from the cluster: ${what}`);
    };
    const files = kubeconfigFiles();
    if (files.length === 0) fail("no kubeconfig (set KUBECONFIG or create ~/.kube/config)");
    const docs = files.map((f) => ({ dir: path.dirname(f), doc: (yaml.load(fs.readFileSync(f, "utf8")) ?? {}) as Obj }));
    const find = (kind: "contexts" | "clusters" | "users", name: string) => {
        for (const { dir, doc } of docs) {
            const hit = (doc[kind] ?? []).find((x: Obj) => x.name === name);
            if (hit) return { dir, value: hit[kind.slice(0, -1)] as Obj };
        }
        return undefined;
    };
    const name = context ?? docs.map((d) => d.doc["current-context"]).find((c) => c);
    const ctx = name ? find("contexts", name) : undefined;
    if (!ctx) fail(`context ${name ?? "(none)"} is not in ${files.join(", ")}`);
    const cluster = find("clusters", ctx!.value.cluster);
    const user = find("users", ctx!.value.user);
    if (!cluster) fail(`cluster ${ctx!.value.cluster} of context ${name} is not in the kubeconfig`);
    const u = user?.value ?? {};
    const file = (dir: string, p?: string, data?: string) => (data ? Buffer.from(data, "base64") : p ? fs.readFileSync(path.resolve(dir, p)) : undefined);
    const cl = cluster!.value;
    let cert = file(user?.dir ?? "", u["client-certificate"], u["client-certificate-data"]);
    let key = file(user?.dir ?? "", u["client-key"], u["client-key-data"]);
    let token: string | undefined = u.token ?? (u.tokenFile ? fs.readFileSync(u.tokenFile, "utf8").trim() : undefined);
    if (u.exec) {
        // A credential plugin (GKE's gke-gcloud-auth-plugin, for one): it prints an ExecCredential.
        const env = { ...process.env, ...Object.fromEntries((u.exec.env ?? []).map((e: Obj) => [e.name, e.value])) };
        const cred = JSON.parse(execFileSync(u.exec.command, u.exec.args ?? [], { env, encoding: "utf8", timeout: 30000 })) as Obj;
        token = cred.status?.token ?? token;
        if (cred.status?.clientCertificateData) cert = Buffer.from(cred.status.clientCertificateData);
        if (cred.status?.clientKeyData) key = Buffer.from(cred.status.clientKeyData);
    }
    return {
        server: new URL(cl.server),
        token,
        agent: new https.Agent({
            ca: file(cluster!.dir, cl["certificate-authority"], cl["certificate-authority-data"]),
            rejectUnauthorized: cl["insecure-skip-tls-verify"] !== true,
            cert, key,
        }),
    };
}

/** Every item of a collection, page by page (a missing namespace is an empty list). */
async function list(c: Connection, p: string): Promise<Obj[]> {
    const items: Obj[] = [];
    let next: string | undefined;
    do {
        const page = await get(c, `${p}&limit=500${next ? `&continue=${encodeURIComponent(next)}` : ""}`);
        items.push(...(page?.items ?? []));
        next = page?.metadata?.continue || undefined;
    } while (next);
    return items;
}

function get(c: Connection, p: string): Promise<Obj | undefined> {
    return new Promise((resolve, reject) => {
        const req = https.request({
            host: c.server.hostname, port: c.server.port || 443, path: `${c.server.pathname.replace(/\/$/, "")}${p}`, method: "GET", agent: c.agent,
            headers: { Accept: "application/json", ...(c.token ? { Authorization: `Bearer ${c.token}` } : {}) }, timeout: 15000,
        }, (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (text += d));
            res.on("end", () => {
                if (res.statusCode === 404) return resolve(undefined);
                if ((res.statusCode ?? 500) >= 300) return reject(new Error(`platform: reading ${p} from the cluster: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
                resolve(JSON.parse(text));
            });
        });
        req.on("timeout", () => req.destroy(new Error(`platform: reading ${p} from the cluster timed out`)));
        req.on("error", reject);
        req.end();
    });
}
