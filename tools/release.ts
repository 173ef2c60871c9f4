// The deploy command's decisions, as plain functions over stack outputs and config (tested with the
// mock evaluator): what the last validated release is, which releases failed, how both are kept in
// stack tags, and which `pulumi config set --path` values restore a release. Nothing here knows how a strategy maps to objects:
// the stack outputs say it (`apps.<app>.release`, written by components/plan/release.ts).

export type Release = Record<string, string | number>;

export interface ValidatedApp {
    release: Release;
    /** Every key a release of the app's strategy can set (a failed release is compared on all of them). */
    releaseKeys?: string[];
    /** What a rollback sets instead of the validated values (a canary aborts to weight 0). */
    abort?: Release;
    /** The analysis Job of that state, re-run after a rollback. */
    analysisJob?: string;
}

export interface Validated {
    /** When the update that validated it finished (ISO 8601). */
    at: string;
    apps: Record<string, ValidatedApp>;
}

/** A release that failed its update or analysis: not deployed again until its keys change. */
export interface FailedApp {
    /** The values of every release key when it failed (absent keys left out). */
    release: Release;
    at: string;
    why: string;
}

export interface FailedReleases {
    apps: Record<string, FailedApp>;
}

/** What the stack outputs say about one app (the subset the deploy command reads). */
export interface AppOutputs {
    release?: Release;
    releaseKeys?: string[];
    abort?: Release;
    traffic?: Record<string, unknown>;
    images?: Record<string, string>;
    analysis?: { job: string };
    url?: string;
}

export type StackApps = Record<string, AppOutputs>;

/** The validated release a successful update leaves: every app's release and analysis Job (or only `only`'s). */
export function validatedFrom(apps: StackApps, at: Date, only?: Set<string>): Validated {
    const out: Validated = { at: at.toISOString(), apps: {} };
    for (const [name, a] of Object.entries(apps)) {
        if (!a.release || (only && !only.has(name))) continue;
        out.apps[name] = {
            release: a.release,
            ...(a.releaseKeys ? { releaseKeys: a.releaseKeys } : {}),
            ...(a.abort && Object.keys(a.abort).length ? { abort: a.abort } : {}),
            ...(a.analysis?.job ? { analysisJob: a.analysis.job } : {}),
        };
    }
    return out;
}

/** Stack tag names and values: Pulumi Cloud allows 40-character names and 256-character values. */
export const TAG_PREFIX = "platform-validated";
export const FAILED_TAG_PREFIX = "platform-failed";
const CHUNK = 250;

/** A record as stack tags: `<prefix>` holds the chunk count, `<prefix>-0`, `-1`, … the JSON. */
export function toTags(v: Validated | FailedReleases, prefix = TAG_PREFIX): Record<string, string> {
    const json = JSON.stringify(v);
    const tags: Record<string, string> = {};
    const n = Math.ceil(json.length / CHUNK);
    for (let i = 0; i < n; i++) tags[`${prefix}-${i}`] = json.slice(i * CHUNK, (i + 1) * CHUNK);
    tags[prefix] = String(n);
    return tags;
}

/** Whether the tags hold a record of this kind at all (a damaged one included). */
export function hasRecord(tags: Record<string, string>, prefix = TAG_PREFIX): boolean {
    return prefix in tags;
}

function recordFrom<T>(tags: Record<string, string>, prefix: string): T | undefined {
    const n = Number(tags[prefix]);
    if (!Number.isInteger(n) || n < 1) return undefined;
    let json = "";
    for (let i = 0; i < n; i++) {
        const part = tags[`${prefix}-${i}`];
        if (part === undefined) return undefined;
        json += part;
    }
    try {
        const v = JSON.parse(json) as { apps?: unknown };
        return v && typeof v.apps === "object" && v.apps !== null ? (v as T) : undefined;
    } catch {
        return undefined;
    }
}

/** Reads the validated record back from a stack's tags; undefined when there is none or it is damaged. */
export function fromTags(tags: Record<string, string>): Validated | undefined {
    return recordFrom<Validated>(tags, TAG_PREFIX);
}

/** The failed releases kept in the stack's tags; undefined when there is none or it is damaged. */
export function failedFromTags(tags: Record<string, string>): FailedReleases | undefined {
    return recordFrom<FailedReleases>(tags, FAILED_TAG_PREFIX);
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
 * The config changes that put apps back on their validated release: each release key whose value
 * differs is set back, to the abort value where the app has one (a canary goes to weight 0) when
 * `abort` is set. A key the failed release added beside them (a canary version next to weight 0)
 * stays: at the validated values it routes nothing. Only the apps in `only` when given; apps the
 * failed release added are left alone (there is nothing to go back to); apps it removed are
 * reported as missing.
 */
export function restorePlan(validated: Validated, currentApps: Record<string, unknown>, opts: { only?: Set<string>; abort?: boolean } = {}): { changes: ConfigChange[]; missing: string[] } {
    const changes: ConfigChange[] = [];
    const missing: string[] = [];
    for (const [app, v] of Object.entries(validated.apps)) {
        if (opts.only && !opts.only.has(app)) continue;
        const config = currentApps[app];
        if (config === undefined) {
            missing.push(app);
            continue;
        }
        const target: Release = { ...v.release, ...(opts.abort ? v.abort ?? {} : {}) };
        for (const [key, value] of Object.entries(target)) {
            const now = at(config, key);
            if (now === undefined || String(now) !== String(value)) changes.push({ app, key: `platform:apps.${app}.${key}`, value, was: now });
        }
    }
    return { changes, missing };
}

/** The keys compared for an app: those its strategy can set, else those of its validated release. */
function keysOf(app: string, validated: Validated | undefined, failed?: FailedApp): string[] {
    const v = validated?.apps[app];
    return [...new Set([...(v?.releaseKeys ?? Object.keys(v?.release ?? {})), ...Object.keys(failed?.release ?? {})])];
}

/** The release an app's config names now, on every key its strategy can set. */
export function currentRelease(app: string, config: unknown, validated: Validated | undefined, fallbackKeys: string[] = []): Release {
    const out: Release = {};
    for (const key of [...new Set([...keysOf(app, validated), ...fallbackKeys])]) {
        const v = at(config, key);
        if (typeof v === "string" || typeof v === "number") out[key] = v;
    }
    return out;
}

/** Whether an app's config names another release than the validated one, on any of its release keys. */
export function releaseChanged(app: string, config: unknown, validated: Validated): boolean {
    const v = validated.apps[app];
    if (!v) return true;
    return keysOf(app, validated).some((k) => String(at(config, k) ?? "") !== String(v.release[k] ?? ""));
}

/**
 * The apps whose config still names a release that failed: the same value on every release key
 * (a key absent in both counts as the same). Changing any of them is a new release, tried again.
 */
export function heldApps(failed: FailedReleases | undefined, validated: Validated | undefined, currentApps: Record<string, unknown>): string[] {
    return Object.entries(failed?.apps ?? {}).filter(([app, f]) => {
        const config = currentApps[app];
        if (config === undefined) return false;
        return keysOf(app, validated, f).every((k) => String(at(config, k) ?? "") === String(f.release[k] ?? ""));
    }).map(([app]) => app).sort();
}

/** The command line of one change, for the summary (and for an operator to repeat by hand). */
export function changeCommand(c: ConfigChange, stack: string): string {
    return `pulumi config set --path '${c.key.replace(/^platform:/, "")}' ${c.value} --stack ${stack}`;
}
