import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Analysis, analysisScripts } from "./analysis";
import { AppRelease, SERVICE_PORT } from "./app";
import { Backup, backupScripts } from "./backup";
import type { Cloud } from "./cloud";
import { DataService } from "./config/types";
import { metadata } from "./kube";
import { EnvironmentPlan } from "./plan/environment";
import { planAnalysis } from "./plan/analysis";
import { LABEL_TIER, selectorLabels } from "./plan/names";
import { planNetwork } from "./plan/network";
import { abortOf, healthUrl, releaseKeysOf, releaseOf } from "./plan/release";
import { NetworkPolicies } from "./network";
import { Connection, Postgres } from "./postgres";
import { Redis } from "./redis";

export interface EnvironmentArgs {
    plan: EnvironmentPlan;
}

/** One environment: its namespace, data services and apps, all from a validated plan. */
export class Environment extends pulumi.ComponentResource {
    readonly namespace: pulumi.Output<string>;
    readonly apps: Record<string, AppRelease> = {};
    readonly outputs: Record<string, unknown>;

    constructor(name: string, args: EnvironmentArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:core:Environment", name, {}, opts);
        const { plan } = args;
        const { config } = plan;
        const keep = { protect: plan.protectData, retainOnDelete: plan.protectData };

        const provider = new k8s.Provider("kubernetes", {
            ...(config.kubernetes.renderYamlToDirectory ? { renderYamlToDirectory: config.kubernetes.renderYamlToDirectory } : {}),
            ...(config.kubernetes.context ? { context: config.kubernetes.context } : {}),
        }, { parent: this });
        // Custom resources take `provider`; components pass `providers` down to their children.
        const resource = { parent: this, provider };
        const child = { parent: this, providers: { kubernetes: provider } };

        // Deleting a namespace deletes every volume in it: in production it is protected like the data.
        const ns = new k8s.core.v1.Namespace("namespace", {
            metadata: {
                name: plan.namespace,
                labels: {
                    ...plan.labels,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }, { ...resource, ...keep });
        this.namespace = ns.metadata.name;
        const common = {
            namespace: this.namespace, namespaceName: plan.namespace, stack: config.stack, labels: plan.labels, protectData: plan.protectData,
            placement: config.kubernetes.placement,
        };

        // Google Cloud (only with platform:gcp.enabled): registry, builds, and managed data services
        // that replace the in-cluster ones behind the same Secrets.
        // ./cloud is loaded only then: @pulumi/gcp costs about a second of every run that loads it.
        const cloud: Cloud | undefined = config.gcp.enabled ? new (loadCloud())("cloud", { plan, namespace: this.namespace }, child) : undefined;
        const connections: Partial<Record<DataService, Connection>> = {};
        const postgres = cloud?.postgres ?? new Postgres("postgres", { ...common, config: config.postgres, image: config.images.postgres }, child);
        connections.postgres = postgres.connection;
        const redis = cloud?.redis ?? new Redis("redis", { ...common, config: config.redis, image: config.images.redis }, child);
        connections.redis = redis.connection;

        // Data-tier pods accept only what a NetworkPolicy of their service allows.
        new k8s.networking.v1.NetworkPolicy("data-default-deny", {
            metadata: metadata("data-default-deny", this.namespace, plan.labels),
            spec: { podSelector: { matchLabels: { [LABEL_TIER]: "data" } }, policyTypes: ["Ingress"] },
        }, resource);

        // Verified daily backups with a restore drill; Memorystore cannot be backed up with
        // redis-cli --rdb (it refuses SYNC), so there its own RDB snapshots are the backups.
        const backups: Partial<Record<DataService, Backup>> = {};
        const postgresBackup = config.postgres.backup.enabled;
        const redisBackup = config.redis.backup.enabled && config.redis.mode === "incluster";
        if (postgresBackup || redisBackup) {
            const scripts = new k8s.core.v1.ConfigMap("backup-scripts", {
                metadata: metadata("backup-scripts", this.namespace, { ...plan.labels, "app.kubernetes.io/component": "backup" }),
                data: backupScripts(),
            }, resource);
            const backupCommon = {
                ...common, scriptsConfigMap: scripts.metadata.name,
                gcp: config.gcp.enabled ? { project: config.gcp.project!, region: config.gcp.region! } : undefined,
            };
            const backupOpts = { ...child, providers: { kubernetes: provider, ...(cloud ? { gcp: cloud.provider } : {}) } };
            if (postgresBackup) {
                backups.postgres = new Backup("postgres-backup", {
                    ...backupCommon, kind: "postgres", config: config.postgres.backup, image: config.images.postgres, cloudCliImage: config.images.cloudCli,
                    secretName: postgres.connection.secretName, storageClass: config.postgres.storageClass,
                    sslMode: config.postgres.mode === "cloudsql" ? "require" : undefined,
                }, backupOpts);
            }
            if (redisBackup) {
                backups.redis = new Backup("redis-backup", {
                    ...backupCommon, kind: "redis", config: config.redis.backup, image: config.images.redis, cloudCliImage: config.images.cloudCli,
                    secretName: redis.connection.secretName, storageClass: config.redis.storageClass, serverResources: config.redis.resources,
                }, backupOpts);
            }
        }
        const backupBeforeMigration = config.postgres.backup.beforeMigrations ? backups.postgres : undefined;
        const backupBeforeRelease = config.postgres.backup.beforeDeploy ? backups.postgres : undefined;

        for (const app of plan.apps) {
            this.apps[app.config.name] = new AppRelease(app.config.name, {
                plan: app, namespace: this.namespace, namespaceName: plan.namespace, stack: config.stack, labels: plan.labels, connections,
                builtImage: cloud?.builtImages[app.config.name], backupBeforeMigration, backupBeforeRelease, smokeTestImage: config.images.smokeTest,
            }, child);
        }
        const analyses = this.declareAnalyses(plan, resource);

        // Deny by default; each workload reaches and is reached by exactly what it needs.
        new NetworkPolicies("network", {
            plans: planNetwork(plan), namespace: this.namespace, labels: plan.labels, connections,
            dataPods: {
                ...(cloud?.postgres ? {} : { postgres: selectorLabels("postgres", config.stack) }),
                ...(cloud?.redis ? {} : { redis: selectorLabels("redis", config.stack) }),
            },
        }, child);

        this.outputs = {
            namespace: plan.namespace,
            tier: config.tier,
            apps: Object.fromEntries(plan.apps.map(({ config: app }) => [app.name, {
                ...this.apps[app.name].outputs,
                // What `npm run deploy` records as the validated release and sets back on a rollback.
                release: releaseOf(app),
                releaseKeys: releaseKeysOf(app),
                abort: abortOf(app),
                ...(typeof this.apps[app.name].outputs.url === "string" ? { healthUrl: healthUrl(this.apps[app.name].outputs.url as string, app.healthPath) } : {}),
                ...(analyses[app.name] ? { analysis: analyses[app.name] } : {}),
            }])),
            postgres: { host: postgres.connection.host, secret: postgres.connection.secretName },
            redis: { host: redis.connection.host, secret: redis.connection.secretName },
            backups: Object.fromEntries(Object.entries(backups).map(([n, b]) => [n, b.outputs])),
            ...(cloud ? { cloud: cloud.outputs } : {}),
        };
        this.registerOutputs(this.outputs);
    }

    /** An analysis Job per app with `analysis`, after that app's traffic move; their outputs by app. */
    private declareAnalyses(plan: EnvironmentPlan, resource: pulumi.CustomResourceOptions): Record<string, unknown> {
        const planned = plan.apps.map((a) => ({ app: a, analysis: planAnalysis(a, plan.namespace, SERVICE_PORT) })).filter((x) => x.analysis);
        if (planned.length === 0) return {};
        const scripts = new k8s.core.v1.ConfigMap("analysis-scripts", {
            metadata: metadata("analysis-scripts", this.namespace, { ...plan.labels, "app.kubernetes.io/component": "analysis" }),
            data: analysisScripts(),
        }, resource);
        const out: Record<string, unknown> = {};
        for (const { app, analysis } of planned) {
            const name = app.config.name;
            const release = this.apps[name];
            new Analysis(`${name}-analysis`, {
                app: name, plan: analysis!, namespace: this.namespace, stack: plan.config.stack, labels: plan.labels,
                scriptsConfigMap: scripts.metadata.name, image: plan.config.images.analysis, after: release.trafficMoved, placement: plan.config.kubernetes.placement,
            }, { parent: release });
            out[name] = { job: analysis!.job, track: analysis!.track, version: analysis!.version, checks: analysis!.spec.http.length + 1 + (analysis!.spec.prometheus?.checks.length ?? 0) };
        }
        return out;
    }
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadCloud = (): typeof Cloud => (require("./cloud") as typeof import("./cloud")).Cloud;
