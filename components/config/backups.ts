import { boolean, integer, object, Problems } from "./check";
import { BackupConfig } from "./types";

/**
 * `….backup.retention: {days, locked?}`: a GCS retention policy on the backup bucket, so that a
 * deleted backup cannot vanish before `days`. At most keepDaily days, or the daily prune could not
 * delete what falls out of the daily window. Locking is irreversible, so it is never a default.
 */
export function validateBucketRetention(p: Problems, path: string, value: unknown, destination: string, keepDaily: number): BackupConfig["retention"] {
    const r = object(p, path, value, ["days", "locked"]);
    if (!r) return undefined;
    if (destination !== "gcs") {
        p.add(path, "is only used with destination \"gcs\" (a bucket retention policy)", r);
        return undefined;
    }
    const max = Math.max(keepDaily, 1);
    const days = integer(p, `${path}.days`, r.days, 1, max);
    const locked = boolean(p, `${path}.locked`, r.locked, false) ?? false;
    return days === undefined ? undefined : { days, locked };
}
