// Environment variables the program sets in the containers it builds from an app's config: the
// app's Deployments, its migration and smoke-test Jobs (which also get `apps.<app>.env`), its
// analysis Jobs and the Postgres backups taken before its migrations and releases. The components
// name them from here, and `apps.<app>.env` may set none of them: a container would get the name
// twice (server-side apply refuses duplicate keys), or a setting the platform owns would look like
// the app's to change.

/** A data service's settings in an app, each from a key of the service's Secret (secretKeyRef). */
export const DATA_ENV = {
    postgres: { PGHOST: "host", PGPORT: "port", PGDATABASE: "database", PGUSER: "username", PGPASSWORD: "password", DATABASE_URL: "url" },
    redis: { REDIS_HOST: "host", REDIS_PORT: "port", REDIS_PASSWORD: "password", REDIS_URL: "url" },
} as const;

/** The container port the app listens on. */
export const PORT_ENV = "PORT";
/** The URL of the track under test, for a custom smoke test (`apps.<app>.smokeTest`). */
export const SMOKE_TEST_URL_ENV = "SMOKE_TEST_URL";
/** What the analysis program reads (scripts/analysis/README.md). */
export const ANALYSIS_ENV = { spec: "ANALYSIS_SPEC", timeout: "ANALYSIS_TIMEOUT_SECONDS" } as const;
/**
 * What the backup scripts read (scripts/backup/README.md), in the backup Jobs run before an app's
 * migrations and releases. Their HOME and PGSSLMODE are not reserved: an app's own container may
 * well need those, and no container gets both the backup's and the app's variables.
 */
export const BACKUP_ENV = [
    "BACKUP_DEST", "BACKUP_GCS_URL", "BACKUP_DIR", "BACKUP_WORK_DIR", "BACKUP_PREFIX", "BACKUP_PG_PASSWORD_FILE",
    "BACKUP_KEEP_DAILY", "BACKUP_KEEP_WEEKLY", "BACKUP_KEEP_MONTHLY", "REDIS_PASSWORD_FILE",
] as const;

/** Every reserved name, with where the platform sets it (the wording of the refusal). */
export const RESERVED_ENV: ReadonlyMap<string, string> = new Map([
    // The wording the first reserved names always had.
    ...[...Object.keys(DATA_ENV.postgres), ...Object.keys(DATA_ENV.redis), PORT_ENV].map((n): [string, string] => [n, "from Secrets or the port"]),
    [SMOKE_TEST_URL_ENV, "in the app's smoke-test Jobs"],
    ...Object.values(ANALYSIS_ENV).map((n): [string, string] => [n, "in the app's analysis Jobs"]),
    ...BACKUP_ENV.map((n): [string, string] => [n, "in the backups taken before the app's migrations and releases"]),
]);
