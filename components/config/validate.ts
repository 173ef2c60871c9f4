import {
    Problems, boolean, imageVersion, integer, isObject, object, oneOf, patterns, requiredObject, string, stringList,
} from "./check";
import {
    AppConfig, AutoscalingConfig, BackupConfig, BlueGreenConfig, BuildConfig, CanaryConfig, DataService, GcpConfig,
    PostgresConfig, RedisConfig, RoutingConfig, StackConfig, Strategy, Tier,
} from "./types";
import { validateAnalysis } from "./analysis";
import { cronProblem } from "./cron";
import { RESERVED_ENV } from "./env";
import { storageSize, validateResources } from "./quantities";
import { hostProblem, pathProblem } from "./routing";
import { validateAppNetwork, validateRouterSources } from "./network";
import { PLACEMENT_KEYS, validateNodePort, validateNodePorts, validatePlacement } from "./placement";
import { validateProductionData } from "./production";
import { validateMutableTags } from "./versions";
import { validateBucketRetention } from "./backups";
import { validateTls } from "./tls";
import { validateImages } from "./images";

/** Thrown when the stack config is invalid; its message lists every problem, one per line. */
export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`Invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
            problems.map((p) => `  - ${p}`).join("\n"));
        this.name = "ConfigError";
    }
}

const TOP_LEVEL_KEYS = ["tier", "namespace", "kubernetes", "gcp", "postgres", "redis", "apps", "images"] as const;
const TIERS: readonly Tier[] = ["local", "staging", "production"];
const BACKUP_KEYS = ["enabled", "schedule", "keepDaily", "keepWeekly", "keepMonthly", "destination", "storage", "restoreDrill", "beforeMigrations", "beforeDeploy", "retention"];
const POSTGRES_ONLY_BACKUP_KEYS = ["beforeMigrations", "beforeDeploy"];
const APP_KEYS = [
    "image", "port", "healthPath", "replicas", "component", "resources", "env", "uses", "strategy", "tag",
    "blueGreen", "canary", "routing", "migrations", "smokeTest", "autoscaling", "build", "rolloutTimeoutSeconds", "analysis", "allowMutableTags",
    "calls", "egressCidrs", ...PLACEMENT_KEYS,
];
const STRATEGY_KEY = { rolling: "tag", blueGreen: "blueGreen", canary: "canary" } as const;
const DATA_SERVICES: readonly DataService[] = ["postgres", "redis"];

/**
 * Turns `pulumi.runtime.allConfig()` (keys like "platform:apps", object values as JSON text) into
 * plain values. A value that is not JSON is a plain string.
 */
export function parseRawConfig(all: Record<string, string>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, text] of Object.entries(all)) {
        try {
            out[key] = JSON.parse(text);
        } catch {
            out[key] = text;
        }
    }
    return out;
}

/**
 * Validates each key of a stack config and fills in defaults. `raw` maps full config keys
 * ("platform:apps", "gcp:project") to parsed values. Throws ConfigError listing every problem.
 * Rules across apps that need the plan's names (plan/rules.ts) run only on what this returns:
 * `validateStackConfig` there runs both, as the program does.
 */
export function validateConfig(raw: Record<string, unknown>, stack: string): StackConfig {
    const p = new Problems();
    for (const key of Object.keys(raw)) {
        if (!key.startsWith("platform:")) continue;
        const name = key.slice("platform:".length);
        if (!(TOP_LEVEL_KEYS as readonly string[]).includes(name)) {
            p.add(name, `is not a known key (allowed: ${TOP_LEVEL_KEYS.map((k) => `platform:${k}`).join(", ")})`, raw[key]);
        }
    }
    const get = (k: string) => raw[`platform:${k}`];

    const tier = oneOf(p, "tier", get("tier"), TIERS) ?? "local";
    const namespace = string(p, "namespace", get("namespace"), {
        required: true, pattern: patterns.dnsLabel, means: "a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters",
    }) ?? "invalid";

    const k8s = object(p, "kubernetes", get("kubernetes"), ["renderYamlToDirectory", "context", "placement"]) ?? {};
    // Where the platform's own pods run (apps have apps.<app>.nodeSelector/tolerations).
    const placement = validatePlacement(p, "kubernetes.placement", object(p, "kubernetes.placement", k8s.placement, ["nodeSelector", "tolerations"]) ?? {});
    const kubernetes = {
        renderYamlToDirectory: string(p, "kubernetes.renderYamlToDirectory", k8s.renderYamlToDirectory),
        context: string(p, "kubernetes.context", k8s.context),
        placement: { nodeSelector: placement.nodeSelector, tolerations: placement.tolerations },
    };

    const gcp = validateGcp(p, get("gcp"), raw);
    const postgres = validatePostgres(p, get("postgres"), tier, gcp);
    const redis = validateRedis(p, get("redis"), tier, gcp);
    const apps = validateApps(p, get("apps"), tier);
    validateNodePorts(p, apps, tier);
    for (const app of apps.filter((a) => a.build && !gcp.enabled)) {
        p.add(`apps.${app.name}.build`, "needs platform:gcp.enabled: true (a built image is pushed to the environment's Artifact Registry)", app.build);
    }
    validateProductionData(p, tier, postgres, redis);
    const images = validateImages(p, get("images"), tier, postgres, redis);

    if (!p.empty) throw new ConfigError(p.list);
    return { stack, tier, namespace, kubernetes, gcp, postgres, redis, apps, images };
}

function validateGcp(p: Problems, value: unknown, raw: Record<string, unknown>): GcpConfig {
    const g = object(p, "gcp", value, ["enabled", "project", "region", "keepImageVersions"]) ?? {};
    const enabled = boolean(p, "gcp.enabled", g.enabled, false) ?? false;
    const project = string(p, "gcp.project", g.project ?? raw["gcp:project"], { pattern: /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, means: "a Google Cloud project id" });
    const region = string(p, "gcp.region", g.region ?? raw["gcp:region"], { pattern: /^[a-z]+-[a-z]+[0-9]$/, means: "a Google Cloud region such as europe-west1" });
    if (enabled && !project) p.add("gcp.project", "is required when platform:gcp.enabled is true (or set gcp:project)");
    if (enabled && !region) p.add("gcp.region", "is required when platform:gcp.enabled is true (or set gcp:region)");
    const keepImageVersions = integer(p, "gcp.keepImageVersions", g.keepImageVersions, 1, 1000, 20) ?? 20;
    return { enabled, project, region, keepImageVersions };
}

function validateBackup(p: Problems, path: string, value: unknown, tier: Tier, service: DataService, gcp: GcpConfig): BackupConfig {
    const b = object(p, path, value, service === "postgres" ? BACKUP_KEYS : BACKUP_KEYS.filter((k) => !POSTGRES_ONLY_BACKUP_KEYS.includes(k))) ?? {};
    const defaultDestination = tier === "production" ? "gcs" : "pvc";
    const destination = oneOf(p, `${path}.destination`, b.destination, ["pvc", "gcs"] as const, defaultDestination) ?? defaultDestination;
    if (destination === "gcs" && !gcp.enabled) {
        p.add(`${path}.destination`, "can be \"gcs\" only when platform:gcp.enabled is true; use \"pvc\" otherwise", destination);
    }
    const drill = object(p, `${path}.restoreDrill`, b.restoreDrill, ["schedule"]) ?? {};
    const enabled = boolean(p, `${path}.enabled`, b.enabled, tier !== "local") ?? false;
    if (b.beforeMigrations === true && !enabled) {
        p.add(`${path}.beforeMigrations`, `needs platform:${path}.enabled: true (it runs the daily backup as a Job)`, true);
    }
    if (b.beforeDeploy === true && !enabled) {
        p.add(`${path}.beforeDeploy`, `needs platform:${path}.enabled: true (it runs the daily backup as a Job)`, true);
    }
    const keepDaily = integer(p, `${path}.keepDaily`, b.keepDaily, 0, 366, 7) ?? 7;
    return {
        enabled,
        schedule: cron(p, `${path}.schedule`, b.schedule, service === "postgres" ? "15 2 * * *" : "45 2 * * *"),
        keepDaily,
        keepWeekly: integer(p, `${path}.keepWeekly`, b.keepWeekly, 0, 520, 4) ?? 4,
        keepMonthly: integer(p, `${path}.keepMonthly`, b.keepMonthly, 0, 240, 0) ?? 0,
        destination,
        storage: storageSize(p, `${path}.storage`, b.storage, { example: "50Gi" }) ?? "50Gi",
        restoreDrill: { schedule: cron(p, `${path}.restoreDrill.schedule`, drill.schedule, service === "postgres" ? "0 5 1 * *" : "30 5 1 * *") },
        beforeMigrations: boolean(p, `${path}.beforeMigrations`, b.beforeMigrations, tier === "production") ?? false,
        beforeDeploy: boolean(p, `${path}.beforeDeploy`, b.beforeDeploy, tier === "production" && enabled) ?? false,
        retention: validateBucketRetention(p, `${path}.retention`, b.retention, destination, keepDaily),
    };
}

function cron(p: Problems, path: string, value: unknown, fallback: string): string {
    const text = string(p, path, value);
    if (text === undefined) return fallback;
    const problem = cronProblem(text);
    if (problem) p.add(path, `must be a five-field cron expression such as "15 2 * * *" that Kubernetes accepts (no seconds, ?, L, W or #; weekdays 0-6): ${problem}`, value);
    return text;
}

function validatePostgres(p: Problems, value: unknown, tier: Tier, gcp: GcpConfig): PostgresConfig {
    const v = requiredObject(p, "postgres", value,
        ["mode", "version", "storage", "storageClass", "resources", "database", "user", "cloudsql", "backup"]) ?? {};
    const mode = oneOf(p, "postgres.mode", v.mode, ["incluster", "cloudsql"] as const, "incluster") ?? "incluster";
    const version = String(integer(p, "postgres.version", v.version, 13, 17) ?? 16);
    let cloudsql: PostgresConfig["cloudsql"];
    const c = object(p, "postgres.cloudsql", v.cloudsql, ["tier", "availabilityType", "diskSizeGb", "network"]);
    if (mode === "cloudsql") {
        if (!gcp.enabled) p.add("postgres.mode", "can be \"cloudsql\" only when platform:gcp.enabled is true", mode);
        const cs = c ?? (p.add("postgres.cloudsql", "is required when platform:postgres.mode is \"cloudsql\""), {});
        cloudsql = {
            tier: string(p, "postgres.cloudsql.tier", cs.tier, { required: true, pattern: /^db-[a-z0-9-]+$/, means: "a Cloud SQL machine tier such as db-custom-2-7680" }) ?? "",
            availabilityType: oneOf(p, "postgres.cloudsql.availabilityType", cs.availabilityType, ["ZONAL", "REGIONAL"] as const, tier === "production" ? "REGIONAL" : "ZONAL") ?? "ZONAL",
            diskSizeGb: integer(p, "postgres.cloudsql.diskSizeGb", cs.diskSizeGb, 10, 65536, 20) ?? 20,
            network: string(p, "postgres.cloudsql.network", cs.network, { required: true, means: "the VPC network the instance gets its private IP in, e.g. projects/<id>/global/networks/default" }) ?? "",
        };
    } else if (c) {
        p.add("postgres.cloudsql", "is only used when platform:postgres.mode is \"cloudsql\"", c);
    }
    return {
        mode,
        version,
        storage: storageSize(p, "postgres.storage", v.storage, { required: mode === "incluster", example: "20Gi" }) ?? "20Gi",
        storageClass: string(p, "postgres.storageClass", v.storageClass, { pattern: patterns.dnsSubdomain, means: "a StorageClass name" }),
        resources: validateResources(p, "postgres.resources", v.resources, {
            requests: { cpu: "250m", memory: "512Mi" }, limits: { cpu: "1", memory: "1Gi" },
        }),
        database: string(p, "postgres.database", v.database, { required: true, pattern: patterns.sqlIdentifier, means: "a lower-case SQL identifier" }) ?? "app",
        user: string(p, "postgres.user", v.user, { required: true, pattern: patterns.sqlIdentifier, means: "a lower-case SQL identifier" }) ?? "app",
        cloudsql,
        backup: validateBackup(p, "postgres.backup", v.backup, tier, "postgres", gcp),
    };
}

function validateRedis(p: Problems, value: unknown, tier: Tier, gcp: GcpConfig): RedisConfig {
    const v = requiredObject(p, "redis", value,
        ["mode", "version", "persistence", "storage", "storageClass", "resources", "memorystore", "backup"]) ?? {};
    const mode = oneOf(p, "redis.mode", v.mode, ["incluster", "memorystore"] as const, "incluster") ?? "incluster";
    let memorystore: RedisConfig["memorystore"];
    const m = object(p, "redis.memorystore", v.memorystore, ["tier", "memorySizeGb", "network"]);
    if (mode === "memorystore") {
        if (!gcp.enabled) p.add("redis.mode", "can be \"memorystore\" only when platform:gcp.enabled is true", mode);
        if (!["6", "6.x", "7", "7.0", "7.2"].includes(String(v.version))) {
            p.add("redis.version", "must be 6, 7.0 or 7.2 when platform:redis.mode is \"memorystore\" (the versions Memorystore offers)", v.version);
        }
        const ms = m ?? (p.add("redis.memorystore", "is required when platform:redis.mode is \"memorystore\""), {});
        memorystore = {
            tier: oneOf(p, "redis.memorystore.tier", ms.tier, ["BASIC", "STANDARD_HA"] as const, tier === "production" ? "STANDARD_HA" : "BASIC") ?? "BASIC",
            memorySizeGb: integer(p, "redis.memorystore.memorySizeGb", ms.memorySizeGb, 1, 300, 1) ?? 1,
            network: string(p, "redis.memorystore.network", ms.network, { required: true, means: "the VPC network Memorystore peers with" }) ?? "",
        };
    } else if (m) {
        p.add("redis.memorystore", "is only used when platform:redis.mode is \"memorystore\"", m);
    }
    return {
        mode,
        version: string(p, "redis.version", typeof v.version === "number" ? String(v.version) : v.version, {
            required: true, pattern: /^[6-8](\.[0-9]+){0,2}$/, means: "a Redis version from 6 to 8, e.g. \"7.2\"",
        }) ?? "7.2",
        persistence: boolean(p, "redis.persistence", v.persistence, true) ?? true,
        storage: storageSize(p, "redis.storage", v.storage, { required: mode === "incluster", example: "5Gi" }) ?? "5Gi",
        storageClass: string(p, "redis.storageClass", v.storageClass, { pattern: patterns.dnsSubdomain, means: "a StorageClass name" }),
        resources: validateResources(p, "redis.resources", v.resources, {
            requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "500m", memory: "512Mi" },
        }),
        memorystore,
        backup: validateBackup(p, "redis.backup", v.backup, tier, "redis", gcp),
    };
}

function validateApps(p: Problems, value: unknown, tier: Tier): AppConfig[] {
    if (value === undefined) {
        p.add("apps", "is required (a map of app name to app settings)");
        return [];
    }
    if (!isObject(value)) {
        p.add("apps", "must be a map of app name to app settings", value);
        return [];
    }
    const apps: AppConfig[] = [];
    for (const [name, settings] of Object.entries(value)) {
        // 40 leaves room for the longest derived name ("-preview", "-migrate-<hash>") within 63.
        if (!/^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/.test(name)) {
            p.add(`apps.${name}`, "has an invalid app name: use lower-case letters, digits and '-', starting with a letter, at most 40 characters", name);
            continue;
        }
        const app = validateApp(p, `apps.${name}`, name, settings, tier);
        if (app) apps.push(app);
    }
    return apps.sort((a, b) => a.name.localeCompare(b.name));
}

function validateApp(p: Problems, path: string, name: string, value: unknown, tier: Tier): AppConfig | undefined {
    const v = requiredObject(p, path, value, APP_KEYS);
    if (!v) return undefined;
    const before = p.list.length;
    const strategy = oneOf(p, `${path}.strategy`, v.strategy, ["rolling", "blueGreen", "canary"] as const, "rolling");
    // A strategy switched by hand, its section not: one problem that says what the switch needs.
    const switchedFrom = strategy && v[STRATEGY_KEY[strategy]] === undefined
        ? (Object.keys(STRATEGY_KEY) as Strategy[]).find((s) => s !== strategy && v[STRATEGY_KEY[s]] !== undefined)
        : undefined;
    if (strategy && switchedFrom) {
        const needs = { rolling: `${path}.tag (the version to run)`, blueGreen: `${path}.blueGreen {activeColor, blue, green}`, canary: `${path}.canary {stable, canary?, weight}` }[strategy];
        const routing = strategy === "canary" && v.routing === undefined ? ` and ${path}.routing (a canary is routed by weight)` : "";
        const is = v.strategy === undefined ? "is unset, so \"rolling\"," : `is "${strategy}",`;
        const has = switchedFrom === "rolling" ? "a tag" : `${switchedFrom} settings`;
        p.add(`${path}.strategy`, `${is} but ${path} has ${has} and no ${STRATEGY_KEY[strategy]}: give ${needs}${routing} in place of ${path}.${STRATEGY_KEY[switchedFrom]}, or set strategy back to "${switchedFrom}"`, v.strategy);
    }
    for (const [s, key] of Object.entries(STRATEGY_KEY)) {
        if (strategy && !switchedFrom && s !== strategy && v[key] !== undefined) {
            p.add(`${path}.${key}`, `is only used with strategy "${s}" (this app's strategy is "${strategy}")`, v[key]);
        }
    }
    const replicas = integer(p, `${path}.replicas`, v.replicas, 1, 1000) ?? 1;
    const port = integer(p, `${path}.port`, v.port, 1, 65535) ?? 8080;
    if (port < 1024 && p.list.length === before) {
        p.add(`${path}.port`, "must be 1024 or above: containers run as non-root and cannot bind privileged ports", v.port);
    }
    const env: Record<string, string> = {};
    const envObj = v.env === undefined || isObject(v.env) ? v.env : (p.add(`${path}.env`, "must be a map of variable names to strings", v.env), undefined);
    if (envObj) {
        for (const [k, val] of Object.entries(envObj)) {
            if (!patterns.envName.test(k)) p.add(`${path}.env.${k}`, "is not a valid environment variable name (letters, digits and '_', not starting with a digit)", k);
            else if (RESERVED_ENV.has(k)) p.add(`${path}.env.${k}`, `is set by the platform ${RESERVED_ENV.get(k)} and cannot be overridden (reserved: ${[...RESERVED_ENV.keys()].join(", ")})`, val);
            else if (typeof val === "string" || typeof val === "number" || typeof val === "boolean") env[k] = String(val);
            else p.add(`${path}.env.${k}`, "must be a string", val);
        }
    }
    const usesList = stringList(p, `${path}.uses`, v.uses) ?? [];
    const uses: DataService[] = [];
    usesList.forEach((u, i) => {
        if ((DATA_SERVICES as readonly string[]).includes(u)) {
            if (!uses.includes(u as DataService)) uses.push(u as DataService);
        } else {
            p.add(`${path}.uses[${i}]`, `must be one of ${DATA_SERVICES.map((d) => `"${d}"`).join(", ")}`, u);
        }
    });

    const app: AppConfig = {
        name,
        image: string(p, `${path}.image`, v.image, {
            required: true, pattern: patterns.imageRepository,
            means: "an image repository without tag or digest, e.g. europe-docker.pkg.dev/acme/apps/api (the version goes in tag, blueGreen or canary)",
        }) ?? "invalid",
        port,
        healthPath: string(p, `${path}.healthPath`, v.healthPath, { required: true, pattern: patterns.httpPath, means: "an HTTP path starting with /" }) ?? "/",
        replicas,
        component: string(p, `${path}.component`, v.component, { pattern: patterns.dnsLabel, means: "a short lower-case label such as web or api" }) ?? "server",
        resources: validateResources(p, `${path}.resources`, v.resources, {
            requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "500m", memory: "256Mi" },
        }),
        env,
        uses,
        strategy: strategy ?? "rolling",
        network: validateAppNetwork(p, path, v),
        // A release that cannot become ready fails `pulumi up` after this long instead of Pulumi's 10 minutes.
        rolloutTimeoutSeconds: integer(p, `${path}.rolloutTimeoutSeconds`, v.rolloutTimeoutSeconds, 30, 3600, 300) ?? 300,
        placement: validatePlacement(p, path, v),
    };
    const nodePort = validateNodePort(p, path, v.nodePort);
    if (nodePort !== undefined) app.nodePort = nodePort;

    if (switchedFrom) {
        // Reported above, with what the new strategy needs.
    } else if (strategy === "rolling") {
        app.tag = imageVersion(p, `${path}.tag`, v.tag, true);
    } else if (strategy === "blueGreen") {
        app.blueGreen = validateBlueGreen(p, `${path}.blueGreen`, v.blueGreen, replicas);
    } else if (strategy === "canary") {
        app.canary = validateCanary(p, `${path}.canary`, v.canary, replicas);
    }
    app.allowMutableTags = validateMutableTags(p, path, app, v.allowMutableTags);
    // A canary without routing after a switch: already named in the strategy's problem.
    app.routing = switchedFrom && v.routing === undefined ? undefined : validateRouting(p, `${path}.routing`, v.routing, strategy);
    const mig = object(p, `${path}.migrations`, v.migrations, ["command"]);
    if (mig) app.migrations = { command: stringList(p, `${path}.migrations.command`, mig.command, { required: true, minItems: 1 }) ?? [] };
    if (mig && !uses.includes("postgres")) p.add(`${path}.migrations`, "needs the app to use postgres (add \"postgres\" to uses)", mig);
    const smoke = object(p, `${path}.smokeTest`, v.smokeTest, ["command"]);
    if (smoke) app.smokeTest = { command: stringList(p, `${path}.smokeTest.command`, smoke.command, { required: true, minItems: 1 }) ?? [] };
    app.autoscaling = validateAutoscaling(p, `${path}.autoscaling`, v.autoscaling);
    app.build = validateBuild(p, `${path}.build`, v.build);
    app.analysis = validateAnalysis(p, `${path}.analysis`, v.analysis, tier, app.healthPath);

    if (app.autoscaling && app.routing?.kind === "replicas") {
        p.add(`${path}.autoscaling`, "cannot be combined with routing.kind \"replicas\", where the replica ratio is the traffic split", v.autoscaling);
    }
    if (app.autoscaling && app.blueGreen && v.blueGreen && isObject(v.blueGreen) && v.blueGreen.idleReplicas === undefined) {
        // An autoscaled app's idle colour waits at the autoscaler's floor, ready to take the traffic back.
        app.blueGreen.idleReplicas = app.autoscaling.minReplicas;
    }
    if (app.autoscaling && app.blueGreen && app.blueGreen.idleReplicas > 0 && app.blueGreen.idleReplicas < app.autoscaling.minReplicas) {
        p.add(`${path}.blueGreen.idleReplicas`, `must be 0 or at least autoscaling.minReplicas (${app.autoscaling.minReplicas}) so that a switch back lands on enough capacity`, app.blueGreen.idleReplicas);
    }
    return app;
}

const OPTIONAL_SECTION_KEYS = ["idleReplicas", "canary", "canaryReplicas"];

/** A strategy's own section: required, and an object; the problem says what it holds. */
function strategySection(p: Problems, path: string, value: unknown, strategy: Strategy, keys: string[]): Record<string, unknown> | undefined {
    const shape = `an object {${keys.map((k) => (OPTIONAL_SECTION_KEYS.includes(k) ? `${k}?` : k)).join(", ")}}`;
    if (value === undefined) {
        p.add(path, `is required with strategy "${strategy}" (${shape})`);
        return undefined;
    }
    if (!isObject(value)) {
        p.add(path, `must be ${shape}`, value);
        return undefined;
    }
    return object(p, path, value, keys);
}
function validateBlueGreen(p: Problems, path: string, value: unknown, replicas: number): BlueGreenConfig | undefined {
    const v = strategySection(p, path, value, "blueGreen", ["activeColor", "blue", "green", "idleReplicas"]);
    if (!v) return undefined;
    return {
        activeColor: oneOf(p, `${path}.activeColor`, v.activeColor, ["blue", "green"] as const) ?? "blue",
        blue: imageVersion(p, `${path}.blue`, v.blue, true) ?? "",
        green: imageVersion(p, `${path}.green`, v.green, true) ?? "",
        idleReplicas: integer(p, `${path}.idleReplicas`, v.idleReplicas, 0, 1000, replicas) ?? replicas,
    };
}

function validateCanary(p: Problems, path: string, value: unknown, replicas: number): CanaryConfig | undefined {
    const v = strategySection(p, path, value, "canary", ["stable", "canary", "weight", "canaryReplicas"]);
    if (!v) return undefined;
    const weight = integer(p, `${path}.weight`, v.weight, 0, 100) ?? 0;
    const canary = imageVersion(p, `${path}.canary`, v.canary, false);
    if (weight > 0 && v.canary === undefined) {
        p.add(`${path}.canary`, `is required when ${path}.weight is above 0: it names the version that takes the traffic (weight is ${weight})`);
    }
    const canaryReplicas = integer(p, `${path}.canaryReplicas`, v.canaryReplicas, 1, 1000, replicas);
    return {
        stable: imageVersion(p, `${path}.stable`, v.stable, true) ?? "",
        canary,
        weight,
        canaryReplicas: v.canaryReplicas === undefined ? undefined : canaryReplicas,
    };
}

function validateRouting(p: Problems, path: string, value: unknown, strategy: AppConfig["strategy"] | undefined): RoutingConfig | undefined {
    if (value === undefined && strategy !== "canary") return undefined;
    const v = object(p, path, value, ["kind", "host", "path", "gateway", "ingressClassName", "from", "tls"]) ?? {};
    const kind = oneOf(p, `${path}.kind`, v.kind, ["gateway", "nginx", "replicas"] as const, "gateway") ?? "gateway";
    if (kind === "replicas" && strategy !== "canary") {
        p.add(`${path}.kind`, "can be \"replicas\" only for a canary app; use \"gateway\" or \"nginx\"", kind);
    }
    let host = string(p, `${path}.host`, v.host, { pattern: patterns.hostname, means: "a DNS host name such as api.example.com" });
    const badHost = host && hostProblem(host);
    if (badHost) {
        p.add(`${path}.host`, badHost, host);
        host = undefined;
    }
    let routePath = string(p, `${path}.path`, v.path, { pattern: patterns.httpPath, means: "an HTTP path prefix starting with /" });
    const badPath = routePath && pathProblem(routePath);
    if (badPath) {
        p.add(`${path}.path`, `${badPath} (Ingress and Gateway API refuse it)`, routePath);
        routePath = undefined;
    }
    if (kind !== "replicas" && !host && v.host === undefined) {
        p.add(`${path}.host`, `is required when ${path}.kind is "${kind}"`);
    }
    const gw = object(p, `${path}.gateway`, v.gateway, ["name", "namespace"]);
    let gateway: RoutingConfig["gateway"];
    if (kind === "gateway") {
        if (!gw) {
            p.add(`${path}.gateway`, `is required when ${path}.kind is "gateway" (an object with the name and namespace of the Gateway to attach to)`);
        } else {
            gateway = {
                name: string(p, `${path}.gateway.name`, gw.name, { required: true, pattern: patterns.dnsSubdomain, means: "a Gateway name" }) ?? "",
                namespace: string(p, `${path}.gateway.namespace`, gw.namespace, { required: true, pattern: patterns.dnsLabel, means: "a namespace name" }) ?? "",
            };
        }
    } else if (gw) {
        p.add(`${path}.gateway`, `is only used when ${path}.kind is "gateway"`, gw);
    }
    return {
        kind,
        from: validateRouterSources(p, `${path}.from`, v.from, kind, gateway?.namespace),
        tls: validateTls(p, `${path}.tls`, v.tls, kind, path.split(".")[1]),
        host,
        path: routePath ?? "/",
        gateway,
        ingressClassName: string(p, `${path}.ingressClassName`, v.ingressClassName, { pattern: patterns.dnsSubdomain, means: "an IngressClass name" }) ?? "nginx",
    };
}

function validateAutoscaling(p: Problems, path: string, value: unknown): AutoscalingConfig | undefined {
    const v = object(p, path, value, ["minReplicas", "maxReplicas", "targetCPUUtilization"]);
    if (!v) return undefined;
    const minReplicas = integer(p, `${path}.minReplicas`, v.minReplicas, 1, 1000) ?? 1;
    const maxReplicas = integer(p, `${path}.maxReplicas`, v.maxReplicas, 1, 1000) ?? minReplicas;
    if (maxReplicas < minReplicas) p.add(`${path}.maxReplicas`, `must be at least minReplicas (${minReplicas})`, v.maxReplicas);
    return {
        minReplicas,
        maxReplicas,
        targetCPUUtilization: integer(p, `${path}.targetCPUUtilization`, v.targetCPUUtilization, 1, 100, 70) ?? 70,
    };
}

function validateBuild(p: Problems, path: string, value: unknown): BuildConfig | undefined {
    const v = object(p, path, value, ["context", "dockerfile", "target", "args"]);
    if (!v) return undefined;
    const argsObj = v.args === undefined ? {} : isObject(v.args) ? v.args : (p.add(`${path}.args`, "must be a map of build argument names to strings", v.args), {});
    const args: Record<string, string> = {};
    for (const [k, val] of Object.entries(argsObj)) {
        if (typeof val === "string") args[k] = val;
        else p.add(`${path}.args.${k}`, "must be a string", val);
    }
    return {
        context: string(p, `${path}.context`, v.context, { required: true, means: "the build context directory, relative to the project" }) ?? ".",
        dockerfile: string(p, `${path}.dockerfile`, v.dockerfile),
        target: string(p, `${path}.target`, v.target),
        args,
    };
}
