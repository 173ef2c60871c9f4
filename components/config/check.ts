// A tiny validation toolkit: every check records a problem with its config path and carries on,
// so that one run reports everything that is wrong with a stack's config at once.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export class Problems {
    readonly list: string[] = [];

    add(path: string, what: string, got?: unknown): void {
        const suffix = arguments.length >= 3 ? ` (got ${show(got)})` : "";
        this.list.push(`platform:${path} ${what}${suffix}`);
    }

    get empty(): boolean {
        return this.list.length === 0;
    }
}

export function show(value: unknown): string {
    if (value === undefined) return "nothing";
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function isObject(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reports keys that are not in `allowed`; a misspelled key must never be silently ignored. */
export function onlyKeys(p: Problems, path: string, value: Record<string, unknown>, allowed: readonly string[]): void {
    for (const key of Object.keys(value)) {
        if (!allowed.includes(key)) {
            p.add(`${path}.${key}`, `is not a known key (allowed under ${path}: ${allowed.join(", ")})`, value[key]);
        }
    }
}

export function object(p: Problems, path: string, value: unknown, allowed: readonly string[]): Record<string, unknown> | undefined {
    if (value === undefined) return undefined;
    if (!isObject(value)) {
        p.add(path, "must be an object", value);
        return undefined;
    }
    onlyKeys(p, path, value, allowed);
    return value;
}

export function requiredObject(p: Problems, path: string, value: unknown, allowed: readonly string[]): Record<string, unknown> | undefined {
    if (value === undefined) {
        p.add(path, "is required");
        return undefined;
    }
    return object(p, path, value, allowed);
}

interface StringRule {
    required?: boolean;
    pattern?: RegExp;
    /** What the pattern allows, in words, for the error message. */
    means?: string;
    maxLength?: number;
}

export function string(p: Problems, path: string, value: unknown, rule: StringRule = {}): string | undefined {
    if (value === undefined) {
        if (rule.required) p.add(path, `is required${rule.means ? ` (${rule.means})` : ""}`);
        return undefined;
    }
    // "" is what `pulumi config set <key> ""` stores: a value, never a way to unset a key.
    if (value === "") {
        p.add(path, `must not be empty${rule.means ? ` (${rule.means})` : ""}; remove the key to leave it unset`, value);
        return undefined;
    }
    if (typeof value !== "string") {
        p.add(path, `must be a string${rule.means ? ` (${rule.means})` : ""}`, value);
        return undefined;
    }
    if (rule.maxLength !== undefined && value.length > rule.maxLength) {
        p.add(path, `must be at most ${rule.maxLength} characters`, value);
        return undefined;
    }
    if (rule.pattern && !rule.pattern.test(value)) {
        p.add(path, `must be ${rule.means ?? `a string matching ${rule.pattern}`}`, value);
        return undefined;
    }
    return value;
}

export function oneOf<T extends string>(p: Problems, path: string, value: unknown, allowed: readonly T[], fallback?: T): T | undefined {
    if (value === undefined) {
        if (fallback === undefined) p.add(path, `is required (one of ${allowed.map((a) => `"${a}"`).join(", ")})`);
        return fallback;
    }
    if (typeof value !== "string" || !allowed.includes(value as T)) {
        p.add(path, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}`, value);
        return undefined;
    }
    return value as T;
}

/**
 * Integers may arrive as JSON numbers or as decimal strings: `pulumi config set --path` stores
 * what the operator typed, so "3" and 3 must mean the same.
 */
export function integer(p: Problems, path: string, value: unknown, min: number, max: number, fallback?: number): number | undefined {
    if (value === undefined) {
        if (fallback === undefined) p.add(path, `is required (an integer from ${min} to ${max})`);
        return fallback;
    }
    const n = typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
        p.add(path, `must be an integer ${range}`, value);
        return undefined;
    }
    return n;
}

export function boolean(p: Problems, path: string, value: unknown, fallback: boolean): boolean | undefined {
    if (value === undefined) return fallback;
    if (value === true || value === "true") return true;
    if (value === false || value === "false") return false;
    p.add(path, "must be true or false", value);
    return undefined;
}

export function stringList(p: Problems, path: string, value: unknown, rule: { required?: boolean; minItems?: number } = {}): string[] | undefined {
    if (value === undefined) {
        if (rule.required) p.add(path, "is required (a list of strings)");
        return undefined;
    }
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
        p.add(path, "must be a list of strings", value);
        return undefined;
    }
    if (rule.minItems !== undefined && value.length < rule.minItems) {
        p.add(path, `must have at least ${rule.minItems} item${rule.minItems === 1 ? "" : "s"}`, value);
        return undefined;
    }
    return value as string[];
}

export const patterns = {
    dnsLabel: /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/,
    dnsSubdomain: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    /** Kubernetes resource quantity, e.g. 20Gi, 512Mi, 250m, 1.5. */
    quantity: /^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/,
    /** A registry/repository reference without tag or digest. */
    imageRepository: /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*$/,
    /** An image tag (not "latest") or a sha256 digest. */
    imageVersion: /^(sha256:[a-f0-9]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/,
    /** A Kubernetes label value (non-empty here). */
    labelValue: /^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/,
    sqlIdentifier: /^[a-z_][a-z0-9_]{0,62}$/,
    envName: /^[A-Za-z_][A-Za-z0-9_]*$/,
    hostname: /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/,
    httpPath: /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/,
};

/** An image tag or digest; "latest" is refused because it makes a deploy unrepeatable. */
export function imageVersion(p: Problems, path: string, value: unknown, required: boolean): string | undefined {
    const v = string(p, path, value, { required, pattern: patterns.imageVersion, means: "an image tag or a sha256:<64 hex> digest" });
    if (v === "latest") {
        p.add(path, "must name an exact version: \"latest\" is not allowed", v);
        return undefined;
    }
    // A tag becomes the app.kubernetes.io/version label of the pods and Jobs that run it.
    if (v !== undefined && !v.startsWith("sha256:") && !patterns.labelValue.test(v)) {
        p.add(path, "must be usable as a label value: at most 63 characters, starting and ending with a letter or digit", v);
        return undefined;
    }
    return v;
}
