import { AppConfig, Color, RoutingConfig, StackConfig } from "../config/types";
import type { LiveState } from "../live";
import { imageRef, shortHash } from "./names";

// What each app's strategy means in objects: its tracks (one Deployment each), Services, route,
// Jobs, the order they must change in, and the commands for the operator's next step.

export interface TrackPlan {
    /** "main" (rolling), "blue"/"green" (blueGreen), "stable"/"canary" (canary). */
    track: string;
    deployment: string;
    version: string;
    image: string;
    /** Declared replicas; for an autoscaled track the autoscaler's floor. */
    replicas: number;
    /** Whether this track serves user traffic (and so gets an autoscaler, when configured). */
    live: boolean;
    autoscaled: boolean;
    /**
     * An autoscaled track that takes over traffic in this update (the incoming colour of a switch,
     * stable absorbing a canary): sized from what serves that traffic now, and its size asserted
     * this once although the autoscaler owns it otherwise.
     */
    takesOver: boolean;
    /** Service the track is reached on directly (smoke tests, the canary backend). */
    service: string;
}

export interface ServicePlan {
    name: string;
    /** Track the Service selects; undefined selects every track of the app. */
    track?: string;
    role: "primary" | "active" | "preview" | "track";
    /**
     * Whether `pulumi up` waits for endpoints. Services whose track may be scaled to zero must not
     * wait, or an update would hang; the gate for those is the track's Deployment and smoke Job.
     */
    awaitEndpoints: boolean;
    /** Exposed on this port of every node (`apps.<app>.nodePort`). */
    nodePort?: number;
}

export interface RoutePlan {
    kind: "gateway" | "nginx";
    host: string;
    path: string;
    gateway?: { name: string; namespace: string };
    ingressClassName: string;
    tls?: RoutingConfig["tls"];
    /** Weighted backends; weights add up to 100. */
    backends: { service: string; weight: number; track?: string }[];
}

export interface JobPlan {
    name: string;
    track: string;
    version: string;
    image: string;
}

export interface AppPlan {
    config: AppConfig;
    tracks: TrackPlan[];
    services: ServicePlan[];
    route?: RoutePlan;
    /** One Job per distinct version being deployed; keyed by version so an unchanged image re-runs nothing. */
    migrations: JobPlan[];
    smokeTests: JobPlan[];
    /**
     * Ordering, stated as data so tests can read it:
     * - `trafficAfter`: the traffic object (active Service, route, shared Service) waits for these tracks;
     * - `drainAfterTraffic`: these tracks lose traffic, so they change only after the traffic object;
     * - `trackAfter`: track → tracks it waits for (replicas routing: the growing canary comes first).
     */
    trafficAfter: string[];
    drainAfterTraffic: string[];
    trackAfter: Record<string, string[]>;
    traffic: Record<string, number | string | boolean>;
    commands: Record<string, string>;
}

const NOTHING_LIVE: LiveState = { replicas: {}, selectedTracks: {} };

export function planApp(app: AppConfig, config: StackConfig, live: LiveState = NOTHING_LIVE): AppPlan {
    const plan = app.strategy === "blueGreen" ? planBlueGreen(app, config, live)
        : app.strategy === "canary" ? planCanary(app, config, live)
            : planRolling(app, config);
    // The nodePort belongs to the Service clients use; a switch moves its selector, never the port.
    if (app.nodePort !== undefined) {
        plan.services = plan.services.map((s) => (s.role === "primary" || s.role === "active" ? { ...s, nodePort: app.nodePort } : s));
    }
    return plan;
}

const liveReplicas = (app: AppConfig) => app.autoscaling?.minReplicas ?? app.replicas;

function track(app: AppConfig, name: string, deployment: string, version: string, replicas: number, live: boolean, service: string): TrackPlan {
    return {
        track: name, deployment, version, image: imageRef(app.image, version), replicas, live,
        autoscaled: live && app.autoscaling !== undefined, takesOver: false, service,
    };
}

/**
 * What the plan must know of the cluster: for autoscaled progressive apps, the live size of each
 * track and the colour the active Service selects. Nothing for a stack rendered to files.
 */
export function liveQuery(config: StackConfig): { deployments: string[]; services: string[] } {
    const q = { deployments: [] as string[], services: [] as string[] };
    if (config.kubernetes.renderYamlToDirectory !== undefined) return q;
    for (const app of config.apps.filter((a) => a.autoscaling)) {
        if (app.strategy === "blueGreen") {
            q.deployments.push(`${app.name}-blue`, `${app.name}-green`);
            q.services.push(app.name);
        } else if (app.strategy === "canary") {
            q.deployments.push(`${app.name}-stable`, `${app.name}-canary`);
        }
    }
    return q;
}

/** A track taking over traffic: at least its floor, and at least what serves that traffic now. */
function takeOver(t: TrackPlan, liveServing: number): void {
    if (!t.autoscaled || liveServing <= t.replicas) return;
    t.replicas = liveServing;
    t.takesOver = true;
}

function migrationsFor(app: AppConfig, tracks: TrackPlan[]): JobPlan[] {
    if (!app.migrations) return [];
    const seen = new Map<string, JobPlan>();
    for (const t of tracks) {
        if (seen.has(t.version)) continue;
        seen.set(t.version, {
            name: `${app.name}-migrate-${shortHash(t.version, ...app.migrations.command)}`,
            track: t.track, version: t.version, image: t.image,
        });
    }
    return [...seen.values()];
}

/** Name of the migration Job that must finish before `t`'s Deployment changes. */
export function migrationFor(plan: AppPlan, t: TrackPlan): JobPlan | undefined {
    return plan.migrations.find((m) => m.version === t.version);
}

function smokeTest(app: AppConfig, t: TrackPlan): JobPlan {
    const how = app.smokeTest ? app.smokeTest.command.join(" ") : `GET ${app.healthPath}`;
    return { name: `${app.name}-smoke-${t.track}-${shortHash(t.version, how)}`, track: t.track, version: t.version, image: t.image };
}

function routeFor(app: AppConfig, backends: RoutePlan["backends"]): RoutePlan | undefined {
    const r = app.routing;
    if (!r || r.kind === "replicas" || !r.host) return undefined;
    return { kind: r.kind, host: r.host, path: r.path, gateway: r.gateway, ingressClassName: r.ingressClassName, tls: r.tls, backends };
}

const set = (config: StackConfig, app: string, key: string, value: string | number) =>
    `pulumi config set --path 'apps.${app}.${key}' ${value} --stack ${config.stack}`;

function planRolling(app: AppConfig, config: StackConfig): AppPlan {
    const main = track(app, "main", app.name, app.tag ?? "", liveReplicas(app), true, app.name);
    return {
        config: app,
        tracks: [main],
        services: [{ name: app.name, role: "primary", awaitEndpoints: true }],
        route: routeFor(app, [{ service: app.name, weight: 100 }]),
        migrations: migrationsFor(app, [main]),
        smokeTests: [],
        trafficAfter: [],
        drainAfterTraffic: [],
        trackAfter: {},
        traffic: { main: 100 },
        commands: {
            release: set(config, app.name, "tag", "<new-tag>"),
        },
    };
}

export const otherColor = (c: Color): Color => (c === "blue" ? "green" : "blue");

function planBlueGreen(app: AppConfig, config: StackConfig, live: LiveState): AppPlan {
    const bg = app.blueGreen!;
    const active = bg.activeColor;
    const idle = otherColor(active);
    const tracks: TrackPlan[] = [];
    for (const color of ["blue", "green"] as const) {
        const isActive = color === active;
        const replicas = isActive ? liveReplicas(app) : bg.idleReplicas;
        // A colour with no traffic and no replicas has no Deployment: re-activating it creates one at
        // full size, which is waited for before the switch (and an autoscaler's floor applies at once).
        if (replicas === 0) continue;
        tracks.push(track(app, color, `${app.name}-${color}`, bg[color], replicas, isActive, `${app.name}-${color}`));
    }
    // A switch at peak: the incoming colour comes up as large as the autoscaler made the outgoing one.
    const servingNow = live.selectedTracks[app.name];
    const incoming = tracks.find((t) => t.track === active);
    if (incoming && servingNow && servingNow !== active) takeOver(incoming, live.replicas[`${app.name}-${servingNow}`] ?? 0);
    const idleExists = tracks.some((t) => t.track === idle);
    // A Service exists only while its track does: a Service that selects nothing is an outage waiting.
    const services: ServicePlan[] = [
        { name: app.name, track: active, role: "active", awaitEndpoints: true },
        ...(idleExists ? [{ name: `${app.name}-preview`, track: idle, role: "preview" as const, awaitEndpoints: false }] : []),
        ...tracks.map((t) => ({ name: t.service, track: t.track, role: "track" as const, awaitEndpoints: false })),
    ];
    const commands: Record<string, string> = {
        release: set(config, app.name, `blueGreen.${idle}`, "<new-tag>"),
        switch: set(config, app.name, "blueGreen.activeColor", idle),
        rollback: set(config, app.name, "blueGreen.activeColor", idle),
    };
    if (idleExists) commands.scaleDownIdle = set(config, app.name, "blueGreen.idleReplicas", 0);
    return {
        config: app,
        tracks,
        services,
        route: routeFor(app, [{ service: app.name, weight: 100 }]),
        migrations: migrationsFor(app, tracks),
        smokeTests: tracks.map((t) => smokeTest(app, t)),
        trafficAfter: [active],
        drainAfterTraffic: idleExists ? [idle] : [],
        trackAfter: {},
        traffic: { active, preview: idle, [active]: 100, [idle]: 0 },
        commands,
    };
}

/** Canary size for the replicas router: the share of pods is the share of traffic. */
export function canaryPodsForWeight(replicas: number, weight: number): number {
    if (weight <= 0) return 0;
    return Math.min(replicas, Math.max(1, Math.round((replicas * weight) / 100)));
}

/** The ramp the teams use: 10% → 50% → 100%, then promote. */
export const CANARY_STEPS = [10, 50, 100] as const;

export function nextCanaryWeight(weight: number): number | undefined {
    return CANARY_STEPS.find((s) => s > weight);
}

function planCanary(app: AppConfig, config: StackConfig, live: LiveState): AppPlan {
    const c = app.canary!;
    const routing = app.routing!;
    const byReplicas = routing.kind === "replicas";
    const canaryVersion = c.canary;
    let stableReplicas = liveReplicas(app);
    let canaryReplicas = 0;
    if (c.weight > 0 && canaryVersion) {
        if (byReplicas) {
            canaryReplicas = canaryPodsForWeight(app.replicas, c.weight);
            stableReplicas = app.replicas - canaryReplicas;
        } else {
            // Behind a router the canary is sized for all the traffic, so every weight step is safe
            // and a weight change touches the route alone.
            canaryReplicas = c.canaryReplicas ?? liveReplicas(app);
        }
    }
    const tracks = [track(app, "stable", `${app.name}-stable`, c.stable, stableReplicas, true, `${app.name}-stable`)];
    if (canaryReplicas > 0 && canaryVersion) {
        tracks.push(track(app, "canary", `${app.name}-canary`, canaryVersion, canaryReplicas, true, `${app.name}-canary`));
    }
    const canaryTrack = tracks.find((t) => t.track === "canary");
    // Abort or promote: stable takes back the canary's share of the traffic on top of its own.
    const liveCanary = live.replicas[`${app.name}-canary`] ?? 0;
    if (!canaryTrack && liveCanary > 0) takeOver(tracks[0], (live.replicas[`${app.name}-stable`] ?? 0) + liveCanary);
    const services: ServicePlan[] = tracks.map((t) => ({
        name: t.service, track: t.track, role: "track" as const,
        // The canary and (with replicas routing at weight 100) stable may have no pods of their own.
        awaitEndpoints: t.track === "stable" && t.replicas > 0,
    }));
    if (byReplicas) services.unshift({ name: app.name, role: "primary", awaitEndpoints: true });

    let traffic: AppPlan["traffic"];
    if (byReplicas) {
        const total = stableReplicas + canaryReplicas;
        const canaryShare = total === 0 ? 0 : Math.round((100 * canaryReplicas) / total);
        traffic = { stable: 100 - canaryShare, canary: canaryShare, approximate: true, requestedWeight: c.weight };
    } else {
        traffic = { stable: 100 - c.weight, canary: c.weight };
    }
    const weightCmd = (w: number) => set(config, app.name, "canary.weight", w);
    const next = nextCanaryWeight(c.weight);
    const commands: Record<string, string> = {};
    if (!canaryVersion) {
        commands.release = `${set(config, app.name, "canary.canary", "<new-tag>")} && ${weightCmd(CANARY_STEPS[0])}`;
    } else if (next !== undefined) {
        commands.next = weightCmd(next);
        commands.abort = weightCmd(0);
    } else {
        commands.promote = `${set(config, app.name, "canary.stable", canaryVersion)} && ${weightCmd(0)}`;
        commands.abort = weightCmd(0);
    }
    return {
        config: app,
        tracks,
        services,
        route: byReplicas ? undefined : routeFor(app, canaryTrack
            ? [{ service: `${app.name}-stable`, weight: 100 - c.weight, track: "stable" }, { service: canaryTrack.service, weight: c.weight, track: "canary" }]
            : [{ service: `${app.name}-stable`, weight: 100, track: "stable" }]),
        migrations: migrationsFor(app, tracks),
        smokeTests: canaryTrack ? [smokeTest(app, canaryTrack)] : [],
        // The route moves only once every track it sends traffic to is rolled out. With replicas
        // routing the pods are the split: the canary comes up before stable gives pods away.
        trafficAfter: byReplicas ? [] : tracks.map((t) => t.track),
        drainAfterTraffic: [],
        trackAfter: byReplicas && canaryTrack ? { stable: ["canary"] } : {},
        traffic,
        commands,
    };
}
