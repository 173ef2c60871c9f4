import { AppConfig } from "../config/types";
import { shortHash } from "./names";

// The release of an app: the config values (by `pulumi config set --path` key under apps.<app>)
// that decide which versions run and where traffic goes. The stack outputs it; `npm run deploy`
// records it after a validated update and sets exactly these keys back to roll back.

export type Release = Record<string, string | number>;

export function releaseOf(app: AppConfig): Release {
    switch (app.strategy) {
        case "blueGreen": {
            const bg = app.blueGreen!;
            return { "blueGreen.activeColor": bg.activeColor, "blueGreen.blue": bg.blue, "blueGreen.green": bg.green };
        }
        case "canary": {
            const c = app.canary!;
            return { "canary.stable": c.stable, ...(c.canary !== undefined ? { "canary.canary": c.canary } : {}), "canary.weight": c.weight };
        }
        default:
            return { tag: app.tag ?? "" };
    }
}

/** Every key a release of this strategy can set: what `npm run deploy` compares to a failed release. */
export function releaseKeysOf(app: AppConfig): string[] {
    switch (app.strategy) {
        case "blueGreen":
            return ["blueGreen.activeColor", "blueGreen.blue", "blueGreen.green"];
        case "canary":
            return ["canary.stable", "canary.canary", "canary.weight"];
        default:
            return ["tag"];
    }
}

/**
 * What a rollback sets instead of the validated value: a failed canary step aborts to weight 0
 * (stable takes every request), because the canary's errors do not depend on its weight; a failed
 * switch or release goes back to the validated values as they are.
 */
export function abortOf(app: AppConfig): Release {
    return app.strategy === "canary" ? { "canary.weight": 0 } : {};
}

/**
 * The Job that backs Postgres up before one version of an app is deployed (beforeDeploy): named
 * after the release (app and version), so a new version gets a fresh verified backup before its
 * migration and Deployment change, while a weight step, a switch, an abort (its Jobs go away) and an
 * unchanged stack run none.
 */
export function preReleaseBackupName(app: string, version: string): string {
    return `${app}-release-${shortHash(app, version)}-backup`;
}

/** The URL the hourly health check GETs: the app's health path under its public route. */
export function healthUrl(url: string, healthPath: string): string {
    return `${url.replace(/\/+$/, "")}${healthPath}`;
}
