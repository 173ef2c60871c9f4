import type * as Docker from "@pulumi/docker";
import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { GcpConfig, PostgresConfig, RedisConfig } from "./config/types";
import { metadata } from "./kube";
import { EnvironmentPlan } from "./plan/environment";
import { buildTrack, builtImageRepository, registryHost, repositoryId } from "./plan/images";
import { Connection, POSTGRES_PORT, postgresEnv, postgresSecretName } from "./postgres";
import { redisEnv, redisSecretName } from "./redis";

// Google Cloud for one environment, declared only when platform:gcp.enabled: the environment's
// Artifact Registry repository, the images the stack builds, and the managed data services that
// replace the in-cluster ones. Managed services publish the same Kubernetes Secrets (same names,
// same keys) as the in-cluster ones, so an app's Deployment does not change with the data mode.

/** Labels GCP accepts (lower-case keys and values, no '/' or '.'): the environment and who manages it. */
function gcpLabels(stack: string): Record<string, string> {
    const value = stack.toLowerCase().replace(/[^a-z0-9_-]/g, "-").slice(0, 63);
    return { "platform-environment": value, "managed-by": "pulumi" };
}

/** Options that keep stateful resources: production refuses to delete them and keeps them if removed. */
const keep = (protectData: boolean) => ({ protect: protectData, retainOnDelete: protectData });

export interface ImageRegistryArgs {
    gcp: GcpConfig;
    namespace: string;
    stack: string;
    protectData: boolean;
}

/** The environment's Docker repository in Artifact Registry, with a cleanup policy. */
export class ImageRegistry extends pulumi.ComponentResource {
    readonly repository: gcp.artifactregistry.Repository;
    /** `<region>-docker.pkg.dev/<project>/<repository>`: images are `<url>/<app>`. */
    readonly url: string;

    constructor(name: string, args: ImageRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cloud:ImageRegistry", name, {}, opts);
        const id = repositoryId(args.namespace);
        this.url = `${registryHost(args.gcp)}/${args.gcp.project}/${id}`;
        this.repository = new gcp.artifactregistry.Repository("images", {
            repositoryId: id,
            location: args.gcp.region,
            format: "DOCKER",
            description: `Images of the ${args.stack} environment`,
            labels: gcpLabels(args.stack),
            // A keep policy only matters next to a delete policy: delete every version, except the
            // most recent ones of each image (what runs, what a rollback goes back to).
            cleanupPolicyDryRun: false,
            cleanupPolicies: [
                { id: "delete-old-versions", action: "DELETE", condition: { tagState: "ANY", olderThan: "86400s" } },
                { id: "keep-recent-versions", action: "KEEP", mostRecentVersions: { keepCount: args.gcp.keepImageVersions } },
            ],
        }, { parent: this, ...keep(args.protectData) });
        this.registerOutputs({ url: this.url });
    }
}

export interface AppImageArgs {
    /** Repository of this app's image, e.g. `<registry url>/api`. */
    repository: string;
    /** Tag the build is pushed under: the configured version of the track it lands on. */
    tag: string;
    build: { context: string; dockerfile?: string; target?: string; args: Record<string, string> };
    registryServer: string;
    /** Short-lived OAuth token of the deploying identity (CI's Workload Identity). */
    accessToken: pulumi.Input<string>;
    /** The repository must exist before anything is pushed to it. */
    registry: pulumi.Resource;
}

/** An app image built from source and pushed by `pulumi up` (never by a preview). */
export class AppImage extends pulumi.ComponentResource {
    /** `<repository>@sha256:…`: what the Deployment runs, so every push rolls out and nothing moves by tag. */
    readonly digest: pulumi.Output<string>;

    constructor(name: string, args: AppImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cloud:AppImage", name, {}, opts);
        // Loaded here, not at the top: only a stack that builds images pays for @pulumi/docker.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const docker = require("@pulumi/docker") as typeof Docker;
        const image = new docker.Image(name, {
            imageName: `${args.repository}:${args.tag}`,
            build: {
                context: args.build.context,
                ...(args.build.dockerfile ? { dockerfile: args.build.dockerfile } : {}),
                ...(args.build.target ? { target: args.build.target } : {}),
                args: args.build.args,
                platform: "linux/amd64",
            },
            // A preview neither builds nor pushes. skipPush is the second guard for a first preview;
            // it is ignored as a change afterwards, or every preview would show the image (and the
            // Deployments that use its digest) as changing.
            buildOnPreview: false,
            skipPush: pulumi.runtime.isDryRun(),
            registry: { server: args.registryServer, username: "oauth2accesstoken", password: pulumi.secret(args.accessToken) },
        }, { parent: this, dependsOn: [args.registry], ignoreChanges: ["skipPush"] });
        this.digest = image.repoDigest;
        this.registerOutputs({ digest: this.digest });
    }
}

export interface CloudSqlPostgresArgs {
    config: PostgresConfig;
    gcp: GcpConfig;
    /** The Namespace resource's name output, so the Secret waits for the Namespace. */
    namespace: pulumi.Input<string>;
    namespaceName: string;
    stack: string;
    labels: Record<string, string>;
    protectData: boolean;
}

/** Cloud SQL major versions by the config's `postgres.version`. */
const cloudSqlVersion = (version: string) => `POSTGRES_${version}`;

/** Hour of a five-field cron schedule as Cloud SQL's backup window start ("HH:MM"), else 02:00. */
export function backupStartTime(schedule: string): string {
    const [minute, hour] = schedule.trim().split(/\s+/);
    const h = /^\d+$/.test(hour ?? "") ? Number(hour) : 2;
    const m = /^\d+$/.test(minute ?? "") ? Number(minute) : 0;
    return h < 24 && m < 60 ? `${String(h).padStart(2, "0")}:00` : "02:00";
}

/**
 * PostgreSQL on Cloud SQL: private IP only, TLS required, automated backups with point-in-time
 * recovery, deletion protection, the app's database and user. Publishes `postgres-credentials`.
 */
export class CloudSqlPostgres extends pulumi.ComponentResource {
    readonly instance: gcp.sql.DatabaseInstance;
    readonly connection: Connection;

    constructor(name: string, args: CloudSqlPostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cloud:CloudSqlPostgres", name, {}, opts);
        const { config, protectData } = args;
        const cloudsql = config.cloudsql!;
        const backup = config.backup;

        this.instance = new gcp.sql.DatabaseInstance("postgres", {
            name: `${args.namespaceName}-postgres`,
            databaseVersion: cloudSqlVersion(config.version),
            region: args.gcp.region,
            // Refused by the provider (deletionProtection) and by the Cloud SQL API
            // (deletionProtectionEnabled): deleting takes two deliberate changes.
            deletionProtection: true,
            settings: {
                tier: cloudsql.tier,
                // The shared-core and custom tiers exist in the Enterprise edition only.
                edition: cloudsql.tier.startsWith("db-perf-optimized-") ? "ENTERPRISE_PLUS" : "ENTERPRISE",
                availabilityType: cloudsql.availabilityType,
                diskSize: cloudsql.diskSizeGb,
                diskType: "PD_SSD",
                diskAutoresize: true,
                deletionProtectionEnabled: true,
                // Backups outlive the instance in production, so a deleted instance can be restored.
                retainBackupsOnDelete: protectData,
                ipConfiguration: {
                    ipv4Enabled: false,
                    privateNetwork: cloudsql.network,
                    sslMode: "ENCRYPTED_ONLY",
                },
                backupConfiguration: {
                    enabled: true,
                    pointInTimeRecoveryEnabled: true,
                    startTime: backupStartTime(backup.schedule),
                    transactionLogRetentionDays: 7,
                    backupRetentionSettings: { retainedBackups: Math.max(backup.keepDaily, 7), retentionUnit: "COUNT" },
                },
                userLabels: gcpLabels(args.stack),
            },
        }, { parent: this, ...keep(protectData) });

        new gcp.sql.Database("postgres-database", {
            instance: this.instance.name,
            name: config.database,
        }, { parent: this, ...keep(protectData) });

        // Same generator and options as the in-cluster password: protected, since replacing it
        // would lock every client out until their pods restart.
        const password = new random.RandomPassword("postgres-password", { length: 32, special: false }, { parent: this, protect: protectData }).result;
        const user = new gcp.sql.User("postgres-user", {
            instance: this.instance.name,
            name: config.user,
            password,
            // A Postgres role that owns objects cannot be dropped; removing it from the stack leaves it.
            deletionPolicy: "ABANDON",
        }, { parent: this, protect: protectData });

        const host = this.instance.privateIpAddress;
        const labels = { ...args.labels, "app.kubernetes.io/name": "postgres", "app.kubernetes.io/component": "database" };
        const secret = new k8s.core.v1.Secret("postgres-credentials", {
            metadata: metadata(postgresSecretName, args.namespace, labels, { "platform.dev/provider": "cloudsql" }),
            type: "Opaque",
            stringData: {
                host,
                port: String(POSTGRES_PORT),
                database: config.database,
                username: config.user,
                password,
                // The instance accepts TLS only; libpq's default (prefer) negotiates it for PG* variables.
                url: pulumi.interpolate`postgresql://${config.user}:${password}@${host}:${POSTGRES_PORT}/${config.database}?sslmode=require`,
            },
        }, { parent: this, ...keep(protectData), dependsOn: [user], additionalSecretOutputs: ["stringData", "data"] });

        this.connection = { secretName: secret.metadata.name, host, port: POSTGRES_PORT, env: postgresEnv(secret.metadata.name) };
        this.registerOutputs({ instance: this.instance.name, connectionName: this.instance.connectionName, host, secretName: secret.metadata.name });
    }
}

export interface MemorystoreRedisArgs {
    config: RedisConfig;
    gcp: GcpConfig;
    namespace: pulumi.Input<string>;
    namespaceName: string;
    stack: string;
    labels: Record<string, string>;
    protectData: boolean;
}

/** Memorystore's version names for the versions validation allows with memorystore. */
export function memorystoreVersion(version: string): string {
    if (version.startsWith("6")) return "REDIS_6_X";
    if (version === "7.0") return "REDIS_7_0";
    return "REDIS_7_2";
}

/** A Memorystore instance id: at most 40 characters, a letter first, no trailing '-'. */
export function memorystoreName(namespace: string): string {
    return `${namespace.slice(0, 34).replace(/-+$/, "")}-redis`;
}

/**
 * Redis on Memorystore with AUTH and in-transit encryption. Publishes `redis-credentials` with the
 * in-cluster keys; `url` is `rediss://` and `ca.crt` holds the server CA clients verify against.
 */
export class MemorystoreRedis extends pulumi.ComponentResource {
    readonly instance: gcp.redis.Instance;
    readonly connection: Connection;

    constructor(name: string, args: MemorystoreRedisArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cloud:MemorystoreRedis", name, {}, opts);
        const { config, protectData } = args;
        const ms = config.memorystore!;
        this.instance = new gcp.redis.Instance("redis", {
            name: memorystoreName(args.namespaceName),
            region: args.gcp.region,
            tier: ms.tier,
            memorySizeGb: ms.memorySizeGb,
            redisVersion: memorystoreVersion(config.version),
            authorizedNetwork: ms.network,
            authEnabled: true,
            transitEncryptionMode: "SERVER_AUTHENTICATION",
            persistenceConfig: config.persistence
                ? { persistenceMode: "RDB", rdbSnapshotPeriod: "ONE_HOUR" }
                : { persistenceMode: "DISABLED" },
            deletionProtection: true,
            labels: gcpLabels(args.stack),
        }, { parent: this, ...keep(protectData), additionalSecretOutputs: ["authString"] });

        const host = this.instance.host;
        const port = this.instance.port.apply(String);
        const password = this.instance.authString;
        const labels = { ...args.labels, "app.kubernetes.io/name": "redis", "app.kubernetes.io/component": "cache" };
        const secret = new k8s.core.v1.Secret("redis-credentials", {
            metadata: metadata(redisSecretName, args.namespace, labels, { "platform.dev/provider": "memorystore" }),
            type: "Opaque",
            stringData: {
                host,
                port,
                password,
                url: pulumi.interpolate`rediss://:${password}@${host}:${port}/0`,
                "ca.crt": this.instance.serverCaCerts.apply((certs) => certs.map((c) => c.cert).join("\n")),
            },
        }, { parent: this, ...keep(protectData), additionalSecretOutputs: ["stringData", "data"] });

        this.connection = { secretName: secret.metadata.name, host, port: 6378, env: redisEnv(secret.metadata.name) };
        this.registerOutputs({ instance: this.instance.name, host, secretName: secret.metadata.name });
    }
}

export interface CloudArgs {
    plan: EnvironmentPlan;
    namespace: pulumi.Input<string>;
}

/** Everything one environment has in Google Cloud. */
export class Cloud extends pulumi.ComponentResource {
    /** The environment's gcp provider (project and region from platform:gcp): pass it to other GCP resources. */
    readonly provider: gcp.Provider;
    readonly registry: ImageRegistry;
    readonly postgres?: CloudSqlPostgres;
    readonly redis?: MemorystoreRedis;
    /** App name → the track that runs its build and the image (by digest) it runs. */
    readonly builtImages: Record<string, { track: string; image: pulumi.Output<string> }> = {};
    readonly outputs: Record<string, unknown>;

    constructor(name: string, args: CloudArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cloud:Cloud", name, {}, opts);
        const { plan } = args;
        const { config } = plan;
        const g = config.gcp;
        const provider = new gcp.Provider("gcp", { project: g.project, region: g.region, defaultLabels: gcpLabels(config.stack) }, { parent: this });
        this.provider = provider;
        const child = { parent: this, providers: { gcp: provider } };
        const common = { gcp: g, namespace: args.namespace, namespaceName: plan.namespace, stack: config.stack, labels: plan.labels, protectData: plan.protectData };

        this.registry = new ImageRegistry("registry", { gcp: g, namespace: plan.namespace, stack: config.stack, protectData: plan.protectData }, child);
        if (config.postgres.mode === "cloudsql") this.postgres = new CloudSqlPostgres("cloudsql", { ...common, config: config.postgres }, child);
        if (config.redis.mode === "memorystore") this.redis = new MemorystoreRedis("memorystore", { ...common, config: config.redis }, child);

        const builds = plan.apps.filter((a) => a.config.build && buildTrack(a));
        if (builds.length > 0) {
            const token = gcp.organizations.getClientConfigOutput({ parent: this, provider }).accessToken;
            for (const app of builds) {
                const track = buildTrack(app)!;
                const image = new AppImage(`${app.config.name}-image`, {
                    repository: builtImageRepository(g, plan.namespace, app.config.name),
                    tag: track.version,
                    build: app.config.build!,
                    registryServer: registryHost(g),
                    accessToken: token,
                    registry: this.registry.repository,
                }, child);
                this.builtImages[app.config.name] = { track: track.track, image: image.digest };
            }
        }

        this.outputs = {
            registry: this.registry.url,
            ...(this.postgres ? { cloudsql: this.postgres.instance.connectionName } : {}),
            ...(this.redis ? { memorystore: this.redis.instance.name } : {}),
            images: Object.fromEntries(Object.entries(this.builtImages).map(([app, b]) => [app, { track: b.track, image: b.image }])),
        };
        this.registerOutputs(this.outputs);
    }
}
