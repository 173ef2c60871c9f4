import { strict as assert } from "assert";
import { describe_, diff, Result, run, runInvalid } from "../harness";
import { preReleaseBackupName } from "../../components/plan/release";

// A verified Postgres backup before every production deploy of a new version
// (postgres.backup.beforeDeploy): one Job per app and version, named after that release, that the
// version's migration and Deployment wait for — so its failure stops the update before anything of
// that version changes, and traffic never moves to it.

const releaseBackups = (r: Result) => r.ofKind("Job").filter((j) => /-release-[0-9a-f]{8}-backup$/.test(j.metadata.name)).map((j) => j.metadata.name).sort();
const CANARY = { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 };

describe("backup before every production deploy", () => {
    it("a new canary version: its verified backup runs before its migration and Deployment, with the daily backup's pod", async () => {
        const r = await run("production", CANARY);
        const name = preReleaseBackupName("api", "2.8.0");
        const job = r.object("Job", name);
        const daily = r.object("CronJob", "postgres-backup").spec.jobTemplate.spec.template.spec;
        assert.deepEqual(job.spec.template.spec, daily, "the same verified backup as the daily one");
        assert.equal(job.spec.backoffLimit, 0);
        assert.ok(r.dependsOn("Deployment", "api-canary").includes(`Job/${name}`));
        const migration = r.ofKind("Job").find((j) => j.metadata.labels?.["app.kubernetes.io/component"] === "migration" && j.metadata.labels?.["app.kubernetes.io/version"] === "2.8.0")!;
        assert.ok(r.dependsOn("Job", migration.metadata.name).includes(`Job/${name}`));
        // the route moves only after the canary's Deployment, so after the backup
        assert.ok(r.dependsOn("HTTPRoute", "api").includes("Deployment/api-canary"));
        assert.deepEqual(releaseBackups(r), ["api-2.7.0", "api-2.8.0", "web-1.4.2", "worker-2.7.0"].map((v) => preReleaseBackupName(v.split("-")[0], v.split("-")[1])).sort());
    });

    it("only a new version runs one: a weight step, a switch, an abort and an unchanged stack run none", async () => {
        const before = await run("production");
        const at10 = await run("production", CANARY);
        assert.deepEqual(describe_(diff(before, at10)).filter((c) => /-backup$/.test(c) && !/-migrate-/.test(c)), [`create Job/${preReleaseBackupName("api", "2.8.0")}`]);
        assert.deepEqual(diff(at10, await run("production", CANARY)), []);
        const at50 = await run("production", { ...CANARY, "platform:apps.api.canary.weight": 50 });
        assert.deepEqual(releaseBackups(at50), releaseBackups(at10));
        // (an abort verifies stable: that analysis Job is the one Job it creates)
        const abort = diff(at10, before).filter((c) => c.kind === "Job" && !/^api-analysis-/.test(c.name));
        assert.ok(abort.every((c) => c.op === "delete"), describe_(abort).join(", "));
        const switched = await run("production", { "platform:apps.web.blueGreen.activeColor": "blue" });
        assert.deepEqual(releaseBackups(switched), releaseBackups(before));
        // a new tag on the idle colour, or a rolling release, is a release
        const idle = await run("production", { "platform:apps.web.blueGreen.blue": "1.6.0" });
        assert.ok(releaseBackups(idle).includes(preReleaseBackupName("web", "1.6.0")));
        assert.ok((await run("production", { "platform:apps.worker.tag": "2.7.1" })).dependsOn("Deployment", "worker").includes(`Job/${preReleaseBackupName("worker", "2.7.1")}`));
    });

    it("is off in staging by default, on where set, and needs backups enabled", async () => {
        assert.deepEqual(releaseBackups(await run("staging")), []);
        assert.equal(releaseBackups(await run("staging", { "platform:postgres.backup.beforeDeploy": true })).length, 5);
        assert.deepEqual(releaseBackups(await run("production", { "platform:postgres.backup.beforeDeploy": false })), []);
        const { message } = await runInvalid("staging", { "platform:postgres.backup": { enabled: false, beforeDeploy: true } });
        assert.match(message, /platform:postgres\.backup\.beforeDeploy needs platform:postgres\.backup\.enabled: true \(it runs the daily backup as a Job\) \(got true\)/);
        const redis = await runInvalid("staging", { "platform:redis.backup.beforeDeploy": true });
        assert.match(redis.message, /platform:redis\.backup\.beforeDeploy is not a known key/);
    });
});
