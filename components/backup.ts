import type * as Gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { BackupConfig, Resources } from "./config/types";
import { awaitTimeouts, fromSecret, metadata, podPlacement, PodPlacementConfig, REPLACE_UNREADY, restrictedContainerSecurity, restrictedPodSecurity, volumeClaimSpec } from "./kube";
import { backupBucketName, bucketRetentionDays, NONCURRENT_VERSION_DAYS } from "./plan/backup";
import { selectorLabels, usesLabel } from "./plan/names";

// Backups of Postgres and Redis as CronJobs that run the scripts in scripts/backup/ (contract:
// scripts/backup/README.md), mounted from a ConfigMap built from those files.

const SCRIPTS_DIR = path.join(__dirname, "..", "scripts", "backup");
const BACKUP_UID = 999;
const CREDENTIALS_DIR = "/etc/backup-credentials";
/** The Postgres dump and verification run a scratch server beside pg_restore. */
const BACKUP_RESOURCES = { requests: { cpu: "250m", memory: "512Mi" }, limits: { cpu: "1", memory: "1Gi" } };
const STORE_RESOURCES = { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } };

export type BackupKind = "postgres" | "redis";

/** The scripts as ConfigMap data, read from the repository at evaluation time. */
export function backupScripts(): Record<string, string> {
    const files = fs.readdirSync(SCRIPTS_DIR).filter((f) => f.endsWith(".sh")).sort();
    return Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(SCRIPTS_DIR, f), "utf8")]));
}

export interface BackupArgs {
    kind: BackupKind;
    config: BackupConfig;
    namespace: pulumi.Input<string>;
    /** The namespace's name, known before it exists (Workload Identity member). */
    namespaceName: string;
    stack: string;
    labels: Record<string, string>;
    protectData: boolean;
    /** The database image: its client tools match the server's major version. */
    image: string;
    /** gcloud for the gcs destination (platform:images.cloudCli); runs as the database images' uid. */
    cloudCliImage: string;
    /** Connection Secret of the service (keys host, port, username, database, password). */
    secretName: pulumi.Input<string>;
    scriptsConfigMap: pulumi.Input<string>;
    storageClass?: string;
    /** PGSSLMODE for servers that require TLS (Cloud SQL). */
    sslMode?: string;
    /** Resources of the live server: the Redis drill needs as much memory to load the RDB. */
    serverResources?: Resources;
    /** Google Cloud project and region, for the gcs destination. */
    gcp?: { project: string; region: string };
    /** kubernetes.placement: the nodes this runs on. */
    placement?: PodPlacementConfig;
}

/** Verified daily backups of one data service, their retention, destination and restore drill. */
export class Backup extends pulumi.ComponentResource {
    /** The pod of one backup run, also used by one-off backups before migrations. */
    readonly podSpec: k8s.types.input.core.v1.PodSpec;
    readonly podLabels: Record<string, string>;
    private readonly labels: Record<string, string>;
    readonly outputs: Record<string, unknown>;

    constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:backup:Backup", name, {}, opts);
        const { kind, config, namespace } = args;
        const keep = { protect: args.protectData, retainOnDelete: args.protectData };
        const labels = { ...args.labels, ...selectorLabels(`${kind}-backup`, args.stack), "app.kubernetes.io/component": "backup" };
        this.labels = labels;
        // The backup pods are clients of the service: the data tier's NetworkPolicy lets them in.
        this.podLabels = { ...labels, [usesLabel(kind)]: "true" };
        const gcs = config.destination === "gcs";

        let destinationEnv: k8s.types.input.core.v1.EnvVar[];
        let backupsVolume: k8s.types.input.core.v1.Volume | undefined;
        let googleAccount: Gcp.serviceaccount.Account | undefined;
        let drillAccount: Gcp.serviceaccount.Account | undefined;
        if (gcs) {
            if (!args.gcp) throw new Error(`platform:${kind}.backup.destination "gcs" needs platform:gcp.enabled`);
            // Loaded here, not at the top: a stack without gcs backups does not pay for @pulumi/gcp.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const gcp = require("@pulumi/gcp") as typeof Gcp;
            const bucket = new gcp.storage.Bucket(`${kind}-backups`, {
                name: backupBucketName(args.gcp.project, args.stack, kind),
                project: args.gcp.project,
                location: args.gcp.region.toUpperCase(),
                uniformBucketLevelAccess: true,
                publicAccessPrevention: "enforced",
                // A deleted or overwritten object stays recoverable for NONCURRENT_VERSION_DAYS, or, with a
                // retention policy (which GCS does not combine with versioning), cannot be deleted before
                // retention.days: locked only when retention.locked says so, as a lock is irreversible.
                ...(config.retention
                    ? { retentionPolicy: { retentionPeriod: String(config.retention.days * 86400), isLocked: config.retention.locked } }
                    : { versioning: { enabled: true } }),
                forceDestroy: false,
                lifecycleRules: [
                    { action: { type: "Delete" }, condition: { age: bucketRetentionDays(config), withState: "LIVE" } },
                    ...(config.retention ? [] : [{ action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: NONCURRENT_VERSION_DAYS, withState: "ARCHIVED" } }]),
                ],
                labels: { "platform-environment": args.stack, service: kind, "managed-by": "pulumi" },
            }, { parent: this, ...keep });
            googleAccount = new gcp.serviceaccount.Account(`${kind}-backup`, {
                project: args.gcp.project,
                accountId: backupAccountId(args.stack, kind),
                displayName: `${kind} backups of ${args.stack}`,
            }, { parent: this });
            // Write, list, read and delete in this bucket only (prune deletes).
            new gcp.storage.BucketIAMMember(`${kind}-backup-writer`, {
                bucket: bucket.name,
                role: "roles/storage.objectAdmin",
                member: pulumi.interpolate`serviceAccount:${googleAccount.email}`,
            }, { parent: this });
            // GKE Workload Identity: the Kubernetes ServiceAccount below acts as the Google one.
            new gcp.serviceaccount.IAMMember(`${kind}-backup-workload-identity`, {
                serviceAccountId: googleAccount.name,
                role: "roles/iam.workloadIdentityUser",
                member: pulumi.interpolate`serviceAccount:${args.gcp.project}.svc.id.goog[${args.namespaceName}/${kind}-backup]`,
            }, { parent: this });
            // The restore drill has its own identity that can only read the backups.
            drillAccount = new gcp.serviceaccount.Account(`${kind}-restore-drill`, {
                project: args.gcp.project,
                accountId: drillAccountId(args.stack, kind),
                displayName: `${kind} restore drill of ${args.stack} (reads backups)`,
            }, { parent: this });
            new gcp.storage.BucketIAMMember(`${kind}-restore-drill-reader`, {
                bucket: bucket.name,
                role: "roles/storage.objectViewer",
                member: pulumi.interpolate`serviceAccount:${drillAccount.email}`,
            }, { parent: this });
            new gcp.serviceaccount.IAMMember(`${kind}-restore-drill-workload-identity`, {
                serviceAccountId: drillAccount.name,
                role: "roles/iam.workloadIdentityUser",
                member: pulumi.interpolate`serviceAccount:${args.gcp.project}.svc.id.goog[${args.namespaceName}/${kind}-restore-drill]`,
            }, { parent: this });
            const url = pulumi.interpolate`gs://${bucket.name}/${kind}`;
            destinationEnv = [{ name: "BACKUP_DEST", value: "gcs" }, { name: "BACKUP_GCS_URL", value: url }];
            this.outputs = { destination: url, bucket: bucket.name, serviceAccount: googleAccount.email, drillServiceAccount: drillAccount.email };
        } else {
            const pvc = new k8s.core.v1.PersistentVolumeClaim(`${kind}-backups`, {
                metadata: metadata(`${kind}-backups`, namespace, labels, { "pulumi.com/skipAwait": "true" }),
                spec: volumeClaimSpec(config.storage, args.storageClass),
            }, { parent: this, ...keep });
            destinationEnv = [{ name: "BACKUP_DEST", value: "pvc" }, { name: "BACKUP_DIR", value: "/backups" }];
            backupsVolume = { name: "backups", persistentVolumeClaim: { claimName: pvc.metadata.name } };
            this.outputs = { destination: pulumi.interpolate`pvc/${pvc.metadata.name}` };
        }

        const serviceAccount = new k8s.core.v1.ServiceAccount(`${kind}-backup`, {
            metadata: {
                ...metadata(`${kind}-backup`, namespace, labels),
                ...(googleAccount ? { annotations: { "iam.gke.io/gcp-service-account": googleAccount.email } } : {}),
            },
            automountServiceAccountToken: false,
        }, { parent: this });

        const drillServiceAccount = new k8s.core.v1.ServiceAccount(`${kind}-restore-drill`, {
            metadata: {
                ...metadata(`${kind}-restore-drill`, namespace, labels),
                ...(drillAccount ? { annotations: { "iam.gke.io/gcp-service-account": drillAccount.email } } : {}),
            },
            automountServiceAccountToken: false,
        }, { parent: this });

        const script = kind === "postgres" ? "pg-backup.sh" : "redis-backup.sh";
        const short = kind === "postgres" ? "pg" : "redis";
        const connectionEnv: k8s.types.input.core.v1.EnvVar[] = kind === "postgres"
            ? [
                fromSecret("PGHOST", args.secretName, "host"), fromSecret("PGPORT", args.secretName, "port"),
                fromSecret("PGUSER", args.secretName, "username"), fromSecret("PGDATABASE", args.secretName, "database"),
                { name: "BACKUP_PG_PASSWORD_FILE", value: `${CREDENTIALS_DIR}/password` },
                ...(args.sslMode ? [{ name: "PGSSLMODE", value: args.sslMode }] : []),
            ]
            : [
                fromSecret("REDIS_HOST", args.secretName, "host"), fromSecret("REDIS_PORT", args.secretName, "port"),
                { name: "REDIS_PASSWORD_FILE", value: `${CREDENTIALS_DIR}/password` },
            ];
        const env = [
            ...connectionEnv,
            ...destinationEnv,
            { name: "BACKUP_WORK_DIR", value: "/work" },
            { name: "BACKUP_PREFIX", value: kind },
            { name: "BACKUP_KEEP_DAILY", value: String(config.keepDaily) },
            { name: "BACKUP_KEEP_WEEKLY", value: String(config.keepWeekly) },
            { name: "BACKUP_KEEP_MONTHLY", value: String(config.keepMonthly) },
            // gcloud and the scratch servers write below $HOME; the root filesystem is read-only.
            { name: "HOME", value: "/work" },
        ];
        const mounts = [
            { name: "scripts", mountPath: "/scripts", readOnly: true },
            { name: "work", mountPath: "/work" },
            { name: "credentials", mountPath: CREDENTIALS_DIR, readOnly: true },
            ...(backupsVolume ? [{ name: "backups", mountPath: "/backups" }] : []),
        ];
        const volumes: k8s.types.input.core.v1.Volume[] = [
            { name: "scripts", configMap: { name: args.scriptsConfigMap, defaultMode: 0o555 } },
            // Scratch space for the dump and the throwaway server that verifies it; the hand-over
            // between the two containers of the gcs form.
            { name: "work", emptyDir: { sizeLimit: config.storage } },
            // 0440 with fsGroup: readable by the backup uid, by nobody else.
            { name: "credentials", secret: { secretName: args.secretName, items: [{ key: "password", path: "password" }], defaultMode: 0o440 } },
            ...(backupsVolume ? [backupsVolume] : []),
        ];
        // The drill restores into a scratch server: it gets no connection settings, no password and
        // only a read-only view of the backups.
        const drillEnv = [
            ...destinationEnv,
            { name: "BACKUP_WORK_DIR", value: "/work" },
            { name: "BACKUP_PREFIX", value: kind },
            { name: "HOME", value: "/work" },
        ];
        const drillMounts = [
            { name: "scripts", mountPath: "/scripts", readOnly: true },
            { name: "work", mountPath: "/work" },
            ...(backupsVolume ? [{ name: "backups", mountPath: "/backups", readOnly: true }] : []),
        ];
        const container = (containerName: string, image: string, command: string[], resources = BACKUP_RESOURCES, drill = false): k8s.types.input.core.v1.Container => ({
            name: containerName,
            image,
            command,
            env: drill ? drillEnv : env,
            volumeMounts: drill ? drillMounts : mounts,
            securityContext: restrictedContainerSecurity,
            resources,
        });
        const podSpec = (spec: Pick<k8s.types.input.core.v1.PodSpec, "containers" | "initContainers">, drill = false): k8s.types.input.core.v1.PodSpec => ({
            ...spec,
            restartPolicy: "Never",
            serviceAccountName: (drill ? drillServiceAccount : serviceAccount).metadata.name,
            // Workload Identity needs no token; the metadata server answers for the pod.
            automountServiceAccountToken: false,
            securityContext: restrictedPodSecurity(BACKUP_UID, BACKUP_UID),
            ...podPlacement(args.placement),
            volumes: drill ? volumes.filter((v) => v.name !== "credentials") : volumes,
        });
        // The Redis drill loads the whole RDB into a scratch server: it needs the live server's memory.
        const drillResources = kind === "redis" && args.serverResources ? args.serverResources : BACKUP_RESOURCES;
        // pvc: one container does everything. gcs: the database image dumps and verifies (init
        // container), then the gcloud image stores and prunes, only if the init container succeeded;
        // the drill fetches with gcloud, then checks in the database image.
        this.podSpec = podSpec(gcs
            ? { initContainers: [container("dump", args.image, ["bash", `/scripts/${script}`, "dump"])],
                containers: [container("store", args.cloudCliImage, ["bash", `/scripts/${script}`, "store"], STORE_RESOURCES)] }
            : { containers: [container("backup", args.image, ["bash", `/scripts/${script}`, "run"])] });
        const drillSpec = podSpec(gcs
            ? { initContainers: [container("fetch", args.cloudCliImage, ["bash", "/scripts/restore-drill.sh", "fetch", short], STORE_RESOURCES, true)],
                containers: [container("check", args.image, ["bash", "/scripts/restore-drill.sh", "check", short], drillResources, true)] }
            : { containers: [container("drill", args.image, ["bash", "/scripts/restore-drill.sh", "run", short], drillResources, true)] }, true);

        const cronJob = (cronName: string, schedule: string, spec: k8s.types.input.core.v1.PodSpec, podLabels: Record<string, string>) =>
            new k8s.batch.v1.CronJob(cronName, {
                metadata: metadata(cronName, namespace, labels),
                spec: {
                    schedule,
                    timeZone: "Etc/UTC",
                    // Never two runs at once: they would race on the same destination and its prune.
                    concurrencyPolicy: "Forbid",
                    // A run missed by more than an hour (cluster down, Forbid) is skipped, not stacked.
                    startingDeadlineSeconds: 3600,
                    successfulJobsHistoryLimit: 3,
                    failedJobsHistoryLimit: 5,
                    jobTemplate: { metadata: { labels }, spec: this.jobSpec(spec, podLabels) },
                },
            }, { parent: this });

        const backupCronJob = `${kind}-backup`;
        const drillCronJob = `${kind}-restore-drill`;
        cronJob(backupCronJob, config.schedule, this.podSpec, this.podLabels);
        // The drill never connects to the live server: its pods get no client label, so no access, and
        // a selector of their own (their NetworkPolicy admits no data service).
        cronJob(drillCronJob, config.restoreDrill.schedule, drillSpec, { ...labels, ...selectorLabels(drillCronJob, args.stack) });

        this.outputs = {
            ...this.outputs,
            schedule: config.schedule,
            restoreDrill: config.restoreDrill.schedule,
            // The hourly health check reads these CronJobs' last success and last run.
            cronJobs: { backup: backupCronJob, drill: drillCronJob },
            keep: { daily: config.keepDaily, weekly: config.keepWeekly, monthly: config.keepMonthly },
        };
        this.registerOutputs(this.outputs);
    }

    /**
     * A one-off backup Job (same pod as the daily one, same destination and retention). Pulumi waits
     * for a Job to complete, so resources that depend on it start only after a verified backup.
     */
    oneOffJob(jobName: string, namespace: pulumi.Input<string>, opts: pulumi.CustomResourceOptions): k8s.batch.v1.Job {
        return new k8s.batch.v1.Job(jobName, {
            // replaceUnready: a failed backup is retried by the next `pulumi up`, not deleted by hand.
            metadata: metadata(jobName, namespace, this.labels, REPLACE_UNREADY),
            // No ttlSecondsAfterFinished: a Job deleted behind Pulumi's back would run again on the next update.
            spec: this.jobSpec(this.podSpec, this.podLabels),
        }, { customTimeouts: awaitTimeouts(BACKUP_DEADLINE_SECONDS), ...opts });
    }

    private jobSpec(spec: k8s.types.input.core.v1.PodSpec, podLabels: Record<string, string>): k8s.types.input.batch.v1.JobSpec {
        return {
            // No retry: a failure stays visible as a failed Job, the next schedule is the retry, and
            // the scripts never prune after a failure.
            backoffLimit: 0,
            activeDeadlineSeconds: BACKUP_DEADLINE_SECONDS,
            template: { metadata: { labels: podLabels }, spec },
        };
    }
}

/** A backup of a large database may take hours; `pulumi up` waits as long for a pre-migration one. */
export const BACKUP_DEADLINE_SECONDS = 3 * 3600;

/** Google service account ids are 6–30 characters: environment and service, trimmed to fit. */
export function backupAccountId(stack: string, kind: BackupKind): string {
    const suffix = `-${kind}-bak`;
    return `${stack.slice(0, 30 - suffix.length)}${suffix}`.replace(/^[^a-z]+/, "").replace(/-+$/, "");
}

/** The restore drill's Google service account id (6–30 characters). */
export function drillAccountId(stack: string, kind: BackupKind): string {
    const suffix = `-${kind}-drill`;
    return `${stack.slice(0, 30 - suffix.length)}${suffix}`.replace(/^[^a-z]+/, "").replace(/-+$/, "");
}
