import * as assert from "assert";
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { exportsOf, ROOT } from "./project";

// The real node (scripts/ensure-node) for tests that need real pods and real traffic: how to start
// and stop it, how to place a pod there, and the load generator (scripts/node/loadgen) that counts
// failed requests while an operator action runs.

export const ENSURE_NODE = path.join(ROOT, "scripts", "ensure-node");

/** Placement on the real node: it carries this label and taint, so only pods that ask land there. */
export const REAL_NODE = {
    name: "platform-node-0",
    nodeSelector: { "platform.dev/node": "real" },
    tolerations: [{ key: "platform.dev/real-node", operator: "Equal", value: "true", effect: "NoSchedule" }],
};

/** localhost/platform-testapp:<tag>, imported at start (imagePullPolicy Never): v1, v2, v3, and bad (never ready). */
export const TESTAPP = "localhost/platform-testapp";
/** components/app.ts APP_UID: the image's user. */
export const APP_UID = 10001;

export interface NodeEnv {
    KUBECONFIG: string;
    PLATFORM_NODE_NAME: string;
    PLATFORM_NODE_LOADGEN: string;
    PLATFORM_NODE_RUN: string;
    PLATFORM_NODE_POD_LOGS: string;
    PLATFORM_NODE_CGROUP: string;
    PLATFORM_NODE_BRIDGE: string;
    /** The cluster DNS address (the kube-dns Service, served by the node's CoreDNS). */
    PLATFORM_NODE_DNS: string;
    /** The StorageClass of the node's local PersistentVolumes. */
    PLATFORM_NODE_STORAGE_CLASS: string;
}

/** Starts the control plane and the node if needed (a no-op when both run); their `export` lines. */
export function startNode(base: NodeJS.ProcessEnv = process.env): NodeEnv {
    const cluster = exportsOf(path.join(ROOT, "scripts", "ensure-cluster"), ["start"], base);
    return exportsOf(ENSURE_NODE, ["start"], cluster) as unknown as NodeEnv;
}

/** Drains and removes the node and everything it created on the host (the control plane keeps running). */
export function stopNode(base: NodeJS.ProcessEnv = process.env): void {
    const r = spawnSync(ENSURE_NODE, ["stop"], { env: base, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) throw new Error(`scripts/ensure-node stop failed (exit ${r.status})`);
}

/** What loadgen writes (scripts/node/loadgen): times are ms since its first request, and epoch ms. */
export interface LoadResult {
    url: string;
    rate: number;
    startEpochMs: number;
    durationMs: number;
    stoppedBy: string;
    sent: number;
    ok: number;
    failed: number;
    /** refused, timeout, reset, closed, "http <status>", client-saturated, other */
    failures: Record<string, number>;
    failedWindow?: Seen;
    versions: Record<string, Seen>;
    pods: Record<string, number>;
    latencyMs: { p50?: number; p99?: number; max?: number };
    failureSamples: { ms: number; kind: string; error: string }[];
    timeline: { s: number; sent: number; ok: number; failed: number; versions?: Record<string, number> }[];
}

export interface Seen { count: number; firstMs: number; lastMs: number; firstEpochMs: number; lastEpochMs: number }

export interface LoadRun {
    /** Epoch ms when loadgen reported it is sending. */
    startedAt: number;
    /** SIGTERM: loadgen stops sending, waits for the requests in flight (≤ 2 s) and writes its result. */
    stop(): Promise<LoadResult>;
}

/**
 * Starts loadgen against a URL on 127.0.0.0/8 (it refuses any other) at a fixed rate, a new TCP
 * connection per request, until stop() (or maxSeconds, at most 600).
 */
export async function startLoad(loadgen: string, url: string, opts: { rate?: number; maxSeconds?: number } = {}): Promise<LoadRun> {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "loadgen-")), "result.json");
    const child: ChildProcess = spawn(loadgen, ["-url", url, "-rate", String(opts.rate ?? 200), "-duration", `${opts.maxSeconds ?? 300}s`, "-out", out],
        { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
        child.stderr!.on("data", (d) => {
            stderr += d;
            if (stderr.includes("loadgen: ") && stderr.includes("\n")) resolve();
        });
        child.on("error", reject);
        exited.then((code) => reject(new Error(`loadgen exited (${code}) before sending: ${stderr.trim()}`)));
    });
    return {
        startedAt: Date.now(),
        stop: async () => {
            child.kill("SIGTERM");
            const code = await exited;
            if (code !== 0) throw new Error(`loadgen failed (exit ${code}): ${stderr.trim()}`);
            const result = JSON.parse(fs.readFileSync(out, "utf8")) as LoadResult;
            fs.rmSync(path.dirname(out), { recursive: true, force: true });
            return result;
        },
    };
}

/**
 * Failed requests: the goal is 0. The one exception this machine shows is a stray: a single new
 * connection to the loopback NodePort refused by the host's TCP stack with nothing changing (about 1
 * in 64,000; docs/node.md, seen once in a cold CI run in the node test's switch). A rollout's
 * failures come in runs (hundreds in a 2 s endpoint gap; 3 within 40 ms without the preStop sleep),
 * so a load may show at most one isolated failure per 20,000 requests (at least 1), each more than
 * 1 s from the next, and nothing more. Returns a note for the figures when a stray was seen.
 */
export function assertNoFailedRequests(r: LoadResult, label: string): string | undefined {
    if (r.failed === 0) return undefined;
    const bound = Math.max(1, Math.floor(r.sent / 20000));
    const ms = r.failureSamples.map((s) => s.ms).sort((a, b) => a - b);
    const isolated = r.failureSamples.length === r.failed && ms.every((m, i) => i === 0 || m - ms[i - 1] > 1000);
    assert.ok(r.failed <= bound && isolated, `${label}: ${r.failed} of ${r.sent} requests failed: ${summary(r)}; first failures ${JSON.stringify(r.failureSamples.slice(0, 5))}`);
    return `${r.failed} isolated stray`;
}

/** One line for a test's output: sent, failed (by kind), per-version counts. */
export function summary(r: LoadResult): string {
    const versions = Object.entries(r.versions).map(([v, s]) => `${v}=${s.count}`).join(" ");
    const failures = Object.entries(r.failures).map(([k, n]) => `${k}: ${n}`).join(", ");
    return `sent ${r.sent}, ok ${r.ok}, failed ${r.failed}${failures ? ` (${failures})` : ""}; ${versions}; p99 ${r.latencyMs.p99} ms`;
}
