// The deploy command's decisions, as plain functions over stack outputs and config (tested with the
// mock evaluator): what the last validated release is, how it is kept in stack tags, and which
// `pulumi config set --path` values restore it. Nothing here knows how a strategy maps to objects:
// the stack outputs say it (`apps.<app>.release`, written by components/plan/release.ts).

export type Release = Record<string, string | number>;

export interface ValidatedApp {
    release: Release;
    /** The analysis Job of that state, re-run after a rollback. */
    analysisJob?: string;
}

export interface Validated {
    /** When the update that validated it finished (ISO 8601). */
    at: string;
    apps: Record<string, ValidatedApp>;
}

/** What the stack outputs say about one app (the subset the deploy command reads). */
export interface AppOutputs {
    release?: Release;
    traffic?: Record<string, unknown>;
    images?: Record<string, string>;
    analysis?: { job: string };
    url?: string;
}

export type StackApps = Record<string, AppOutputs>;

/** The validated release a successful update leaves: every app's release and analysis Job. */
export function validatedFrom(apps: StackApps, at: Date): Validated {
    const out: Validated = { at: at.toISOString(), apps: {} };
    for (const [name, a] of Object.entries(apps)) {
        if (!a.release) continue;
        out.apps[name] = { release: a.release, ...(a.analysis?.job ? { analysisJob: a.analysis.job } : {}) };
    }
    return out;
}

/** Stack tag names and values: Pulumi Cloud allows 40-character names and 256-character values. */
export const TAG_PREFIX = "platform-validated";
const CHUNK = 250;

/** The record as stack tags: `platform-validated` holds the chunk count, `-0`, `-1`, … the JSON. */
export function toTags(v: Validated): Record<string, string> {
    const json = JSON.stringify(v);
    const tags: Record<string, string> = {};
    const n = Math.ceil(json.length / CHUNK);
    for (let i = 0; i < n; i++) tags[`${TAG_PREFIX}-${i}`] = json.slice(i * CHUNK, (i + 1) * CHUNK);
    tags[TAG_PREFIX] = String(n);
    return tags;
}

/** Reads the record back from a stack's tags; undefined when there is none or it is damaged. */
export function fromTags(tags: Record<string, string>): Validated | undefined {
    const n = Number(tags[TAG_PREFIX]);
    if (!Number.isInteger(n) || n < 1) return undefined;
    let json = "";
    for (let i = 0; i < n; i++) {
        const part = tags[`${TAG_PREFIX}-${i}`];
        if (part === undefined) return undefined;
        json += part;
    }
    try {
        const v = JSON.parse(json) as Validated;
        return v && typeof v.apps === "object" ? v : undefined;
    } catch {
        return undefined;
    }
}

/** One config change of a rollback, as `pulumi config set --path` takes it. */
export interface ConfigChange {
    app: string;
    /** Full key with the project namespace, e.g. `platform:apps.api.canary.weight`. */
    key: string;
    value: string | number;
    was?: unknown;
}

/** A value at a dotted path inside an app's config object. */
function at(obj: unknown, path: string): unknown {
    return path.split(".").reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), obj);
}

/**
 * The config changes that put every app back on its validated release: each release key whose
 * value differs is set back. A key the failed release added beside them (a canary version next to
 * a validated weight 0) stays: at the validated values it routes nothing. Apps the failed release
 * added are left alone (there is nothing to go back to); apps it removed are reported as missing.
 */
export function restorePlan(validated: Validated, currentApps: Record<string, unknown>): { changes: ConfigChange[]; missing: string[] } {
    const changes: ConfigChange[] = [];
    const missing: string[] = [];
    for (const [app, v] of Object.entries(validated.apps)) {
        const config = currentApps[app];
        if (config === undefined) {
            missing.push(app);
            continue;
        }
        for (const [key, value] of Object.entries(v.release)) {
            const now = at(config, key);
            if (now === undefined || String(now) !== String(value)) changes.push({ app, key: `platform:apps.${app}.${key}`, value, was: now });
        }
    }
    return { changes, missing };
}

/** The command line of one change, for the summary (and for an operator to repeat by hand). */
export function changeCommand(c: ConfigChange, stack: string): string {
    return `pulumi config set --path '${c.key.replace(/^platform:/, "")}' ${c.value} --stack ${stack}`;
}
