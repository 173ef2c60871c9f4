import { strict as assert } from "assert";
import { Result, run } from "./harness";
import { canConnect } from "./netpolicy";
import { problemsOf, refused } from "./validation/helpers";

// The restore drill restores into a scratch server: it runs as its own identity that can only read
// backups, and never holds the database password. Backup buckets can carry a retention policy,
// locked only on request.

const drillPod = (r: Result, kind: string) => r.object("CronJob", `${kind}-restore-drill`).spec.jobTemplate.spec.template;
const containers = (spec: any) => [...(spec.initContainers ?? []), ...spec.containers];
const iam = (r: Result, type: string) => r.resources.filter((x) => x.type === type);

describe("restore drill identity and bucket retention", () => {
    let production: Result;
    let staging: Result;
    before(async () => {
        production = await run("production");
        staging = await run("staging");
    });

    for (const stack of ["staging", "production"]) {
        it(`${stack}: the drill runs as its own ServiceAccount, without the password or connection settings`, () => {
            const r = stack === "staging" ? staging : production;
            for (const kind of ["postgres", "redis"]) {
                const t = drillPod(r, kind);
                assert.equal(t.spec.serviceAccountName, `${kind}-restore-drill`);
                assert.ok(r.has("ServiceAccount", `${kind}-restore-drill`));
                const text = JSON.stringify(t.spec);
                assert.ok(!text.includes("secretKeyRef") && !text.includes(`${kind}-credentials`), `${kind} drill holds a credential: ${text.slice(0, 200)}`);
                for (const c of containers(t.spec)) {
                    const backups = (c.volumeMounts ?? []).find((m: any) => m.mountPath === "/backups");
                    if (backups) assert.equal(backups.readOnly, true, `${kind} drill can write the backups`);
                }
                // The backup itself still gets the password.
                assert.ok(JSON.stringify(r.object("CronJob", `${kind}-backup`).spec).includes(`${kind}-credentials`));
            }
        });
    }

    it("production: the drill's Google account may only read the bucket; the backup's may write it", () => {
        const members = iam(production, "gcp:storage/bucketIAMMember:BucketIAMMember").map((m) => `${m.name} ${m.inputs.role}`).sort();
        assert.deepEqual(members, [
            "postgres-backup-writer roles/storage.objectAdmin", "postgres-restore-drill-reader roles/storage.objectViewer",
            "redis-backup-writer roles/storage.objectAdmin", "redis-restore-drill-reader roles/storage.objectViewer",
        ]);
        const wi = iam(production, "gcp:serviceaccount/iAMMember:IAMMember").map((m) => m.inputs.member).sort();
        assert.ok(wi.some((m: string) => m.endsWith("[platform-production/postgres-restore-drill]")), wi.join("\n"));
        const drillSa = production.object("ServiceAccount", "postgres-restore-drill");
        assert.ok(drillSa.metadata.annotations?.["iam.gke.io/gcp-service-account"], "Workload Identity annotation");
    });

    it("lets the drill reach Google (gcs) but never a live data service", () => {
        const endpoint = (r: Result, owner: string) => {
            const m = r.object(owner.split("/")[0], owner.split("/")[1]);
            const t = m.kind === "CronJob" ? m.spec.jobTemplate.spec.template : m.spec.template;
            return { labels: t.metadata.labels, namespace: m.metadata.namespace! };
        };
        for (const r of [staging, production]) {
            assert.ok(!canConnect(r, endpoint(r, "CronJob/postgres-restore-drill"), endpoint(r, "StatefulSet/postgres"), 5432));
            assert.ok(canConnect(r, endpoint(r, "CronJob/postgres-backup"), endpoint(r, "StatefulSet/postgres"), 5432));
        }
        const metadataServer = { namespace: "", labels: {}, ip: "169.254.169.254" };
        assert.ok(canConnect(production, endpoint(production, "CronJob/postgres-restore-drill"), metadataServer, 80));
        assert.ok(!canConnect(staging, endpoint(staging, "CronJob/postgres-restore-drill"), metadataServer, 80));
    });

    it("keeps versioning and no retention policy by default", () => {
        const bucket = production.resources.find((x) => x.type === "gcp:storage/bucket:Bucket" && x.name === "postgres-backups")!;
        assert.equal(bucket.inputs.versioning?.enabled, true);
        assert.equal(bucket.inputs.retentionPolicy, undefined);
    });

    it("sets a retention policy when configured, locked only with locked: true", async () => {
        const unlocked = await run("production", { "platform:postgres.backup.retention": { days: 7 } });
        const b = unlocked.resources.find((x) => x.type === "gcp:storage/bucket:Bucket" && x.name === "postgres-backups")!;
        assert.deepEqual(b.inputs.retentionPolicy, { retentionPeriod: String(7 * 86400), isLocked: false });
        assert.equal(b.inputs.versioning, undefined, "GCS does not combine retention policies with versioning");
        const locked = await run("production", { "platform:postgres.backup.retention": { days: 5, locked: true } });
        assert.equal(locked.resources.find((x) => x.type === "gcp:storage/bucket:Bucket" && x.name === "postgres-backups")!.inputs.retentionPolicy.isLocked, true);
    });

    it("refuses a retention longer than the daily window, or on a pvc destination", () => {
        refused(problemsOf("production", { "platform:postgres.backup.retention": { days: 30 } }), "platform:postgres.backup.retention.days", "from 1 to 7");
        refused(problemsOf("staging", { "platform:postgres.backup.retention": { days: 3 } }), "platform:postgres.backup.retention", "gcs");
        refused(problemsOf("production", { "platform:postgres.backup.retention": { days: 3, locked: "yes" } }), "platform:postgres.backup.retention.locked");
    });
});
