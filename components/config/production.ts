import { Problems } from "./check";
import { runsEveryDay } from "./cron";
import { BackupConfig, PostgresConfig, RedisConfig, Tier } from "./types";

// What production may not do without: backups of both data services, taken every day. The policy
// pack checks the same on the rendered objects of any program (policy/policies.ts).

function backupRules(p: Problems, path: string, b: BackupConfig): void {
    if (!b.enabled) {
        p.add(`${path}.enabled`, "must be true in production: production data is backed up every day", false);
        return;
    }
    if (!runsEveryDay(b.schedule)) {
        p.add(`${path}.schedule`, "must run every day in production (day of month, month and day of week \"*\", e.g. \"15 2 * * *\")", b.schedule);
    }
}

export function validateProductionData(p: Problems, tier: Tier, postgres: PostgresConfig, redis: RedisConfig): void {
    if (tier !== "production") return;
    backupRules(p, "postgres.backup", postgres.backup);
    // Memorystore keeps its own RDB snapshots; an in-cluster Redis is backed up like Postgres.
    if (redis.mode === "incluster") backupRules(p, "redis.backup", redis.backup);
}
