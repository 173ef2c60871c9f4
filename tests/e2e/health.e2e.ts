import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Receiver } from "../analysis/servers";
import { Kube, ns, Obj } from "./kube";
import { exportsOf, ROOT } from "./project";

// `npm run healthcheck` against a live API server (scripts/ensure-cluster): the reader of
// components/live.ts lists the namespace's CronJobs, Jobs and Deployments with the kubeconfig, and
// the check reports what their controllers and status say. Backup history cannot be waited for (a day,
// a month), so the CronJobs' status is written through the status subresource, as the CronJob
// controller writes it; the drill Jobs are managed by "another controller" (spec.managedBy) so the
// Job controller leaves the outcome the test writes. The Deployments are real: the scheduler and kwok
// make one ready and leave the other's pods Pending.

const STACK = "production";
const PART_OF = { "app.kubernetes.io/part-of": "platform", "app.kubernetes.io/managed-by": "pulumi", "platform.dev/environment": STACK };
const MANAGED_BY = "platform.dev/health-e2e";
const HOUR = 3600_000;

const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString().replace(/\.\d{3}Z$/, "Z");
const pod = (name: string, extra: Obj = {}) => ({
    metadata: { labels: { ...PART_OF, "app.kubernetes.io/name": name } },
    spec: {
        restartPolicy: extra.restartPolicy ?? "Always",
        securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: "RuntimeDefault" } },
        containers: [{
            name: "main", image: `registry.local/acme/${name}:1.0.0`,
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: true },
        }],
        ...(extra.nodeSelector ? { nodeSelector: extra.nodeSelector } : {}),
    },
});

interface Outcome { code: number | null; out: string }

describe("hourly health check against a live API server", function () {
    this.timeout(10 * 60 * 1000);
    let kube: Kube, env: NodeJS.ProcessEnv, paths: ReturnType<typeof ns>;
    let receiver: Receiver, dir = "", NS = "";
    const cronJobs: Record<string, Obj> = {};

    const healthcheck = (): Promise<Outcome> => new Promise((resolve) => {
        const p = spawn(path.join(ROOT, "node_modules", ".bin", "ts-node"), ["--transpile-only", "tools/healthcheck.ts",
            "--stack", STACK, "--outputs", `${STACK}=${path.join(dir, "outputs.json")}`, "--context", `${STACK}=platform-local`, "--attempts", "1"],
        { cwd: ROOT, env: { PATH: process.env.PATH, KUBECONFIG: env.KUBECONFIG, PLATFORM_WEBHOOK_URL: receiver.url } });
        let out = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (out += d));
        p.on("close", (code) => resolve({ code, out }));
    });

    async function cronJob(name: string, lastSuccessMsAgo: number): Promise<void> {
        const created = await kube.create(paths.cronjobs, {
            apiVersion: "batch/v1", kind: "CronJob", metadata: { name, labels: PART_OF },
            // Suspended: the controller records history but starts nothing while the test runs.
            spec: { schedule: "15 2 * * *", timeZone: "Etc/UTC", suspend: true, concurrencyPolicy: "Forbid", jobTemplate: { metadata: { labels: PART_OF }, spec: { backoffLimit: 0, template: pod(name, { restartPolicy: "Never" }) } } },
        });
        cronJobs[name] = created;
        await setLastSuccess(name, lastSuccessMsAgo);
    }

    const setLastSuccess = (name: string, msAgo: number) =>
        kube.patch(`${paths.cronjobs}/${name}/status`, { status: { lastScheduleTime: iso(msAgo + 60_000), lastSuccessfulTime: iso(msAgo) } });

    /** A run of a CronJob, as its controller would have created it, finished `outcome` `msAgo` ago. */
    async function run(cron: string, name: string, outcome: "failed" | "succeeded", msAgo: number): Promise<void> {
        const owner = cronJobs[cron];
        await kube.create(paths.jobs, {
            apiVersion: "batch/v1", kind: "Job",
            metadata: {
                name, labels: PART_OF,
                ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name: cron, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true }],
            },
            spec: { managedBy: MANAGED_BY, backoffLimit: 0, template: pod(cron, { restartPolicy: "Never" }) },
        });
        const start = iso(msAgo + 120_000), end = iso(msAgo);
        const status = outcome === "failed"
            ? { startTime: start, failed: 1, conditions: [
                { type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", lastTransitionTime: end },
                { type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", lastTransitionTime: end },
            ] }
            : { startTime: start, succeeded: 1, completionTime: end, conditions: [
                { type: "SuccessCriteriaMet", status: "True", reason: "CompletionsReached", message: "Reached expected number of succeeded pods", lastTransitionTime: end },
                { type: "Complete", status: "True", reason: "CompletionsReached", message: "Reached expected number of succeeded pods", lastTransitionTime: end },
            ] };
        await kube.patch(`${paths.jobs}/${name}/status`, { status });
    }

    async function deployment(name: string, replicas: number, nodeSelector?: Obj): Promise<void> {
        await kube.create(paths.deployments, {
            apiVersion: "apps/v1", kind: "Deployment", metadata: { name, labels: PART_OF },
            spec: { replicas, selector: { matchLabels: { "app.kubernetes.io/name": name } }, template: pod(name, { nodeSelector }) },
        });
    }

    async function waitFor(what: string, test: () => Promise<boolean>, seconds = 60): Promise<void> {
        const deadline = Date.now() + seconds * 1000;
        while (!(await test())) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 250));
        }
    }
    const ready = async (name: string) => (await kube.get(`${paths.deployments}/${name}`))?.status?.readyReplicas ?? 0;

    before(async function () {
        env = exportsOf(path.join(ROOT, "scripts", "ensure-cluster"), ["start"]);
        kube = new Kube(env.KUBECONFIG!);
        receiver = await new Receiver().start();
        NS = `health-${Date.now().toString(36)}`;
        paths = ns(NS);
        await kube.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } });
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-health-e2e-"));
        // The stack outputs the program writes (components/environment.ts), for this namespace.
        fs.writeFileSync(path.join(dir, "outputs.json"), JSON.stringify({
            namespace: NS,
            apps: {
                worker: { images: { main: "registry.local/acme/worker:1.0.0" }, replicas: { main: 2 }, deployments: { main: "worker-main" }, traffic: { main: 100 } },
                mailer: { images: { main: "registry.local/acme/mailer:1.0.0" }, replicas: { main: 1 }, deployments: { main: "mailer-main" }, traffic: { main: 100 } },
            },
            backups: {
                postgres: { cronJobs: { backup: "postgres-backup", drill: "postgres-restore-drill" } },
                redis: { cronJobs: { backup: "redis-backup", drill: "redis-restore-drill" } },
            },
        }));

        await cronJob("postgres-backup", 30 * HOUR);
        await cronJob("postgres-restore-drill", 5 * 24 * HOUR);
        await run("postgres-restore-drill", "postgres-restore-drill-1", "failed", 24 * HOUR);
        await cronJob("redis-backup", 2 * HOUR);
        await cronJob("redis-restore-drill", 3 * 24 * HOUR);
        await run("redis-restore-drill", "redis-restore-drill-1", "succeeded", 3 * 24 * HOUR);
        // No node carries this label: the scheduler leaves the pods Pending, the controller counts 0 ready.
        await deployment("worker-main", 2, { "platform.dev/no-such-node": "true" });
        await deployment("mailer-main", 1);
        await waitFor("mailer-main ready (kwok)", async () => (await ready("mailer-main")) === 1);
    });

    after(async function () {
        await receiver?.stop();
        if (kube && NS && !process.env.PLATFORM_E2E_KEEP) await kube.delete(`/api/v1/namespaces/${NS}`);
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("reports the stale backup, the failed drill and the Deployment with 0 ready, in one notice, exit 1", async function () {
        const pods = await kube.list(paths.pods);
        assert.ok(pods.filter((p) => p.metadata.name.startsWith("worker-main")).every((p) => p.status.phase === "Pending"), "worker pods must be unschedulable");
        const r = await healthcheck();
        assert.equal(r.code, 1, r.out);
        const lines = r.out.trim().split("\n");
        const unhealthy = lines.filter((l) => / UNHEALTHY: /.test(l));
        assert.deepEqual(unhealthy.map((l) => l.replace(/: UNHEALTHY: .*/, "")), ["production worker", "production postgres backup", "production postgres restore drill"], r.out);
        assert.match(unhealthy[0], /^production worker: UNHEALTHY: no route; Deployment worker-main 0\/2 ready; limit /);
        assert.match(unhealthy[1], /^production postgres backup: UNHEALTHY: last success 30\.0 h ago \(.*, CronJob postgres-backup\); limit 26 h since the last successful backup$/);
        assert.match(unhealthy[2], /^production postgres restore drill: UNHEALTHY: last run postgres-restore-drill-1 FAILED \(BackoffLimitExceeded\) 1\.0 d ago; last success 5\.0 d ago/);
        assert.ok(lines.some((l) => /^production mailer: healthy: no route; Deployment mailer-main 1\/1 ready;/.test(l)), r.out);
        assert.ok(lines.some((l) => /^production redis backup: healthy: last success 2\.0 h ago/.test(l)), r.out);
        assert.ok(lines.some((l) => /^production redis restore drill: healthy: last success 3\.0 d ago/.test(l)), r.out);
        assert.equal(receiver.received.length, 1, "one notice for the stack");
        assert.match(receiver.received[0].text, /^\[production\] health check FAILED: worker: .*; postgres backup: .*; postgres restore drill: last run postgres-restore-drill-1 FAILED/);
        process.stdout.write(`      ${unhealthy.join("\n      ")}\n`);
    });

    it("once the backup ran, the drill passed again and the worker was scheduled: exit 0, no notice", async function () {
        await setLastSuccess("postgres-backup", HOUR);
        await new Promise((r) => setTimeout(r, 1100)); // a later creationTimestamp than the failed run (1 s resolution)
        await run("postgres-restore-drill", "postgres-restore-drill-2", "succeeded", 0.5 * HOUR);
        await setLastSuccess("postgres-restore-drill", 0.5 * HOUR);
        await kube.patch(`${paths.deployments}/worker-main`, { spec: { template: { spec: { nodeSelector: null } } } });
        await waitFor("worker-main 2 ready (kwok)", async () => (await ready("worker-main")) === 2);
        const before = receiver.received.length;
        const r = await healthcheck();
        assert.equal(r.code, 0, r.out);
        assert.equal(r.out.match(/: healthy: /g)?.length, 6, r.out);
        assert.equal(receiver.received.length, before);
    });
});
