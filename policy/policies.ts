import {
    ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy,
} from "@pulumi/policy";

// The platform's mandatory policies. Self-contained (only @pulumi/policy), so the pack runs and
// publishes without the program. index.ts builds the PolicyPack from these; the tests call them
// one by one on what the program registers (tests/policy/).

/** Policy config every policy accepts: which stack names are production (default ["production"]). */
export interface PlatformPolicyConfig {
    productionStacks?: string[];
}

const configSchema = {
    properties: {
        productionStacks: { type: "array" as const, items: { type: "string" as const }, default: ["production"] },
    },
};

/** The stack of a URN: urn:pulumi:<stack>::<project>::<type>::<name>. */
export function stackOf(urn: string): string {
    return urn.split("::")[0].split(":")[2] ?? "";
}

function isProduction(urn: string, args: { getConfig<T extends object>(): T }): boolean {
    const stacks = args.getConfig<PlatformPolicyConfig>().productionStacks ?? ["production"];
    return stacks.includes(stackOf(urn));
}

type PodSpec = { containers?: Container[]; initContainers?: Container[]; securityContext?: any; volumes?: any[]; hostNetwork?: boolean; hostPID?: boolean; hostIPC?: boolean };
type Container = { name?: string; image?: string; resources?: any; securityContext?: any; env?: { name: string; value?: string }[]; command?: string[]; args?: string[] };

/** Where each workload kind keeps its pod spec. */
const POD_SPEC: Record<string, (props: any) => PodSpec | undefined> = {
    "kubernetes:core/v1:Pod": (p) => p.spec,
    "kubernetes:apps/v1:Deployment": (p) => p.spec?.template?.spec,
    "kubernetes:apps/v1:StatefulSet": (p) => p.spec?.template?.spec,
    "kubernetes:apps/v1:DaemonSet": (p) => p.spec?.template?.spec,
    "kubernetes:apps/v1:ReplicaSet": (p) => p.spec?.template?.spec,
    "kubernetes:batch/v1:Job": (p) => p.spec?.template?.spec,
    "kubernetes:batch/v1:CronJob": (p) => p.spec?.jobTemplate?.spec?.template?.spec,
};

export function podSpecOf(type: string, props: any): PodSpec | undefined {
    return POD_SPEC[type]?.(props);
}

const containersOf = (spec: PodSpec): Container[] => [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
const describeObject = (props: any, type: string) => `${props?.kind ?? type} ${props?.metadata?.name ?? ""}`.trim();

/**
 * What is wrong with an image reference, if anything: it must carry a digest or a tag other than
 * "latest". An unknown image (a digest a preview cannot know yet) is not judged.
 */
export function imageProblem(image: unknown): string | undefined {
    if (image === undefined || image === null) return undefined;
    if (typeof image !== "string" || image === "") return "has no image";
    if (/@sha256:[a-f0-9]{64}$/.test(image)) return undefined;
    if (image.includes("@")) return `has a malformed digest (${image})`;
    const last = image.slice(image.lastIndexOf("/") + 1);
    const colon = last.lastIndexOf(":");
    if (colon === -1) return `is untagged (${image}): name a tag or a digest`;
    if (last.slice(colon + 1) === "latest") return `uses the "latest" tag (${image}): name an exact version`;
    return undefined;
}

function eachContainer(args: ResourceValidationArgs, report: ReportViolation, check: (c: Container, spec: PodSpec, where: string) => void): void {
    const spec = podSpecOf(args.type, args.props);
    if (!spec) return;
    for (const c of containersOf(spec)) check(c, spec, `${describeObject(args.props, args.type)}: container ${c.name ?? "?"}`);
}

export const noUntaggedOrLatestImages: ResourceValidationPolicy = {
    name: "no-untagged-or-latest-images",
    description: "Every container image (and every image the stack builds) names a tag other than latest, or a digest.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: (args, report) => {
        if (args.type === "docker:index/image:Image") {
            const problem = imageProblem(args.props.imageName);
            if (problem) report(`docker image ${args.name} ${problem}`);
            return;
        }
        eachContainer(args, report, (c, _spec, where) => {
            const problem = imageProblem(c.image);
            if (problem) report(`${where} ${problem}`);
        });
    },
};

const QUANTITY_SUFFIX: Record<string, number> = {
    "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A Kubernetes quantity as a number (cores or bytes), or undefined when it is not one. */
export function quantity(q: unknown): number | undefined {
    if (typeof q === "number") return q;
    const m = typeof q === "string" ? /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([a-zA-Z]*)$/.exec(q) : null;
    return m && m[2] in QUANTITY_SUFFIX ? Number(m[1]) * QUANTITY_SUFFIX[m[2]] : undefined;
}

export const requestsAndLimits: ResourceValidationPolicy = {
    name: "containers-have-requests-and-limits",
    description: "Every container requests and limits both CPU and memory, and requests no more than its limits.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: (args, report) => {
        eachContainer(args, report, (c, _spec, where) => {
            const missing: string[] = [];
            for (const side of ["requests", "limits"]) {
                for (const resource of ["cpu", "memory"]) {
                    const v = c.resources?.[side]?.[resource];
                    if (v === undefined || v === null || v === "") missing.push(`${side}.${resource}`);
                }
            }
            if (missing.length) report(`${where} has no ${missing.join(", ")}`);
            for (const resource of ["cpu", "memory"]) {
                const req = quantity(c.resources?.requests?.[resource]);
                const lim = quantity(c.resources?.limits?.[resource]);
                if (req !== undefined && lim !== undefined && req > lim) {
                    report(`${where} requests more ${resource} (${c.resources.requests[resource]}) than its limit (${c.resources.limits[resource]})`);
                }
            }
        });
    },
};

/** Problems of one container under the Kubernetes "restricted" Pod Security Standard. */
export function restrictedProblems(c: Container, spec: PodSpec): string[] {
    const pod = spec.securityContext ?? {};
    const sc = c.securityContext ?? {};
    const problems: string[] = [];
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push("runAsNonRoot is not true");
    if ((sc.runAsUser ?? pod.runAsUser) === 0) problems.push("runs as uid 0");
    const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") problems.push("seccompProfile is not RuntimeDefault or Localhost");
    if (sc.allowPrivilegeEscalation !== false) problems.push("allowPrivilegeEscalation is not false");
    if (sc.privileged === true) problems.push("is privileged");
    const drop: string[] = sc.capabilities?.drop ?? [];
    if (!drop.includes("ALL")) problems.push("does not drop ALL capabilities");
    const added = (sc.capabilities?.add ?? []).filter((cap: string) => cap !== "NET_BIND_SERVICE");
    if (added.length) problems.push(`adds capabilities ${added.join(", ")}`);
    return problems;
}

export const restrictedSecurityContext: ResourceValidationPolicy = {
    name: "restricted-security-context",
    description: "Pods meet the Kubernetes restricted Pod Security Standard: non-root, no privilege escalation, ALL capabilities dropped, RuntimeDefault seccomp, no host namespaces or host paths.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: (args, report) => {
        const spec = podSpecOf(args.type, args.props);
        if (!spec) return;
        const what = describeObject(args.props, args.type);
        for (const host of ["hostNetwork", "hostPID", "hostIPC"] as const) if (spec[host] === true) report(`${what} uses ${host}`);
        for (const v of spec.volumes ?? []) if (v?.hostPath) report(`${what} mounts the host path ${v.hostPath.path} (volume ${v.name})`);
        for (const c of containersOf(spec)) {
            const problems = restrictedProblems(c, spec);
            if (problems.length) report(`${what}: container ${c.name ?? "?"} ${problems.join("; ")}`);
        }
    },
};

/** Resource types that hold data: losing one loses data. */
export const DATA_TYPES: Record<string, string> = {
    "kubernetes:core/v1:PersistentVolumeClaim": "PersistentVolumeClaim",
    "gcp:sql/databaseInstance:DatabaseInstance": "Cloud SQL instance",
    "gcp:sql/database:Database": "Cloud SQL database",
    "gcp:redis/instance:Instance": "Memorystore instance",
    "gcp:storage/bucket:Bucket": "bucket (backups)",
};

function holdsData(type: string, props: any): string | undefined {
    if (type === "kubernetes:apps/v1:StatefulSet") return (props?.spec?.volumeClaimTemplates ?? []).length > 0 ? "StatefulSet with volumes" : undefined;
    return DATA_TYPES[type];
}

export const protectedDataInProduction: ResourceValidationPolicy = {
    name: "protected-data-in-production",
    description: "In production, everything that holds data (StatefulSets with volumes, PVCs, Cloud SQL, Memorystore, backup buckets) is declared with protect.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: (args, report) => {
        const what = holdsData(args.type, args.props);
        if (!what || !isProduction(args.urn, args)) return;
        if (args.opts.protect !== true) report(`${what} ${args.name} holds production data but is not protected (set protect: true)`);
    },
};

const CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight";
const CANARY_TOTAL = "nginx.ingress.kubernetes.io/canary-weight-total";

function weightProblem(value: unknown, max: number): string | undefined {
    const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n)) return `is not an integer (${JSON.stringify(value)})`;
    if (n < 0 || n > max) return `is ${n}, outside 0..${max}`;
    return undefined;
}

export const canaryWeightsInRange: ResourceValidationPolicy = {
    name: "canary-weights-in-range",
    description: "Traffic weights are integers from 0 to 100: HTTPRoute backendRefs and ingress-nginx canary-weight annotations.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: (args, report) => {
        const p = args.props;
        if (p?.kind === "HTTPRoute" && p?.apiVersion?.startsWith("gateway.networking.k8s.io/")) {
            (p.spec?.rules ?? []).forEach((rule: any, i: number) => {
                for (const ref of rule?.backendRefs ?? []) {
                    if (ref?.weight === undefined) continue;
                    const problem = weightProblem(ref.weight, 100);
                    if (problem) report(`HTTPRoute ${p.metadata?.name} rule ${i} backend ${ref.name} weight ${problem}`);
                }
            });
        }
        if (p?.kind === "Ingress") {
            const annotations = p.metadata?.annotations ?? {};
            if (annotations[CANARY_WEIGHT] === undefined) return;
            const total = annotations[CANARY_TOTAL] === undefined ? 100 : Number(annotations[CANARY_TOTAL]);
            const problem = weightProblem(annotations[CANARY_WEIGHT], Number.isInteger(total) && total > 0 ? total : 100);
            if (problem) report(`Ingress ${p.metadata?.name} ${CANARY_WEIGHT} ${problem}`);
        }
    },
};

/** The backup CronJobs' contract (scripts/backup/README.md, components/backup.ts). */
export const BACKUP_COMPONENT = "backup";
export const POSTGRES_BACKUP_NAME = "postgres-backup";
export const MIN_DAILY = 7;

const commandOf = (c: Container) => [...(c.command ?? []), ...(c.args ?? [])];
const envOf = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.value;

/**
 * What production's Postgres backups lack, from the stack's resources: a CronJob labelled
 * app.kubernetes.io/component=backup and app.kubernetes.io/name=postgres-backup that runs
 * pg-backup.sh in a phase that verifies the dump by restoring it ("run", or "dump" followed by
 * "store") with BACKUP_KEEP_DAILY >= 7, a restore-drill CronJob for Postgres, and, where Cloud SQL
 * runs the database, its automated backups with point-in-time recovery and at least 7 copies.
 */
export function postgresBackupProblems(resources: { type: string; props: any }[]): string[] {
    const problems: string[] = [];
    const cronJobs = resources.filter((r) => r.type === "kubernetes:batch/v1:CronJob");
    const backups = cronJobs.filter((r) => {
        const labels = r.props?.metadata?.labels ?? {};
        return labels["app.kubernetes.io/component"] === BACKUP_COMPONENT && labels["app.kubernetes.io/name"] === POSTGRES_BACKUP_NAME;
    });
    const containers = (r: { type: string; props: any }) => {
        const spec = podSpecOf(r.type, r.props);
        return spec ? containersOf(spec) : [];
    };
    const verifying = backups.flatMap(containers).filter((c) => {
        const cmd = commandOf(c);
        const i = cmd.findIndex((x) => x.endsWith("pg-backup.sh"));
        return i !== -1 && ["run", "dump"].includes(cmd[i + 1]);
    });
    if (backups.length === 0) problems.push(`no CronJob labelled app.kubernetes.io/component=${BACKUP_COMPONENT}, app.kubernetes.io/name=${POSTGRES_BACKUP_NAME}: production Postgres has no backups`);
    else if (verifying.length === 0) problems.push("the Postgres backup CronJob does not run pg-backup.sh in a verifying phase (run, or dump then store)");
    for (const c of verifying) {
        const daily = envOf(c, "BACKUP_KEEP_DAILY");
        const n = daily === undefined ? NaN : Number(daily);
        if (!Number.isInteger(n) || n < MIN_DAILY) problems.push(`the Postgres backup keeps ${daily ?? "no"} daily copies (BACKUP_KEEP_DAILY); production needs at least ${MIN_DAILY}`);
    }
    const drill = backups.flatMap(containers).some((c) => {
        const cmd = commandOf(c);
        return cmd.some((x) => x.endsWith("restore-drill.sh")) && cmd.includes("pg");
    });
    if (backups.length > 0 && !drill) problems.push("no restore-drill CronJob for Postgres: backups are never proven restorable");
    for (const sql of resources.filter((r) => r.type === "gcp:sql/databaseInstance:DatabaseInstance")) {
        const b = sql.props?.settings?.backupConfiguration ?? {};
        if (b.enabled !== true) problems.push("Cloud SQL automated backups are off");
        if (b.pointInTimeRecoveryEnabled !== true) problems.push("Cloud SQL point-in-time recovery is off");
        const kept = b.backupRetentionSettings?.retainedBackups;
        if (typeof kept !== "number" || kept < MIN_DAILY) problems.push(`Cloud SQL keeps ${kept ?? "the default number of"} automated backups; production needs at least ${MIN_DAILY}`);
    }
    return problems;
}

export const productionPostgresBackups: StackValidationPolicy = {
    name: "production-postgres-backups",
    description: `Production backs Postgres up daily with verification, keeps at least ${MIN_DAILY} daily copies and drills restores.`,
    enforcementLevel: "mandatory",
    configSchema,
    validateStack: (args: StackValidationArgs, report: ReportViolation) => {
        const first = args.resources[0];
        if (!first || !isProduction(first.urn, args)) return;
        for (const problem of postgresBackupProblems(args.resources)) report(problem);
    },
};

/** Tags registries move by convention (the program's list: components/config/versions.ts). */
export const MUTABLE_TAGS = [
    "main", "master", "trunk", "head", "stable", "edge", "dev", "develop", "development", "nightly", "next", "snapshot",
    "current", "lts", "release", "prod", "production", "staging", "test", "beta", "alpha", "unstable", "rolling",
];
/** Pod-template annotation of a workload whose owner deploys a moving tag knowingly. */
export const MUTABLE_TAG_ANNOTATION = "platform.dev/mutable-tag";

function podAnnotations(type: string, props: any): Record<string, string> {
    if (type === "kubernetes:core/v1:Pod") return props?.metadata?.annotations ?? {};
    const t = type === "kubernetes:batch/v1:CronJob" ? props?.spec?.jobTemplate?.spec?.template : props?.spec?.template;
    return t?.metadata?.annotations ?? {};
}

export const noMutableTags: ResourceValidationPolicy = {
    name: "no-mutable-tags",
    description: `No container runs a tag registries move (${MUTABLE_TAGS.slice(0, 6).join(", ")}, …) unless its pods carry ${MUTABLE_TAG_ANNOTATION}: allowed.`,
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: (args, report) => {
        if (podAnnotations(args.type, args.props)[MUTABLE_TAG_ANNOTATION] === "allowed") return;
        eachContainer(args, report, (c, _spec, where) => {
            if (typeof c.image !== "string" || c.image.includes("@")) return;
            const last = c.image.slice(c.image.lastIndexOf("/") + 1);
            const tag = last.includes(":") ? last.slice(last.lastIndexOf(":") + 1) : "";
            if (MUTABLE_TAGS.includes(tag.toLowerCase())) report(`${where} runs the moving tag "${tag}" (${c.image}): name an exact version or a digest`);
        });
    },
};

/** A schedule that plainly runs every day: day of month, month and day of week all "*". */
export function runsEveryDay(schedule: unknown): boolean {
    if (typeof schedule !== "string") return false;
    const f = schedule.trim().split(/\s+/);
    return f.length === 5 && f[2] === "*" && f[3] === "*" && f[4] === "*";
}

/**
 * What production's backups lack, for both data services: each in-cluster Postgres or Redis
 * (a StatefulSet labelled app.kubernetes.io/name=postgres|redis) and every Cloud SQL instance has a
 * backup CronJob (app.kubernetes.io/component=backup, app.kubernetes.io/name=<service>-backup), and
 * every backup CronJob runs every day.
 */
export function dailyBackupProblems(resources: { type: string; props: any }[]): string[] {
    const problems: string[] = [];
    const labels = (r: { props: any }) => r.props?.metadata?.labels ?? {};
    const backups = resources.filter((r) => r.type === "kubernetes:batch/v1:CronJob" && labels(r)["app.kubernetes.io/component"] === BACKUP_COMPONENT
        && /-backup$/.test(labels(r)["app.kubernetes.io/name"] ?? "")
        // The restore drill carries the same labels; it is not a backup.
        && !containersOf(podSpecOf(r.type, r.props) ?? {}).some((c) => commandOf(c).some((x) => x.endsWith("restore-drill.sh"))));
    const services = new Set(resources.filter((r) => r.type === "kubernetes:apps/v1:StatefulSet").map((r) => labels(r)["app.kubernetes.io/name"]).filter((n) => n === "postgres" || n === "redis"));
    if (resources.some((r) => r.type === "gcp:sql/databaseInstance:DatabaseInstance")) services.add("postgres");
    for (const service of [...services].sort()) {
        if (!backups.some((b) => labels(b)["app.kubernetes.io/name"] === `${service}-backup`)) {
            problems.push(`production ${service} has no backup CronJob (app.kubernetes.io/component=${BACKUP_COMPONENT}, app.kubernetes.io/name=${service}-backup): backups are disabled`);
        }
    }
    for (const b of backups) {
        if (!runsEveryDay(b.props?.spec?.schedule)) {
            problems.push(`CronJob ${b.props?.metadata?.name} runs on ${JSON.stringify(b.props?.spec?.schedule)}: production backups run every day (day of month, month and day of week "*")`);
        }
    }
    return problems;
}

export const productionDailyBackups: StackValidationPolicy = {
    name: "production-daily-backups",
    description: "Production backs up both data services (in-cluster Postgres and Redis, Cloud SQL), every day.",
    enforcementLevel: "mandatory",
    configSchema,
    validateStack: (args: StackValidationArgs, report: ReportViolation) => {
        const first = args.resources[0];
        if (!first || !isProduction(first.urn, args)) return;
        for (const problem of dailyBackupProblems(args.resources)) report(problem);
    },
};

export const policies = [
    noUntaggedOrLatestImages,
    requestsAndLimits,
    restrictedSecurityContext,
    protectedDataInProduction,
    canaryWeightsInRange,
    productionPostgresBackups,
    noMutableTags,
    productionDailyBackups,
];
