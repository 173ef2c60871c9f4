import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { PORT_ENV, SMOKE_TEST_URL_ENV } from "./config/env";
import { AppConfig, DataService } from "./config/types";
import { awaitTimeouts, metadata, REPLACE_UNREADY, resources, restrictedContainerSecurity, restrictedPodSecurity, SKIP_AWAIT, TMP_MOUNT, TMP_VOLUME } from "./kube";
import { Backup } from "./backup";
import { preMigrationBackupName } from "./plan/backup";
import { preReleaseBackupName } from "./plan/release";
import { AppPlan, JobPlan, migrationFor, TrackPlan } from "./plan/apps";
import { selectorLabels, usesLabel, versionLabel } from "./plan/names";
import { Connection } from "./postgres";
import { Routing } from "./routing";

export interface AppReleaseArgs {
    plan: AppPlan;
    namespace: pulumi.Input<string>;
    namespaceName: string;
    stack: string;
    labels: Record<string, string>;
    connections: Partial<Record<DataService, Connection>>;
    /** When set, every migration Job waits for a verified Postgres backup taken just for it. */
    backupBeforeMigration?: Backup;
    /** When set, each version's migration and Deployment wait for a verified backup taken for that release. */
    backupBeforeRelease?: Backup;
    /** The image this stack built for the app (by digest) and the one track that runs it (plan/images.ts). */
    builtImage?: { track: string; image: pulumi.Input<string> };
    /** curl for the default smoke test (platform:images.smokeTest). */
    smokeTestImage: string;
}

/** Every app Service listens on this port and forwards to the container's named port "http". */
export const SERVICE_PORT = 80;
const APP_UID = 10001;

/**
 * One app in one environment: its tracks (a Deployment each, with PDB and autoscaler), Services,
 * migration and smoke-test Jobs and route, declared in the order that keeps traffic on capacity.
 */
export class AppRelease extends pulumi.ComponentResource {
    readonly deployments: Record<string, k8s.apps.v1.Deployment> = {};
    /** Everything a traffic move changes (traffic objects, tracks, smoke tests): the analysis waits for it. */
    readonly trafficMoved: pulumi.Resource[] = [];
    readonly outputs: Record<string, unknown>;

    constructor(name: string, args: AppReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:apps:AppRelease", name, {}, opts);
        const { plan, namespace } = args;
        const app = plan.config;
        const appLabels = { ...args.labels, "app.kubernetes.io/component": app.component };
        const dataEnv = app.uses.flatMap((u) => args.connections[u]?.env ?? []);
        const usesLabels = Object.fromEntries(app.uses.map((u) => [usesLabel(u), "true"]));
        const env = [
            { name: PORT_ENV, value: String(app.port) },
            ...Object.keys(app.env).sort().map((k) => ({ name: k, value: app.env[k] })),
            ...dataEnv,
        ];

        // A verified backup per version being deployed, before anything of that version changes.
        const releaseBackups = new Map<string, k8s.batch.v1.Job>();
        const releaseBackup = (version: string): pulumi.Resource[] => {
            if (!args.backupBeforeRelease) return [];
            if (!releaseBackups.has(version)) {
                releaseBackups.set(version, args.backupBeforeRelease.oneOffJob(preReleaseBackupName(app.name, version), namespace, { parent: this }));
            }
            return [releaseBackups.get(version)!];
        };

        // Migrations: one Job per version being deployed, before that version's Deployment changes.
        const migrationJobs = new Map<string, k8s.batch.v1.Job>();
        for (const m of plan.migrations) {
            const backup = args.backupBeforeMigration?.oneOffJob(preMigrationBackupName(m.name), namespace, { parent: this });
            migrationJobs.set(m.version, this.job(m, "migration", app.migrations!.command, env, usesLabels, args,
                { dependsOn: [...(backup ? [backup] : []), ...releaseBackup(m.version)] }));
        }

        const services: Record<string, k8s.core.v1.Service> = {};
        const service = (s: AppPlan["services"][number], dependsOn: pulumi.Resource[] = []) => {
            services[s.name] = new k8s.core.v1.Service(s.name, {
                metadata: metadata(s.name, namespace, { ...appLabels, ...selectorLabels(app.name, args.stack) }, s.awaitEndpoints ? undefined : SKIP_AWAIT),
                spec: {
                    selector: selectorLabels(app.name, args.stack, s.track),
                    ...(s.nodePort !== undefined ? { type: "NodePort" } : {}),
                    ports: [{ name: "http", port: SERVICE_PORT, targetPort: "http", protocol: "TCP", ...(s.nodePort !== undefined ? { nodePort: s.nodePort } : {}) }],
                },
            }, { parent: this, dependsOn });
            return services[s.name];
        };

        const declareTrack = (t: TrackPlan, dependsOn: pulumi.Resource[]) => {
            const migration = migrationFor(plan, t);
            const after = [...dependsOn, ...releaseBackup(t.version), ...(plan.trackAfter[t.track] ?? []).map((d) => this.deployments[d]).filter((d) => d)];
            if (migration) after.push(migrationJobs.get(migration.version)!);
            this.deployments[t.track] = this.deployment(t, env, usesLabels, appLabels, args, after);
        };

        // 1. Tracks that gain or keep traffic: rolled out and ready before any traffic moves.
        const draining = new Set(plan.drainAfterTraffic);
        const gaining = plan.tracks.filter((t) => !draining.has(t.track));
        for (const t of [...gaining].sort((a, b) => (plan.trackAfter[a.track] ? 1 : 0) - (plan.trackAfter[b.track] ? 1 : 0))) declareTrack(t, []);

        // 2. Direct Services of each track, and smoke tests against them once the track is rolled out.
        for (const s of plan.services.filter((s) => s.role === "track")) service(s);
        const smokeJobs: Record<string, k8s.batch.v1.Job> = {};
        const smokeTest = (t: TrackPlan) => {
            const job = plan.smokeTests.find((j) => j.track === t.track);
            if (!job) return;
            const url = `http://${t.service}.${args.namespaceName}.svc.cluster.local:${SERVICE_PORT}${app.healthPath}`;
            const gate: pulumi.Resource[] = [services[t.service], this.deployments[t.track]];
            smokeJobs[t.track] = app.smokeTest
                ? this.job(job, "smoke-test", app.smokeTest.command, [...env, { name: SMOKE_TEST_URL_ENV, value: url }], usesLabels, args, { dependsOn: gate })
                : this.job({ ...job, image: args.smokeTestImage }, "smoke-test",
                    ["curl", "--fail", "--silent", "--show-error", "--max-time", "10", "--retry", "10", "--retry-delay", "3", "--retry-all-errors", url],
                    [], {}, args, { dependsOn: gate });
        };
        gaining.forEach(smokeTest);
        const gatesOf = (tracks: string[]) => tracks.flatMap((tr) => [this.deployments[tr], smokeJobs[tr]].filter((r) => r));

        // 3. The traffic object: the active Service, the shared Service or the route.
        let trafficObjects: pulumi.Resource[] = [];
        const primary = plan.services.find((s) => s.role === "primary" || s.role === "active");
        if (primary) trafficObjects.push(service(primary, gatesOf(plan.trafficAfter)));
        const preview = plan.services.find((s) => s.role === "preview");
        if (preview) service(preview, trafficObjects);
        if (plan.route) {
            const routing = new Routing(`${app.name}-routing`, {
                app: app.name, namespace, labels: { ...appLabels, ...selectorLabels(app.name, args.stack) }, route: plan.route, servicePort: SERVICE_PORT,
                after: [...Object.values(services), ...gatesOf(plan.trafficAfter)],
            }, { parent: this });
            if (app.strategy === "canary") trafficObjects = routing.trafficObjects;
        }

        // 4. Tracks that lose traffic change only once the traffic has moved.
        for (const t of plan.tracks.filter((t) => draining.has(t.track))) {
            declareTrack(t, trafficObjects);
            smokeTest(t);
        }

        this.trafficMoved.push(...trafficObjects, ...Object.values(this.deployments), ...Object.values(smokeJobs));

        const svcHost = (s: string) => `${s}.${args.namespaceName}.svc.cluster.local`;
        this.outputs = {
            strategy: app.strategy,
            images: Object.fromEntries(plan.tracks.map((t) => [t.track, imageOf(args, t.track, t.image)])),
            replicas: Object.fromEntries(plan.tracks.map((t) => [t.track, t.autoscaled ? `autoscaled ${app.autoscaling!.minReplicas}-${app.autoscaling!.maxReplicas}` : t.replicas])),
            // The hourly health check counts the ready pods of these (apps without a route).
            deployments: Object.fromEntries(plan.tracks.map((t) => [t.track, t.deployment])),
            traffic: plan.traffic,
            services: Object.fromEntries(plan.services.map((s) => [s.role === "track" ? s.track! : s.role, svcHost(s.name)])),
            // https only where TLS is configured: an advertised https URL must not lead to a plain listener.
            ...(plan.route ? { url: `${plan.route.tls ? "https" : "http"}://${plan.route.host}${plan.route.path}` } : {}),
            commands: plan.commands,
        };
        this.registerOutputs(this.outputs);
    }

    private deployment(t: TrackPlan, env: k8s.types.input.core.v1.EnvVar[], usesLabels: Record<string, string>,
        appLabels: Record<string, string>, args: AppReleaseArgs, dependsOn: pulumi.Resource[]): k8s.apps.v1.Deployment {
        const app = args.plan.config;
        const selector = selectorLabels(app.name, args.stack, t.track);
        // The version label sits on the Deployment and its pods only, so a release touches nothing else.
        const trackLabels = { ...appLabels, ...selector };
        const labels = { ...trackLabels, "app.kubernetes.io/version": versionLabel(t.version) };
        const podLabels = { ...labels, ...usesLabels };
        const http = { path: app.healthPath, port: "http" };
        const deployment = new k8s.apps.v1.Deployment(t.deployment, {
            metadata: metadata(t.deployment, args.namespace, labels),
            spec: {
                replicas: t.replicas,
                selector: { matchLabels: selector },
                revisionHistoryLimit: 5,
                minReadySeconds: 5,
                // A release that never becomes ready is reported (and fails `pulumi up`) after this long.
                progressDeadlineSeconds: app.rolloutTimeoutSeconds,
                // Capacity first inside a track as well: new pods are ready before old ones go.
                strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
                template: {
                    metadata: { labels: podLabels, ...mutableTagAnnotation(app) },
                    spec: {
                        ...nodePlacement(app),
                        securityContext: restrictedPodSecurity(APP_UID),
                        automountServiceAccountToken: false,
                        terminationGracePeriodSeconds: 30,
                        topologySpreadConstraints: ["topology.kubernetes.io/zone", "kubernetes.io/hostname"].map((topologyKey) => ({
                            maxSkew: 1, topologyKey, whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector },
                        })),
                        containers: [{
                            name: "app",
                            image: imageOf(args, t.track, t.image),
                            ...pullPolicy(app),
                            ports: [{ name: "http", containerPort: app.port, protocol: "TCP" }],
                            env,
                            resources: resources(app.resources),
                            securityContext: restrictedContainerSecurity,
                            volumeMounts: [TMP_MOUNT],
                            startupProbe: { httpGet: http, periodSeconds: 2, failureThreshold: 60 },
                            readinessProbe: { httpGet: http, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 },
                            livenessProbe: { httpGet: http, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
                            // Endpoints are removed asynchronously; keep serving while load balancers catch up.
                            lifecycle: { preStop: { sleep: { seconds: 10 } } },
                        }],
                        volumes: [TMP_VOLUME],
                    },
                },
            },
        }, {
            parent: this,
            dependsOn,
            customTimeouts: awaitTimeouts(app.rolloutTimeoutSeconds),
            // The autoscaler owns the replica count of a live autoscaled track; re-asserting it on
            // every update would undo its work. Only a track taking over traffic is sized, once.
            ...(t.autoscaled && !t.takesOver ? { ignoreChanges: ["spec.replicas"] } : {}),
        });
        new k8s.policy.v1.PodDisruptionBudget(t.deployment, {
            metadata: metadata(t.deployment, args.namespace, trackLabels),
            spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
        }, { parent: this });
        if (t.autoscaled) {
            const a = app.autoscaling!;
            new k8s.autoscaling.v2.HorizontalPodAutoscaler(t.deployment, {
                metadata: metadata(t.deployment, args.namespace, trackLabels),
                spec: {
                    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: t.deployment },
                    minReplicas: a.minReplicas,
                    maxReplicas: a.maxReplicas,
                    metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: a.targetCPUUtilization } } }],
                },
            }, { parent: this, dependsOn: [deployment] });
        }
        return deployment;
    }

    private job(j: JobPlan, purpose: "migration" | "smoke-test", command: string[], env: k8s.types.input.core.v1.EnvVar[],
        usesLabels: Record<string, string>, args: AppReleaseArgs, opts: pulumi.CustomResourceOptions): k8s.batch.v1.Job {
        const app = args.plan.config;
        // Job pods never carry a track selector's labels: no Service may send traffic to them.
        const labels = {
            ...args.labels,
            ...selectorLabels(`${app.name}-${purpose}`, args.stack),
            "app.kubernetes.io/component": purpose,
            "app.kubernetes.io/version": versionLabel(j.version),
        };
        const deadline = purpose === "migration" ? 1800 : app.rolloutTimeoutSeconds;
        return new k8s.batch.v1.Job(j.name, {
            metadata: metadata(j.name, args.namespace, labels, REPLACE_UNREADY),
            spec: {
                // No ttlSecondsAfterFinished: a Job deleted behind Pulumi's back would be re-created
                // (and re-run) by the next update. The name changes with the version instead.
                backoffLimit: purpose === "migration" ? 1 : 2,
                activeDeadlineSeconds: deadline,
                template: {
                    metadata: { labels: { ...labels, ...usesLabels }, ...mutableTagAnnotation(app) },
                    spec: {
                        ...nodePlacement(app),
                        restartPolicy: "Never",
                        securityContext: restrictedPodSecurity(APP_UID),
                        automountServiceAccountToken: false,
                        containers: [{
                            name: purpose,
                            image: imageOf(args, j.track, j.image),
                            // The pull policy is for the app's image; the default smoke test's platform image keeps Kubernetes' default.
                            ...(j.image === args.smokeTestImage ? {} : pullPolicy(app)),
                            command,
                            env,
                            resources: resources(app.resources),
                            securityContext: restrictedContainerSecurity,
                            volumeMounts: [TMP_MOUNT],
                        }],
                        volumes: [TMP_VOLUME],
                    },
                },
            },
        }, { parent: this, customTimeouts: awaitTimeouts(deadline), ...opts });
    }
}

/** `apps.<app>.nodeSelector` and `tolerations`: every pod of the app (its Jobs must reach it). */
function nodePlacement(app: AppConfig): { nodeSelector?: Record<string, string>; tolerations?: k8s.types.input.core.v1.Toleration[] } {
    const { nodeSelector, tolerations } = app.placement;
    return {
        ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
        ...(tolerations.length ? { tolerations } : {}),
    };
}

const pullPolicy = (app: AppConfig) => (app.placement.imagePullPolicy ? { imagePullPolicy: app.placement.imagePullPolicy } : {});

/** A track's image, or the stack's build where it lands: only where the plan put the track's own image. */
function imageOf(args: AppReleaseArgs, track: string, planned: string): pulumi.Input<string> {
    const built = args.builtImage;
    const own = args.plan.tracks.find((t) => t.track === track)?.image;
    return built && built.track === track && planned === own ? built.image : planned;
}

/** An app that opted in to moving tags says so on its pods, where the policy pack looks. */
const mutableTagAnnotation = (app: AppConfig) => (app.allowMutableTags ? { annotations: { "platform.dev/mutable-tag": "allowed" } } : {});
