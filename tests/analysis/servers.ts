// Real servers for the analysis and notification tests, all on loopback and started by the tests:
// a Prometheus (Debian's `prometheus` binary), small exporters whose error ratio and latency the
// test sets, plain HTTP apps, and a webhook receiver that records what it is sent.
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export const PROMETHEUS_INSTALL = "scripts/test-services install";

/** The Prometheus binary, or a clear error naming the install command. Never a skip. */
export function prometheusBinary(): string {
    const bin = process.env.PROMETHEUS_BIN ?? "prometheus";
    const found = spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" });
    if (found.status !== 0) {
        throw new Error(`prometheus not installed: run \`${PROMETHEUS_INSTALL}\` (as root; Debian package "prometheus") before the analysis tests.`);
    }
    return found.stdout.trim();
}

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as AddressInfo).port;
            s.close(() => resolve(port));
        });
    });
}

async function listen(server: http.Server): Promise<number> {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    return (server.address() as AddressInfo).port;
}

const close = (server: http.Server) => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });

/**
 * An app's metrics as Prometheus scrapes them: each scrape counts 100 more requests, `errorRatio`
 * of them 5xx, each taking `latencySeconds` (a histogram), like an app under steady load.
 */
export class Exporter {
    errorRatio = 0;
    latencySeconds = 0.02;
    port = 0;
    private ok = 0;
    private errors = 0;
    private readonly buckets = [0.05, 0.1, 0.25, 0.5, 1];
    private readonly counts = new Map<number, number>();
    private sum = 0;
    private total = 0;
    private server?: http.Server;

    constructor(settings: { errorRatio?: number; latencySeconds?: number } = {}) {
        Object.assign(this, settings);
    }

    async start(): Promise<this> {
        this.server = http.createServer((req, res) => {
            const errors = Math.round(100 * this.errorRatio);
            this.errors += errors;
            this.ok += 100 - errors;
            for (const b of this.buckets) if (this.latencySeconds <= b) this.counts.set(b, (this.counts.get(b) ?? 0) + 100);
            this.sum += 100 * this.latencySeconds;
            this.total += 100;
            const lines = [
                "# TYPE http_requests_total counter",
                `http_requests_total{code="200"} ${this.ok}`,
                `http_requests_total{code="500"} ${this.errors}`,
                "# TYPE http_request_duration_seconds histogram",
                ...this.buckets.map((b) => `http_request_duration_seconds_bucket{le="${b}"} ${this.counts.get(b) ?? 0}`),
                `http_request_duration_seconds_bucket{le="+Inf"} ${this.total}`,
                `http_request_duration_seconds_sum ${this.sum}`,
                `http_request_duration_seconds_count ${this.total}`,
            ];
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
            res.end(`${lines.join("\n")}\n`);
        });
        this.port = await listen(this.server);
        return this;
    }

    async stop(): Promise<void> {
        if (this.server) await close(this.server);
    }
}

/** A private Prometheus scraping `targets` (job name → port) every second. */
export class Prometheus {
    port = 0;
    private proc?: ChildProcess;
    private dir = "";
    private output = "";

    constructor(private readonly targets: Record<string, number>) {}

    get address(): string {
        return `http://127.0.0.1:${this.port}`;
    }

    async start(): Promise<this> {
        const bin = prometheusBinary();
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-prometheus-"));
        const scrapes = Object.entries(this.targets).map(([job, port]) =>
            `  - job_name: ${job}\n    static_configs:\n      - targets: ["127.0.0.1:${port}"]`).join("\n");
        fs.writeFileSync(path.join(this.dir, "prometheus.yml"),
            `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n${scrapes}\n`);
        this.port = await freePort();
        this.proc = spawn(bin, [
            `--config.file=${path.join(this.dir, "prometheus.yml")}`,
            `--storage.tsdb.path=${path.join(this.dir, "data")}`,
            `--web.listen-address=127.0.0.1:${this.port}`,
            "--log.level=warn",
        ], { stdio: ["ignore", "pipe", "pipe"] });
        this.proc.stdout!.on("data", (d) => (this.output += d));
        this.proc.stderr!.on("data", (d) => (this.output += d));
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
            if (this.proc.exitCode !== null) throw new Error(`prometheus exited ${this.proc.exitCode}: ${this.output.slice(-2000)}`);
            try {
                const res = await fetch(`${this.address}/-/ready`);
                if (res.status === 200) return this;
            } catch { /* not yet */ }
            await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error(`prometheus not ready after 30 s: ${this.output.slice(-2000)}`);
    }

    /** Waits until `query` returns a value (the scrapes have enough samples for rate()). */
    async waitFor(query: string, timeoutMs = 30_000): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            const res = await fetch(`${this.address}/api/v1/query?query=${encodeURIComponent(query)}`);
            const body = (await res.json()) as any;
            if (body.data?.result?.some((r: any) => !Number.isNaN(Number(r.value[1])))) return;
            await new Promise((r) => setTimeout(r, 250));
        }
        throw new Error(`no value for ${query} after ${timeoutMs} ms`);
    }

    async stop(): Promise<void> {
        if (this.proc && this.proc.exitCode === null) {
            const exited = new Promise((r) => this.proc!.once("exit", r));
            this.proc.kill("SIGTERM");
            await exited;
        }
        if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

/** A tiny app answering every path with `status` (changeable by the test). */
export class App {
    status = 200;
    port = 0;
    requests = 0;
    /** Of every request, this fraction is answered 500 (evenly spread, deterministic). */
    errorRatio = 0;
    /** Of every request, this fraction has its connection reset without an answer. */
    resetRatio = 0;
    private server?: http.Server;

    async start(): Promise<this> {
        const hit = (ratio: number, n: number) => Math.floor(n * ratio) > Math.floor((n - 1) * ratio);
        this.server = http.createServer((req, res) => {
            this.requests++;
            if (hit(this.resetRatio, this.requests)) {
                req.socket.destroy();
                return;
            }
            const status = hit(this.errorRatio, this.requests) ? 500 : this.status;
            res.writeHead(status, { "content-type": "text/plain" });
            res.end(`status ${status}\n`);
        });
        this.port = await listen(this.server);
        return this;
    }

    url(p = "/healthz"): string {
        return `http://127.0.0.1:${this.port}${p}`;
    }

    async stop(): Promise<void> {
        if (this.server) await close(this.server);
    }
}

/** A webhook receiver (Slack/Discord style): records every JSON body POSTed to its secret path. */
export class Receiver {
    port = 0;
    readonly received: any[] = [];
    /** The status the receiver answers with (test a failing delivery). */
    status = 204;
    /** How long it takes to answer the messages `delayMatching` matches (test a hanging webhook). */
    delayMs = 0;
    delayMatching = /./;
    private server?: http.Server;

    constructor(readonly secretPath = "/services/T000/B000/s3cr3t-webhook-token") {}

    get url(): string {
        return `http://127.0.0.1:${this.port}${this.secretPath}`;
    }

    async start(): Promise<this> {
        this.server = http.createServer((req, res) => {
            let body = "";
            req.on("data", (d) => (body += d));
            req.on("end", () => {
                const answer = () => {
                    if (req.method === "POST" && req.url === this.secretPath && /json/.test(req.headers["content-type"] ?? "")) {
                        this.received.push(JSON.parse(body));
                        res.writeHead(this.status);
                    } else {
                        res.writeHead(404);
                    }
                    res.end();
                };
                if (this.delayMs && this.delayMatching.test(body)) setTimeout(answer, this.delayMs).unref();
                else answer();
            });
        });
        this.port = await listen(this.server);
        return this;
    }

    async stop(): Promise<void> {
        if (this.server) await close(this.server);
    }
}
