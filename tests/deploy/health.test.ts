import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { cronJobOf, deploymentOf, jobOf, LiveWorkloads } from "../../components/live";
import { backupFindings, DEFAULT_LIMITS, Finding, findingLine, HealthOutputs, outputsFindings, replicaFinding } from "../../tools/health";
import { healthcheck, HealthOptions, parseHealthArgs } from "../../tools/healthcheck";
import { App, Receiver } from "../analysis/servers";
import { run } from "../harness";

// The hourly health check's decisions (tools/health.ts) over API objects as the API server returns
// them, and the command (tools/healthcheck.ts) with those objects as its cluster, real HTTP servers
// for the URL checks and a real webhook receiver. The reader itself against a live API server:
// tests/e2e/health.e2e.ts.

type Obj = Record<string, any>;
const NOW = new Date("2026-12-03T12:00:00Z");
const ago = (hours: number) => new Date(NOW.getTime() - hours * 3600_000).toISOString().replace(/\.000Z$/, "Z");
const NS = "production";
const PART_OF = { "app.kubernetes.io/part-of": "platform", "app.kubernetes.io/managed-by": "pulumi", "platform.dev/environment": "production" };

/** A CronJob as `GET …/cronjobs` returns it; `status` as its controller wrote it (absent: never ran). */
function cronJob(name: string, created: string, status?: Obj): Obj {
    return {
        apiVersion: "batch/v1", kind: "CronJob",
        metadata: { name, namespace: NS, uid: `uid-${name}`, creationTimestamp: created, labels: PART_OF },
        spec: { schedule: "15 2 * * *", timeZone: "Etc/UTC", concurrencyPolicy: "Forbid", suspend: false, jobTemplate: { spec: {} } },
        status: status ?? {},
    };
}

/** A Job the CronJob controller created, finished as `outcome` at `at`. */
function job(owner: string, name: string, created: string, outcome: "failed" | "succeeded" | "running", at = created): Obj {
    const conditions = outcome === "failed"
        ? [{ type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded", lastTransitionTime: at },
            { type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", lastTransitionTime: at }]
        : outcome === "succeeded"
            ? [{ type: "SuccessCriteriaMet", status: "True", lastTransitionTime: at }, { type: "Complete", status: "True", lastTransitionTime: at }]
            : [];
    return {
        apiVersion: "batch/v1", kind: "Job",
        metadata: {
            name, namespace: NS, creationTimestamp: created, labels: PART_OF,
            ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name: owner, uid: `uid-${owner}`, controller: true, blockOwnerDeletion: true }],
        },
        status: { startTime: created, ...(outcome === "running" ? { active: 1 } : {}), ...(outcome === "failed" ? { failed: 1 } : {}),
            ...(outcome === "succeeded" ? { succeeded: 1, completionTime: at } : {}), ...(conditions.length ? { conditions } : {}) },
    };
}

/** A Deployment; `ready` undefined leaves status.readyReplicas out, as the controller does with none ready. */
function deployment(name: string, replicas: number, ready?: number): Obj {
    return {
        apiVersion: "apps/v1", kind: "Deployment",
        metadata: { name, namespace: NS, creationTimestamp: ago(100), labels: PART_OF, generation: 1 },
        spec: { replicas },
        status: { observedGeneration: 1, replicas, updatedReplicas: replicas, ...(ready !== undefined ? { readyReplicas: ready, availableReplicas: ready } : {}) },
    };
}

function workloads(objects: Obj[]): LiveWorkloads {
    const of = (kind: string) => objects.filter((o) => o.kind === kind);
    return {
        cronJobs: Object.fromEntries(of("CronJob").map((o) => [o.metadata.name, cronJobOf(o)])),
        jobs: of("Job").map(jobOf),
        deployments: Object.fromEntries(of("Deployment").map((o) => [o.metadata.name, deploymentOf(o)])),
    };
}

const PG = { cronJobs: { backup: "postgres-backup", drill: "postgres-restore-drill" } };
const lines = (fs: Finding[]) => fs.map((f) => findingLine("production", f));
const backup = (objects: Obj[], outputs: Obj = PG, limits = DEFAULT_LIMITS) => backupFindings("postgres", outputs, workloads(objects), NOW, limits);
const healthyDrill = cronJob("postgres-restore-drill", ago(2000), { lastScheduleTime: ago(48), lastSuccessfulTime: ago(47) });

describe("health check: reading API objects", () => {
    it("takes a CronJob's last success, a Job's outcome and owner, a Deployment's ready count, and tolerates missing status", () => {
        assert.deepEqual(cronJobOf(cronJob("c", ago(50), { lastScheduleTime: ago(2), lastSuccessfulTime: ago(1) })),
            { name: "c", created: ago(50), lastScheduleTime: ago(2), lastSuccessfulTime: ago(1) });
        assert.deepEqual(cronJobOf({ ...cronJob("c", ago(50)), status: undefined }), { name: "c", created: ago(50) });
        assert.deepEqual(jobOf(job("c", "c-1", ago(3), "failed", ago(2))),
            { name: "c-1", cronJob: "c", created: ago(3), outcome: "failed", finishedAt: ago(2), reason: "BackoffLimitExceeded" });
        assert.deepEqual(jobOf(job("c", "c-2", ago(3), "succeeded", ago(2))), { name: "c-2", cronJob: "c", created: ago(3), outcome: "succeeded", finishedAt: ago(2) });
        const oneOff = job("c", "pre-release-backup", ago(3), "running");
        delete oneOff.metadata.ownerReferences;
        assert.deepEqual(jobOf(oneOff), { name: "pre-release-backup", created: ago(3), outcome: "running" });
        assert.deepEqual(deploymentOf(deployment("worker-main", 2)), { name: "worker-main", replicas: 2, readyReplicas: 0 });
        assert.deepEqual(deploymentOf({ ...deployment("worker-main", 2), status: undefined }), { name: "worker-main", replicas: 2, readyReplicas: 0 });
    });
});

describe("health check: backups and restore drills", () => {
    it("a backup whose last success is under 26 h old is healthy; over it, one line names stack, what, the age and the limit", () => {
        const fresh = backup([cronJob("postgres-backup", ago(500), { lastSuccessfulTime: ago(25.9) }), healthyDrill]);
        assert.deepEqual(fresh.map((f) => f.passed), [true, true]);
        const stale = backup([cronJob("postgres-backup", ago(500), { lastScheduleTime: ago(2), lastSuccessfulTime: ago(30) }), healthyDrill,
            job("postgres-backup", "postgres-backup-29420000", ago(2), "failed", ago(1.5))]);
        assert.deepEqual(lines(stale.filter((f) => !f.passed)), [
            `production postgres backup: UNHEALTHY: last success 30.0 h ago (${ago(30)}, CronJob postgres-backup); last run postgres-backup-29420000 failed (BackoffLimitExceeded); limit 26 h since the last successful backup`,
        ]);
    });

    it("the limit is a flag: --backup-max-age-hours 48 accepts a 30 h old backup", () => {
        const f = backup([cronJob("postgres-backup", ago(500), { lastSuccessfulTime: ago(30) }), healthyDrill], PG, { ...DEFAULT_LIMITS, backupMaxAgeHours: 48 });
        assert.ok(f[0].passed, f[0].measured);
        assert.match(f[0].limit, /^48 h /);
    });

    it("a backup CronJob that never succeeded fails once it has existed longer than the limit, not before", () => {
        const young = backup([cronJob("postgres-backup", ago(3)), healthyDrill]);
        assert.ok(young[0].passed);
        assert.equal(young[0].measured, "no success since CronJob postgres-backup was created 3.0 h ago");
        const old = backup([cronJob("postgres-backup", ago(72), { lastScheduleTime: ago(10) }), healthyDrill]);
        assert.ok(!old[0].passed);
        assert.equal(old[0].measured, "no success since CronJob postgres-backup was created 72.0 h ago");
    });

    it("a CronJob the outputs name but the cluster lacks, or outputs that name none, fail", () => {
        const missing = backup([healthyDrill]);
        assert.deepEqual([missing[0].passed, missing[0].measured], [false, "CronJob postgres-backup not found"]);
        const unnamed = backup([healthyDrill], { destination: "pvc/postgres-backups" });
        assert.deepEqual(unnamed.map((f) => f.passed), [false, false]);
        assert.match(unnamed[0].measured, /the stack outputs name no CronJob \(backups\.postgres\.cronJobs\.backup/);
    });

    it("a restore drill passes when its last success is under 32 d old and its last run did not fail", () => {
        const ok = backup([cronJob("postgres-backup", ago(2000), { lastSuccessfulTime: ago(3) }),
            cronJob("postgres-restore-drill", ago(2000), { lastSuccessfulTime: ago(31 * 24) }),
            job("postgres-restore-drill", "postgres-restore-drill-1", ago(31 * 24 + 1), "succeeded", ago(31 * 24))]);
        assert.ok(ok[1].passed, ok[1].measured);
        const stale = backup([cronJob("postgres-backup", ago(2000), { lastSuccessfulTime: ago(3) }),
            cronJob("postgres-restore-drill", ago(2000), { lastSuccessfulTime: ago(33 * 24) })]);
        assert.deepEqual(lines(stale.filter((f) => !f.passed)), [
            `production postgres restore drill: UNHEALTHY: last success 33.0 d ago (${ago(33 * 24)}, CronJob postgres-restore-drill); limit last drill passed, 32 d since the last successful one`,
        ]);
    });

    it("a restore drill whose last run failed fails, however recent its last success; a later passing run clears it", () => {
        const objects = [cronJob("postgres-backup", ago(2000), { lastSuccessfulTime: ago(3) }),
            cronJob("postgres-restore-drill", ago(2000), { lastSuccessfulTime: ago(24 * 5) }),
            job("postgres-restore-drill", "postgres-restore-drill-1", ago(24 * 5 + 1), "succeeded", ago(24 * 5)),
            job("postgres-restore-drill", "postgres-restore-drill-2", ago(25), "failed", ago(24))];
        const failed = backup(objects);
        assert.deepEqual(lines(failed.filter((f) => !f.passed)), [
            `production postgres restore drill: UNHEALTHY: last run postgres-restore-drill-2 FAILED (BackoffLimitExceeded) 1.0 d ago; last success 5.0 d ago (${ago(24 * 5)}, CronJob postgres-restore-drill); limit last drill passed, 32 d since the last successful one`,
        ]);
        const rerun = backup([...objects, job("postgres-restore-drill", "postgres-restore-drill-3", ago(2), "succeeded", ago(1))]);
        assert.ok(rerun[1].passed, rerun[1].measured);
        const running = backup([...objects, job("postgres-restore-drill", "postgres-restore-drill-3", ago(0.5), "running")]);
        assert.ok(running[1].passed, "a drill still running has not failed");
    });
});

describe("health check: apps without a route", () => {
    const worker = { deployments: { main: "worker-main" }, replicas: { main: 2 } };
    const check = (outputs: Obj, objects: Obj[]) => replicaFinding("worker", outputs, workloads(objects));

    it("every track's Deployment with its replicas ready is healthy; fewer ready, or 0, fails with the counts", () => {
        assert.ok(check(worker, [deployment("worker-main", 2, 2)]).passed);
        const one = check(worker, [deployment("worker-main", 2, 1)]);
        assert.equal(findingLine("production", one),
            "production worker: UNHEALTHY: no route; Deployment worker-main 1/2 ready; limit every track's Deployment has its replicas ready, the app more than 0");
        const none = check(worker, [deployment("worker-main", 2)]);
        assert.equal(none.measured, "no route; Deployment worker-main 0/2 ready");
        assert.ok(!none.passed);
    });

    it("someone scaling a Deployment to 0 does not make it healthy: the declared count is the floor", () => {
        const r = check(worker, [deployment("worker-main", 0, 0)]);
        assert.deepEqual([r.passed, r.measured], [false, "no route; Deployment worker-main 0/2 ready"]);
    });

    it("an autoscaled track must have what the autoscaler asks for ready, at least its floor", () => {
        const scaled = { deployments: { main: "worker-main" }, replicas: { main: "autoscaled 2-10" } };
        assert.ok(check(scaled, [deployment("worker-main", 5, 5)]).passed);
        assert.equal(check(scaled, [deployment("worker-main", 5, 3)]).measured, "no route; Deployment worker-main 3/5 ready");
        assert.ok(!check(scaled, [deployment("worker-main", 5, 3)]).passed);
    });

    it("a track meant to have no pods is fine, but an app with none ready at all fails", () => {
        const canary = { deployments: { stable: "q-stable", canary: "q-canary" }, replicas: { stable: 0, canary: 2 } };
        assert.ok(check(canary, [deployment("q-stable", 0), deployment("q-canary", 2, 2)]).passed);
        const empty = { deployments: { main: "worker-main" }, replicas: { main: 0 } };
        assert.ok(!check(empty, [deployment("worker-main", 0)]).passed);
    });

    it("a Deployment missing from the cluster, or outputs that name none, fail", () => {
        assert.deepEqual(check(worker, []).measured, "no route; Deployment worker-main not found");
        assert.ok(!check(worker, []).passed);
        const old = check({ images: { main: "r/worker:2.7.0" } }, [deployment("worker-main", 2, 2)]);
        assert.ok(!old.passed);
        assert.match(old.measured, /the stack outputs name no Deployment \(apps\.worker\.deployments/);
    });
});

describe("health check: empty outputs", () => {
    it("no apps output, an empty one, or no namespace where the cluster must be read: each is a failure", () => {
        assert.deepEqual(outputsFindings({}).map((f) => [f.passed, f.measured]),
            [[false, "no `apps` output (never deployed, destroyed, or not this program's stack)"]]);
        assert.deepEqual(outputsFindings({ apps: {}, namespace: "x" }).map((f) => f.measured), ["`apps` names no app"]);
        assert.deepEqual(outputsFindings({ apps: { worker: {} } }).map((f) => f.measured), ["no `namespace` output"]);
        assert.deepEqual(outputsFindings({ apps: { web: { healthUrl: "http://x" } } }), []);
    });
});

describe("health check: flags", () => {
    it("defaults to 26 h and 32 d; both are flags; a bad value is one sentence", () => {
        const d = parseHealthArgs(["--stack", "s"]);
        assert.deepEqual([d.backupMaxAgeHours, d.drillMaxAgeDays, d.attempts], [26, 32, 3]);
        const f = parseHealthArgs(["--stack", "s", "--backup-max-age-hours", "30", "--drill-max-age-days", "40", "--context", "s=ctx=1"]);
        assert.deepEqual([f.backupMaxAgeHours, f.drillMaxAgeDays, f.contexts], [30, 40, { s: "ctx=1" }]);
        assert.throws(() => parseHealthArgs(["--stack", "s", "--drill-max-age-days", "0"]), /^Error: --drill-max-age-days needs a whole number \(got 0\), at least 1; usage/);
        assert.throws(() => parseHealthArgs(["--stack", "s", "--context", "s"]), /^Error: --context needs <stack>=<context> \(got s\)/);
    });
});

describe("health check: the command over a stack's outputs and its cluster", function () {
    this.timeout(30_000);
    let receiver: Receiver, web: App;
    before(async () => {
        receiver = await new Receiver().start();
        web = await new App().start();
    });
    after(async () => {
        await receiver.stop(); await web.stop();
    });
    beforeEach(() => {
        receiver.received.length = 0;
        web.status = 200;
    });

    const outputs = (): HealthOutputs => ({
        namespace: NS,
        apps: {
            web: { healthUrl: web.url(), images: { blue: "r/web:1.4.2" }, traffic: { active: "blue" } },
            worker: { deployments: { main: "worker-main" }, replicas: { main: 2 }, images: { main: "r/worker:2.7.0" }, traffic: { main: 100 } },
        },
        backups: { postgres: PG, redis: { cronJobs: { backup: "redis-backup", drill: "redis-restore-drill" } } },
    });
    const healthy = () => [
        cronJob("postgres-backup", ago(2000), { lastSuccessfulTime: ago(9) }), healthyDrill,
        cronJob("redis-backup", ago(2000), { lastSuccessfulTime: ago(9) }), cronJob("redis-restore-drill", ago(2000), { lastSuccessfulTime: ago(47) }),
        deployment("worker-main", 2, 2),
    ];
    async function check(o: HealthOutputs, objects: Obj[] | Error): Promise<{ code: number; out: string[]; reads: Obj[] }> {
        const out: string[] = [];
        const reads: Obj[] = [];
        const options: HealthOptions = {
            ...parseHealthArgs(["--stack", "production", "--attempts", "2", "--interval", "0"]),
            outputsFiles: {}, env: { PLATFORM_WEBHOOK_URL: receiver.url }, out: (l) => out.push(l), now: () => NOW,
            readWorkloads: async (q) => {
                reads.push(q);
                if (objects instanceof Error) throw objects;
                return workloads(objects);
            },
        };
        // The outputs as `pulumi stack output --json` writes them (--outputs).
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-health-unit-")), "production.json");
        fs.writeFileSync(file, JSON.stringify(o));
        options.outputsFiles = { production: file };
        options.contexts = { production: "gke_acme_europe-west1_main" };
        const r = await healthcheck(options);
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
        return { code: r.code, out, reads };
    }

    it("everything healthy: one line per check, exit 0, no notice, one cluster read in the stack's namespace and context", async () => {
        const r = await check(outputs(), healthy());
        assert.equal(r.code, 0, r.out.join("\n"));
        assert.deepEqual(r.out.map((l) => l.replace(/:.*/, "")), [
            "production web", "production worker", "production postgres backup", "production postgres restore drill", "production redis backup", "production redis restore drill",
        ]);
        assert.ok(r.out.every((l) => / healthy: /.test(l)), r.out.join("\n"));
        assert.deepEqual(r.reads, [{ namespace: NS, context: "gke_acme_europe-west1_main" }]);
        assert.equal(receiver.received.length, 0);
    });

    it("a stale backup, a failed drill and a worker with 0 ready: exit 1 and all of them in one notice", async () => {
        const objects = healthy().filter((o) => !["postgres-backup", "redis-restore-drill", "worker-main"].includes(o.metadata.name));
        objects.push(cronJob("postgres-backup", ago(2000), { lastSuccessfulTime: ago(50) }),
            cronJob("redis-restore-drill", ago(2000), { lastSuccessfulTime: ago(24 * 20) }),
            job("redis-restore-drill", "redis-restore-drill-29400000", ago(30), "failed", ago(29)),
            deployment("worker-main", 2));
        const r = await check(outputs(), objects);
        assert.equal(r.code, 1);
        assert.deepEqual(r.out.filter((l) => /UNHEALTHY/.test(l)), [
            "production worker: UNHEALTHY: no route; Deployment worker-main 0/2 ready; limit every track's Deployment has its replicas ready, the app more than 0",
            `production postgres backup: UNHEALTHY: last success 50.0 h ago (${ago(50)}, CronJob postgres-backup); limit 26 h since the last successful backup`,
            `production redis restore drill: UNHEALTHY: last run redis-restore-drill-29400000 FAILED (BackoffLimitExceeded) 1.2 d ago; last success 20.0 d ago (${ago(480)}, CronJob redis-restore-drill); limit last drill passed, 32 d since the last successful one`,
        ]);
        assert.equal(receiver.received.length, 1, "one notice per stack");
        const text = receiver.received[0].text as string;
        assert.match(text, /^\[production\] health check FAILED: worker: no route; Deployment worker-main 0\/2 ready \(limit .*\); postgres backup: last success 50\.0 h ago .*; redis restore drill: last run redis-restore-drill-29400000 FAILED/);
        assert.match(text, /\n• worker: versions main 2\.7\.0; traffic \{"main":100\}/);
        assert.ok(r.out.includes("notify: health-failed announced"));
    });

    it("a cluster that cannot be read fails the stack (never a silent pass); the URL checks still run", async () => {
        const r = await check(outputs(), new Error("platform: cannot read the backups and Deployments from the cluster: no kubeconfig (set KUBECONFIG or create ~/.kube/config)"));
        assert.equal(r.code, 1);
        assert.deepEqual(r.out.filter((l) => !l.startsWith("notify:")), [
            "production cluster: UNHEALTHY: platform: cannot read the backups and Deployments from the cluster: no kubeconfig (set KUBECONFIG or create ~/.kube/config); limit the backups and Deployments of namespace production readable",
            `production web: healthy: ${web.url()} answered HTTP 200 (attempt 1 of 2); limit HTTP 200 within 2 attempts`,
        ]);
        assert.equal(receiver.received.length, 1);
    });

    it("a stack with no apps output fails and is announced", async () => {
        const r = await check({}, []);
        assert.equal(r.code, 1);
        assert.deepEqual(r.out[0], "production stack outputs: UNHEALTHY: no `apps` output (never deployed, destroyed, or not this program's stack); limit at least one app");
        assert.equal(receiver.received.length, 1);
    });

    it("only apps with routes and no backups: the cluster is not read", async () => {
        const r = await check({ apps: { web: { healthUrl: web.url() } } }, new Error("must not be read"));
        assert.equal(r.code, 0, r.out.join("\n"));
        assert.deepEqual(r.reads, []);
    });
});

describe("health check: what the stack outputs name exists in the program", function () {
    this.timeout(120_000);
    it("staging and production: every app's track Deployments and every backed-up service's CronJobs", async () => {
        for (const stack of ["staging", "production"]) {
            const r = await run(stack);
            const apps = Object.entries(r.outputs.apps as Record<string, Obj>);
            assert.ok(apps.length > 0);
            for (const [app, a] of apps) {
                assert.deepEqual(Object.keys(a.deployments).sort(), Object.keys(a.images).sort(), `${stack} ${app}: a Deployment per track`);
                for (const name of Object.values(a.deployments) as string[]) assert.ok(r.has("Deployment", name), `${stack} ${app}: Deployment ${name}`);
            }
            const backups = Object.entries(r.outputs.backups as Record<string, Obj>);
            assert.deepEqual(backups.map(([s]) => s).sort(), ["postgres", "redis"], stack);
            for (const [service, b] of backups) {
                assert.equal(r.object("CronJob", b.cronJobs.backup).spec.jobTemplate.spec.template.spec.containers.length, 1, `${stack} ${service}`);
                assert.ok(r.has("CronJob", b.cronJobs.drill), `${stack} ${service} drill`);
            }
        }
    });
});
