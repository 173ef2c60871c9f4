import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { notify, runUrl } from "../../tools/notify";
import { App, freePort, Receiver } from "../analysis/servers";

// Notices to a real HTTP receiver (Slack/Discord-compatible JSON), and the hourly health check
// run as CI runs it, against real HTTP servers on loopback.

const ROOT = path.join(__dirname, "..", "..");

describe("notifications (Slack/Discord webhook)", function () {
    this.timeout(30_000);
    let receiver: Receiver;
    beforeEach(async () => (receiver = await new Receiver().start()));
    afterEach(async () => receiver.stop());

    it("posts one JSON message with stack, app, versions, traffic before → after and the run link", async () => {
        const said = await notify({
            event: "rollback", stack: "production", runUrl: "https://github.com/acme/platform/actions/runs/42",
            summary: "analysis failed: app api canary 2.8.0, check error-rate: measured 0.2, threshold below 0.1",
            apps: [{
                app: "api",
                versionsBefore: { stable: "europe-docker.pkg.dev/acme/apps/api:2.7.0", canary: "europe-docker.pkg.dev/acme/apps/api:2.8.0" },
                versionsAfter: { stable: "europe-docker.pkg.dev/acme/apps/api:2.7.0" },
                trafficBefore: { stable: 50, canary: 50 }, trafficAfter: { stable: 100, canary: 0 },
            }],
        }, receiver.url);
        assert.equal(said, "notify: rollback announced");
        assert.equal(receiver.received.length, 1);
        const [m] = receiver.received;
        // Slack reads `text`, Discord `content`: the same message.
        assert.equal(m.text, m.content);
        assert.equal(m.text, [
            "[production] automatic ROLLBACK done: analysis failed: app api canary 2.8.0, check error-rate: measured 0.2, threshold below 0.1",
            '• api: versions stable 2.7.0, canary 2.8.0 → stable 2.7.0; traffic {"stable":50,"canary":50} → {"stable":100,"canary":0}',
            "run: https://github.com/acme/platform/actions/runs/42",
        ].join("\n"));
    });

    it("a failed delivery is reported by status only, never with the URL", async () => {
        receiver.status = 500;
        const said = await notify({ event: "start", stack: "staging", summary: "x" }, receiver.url);
        assert.equal(said, "notify: start NOT announced: the webhook answered HTTP 500");
        const refused = await notify({ event: "start", stack: "staging", summary: "x" }, `http://127.0.0.1:${await freePort()}/hook/s3cr3t`);
        assert.equal(refused, "notify: start NOT announced: the webhook ECONNREFUSED");
        assert.equal(await notify({ event: "start", stack: "staging", summary: "x" }, undefined), "notify: PLATFORM_WEBHOOK_URL is not set; start not announced");
    });

    it("the run link comes from GitHub Actions' environment", () => {
        assert.equal(runUrl({ GITHUB_SERVER_URL: "https://github.com", GITHUB_REPOSITORY: "acme/platform", GITHUB_RUN_ID: "7" }), "https://github.com/acme/platform/actions/runs/7");
        assert.equal(runUrl({}), undefined);
    });
});

interface Outcome { code: number | null; out: string }

function healthcheck(args: string[], env: Record<string, string>): Promise<Outcome> {
    return new Promise((resolve) => {
        const p = spawn(path.join(ROOT, "node_modules", ".bin", "ts-node"), ["--transpile-only", "tools/healthcheck.ts", ...args],
            { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
        let out = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (out += d));
        p.on("exit", (code) => resolve({ code, out }));
    });
}

describe("hourly health check (npm run healthcheck)", function () {
    this.timeout(60_000);
    let receiver: Receiver, web: App, api: App, dir: string;
    before(async () => {
        receiver = await new Receiver().start();
        web = await new App().start();
        api = await new App().start();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-health-"));
    });
    after(async () => {
        await receiver.stop(); await web.stop(); await api.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    const outputs = (stack: string, extra: Record<string, unknown> = {}) => {
        const file = path.join(dir, `${stack}.json`);
        fs.writeFileSync(file, JSON.stringify({
            namespace: stack,
            apps: {
                web: { healthUrl: web.url(), images: { blue: "r/web:1.4.2" }, traffic: { active: "blue" } },
                api: { healthUrl: api.url(), images: { stable: "r/api:2.7.0" }, traffic: { stable: 100, canary: 0 } },
                ...extra,
            },
        }));
        return ["--outputs", `${stack}=${file}`, "--stack", stack];
    };
    const env = () => ({ PLATFORM_WEBHOOK_URL: receiver.url, PLATFORM_RUN_URL: "https://ci.example/run/9" });

    it("checks every app URL of every stack from its outputs; all healthy: exit 0 and no notice", async () => {
        web.status = 200; api.status = 200;
        const r = await healthcheck([...outputs("staging"), ...outputs("production"), "--attempts", "2", "--interval", "0"], env());
        assert.equal(r.code, 0, r.out);
        assert.equal(r.out.match(/: healthy: /g)?.length, 4);
        assert.equal(receiver.received.length, 0);
    });

    it("an app without a route is not taken as healthy: its Deployments are read from the cluster, and no cluster fails the run", async () => {
        const worker = { worker: { images: { main: "r/worker:2.7.0" }, deployments: { main: "worker-main" }, replicas: { main: 2 } } };
        const before = receiver.received.length;
        const r = await healthcheck([...outputs("staging", worker), "--attempts", "1"], { ...env(), KUBECONFIG: path.join(dir, "no-such-kubeconfig") });
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /^staging cluster: UNHEALTHY: platform: cannot read the backups and Deployments from the cluster: no kubeconfig \(set KUBECONFIG or create ~\/\.kube\/config\); limit the backups and Deployments of namespace staging readable$/m);
        assert.equal(receiver.received.length - before, 1);
    });

    it("a stack whose outputs name no app fails", async () => {
        const file = path.join(dir, "empty.json");
        fs.writeFileSync(file, "{}");
        const r = await healthcheck(["--outputs", `staging=${file}`, "--stack", "staging"], env());
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /^staging stack outputs: UNHEALTHY: no `apps` output/m);
    });

    it("an app that stays down after its retries: exit 1 and one notice naming stack, app and status", async () => {
        api.status = 503;
        const before = api.requests;
        const notices = receiver.received.length;
        const r = await healthcheck([...outputs("production"), "--attempts", "3", "--interval", "0"], env());
        assert.equal(r.code, 1, r.out);
        assert.equal(api.requests - before, 3);
        assert.match(r.out, /production api: UNHEALTHY: http:\/\/127\.0\.0\.1:\d+\/healthz answered HTTP 503 \(3 attempts\)/);
        assert.equal(receiver.received.length - notices, 1);
        const text = receiver.received[notices].text as string;
        assert.match(text, /^\[production\] health check FAILED: api: http:\/\/127\.0\.0\.1:\d+\/healthz answered HTTP 503 \(3 attempts\) \(limit HTTP 200 within 3 attempts\)\n• api: versions stable 2\.7\.0; traffic \{"stable":100,"canary":0\}\nrun: https:\/\/ci\.example\/run\/9$/);
        assert.ok(!r.out.includes(receiver.secretPath), "the webhook URL must never be printed");
        api.status = 200;
    });

    it("usage errors exit 3 with one sentence", async () => {
        const r = await healthcheck(["--attempts", "x", "--stack", "s"], {});
        assert.equal(r.code, 3);
        assert.match(r.out, /^healthcheck: --attempts needs a whole number \(got x\)/);
    });
});
