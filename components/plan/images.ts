import { AppConfig, GcpConfig } from "../config/types";
import { AppPlan, otherColor, TrackPlan } from "./apps";

// Where an app's own build goes, decided from the config alone (no Outputs), so the plan stays pure:
// the plan names the track that runs the build and the version it is tagged with; only the digest
// the push produces is filled in later, by AppRelease, into that one track and its Jobs.

/** Artifact Registry repository id of an environment: its namespace (a DNS label fits the id rules). */
export const repositoryId = (namespace: string) => namespace;

/** `<region>-docker.pkg.dev`: the Docker host of a regional Artifact Registry. */
export const registryHost = (gcp: GcpConfig) => `${gcp.region}-docker.pkg.dev`;

/** Image repository an app with `build` is pushed to (and must be configured as its `image`). */
export function builtImageRepository(gcp: GcpConfig, namespace: string, app: string): string {
    return `${registryHost(gcp)}/${gcp.project}/${repositoryId(namespace)}/${app}`;
}

export interface BuildTarget {
    /** The track that gets the build: "main", the idle colour, or "canary". */
    track: string;
    /** The configured version of that track: the tag the build is pushed under. */
    version: string;
    /** Tracks of the same app that keep running a configured version by tag. */
    others: { track: string; version: string }[];
}

/**
 * The track an app's build lands on, from the config: a rolling app's only track, a blue/green
 * app's idle colour, a canary app's canary. Undefined when there is no version to build for
 * (a canary app without `canary.canary`).
 */
export function buildTargetOf(app: AppConfig): BuildTarget | undefined {
    if (!app.build) return undefined;
    if (app.strategy === "rolling" && app.tag) return { track: "main", version: app.tag, others: [] };
    if (app.strategy === "blueGreen" && app.blueGreen) {
        const active = app.blueGreen.activeColor;
        const idle = otherColor(active);
        return { track: idle, version: app.blueGreen[idle], others: [{ track: active, version: app.blueGreen[active] }] };
    }
    if (app.strategy === "canary" && app.canary?.canary) {
        return { track: "canary", version: app.canary.canary, others: [{ track: "stable", version: app.canary.stable }] };
    }
    return undefined;
}

/**
 * The planned track that runs the build, if it is declared at all: a blue/green idle colour scaled
 * to 0 and a canary at weight 0 have no Deployment, so the build is pushed but runs nowhere yet.
 */
export function buildTrack(plan: AppPlan): TrackPlan | undefined {
    const target = buildTargetOf(plan.config);
    return target && plan.tracks.find((t) => t.track === target.track && t.version === target.version);
}
