import { boolean, Problems } from "./check";
import { AppConfig } from "./types";

// Tags that registries move to a new image by convention: deploying one is deploying whatever was
// pushed last, and a rollback to it rolls back to nothing in particular. Refused unless the app
// opts in with `allowMutableTags: true` ("latest" is refused regardless, in check.ts).

export const MUTABLE_TAGS = [
    "main", "master", "trunk", "head", "stable", "edge", "dev", "develop", "development", "nightly", "next", "snapshot",
    "current", "lts", "release", "prod", "production", "staging", "test", "beta", "alpha", "unstable", "rolling",
];

export function isMutableTag(version: string): boolean {
    return MUTABLE_TAGS.includes(version.toLowerCase());
}

/** The versions an app deploys, each with its config key. */
function versionKeys(app: AppConfig): [string, string | undefined][] {
    if (app.strategy === "blueGreen") return [["blueGreen.blue", app.blueGreen?.blue], ["blueGreen.green", app.blueGreen?.green]];
    if (app.strategy === "canary") return [["canary.stable", app.canary?.stable], ["canary.canary", app.canary?.canary]];
    return [["tag", app.tag]];
}

/** Reads `allowMutableTags` and refuses moving tags without it. */
export function validateMutableTags(p: Problems, path: string, app: AppConfig, value: unknown): boolean {
    const allow = boolean(p, `${path}.allowMutableTags`, value, false) ?? false;
    if (allow) return true;
    for (const [key, v] of versionKeys(app)) {
        if (v && isMutableTag(v)) {
            p.add(`${path}.${key}`, `must name an exact version: "${v}" is a tag registries move (set ${path}.allowMutableTags: true to deploy it anyway)`, v);
        }
    }
    return false;
}
