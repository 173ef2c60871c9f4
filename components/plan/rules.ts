import { Problems } from "../config/check";
import { AppConfig, StackConfig } from "../config/types";
import { ConfigError, validateConfig } from "../config/validate";
import { validateGeneratedNames } from "./generated";
import { buildTargetOf, builtImageRepository } from "./images";

// Rules across apps and rules that need the plan's names. They run only on a config whose every
// key passed validation (config/validate.ts), so a missing or mistyped section never reaches the
// plan; they report `platform:<config path>` problems, all at once, like the per-key checks.

/** Validates the stack config key by key, then the rules across apps; throws ConfigError listing every problem. */
export function validateStackConfig(raw: Record<string, unknown>, stack: string): StackConfig {
    const config = validateConfig(raw, stack);
    validatePlan(config);
    return config;
}

/** The rules across apps of a config that passed validateConfig; throws ConfigError listing every problem. */
export function validatePlan(config: StackConfig): void {
    const p = new Problems();
    validateBuilds(p, config);
    validateRouteClaims(p, config.apps);
    validateCalls(p, config.apps);
    validateNodePortOwners(p, config.apps);
    validateGeneratedNames(p, config.apps, config.postgres);
    if (!p.empty) throw new ConfigError(p.list);
}

/**
 * An app's `build` is pushed to the environment's Artifact Registry under the version of the track
 * it lands on (see plan/images.ts) and deployed there by digest.
 */
function validateBuilds(p: Problems, config: StackConfig): void {
    const { gcp, namespace } = config;
    // Without Google Cloud a build is refused key by key (config/validate.ts).
    if (!gcp.enabled || !gcp.project || !gcp.region) return;
    for (const app of config.apps) {
        if (!app.build) continue;
        const path = `apps.${app.name}`;
        const repository = builtImageRepository(gcp, namespace, app.name);
        if (app.image !== repository) {
            p.add(`${path}.image`, `must be ${repository} when build is set: the tracks this update does not build pull the tags earlier builds pushed there`, app.image);
        }
        const target = buildTargetOf(app);
        if (!target) continue;
        const key = app.strategy === "rolling" ? "tag" : app.strategy === "blueGreen" ? `blueGreen.${target.track}` : "canary.canary";
        if (target.version.startsWith("sha256:")) {
            p.add(`${path}.${key}`, "must be a tag when build is set: the build is pushed under it", target.version);
        }
        const deployed = app.strategy === "rolling" || (app.strategy === "blueGreen" ? (app.blueGreen?.idleReplicas ?? 0) > 0 : (app.canary?.weight ?? 0) > 0);
        const clash = target.others.find((o) => o.version === target.version);
        if (deployed && clash) {
            p.add(`${path}.${key}`, `must differ from the ${clash.track} track's version when build is set: the build would be pushed as ${repository}:${target.version}, the tag the ${clash.track} track runs`, target.version);
        }
    }
}

/** A prefix as routers match it: "/api" and "/api/" are the same prefix. */
const normalPrefix = (path: string) => (path.length > 1 ? path.replace(/\/+$/, "") : path);

/** Two apps may not claim the same host and path prefix: the routers would pick one silently. */
function validateRouteClaims(p: Problems, apps: AppConfig[]): void {
    const claims = new Map<string, string>();
    for (const app of apps) {
        const r = app.routing;
        if (!r || r.kind === "replicas" || !r.host) continue;
        const claim = `${r.host}${normalPrefix(r.path)}`;
        const owner = claims.get(claim);
        if (owner) {
            p.add(`apps.${app.name}.routing`, `claims ${claim}, which apps.${owner}.routing also claims: give one of them another host or path`, { host: r.host, path: r.path });
        } else {
            claims.set(claim, app.name);
        }
    }
}

/** Every app an app calls exists and is another app. */
function validateCalls(p: Problems, apps: AppConfig[]): void {
    const names = new Set(apps.map((a) => a.name));
    for (const app of apps) {
        app.network.calls.forEach((c, i) => {
            if (c === app.name) p.add(`apps.${app.name}.calls[${i}]`, "names the app itself: an app always reaches its own pods", c);
            else if (!names.has(c)) p.add(`apps.${app.name}.calls[${i}]`, `must name another app of this stack (${[...names].filter((n) => n !== app.name).join(", ")})`, c);
        });
    }
}

/** Each nodePort serves one Service in the cluster. */
function validateNodePortOwners(p: Problems, apps: AppConfig[]): void {
    const owners = new Map<number, string>();
    for (const app of apps) {
        if (app.nodePort === undefined) continue;
        const other = owners.get(app.nodePort);
        if (other) p.add(`apps.${app.name}.nodePort`, `is already the nodePort of apps.${other}: each nodePort serves one Service`, app.nodePort);
        else owners.set(app.nodePort, app.name);
    }
}
