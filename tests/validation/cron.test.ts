import { strict as assert } from "assert";
import { problemsOf, refused } from "./helpers";

// Kubernetes parses CronJob schedules with robfig/cron's standard parser: five fields, numbers,
// ranges, lists, steps and month/day names. Quartz extensions (?, L, W, #) and a seconds field are
// what other parsers take; they are refused here rather than by the API server.

const bad = ["0 2 ? * *", "0 2 L * *", "0 2 15W * *", "0 2 * * 1#2", "0 0 2 * * *", "0 2 * * 7", "*/0 * * * *", "5-1 * * * *", "0 2 * JANUARY *", "0 2 31 13 *"];
const good = ["15 2 * * *", "*/15 * * * *", "0 0-23/6 * * *", "30 5 1 * *", "0 2 * * MON-FRI", "0 3 1,15 jan,jul *", "5/10 * * * *"];

describe("validation: cron schedules Kubernetes accepts", () => {
    for (const s of bad) {
        it(`refuses ${JSON.stringify(s)}`, () => {
            refused(problemsOf("staging", { "platform:postgres.backup.schedule": s }), "platform:postgres.backup.schedule", JSON.stringify(s));
        });
    }
    it("refuses a bad restore-drill schedule too", () => {
        refused(problemsOf("staging", { "platform:redis.backup.restoreDrill": { schedule: "0 5 L * *" } }), "platform:redis.backup.restoreDrill.schedule");
    });
    it(`accepts ${good.join(" | ")}`, () => {
        for (const s of good) assert.deepEqual(problemsOf("staging", { "platform:postgres.backup.schedule": s }), [], s);
    });
});
