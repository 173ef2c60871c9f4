import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { backupAccountId } from "../components/backup";
import { backupBucketName, bucketRetentionDays, NONCURRENT_VERSION_DAYS, preMigrationBackupName } from "../components/plan/backup";
import { describe_, diff, MANAGED, readStackFile, Result, run } from "./harness";

// What the stack declares for backups (components/backup.ts); the scripts themselves are tested
// against real servers in tests/backup/.

const BUCKET = "gcp:storage/bucket:Bucket";
const ofType = (r: Result, type: string) => r.resources.filter((x) => x.type === type);
const podOf = (r: Result, cronJob: string) => r.object("CronJob", cronJob).spec.jobTemplate.spec.template.spec;
const commands = (containers: any[] | undefined) => (containers ?? []).map((c) => `${c.image} ${c.command.join(" ")}`);
const envOf = (c: any) => Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
const migrationJobs = (r: Result) => r.ofKind("Job").filter((j) => j.metadata.labels?.["app.kubernetes.io/component"] === "migration");
const backupJobs = (r: Result) => r.ofKind("Job").filter((j) => j.metadata.labels?.["app.kubernetes.io/component"] === "backup");

describe("backups", () => {
    const r: Record<string, Result> = {};
    before(async () => {
        r.local = await run("local");
        r.staging = await run("staging");
        r.production = await run("production");
    });

    describe("staging: the pvc variant", () => {
        it("backs up Postgres and Redis daily to their own volumes, with a monthly restore drill each", () => {
            const s = r.staging;
            assert.deepEqual(s.ofKind("CronJob").map((c) => `${c.metadata.name} ${c.spec.schedule}`).sort(), [
                "postgres-backup 15 2 * * *", "postgres-restore-drill 0 5 1 * *", "redis-backup 45 2 * * *", "redis-restore-drill 30 5 1 * *",
            ]);
            assert.deepEqual(commands(podOf(s, "postgres-backup").containers), ["postgres:16-bookworm bash /scripts/pg-backup.sh run"]);
            assert.deepEqual(commands(podOf(s, "redis-backup").containers), ["redis:7.2-bookworm bash /scripts/redis-backup.sh run"]);
            assert.deepEqual(commands(podOf(s, "postgres-restore-drill").containers), ["postgres:16-bookworm bash /scripts/restore-drill.sh run pg"]);
            assert.deepEqual(commands(podOf(s, "redis-restore-drill").containers), ["redis:7.2-bookworm bash /scripts/restore-drill.sh run redis"]);
            for (const kind of ["postgres", "redis"]) {
                const pvc = s.object("PersistentVolumeClaim", `${kind}-backups`);
                assert.equal(pvc.spec.resources.requests.storage, "50Gi");
                const pod = podOf(s, `${kind}-backup`);
                assert.equal(pod.volumes.find((v: any) => v.name === "backups").persistentVolumeClaim.claimName, `${kind}-backups`);
                const env = envOf(pod.containers[0]);
                assert.equal(env.BACKUP_DEST, "pvc");
                assert.equal(env.BACKUP_DIR, "/backups");
                assert.deepEqual([env.BACKUP_KEEP_DAILY, env.BACKUP_KEEP_WEEKLY, env.BACKUP_KEEP_MONTHLY], ["7", "4", "0"]);
            }
            assert.deepEqual(ofType(s, BUCKET), [], "no bucket without Google Cloud");
            assert.deepEqual(backupJobs(s), [], "staging does not back up before migrations by default");
        });

        it("schedules deliberately: never two runs at once, no stacked catch-up, no retry, a deadline, bounded history", () => {
            for (const c of r.staging.ofKind("CronJob")) {
                assert.equal(c.spec.concurrencyPolicy, "Forbid", c.metadata.name);
                assert.equal(c.spec.startingDeadlineSeconds, 3600, c.metadata.name);
                assert.equal(c.spec.timeZone, "Etc/UTC", c.metadata.name);
                assert.deepEqual([c.spec.successfulJobsHistoryLimit, c.spec.failedJobsHistoryLimit], [3, 5], c.metadata.name);
                const job = c.spec.jobTemplate.spec;
                assert.equal(job.backoffLimit, 0, c.metadata.name);
                assert.equal(job.activeDeadlineSeconds, 3 * 3600, c.metadata.name);
                assert.equal(job.template.spec.restartPolicy, "Never", c.metadata.name);
            }
        });

        it("runs restricted, with requests and limits, and reads the password from a file, never from env", () => {
            for (const c of r.staging.ofKind("CronJob")) {
                const pod = c.spec.jobTemplate.spec.template.spec;
                assert.deepEqual([pod.securityContext.runAsUser, pod.securityContext.fsGroup, pod.securityContext.runAsNonRoot], [999, 999, true]);
                assert.equal(pod.automountServiceAccountToken, false);
                for (const ctr of [...(pod.initContainers ?? []), ...pod.containers]) {
                    const where = `${c.metadata.name}/${ctr.name}`;
                    assert.deepEqual(ctr.securityContext.capabilities.drop, ["ALL"], where);
                    assert.equal(ctr.securityContext.allowPrivilegeEscalation, false, where);
                    assert.ok(ctr.resources.requests.memory && ctr.resources.limits.memory, where);
                    const names = ctr.env.map((e: any) => e.name);
                    assert.ok(!names.includes("PGPASSWORD") && !names.includes("REDISCLI_AUTH"), where);
                    assert.ok(!ctr.env.some((e: any) => e.valueFrom?.secretKeyRef?.key === "password"), `${where}: password in env`);
                }
                // The restore drill holds no password at all (tests/drill-identity.test.ts).
                if (c.metadata.name.endsWith("-restore-drill")) continue;
                const credentials = pod.volumes.find((v: any) => v.name === "credentials").secret;
                assert.deepEqual(credentials.items, [{ key: "password", path: "password" }]);
                // Group-readable for fsGroup 999 (the scripts run as uid 999, not root).
                assert.equal(credentials.defaultMode, 0o440);
            }
        });

        it("lets the backup pods reach their database, and keeps the drill pods away from it", () => {
            const s = r.staging;
            const allowed = (kind: string) => s.object("NetworkPolicy", `${kind}-allow-clients`).spec.ingress.flatMap((i: any) => i.from.map((f: any) => f.podSelector.matchLabels));
            for (const kind of ["postgres", "redis"]) {
                const [selector] = allowed(kind);
                const labels = (cron: string) => s.object("CronJob", cron).spec.jobTemplate.spec.template.metadata.labels;
                const matches = (l: Record<string, string>) => Object.entries(selector).every(([k, v]) => l[k] === v);
                assert.ok(matches(labels(`${kind}-backup`)), `${kind}-backup may connect`);
                assert.ok(!matches(labels(`${kind}-restore-drill`)), `${kind}-restore-drill never connects to the live server`);
            }
        });

        it("mounts exactly the repository's scripts, so pods run what tests/backup exercises", () => {
            const data = r.staging.object("ConfigMap", "backup-scripts").data;
            const dir = path.join(__dirname, "..", "scripts", "backup");
            const files = fs.readdirSync(dir).filter((f) => f.endsWith(".sh")).sort();
            assert.deepEqual(Object.keys(data).sort(), files);
            for (const f of files) assert.equal(data[f], fs.readFileSync(path.join(dir, f), "utf8"), f);
            assert.ok(files.includes("pg-backup.sh") && files.includes("restore-drill.sh"));
        });

        it("the local stack has no backups unless enabled", async () => {
            assert.deepEqual(r.local.ofKind("CronJob"), []);
            assert.deepEqual(r.local.outputs.backups, {});
            const on = await run("local", { "platform:postgres.backup.enabled": true });
            assert.deepEqual(on.ofKind("CronJob").map((c) => c.metadata.name).sort(), ["postgres-backup", "postgres-restore-drill"]);
        });
    });

    describe("production: off-site in Google Cloud Storage", () => {
        it("declares a locked-down, versioned bucket per service whose lifecycle backs up the retention", () => {
            const buckets = ofType(r.production, BUCKET);
            assert.deepEqual(buckets.map((b) => b.inputs.name).sort(), ["acme-production-production-postgres-backups", "acme-production-production-redis-backups"]);
            for (const b of buckets) {
                assert.equal(b.inputs.uniformBucketLevelAccess, true);
                assert.equal(b.inputs.publicAccessPrevention, "enforced");
                assert.equal(b.inputs.versioning.enabled, true);
                assert.equal(b.inputs.forceDestroy, false);
                assert.ok(b.protect && b.retainOnDelete, `${b.inputs.name} is protected`);
            }
            const pg = buckets.find((b) => b.name === "postgres-backups")!;
            // keepMonthly 6 in Pulumi.production.yaml: six months of 31 days and a week of slack.
            assert.deepEqual(pg.inputs.lifecycleRules.map((l: any) => [l.action.type, l.condition]), [
                ["Delete", { age: 6 * 31 + 7, withState: "LIVE" }],
                ["Delete", { daysSinceNoncurrentTime: NONCURRENT_VERSION_DAYS, withState: "ARCHIVED" }],
            ]);
        });

        it("writes through a Google service account limited to its bucket, bound to the job's ServiceAccount by Workload Identity", () => {
            const p = r.production;
            for (const kind of ["postgres", "redis"]) {
                const account = ofType(p, "gcp:serviceaccount/account:Account").find((a) => a.name === `${kind}-backup`)!;
                const email = `${account.inputs.accountId}@acme-production.iam.gserviceaccount.com`;
                const grants = ofType(p, "gcp:storage/bucketIAMMember:BucketIAMMember").filter((g) => g.inputs.member === `serviceAccount:${email}`);
                assert.deepEqual(grants.map((g) => [g.inputs.bucket, g.inputs.role]), [[`acme-production-production-${kind}-backups`, "roles/storage.objectAdmin"]]);
                const wi = ofType(p, "gcp:serviceaccount/iAMMember:IAMMember").find((m) => m.name === `${kind}-backup-workload-identity`)!;
                assert.equal(wi.inputs.role, "roles/iam.workloadIdentityUser");
                assert.equal(wi.inputs.member, `serviceAccount:acme-production.svc.id.goog[platform-production/${kind}-backup]`);
                assert.match(wi.inputs.serviceAccountId, new RegExp(`/${email}$`));
                const ksa = p.object("ServiceAccount", `${kind}-backup`);
                assert.equal(ksa.metadata.annotations?.["iam.gke.io/gcp-service-account"], email);
                assert.equal(podOf(p, `${kind}-backup`).serviceAccountName, `${kind}-backup`);
            }
            assert.ok(!ofType(p, "gcp:projects/iAMMember:IAMMember").some((m) => /backup/.test(m.inputs.member)), "no project-wide role");
        });

        it("dumps and verifies in the database image, then stores with gcloud; the drill fetches, then checks", () => {
            const p = r.production;
            const images = readStackFile("production")["platform:images"] as Record<string, string>;
            const CLOUD_CLI_IMAGE = images.cloudCli;
            const pg = podOf(p, "postgres-backup");
            assert.deepEqual(commands(pg.initContainers), [`${images.postgres} bash /scripts/pg-backup.sh dump`]);
            assert.deepEqual(commands(pg.containers), [`${CLOUD_CLI_IMAGE} bash /scripts/pg-backup.sh store`]);
            assert.equal(envOf(pg.containers[0]).BACKUP_GCS_URL, "gs://acme-production-production-postgres-backups/postgres");
            assert.deepEqual([envOf(pg.containers[0]).BACKUP_KEEP_DAILY, envOf(pg.containers[0]).BACKUP_KEEP_MONTHLY], ["7", "6"]);
            const drill = podOf(p, "redis-restore-drill");
            assert.deepEqual(commands(drill.initContainers), [`${CLOUD_CLI_IMAGE} bash /scripts/restore-drill.sh fetch redis`]);
            assert.deepEqual(commands(drill.containers), [`${images.redis} bash /scripts/restore-drill.sh check redis`]);
            // The scratch Redis loads the whole RDB: it gets the live server's memory.
            assert.equal(drill.containers[0].resources.limits.memory, "1Gi");
            assert.ok(!pg.volumes.some((v: any) => v.name === "backups"), "no volume for the gcs destination");
            assert.deepEqual(p.ofKind("PersistentVolumeClaim").filter((c) => /backups/.test(c.metadata.name)), []);
        });

        it("protects a production backup volume like the data", async () => {
            const p = await run("production", { "platform:postgres.backup.destination": "pvc" });
            const pvc = p.resource("PersistentVolumeClaim", "postgres-backups");
            assert.ok(pvc.protect && pvc.retainOnDelete);
            assert.ok(!r.staging.resource("PersistentVolumeClaim", "postgres-backups").protect, "staging's is not");
        });

        it("with Cloud SQL, backs up over TLS; with Memorystore, relies on its RDB snapshots (it refuses SYNC)", async () => {
            const managed = await run("production", MANAGED);
            assert.deepEqual(managed.ofKind("CronJob").map((c) => c.metadata.name).sort(), ["postgres-backup", "postgres-restore-drill"]);
            const pg = podOf(managed, "postgres-backup");
            assert.equal(envOf(pg.initContainers[0]).PGSSLMODE, "require");
            assert.equal(envOf(podOf(r.production, "postgres-backup").initContainers[0]).PGSSLMODE, undefined);
        });
    });

    describe("a backup before each production migration", () => {
        it("runs a verified backup Job that the migration Job waits for", () => {
            const p = r.production;
            const [migration] = migrationJobs(p);
            assert.ok(migration, "production's api has a migration");
            const backup = p.object("Job", preMigrationBackupName(migration.metadata.name));
            const postgresImage = (readStackFile("production")["platform:images"] as Record<string, string>).postgres;
            assert.deepEqual(commands(backup.spec.template.spec.initContainers), [`${postgresImage} bash /scripts/pg-backup.sh dump`]);
            assert.deepEqual(backup.spec.template.spec, podOf(p, "postgres-backup"), "the same pod as the daily backup");
            assert.equal(backup.spec.backoffLimit, 0);
            assert.ok(p.dependsOn("Job", migration.metadata.name).includes(`Job/${backup.metadata.name}`));
        });

        it("a new version's migration gets its own backup; the running version's backup is not run again", async () => {
            const canary = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 });
            const added = migrationJobs(canary).map((j) => j.metadata.name).filter((n) => !migrationJobs(r.production).some((m) => m.metadata.name === n));
            assert.equal(added.length, 1);
            // (the pre-deploy backup of the release is tests/deploy/backup.test.ts's)
            const jobs = diff(r.production, canary).filter((c) => c.kind === "Job" && !/-smoke-|-release-[0-9a-f]{8}-backup$|-analysis-[0-9a-f]{8}$/.test(c.name));
            assert.deepEqual(describe_(jobs), [`create Job/${added[0]}`, `create Job/${preMigrationBackupName(added[0])}`].sort());
            assert.ok(canary.dependsOn("Job", added[0]).includes(`Job/${preMigrationBackupName(added[0])}`));
            // Aborting the canary runs no backup: its Jobs go away; the one Job created verifies stable.
            const abort = diff(canary, r.production).filter((c) => c.kind === "Job" && !/^api-analysis-/.test(c.name));
            assert.ok(abort.every((c) => c.op === "delete"), describe_(abort).join(", "));
        });

        it("is off where beforeMigrations is false, and follows the key where set", async () => {
            const off = await run("production", { "platform:postgres.backup.beforeMigrations": false, "platform:postgres.backup.beforeDeploy": false });
            assert.deepEqual(backupJobs(off), []);
            assert.deepEqual(migrationJobs(off)[0].metadata.name, migrationJobs(r.production)[0].metadata.name);
            const staging = await run("staging", { "platform:postgres.backup.beforeMigrations": true });
            assert.deepEqual(backupJobs(staging).map((j) => j.metadata.name).sort(), migrationJobs(staging).map((j) => preMigrationBackupName(j.metadata.name)).sort());
        });
    });

    it("outputs where each service's backups go and when they run", () => {
        assert.deepEqual(r.production.outputs.backups.postgres, {
            destination: "gs://acme-production-production-postgres-backups/postgres",
            bucket: "acme-production-production-postgres-backups",
            serviceAccount: "production-postgres-bak@acme-production.iam.gserviceaccount.com",
            drillServiceAccount: "production-postgres-drill@acme-production.iam.gserviceaccount.com",
            schedule: "15 2 * * *", restoreDrill: "0 5 1 * *", keep: { daily: 7, weekly: 4, monthly: 6 },
            cronJobs: { backup: "postgres-backup", drill: "postgres-restore-drill" },
        });
        assert.equal(r.staging.outputs.backups.redis.destination, "pvc/redis-backups");
    });
});

describe("backup plan", () => {
    it("bucket lifecycle outlives the longest retention by a week", () => {
        const b = (keepDaily: number, keepWeekly: number, keepMonthly: number) => bucketRetentionDays({ keepDaily, keepWeekly, keepMonthly } as never);
        assert.equal(b(7, 4, 0), 35);
        assert.equal(b(7, 0, 0), 14);
        assert.equal(b(30, 1, 0), 37);
        assert.equal(b(7, 4, 12), 12 * 31 + 7);
        assert.equal(b(0, 0, 0), 8);
    });

    it("bucket names and service account ids fit Google's limits", () => {
        const long = backupBucketName("a-very-long-project-id-123456", "production-europe-west1-blue", "postgres");
        assert.ok(long.length <= 63 && /^[a-z0-9][-a-z0-9]*[a-z0-9]$/.test(long), long);
        assert.notEqual(long, backupBucketName("a-very-long-project-id-123456", "production-europe-west1-green", "postgres"));
        assert.equal(backupBucketName("acme-staging", "staging", "redis"), "acme-staging-staging-redis-backups");
        for (const stack of ["production", "a-stack-with-a-very-long-name-indeed", "x"]) {
            for (const kind of ["postgres", "redis"] as const) {
                const id = backupAccountId(stack, kind);
                assert.ok(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/.test(id), id);
            }
        }
    });
});
