import * as assert from "assert";
import { productionPostgresBackups } from "../../policy/policies";
import { MANAGED, Result, run } from "../harness";
import { altered, checkStack } from "./check";

// production-postgres-backups on what the program renders: the backup CronJobs of
// components/backup.ts (contract: scripts/backup/README.md) and, with Cloud SQL, its own backups.

const messages = (v: { message: string }[]) => v.map((x) => x.message).join("\n");
const cronJobs = (r: Result) => r.resources.filter((x) => x.type === "kubernetes:batch/v1:CronJob");

describe("policy production-postgres-backups", () => {
    const rendered: Record<string, Result> = {};
    before(async () => {
        rendered.staging = await run("staging");
        rendered.production = await run("production");
        rendered.managed = await run("production", MANAGED);
    });

    it("passes production as rendered (backup CronJob with verification, 7 daily copies, restore drill)", async () => {
        assert.ok(cronJobs(rendered.production).length > 0, "production renders its backup CronJobs");
        assert.deepEqual(await checkStack(productionPostgresBackups, rendered.production.resources), []);
        assert.deepEqual(await checkStack(productionPostgresBackups, rendered.managed.resources), []);
    });

    it("fails production keeping fewer than 7 daily copies", async () => {
        const r = await run("production", { "platform:postgres.backup.keepDaily": 3 });
        const v = await checkStack(productionPostgresBackups, r.resources);
        assert.match(messages(v), /keeps 3 daily copies \(BACKUP_KEEP_DAILY\); production needs at least 7/);
    });

    it("fails production without the backup CronJob", async () => {
        const without = rendered.production.resources.filter((x) => !(x.type === "kubernetes:batch/v1:CronJob" && x.inputs.metadata.labels?.["app.kubernetes.io/name"] === "postgres-backup"));
        const v = await checkStack(productionPostgresBackups, without);
        assert.match(messages(v), /no CronJob labelled app\.kubernetes\.io\/component=backup, app\.kubernetes\.io\/name=postgres-backup/);
    });

    it("accepts the Cloud SQL backups production renders (enabled, point-in-time recovery, 7 copies)", async () => {
        const v = await checkStack(productionPostgresBackups, rendered.managed.resources);
        assert.deepEqual(v.filter((x) => /Cloud SQL/.test(x.message)), []);
    });

    it("fails production whose Cloud SQL has no point-in-time recovery", async () => {
        const sql = rendered.managed.resources.find((x) => x.type === "gcp:sql/databaseInstance:DatabaseInstance")!;
        const off = altered(sql, (i) => (i.settings.backupConfiguration.pointInTimeRecoveryEnabled = false));
        const v = await checkStack(productionPostgresBackups, rendered.managed.resources.map((x) => (x === sql ? off : x)));
        assert.ok(v.some((x) => x.message === "Cloud SQL point-in-time recovery is off"), messages(v));
        assert.ok(!v.some((x) => /Cloud SQL automated backups|Cloud SQL keeps/.test(x.message)), "only the broken setting is reported");
    });

    it("does not apply outside production", async () => {
        const staging = rendered.staging.resources.filter((x) => x.type !== "kubernetes:batch/v1:CronJob");
        assert.deepEqual(await checkStack(productionPostgresBackups, staging), []);
    });
});
