import { Problems } from "../config/check";
import { AppConfig, PostgresConfig, StackConfig } from "../config/types";
import { planApp } from "./apps";
import { preMigrationBackupName } from "./backup";
import { preReleaseBackupName } from "./release";

// Every name an app can ever generate is reserved for it, whatever its current weight or colour:
// an operator's next step must not turn a valid config into a collision. The names come from the
// plan itself (with every track present), so a new suffix there is counted here without a second list.

/** Objects of the data services and backups, and the pod labels they select by. */
const DATA_OBJECTS: [string, string][] = [
    ...["postgres", "redis"].flatMap((s): [string, string][] => [
        ["Service", s], ["Service", `${s}-headless`], ["PodDisruptionBudget", s], ["NetworkPolicy", `${s}-allow-clients`],
        ["Job", `${s}-backup`], ["CronJob", `${s}-backup`], ["CronJob", `${s}-restore-drill`],
    ]),
    ["NetworkPolicy", "data-default-deny"], ["NetworkPolicy", "default-deny"], ["NetworkPolicy", "allow-dns"],
    ["NetworkPolicy", "postgres-backup"], ["NetworkPolicy", "redis-backup"],
    ["NetworkPolicy", "postgres-restore-drill"], ["NetworkPolicy", "redis-restore-drill"],
];
const DATA_LABELS = ["postgres", "redis", "postgres-backup", "redis-backup", "postgres-restore-drill", "redis-restore-drill"];

/** Kubernetes limits: 63 for names that become labels or DNS labels, 52 for CronJobs (Job names get 11 more). */
export const NAME_LIMIT: Record<string, number> = { CronJob: 52 };
const limitOf = (kind: string) => NAME_LIMIT[kind] ?? 63;

export interface Generated {
    objects: { kind: string; name: string }[];
    /** Values of app.kubernetes.io/name on the app's pods (tracks and Jobs). */
    labels: string[];
}

/** The app with every track it can have: both colours, a canary taking traffic. */
function withEveryTrack(app: AppConfig): AppConfig {
    if (app.blueGreen) return { ...app, blueGreen: { ...app.blueGreen, idleReplicas: Math.max(1, app.blueGreen.idleReplicas) } };
    if (app.canary) return { ...app, canary: { ...app.canary, canary: app.canary.canary ?? app.canary.stable, weight: 50 } };
    return app;
}

/**
 * Every object and selector label `app` may generate, with a backup Job per migration when
 * `backupBeforeMigrations` and per released version when `backupBeforeDeploy`.
 */
export function generatedNames(app: AppConfig, backupBeforeMigrations: boolean, backupBeforeDeploy = false): Generated {
    const plan = planApp(withEveryTrack(app), { stack: "validate" } as StackConfig);
    const objects: Generated["objects"] = [];
    const add = (kind: string, name: string) => objects.push({ kind, name });
    for (const t of plan.tracks) {
        add("Deployment", t.deployment);
        add("PodDisruptionBudget", t.deployment);
        if (app.autoscaling) add("HorizontalPodAutoscaler", t.deployment);
    }
    for (const s of plan.services) add("Service", s.name);
    for (const j of [...plan.migrations, ...plan.smokeTests]) add("Job", j.name);
    if (backupBeforeMigrations) for (const m of plan.migrations) add("Job", preMigrationBackupName(m.name));
    if (backupBeforeDeploy) for (const v of new Set(plan.tracks.map((t) => t.version))) add("Job", preReleaseBackupName(app.name, v));
    if (plan.route?.kind === "gateway") add("HTTPRoute", app.name);
    if (plan.route?.kind === "nginx") {
        add("Ingress", app.name);
        if (plan.route.backends.length > 1) add("Ingress", `${app.name}-canary`);
    }
    // NetworkPolicies (plan/network.ts): the app's pods, its migration and smoke-test pods.
    add("NetworkPolicy", app.name);
    if (plan.migrations.length) add("NetworkPolicy", `${app.name}-migration`);
    if (plan.smokeTests.length) add("NetworkPolicy", `${app.name}-smoke-test`);
    // Analysis (plan/analysis.ts): a NetworkPolicy and a pod label. Its Jobs are named by a hash of
    // the traffic state, so they clash with no other name, and 58 characters at most fit.
    if (app.analysis) add("NetworkPolicy", `${app.name}-analysis`);
    return { objects, labels: [app.name, `${app.name}-migration`, `${app.name}-smoke-test`, `${app.name}-analysis`] };
}

/** Refuses names over their limit and names or selector labels that another app or a data service generates. */
export function validateGeneratedNames(p: Problems, apps: AppConfig[], postgres: PostgresConfig): void {
    const owners = new Map<string, string>(DATA_OBJECTS.map(([k, n]) => [`${k} ${n}`, `the ${n.split("-")[0]} data service`]));
    const labelOwners = new Map<string, string>(DATA_LABELS.map((l) => [l, `the ${l.replace("-", " ")} pods`]));
    for (const app of apps) {
        const path = `apps.${app.name}`;
        const g = generatedNames(app, postgres.backup.beforeMigrations && postgres.backup.enabled, postgres.backup.beforeDeploy && postgres.backup.enabled);
        for (const o of g.objects.filter((x) => x.name.length > limitOf(x.kind))) {
            p.add(path, `generates ${o.kind} ${o.name} of ${o.name.length} characters; Kubernetes allows ${limitOf(o.kind)}: shorten the app name by ${o.name.length - limitOf(o.kind)}`, app.name);
        }
        const clashes = new Map<string, string[]>();
        for (const o of g.objects) {
            const owner = owners.get(`${o.kind} ${o.name}`);
            if (owner) clashes.set(owner, [...(clashes.get(owner) ?? []), `${o.kind} ${o.name}`]);
        }
        for (const [owner, objects] of clashes) p.add(path, `generates ${objects.join(", ")}, which ${owner} also generates: choose another app name`, app.name);
        for (const l of g.labels.filter((x) => labelOwners.has(x))) {
            p.add(path, `selects its pods by app.kubernetes.io/name=${l}, which ${labelOwners.get(l)} are selected by: Services would send traffic to both; choose another app name`, app.name);
        }
        for (const o of g.objects) if (!owners.has(`${o.kind} ${o.name}`)) owners.set(`${o.kind} ${o.name}`, path);
        for (const l of g.labels) if (!labelOwners.has(l)) labelOwners.set(l, `the pods of ${path}`);
    }
}
