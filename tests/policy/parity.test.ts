import * as assert from "assert";
import { noMutableTags, productionDailyBackups, requestsAndLimits } from "../../policy/policies";
import { MANAGED, Result, run } from "../harness";
import { altered, checkResources, checkStack } from "./check";

// The policy pack catches, in any program's objects, what the validator refuses in this one's
// config: moving tags, requests above limits, production backups missing or not daily.

const messages = (v: { message: string }[]) => v.map((x) => x.message).join("\n");
const byName = (r: Result, type: string, name: string) => r.resources.find((x) => x.type === type && x.inputs?.metadata?.name === name)!;
const CRONJOB = "kubernetes:batch/v1:CronJob";

describe("policy pack: what the validator refuses", () => {
    const rendered: Record<string, Result> = {};
    before(async () => {
        rendered.staging = await run("staging");
        rendered.production = await run("production");
        rendered.managed = await run("production", MANAGED);
        rendered.optedIn = await run("staging", { "platform:apps.worker.tag": "main", "platform:apps.worker.allowMutableTags": true });
    });

    it("no-mutable-tags passes the stacks, and a moving tag its owner opted in to", async () => {
        for (const [name, r] of Object.entries(rendered)) assert.deepEqual(await checkResources(noMutableTags, r.resources), [], name);
    });

    it("no-mutable-tags fails a workload on a moving tag without the opt-in", async () => {
        const worker = byName(rendered.staging, "kubernetes:apps/v1:Deployment", "worker");
        const moved = altered(worker, (i) => (i.spec.template.spec.containers[0].image = "europe-docker.pkg.dev/acme-staging/apps/worker:stable"));
        const optedOut = altered(byName(rendered.optedIn, "kubernetes:apps/v1:Deployment", "worker"), (i) => delete i.spec.template.metadata.annotations);
        const v = await checkResources(noMutableTags, [moved, optedOut]);
        assert.equal(v.length, 2, messages(v));
        assert.match(v[0].message, /container app runs the moving tag "stable"/);
        assert.match(v[1].message, /moving tag "main"/);
    });

    it("containers-have-requests-and-limits fails requests above limits", async () => {
        for (const [name, r] of Object.entries(rendered)) assert.deepEqual(await checkResources(requestsAndLimits, r.resources), [], name);
        const worker = byName(rendered.staging, "kubernetes:apps/v1:Deployment", "worker");
        const v = await checkResources(requestsAndLimits, [
            altered(worker, (i) => (i.spec.template.spec.containers[0].resources.requests.memory = "1Gi")),
            altered(worker, (i) => (i.spec.template.spec.containers[0].resources.requests.cpu = "2")),
        ]);
        assert.match(messages(v), /requests more memory \(1Gi\) than its limit \(256Mi\)/);
        assert.match(messages(v), /requests more cpu \(2\) than its limit \(500m\)/);
    });

    it("production-daily-backups passes production as rendered (in-cluster and managed) and ignores staging", async () => {
        assert.deepEqual(await checkStack(productionDailyBackups, rendered.production.resources), []);
        assert.deepEqual(await checkStack(productionDailyBackups, rendered.managed.resources), []);
        const weekdays = rendered.staging.resources.map((x) => (x.type === CRONJOB ? altered(x, (i) => (i.spec.schedule = "0 2 * * 1-5")) : x));
        assert.deepEqual(await checkStack(productionDailyBackups, weekdays), []);
    });

    it("production-daily-backups fails a missing Redis backup and a Postgres backup that skips days", async () => {
        const res = rendered.production.resources
            .filter((x) => !(x.type === CRONJOB && x.inputs.metadata.name === "redis-backup"))
            .map((x) => (x.type === CRONJOB && x.inputs.metadata.name === "postgres-backup" ? altered(x, (i) => (i.spec.schedule = "15 2 * * 1-5")) : x));
        const v = messages(await checkStack(productionDailyBackups, res));
        assert.match(v, /production redis has no backup CronJob/);
        assert.match(v, /CronJob postgres-backup runs on "15 2 \* \* 1-5": production backups run every day/);
    });
});
