import { strict as assert } from "assert";
import { MANAGED } from "../harness";
import { problemsOf, refused } from "./helpers";

// Production's data is backed up, every day, for both services (an in-cluster Redis included).

describe("validation: production backups", () => {
    it("refuses backups disabled in production, for either service", () => {
        refused(problemsOf("production", { "platform:postgres.backup.enabled": false }), "platform:postgres.backup.enabled", "production");
        refused(problemsOf("production", { "platform:redis.backup.enabled": false }), "platform:redis.backup.enabled", "production");
    });

    it("refuses a production backup schedule that skips days", () => {
        refused(problemsOf("production", { "platform:postgres.backup.schedule": "15 2 * * 1-5" }), "platform:postgres.backup.schedule", "every day");
        refused(problemsOf("production", { "platform:redis.backup.schedule": "45 2 1 * *" }), "platform:redis.backup.schedule", "every day");
    });

    it("accepts weekday backups outside production, and no Redis backup where Memorystore keeps snapshots", () => {
        assert.deepEqual(problemsOf("staging", { "platform:postgres.backup.schedule": "15 2 * * 1-5", "platform:redis.backup.enabled": false }), []);
        assert.deepEqual(problemsOf("production", { ...MANAGED, "platform:redis.backup.enabled": false }), []);
    });
});
