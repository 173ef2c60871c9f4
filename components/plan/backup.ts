import { BackupConfig } from "../config/types";
import { shortHash } from "./names";

// Pure decisions about backups, tested directly.

/**
 * Age after which the bucket's lifecycle rule deletes a backup object: the oldest backup the
 * retention policy can keep, plus a week of slack. The prune step deletes precisely; this rule only
 * backs it up, so that a broken prune can never let the bucket grow without bound.
 */
export function bucketRetentionDays(b: BackupConfig): number {
    const longest = Math.max(b.keepDaily, b.keepWeekly * 7, b.keepMonthly * 31, 1);
    return longest + 7;
}

/** Days a replaced or deleted object version stays recoverable in a versioned bucket. */
export const NONCURRENT_VERSION_DAYS = 14;

/**
 * Name of the Job that backs up Postgres before one migration Job: one per migration, so a new
 * migration gets a fresh verified backup, and removing a track (an abort) runs no backup at all.
 */
export function preMigrationBackupName(migrationJob: string): string {
    return `${migrationJob}-backup`;
}

/**
 * The backup bucket's name: bucket names are global, so it starts with the project id; at most 63
 * characters, shortened with a hash of the full name when needed.
 */
export function backupBucketName(project: string, stack: string, service: string): string {
    const full = `${project}-${stack}-${service}-backups`;
    return full.length <= 63 ? full : `${full.slice(0, 54).replace(/-+$/, "")}-${shortHash(full)}`;
}
