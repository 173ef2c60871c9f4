import { object, Problems, string } from "./check";
import { Resources } from "./types";

// Quantities by what they measure: CPU in cores or millicores, memory and storage in bytes (with
// decimal or binary suffixes). The API server parses "1Gi" of CPU or "500m" bytes of memory; they
// are never what was meant. Requests may not exceed limits once defaults fill the gaps, and values
// below a floor no workload runs with are refused.

const CPU = /^([0-9]+(\.[0-9]{1,3})?|\.[0-9]{1,3}|[0-9]+m)$/;
const BYTES = /^([0-9]+(\.[0-9]+)?|\.[0-9]+)(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const FACTOR: Record<string, number> = {
    "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** Millicores of a CPU quantity, or undefined if it is not one. */
export function millicores(q: string): number | undefined {
    if (!CPU.test(q)) return undefined;
    return q.endsWith("m") ? Number(q.slice(0, -1)) : Math.round(Number(q) * 1000);
}

/** Bytes of a memory or storage quantity, or undefined if it is not one. */
export function bytes(q: string): number | undefined {
    const m = BYTES.exec(q);
    return m ? Number(m[1]) * FACTOR[m[3] ?? ""] : undefined;
}

export const MIN_CPU = "10m";
export const MIN_MEMORY = "16Mi";
export const MIN_STORAGE = "1Mi";

type Kind = "cpu" | "memory";
const amount = (kind: Kind, q: string) => (kind === "cpu" ? millicores(q) : bytes(q));
const RULE: Record<Kind, { means: string; floor: string }> = {
    cpu: { means: "a CPU quantity in cores or millicores, such as 0.5, 2 or 250m (no byte suffixes)", floor: MIN_CPU },
    memory: { means: "a memory quantity in bytes, such as 512Mi, 1Gi or 1G (no m suffix: that means thousandths of a byte)", floor: MIN_MEMORY },
};

function quantity(p: Problems, path: string, kind: Kind, value: unknown): string | undefined {
    const q = string(p, path, value, { means: RULE[kind].means });
    if (q === undefined) return undefined;
    const n = amount(kind, q);
    if (n === undefined) {
        p.add(path, `must be ${RULE[kind].means}`, value);
        return undefined;
    }
    if (n < amount(kind, RULE[kind].floor)!) {
        p.add(path, `must be at least ${RULE[kind].floor}`, value);
        return undefined;
    }
    return q;
}

/** Container resources with defaults filled in; requests never above limits. */
export function validateResources(p: Problems, path: string, value: unknown, defaults: Resources): Resources {
    const r = object(p, path, value, ["requests", "limits"]);
    if (!r) return defaults;
    const bad = new Set<string>();
    const side = (name: "requests" | "limits") => {
        const s = object(p, `${path}.${name}`, r[name], ["cpu", "memory"]) ?? {};
        const one = (k: Kind) => {
            const q = quantity(p, `${path}.${name}.${k}`, k, s[k]);
            if (q === undefined && s[k] !== undefined) bad.add(k);
            return q ?? defaults[name][k];
        };
        return { cpu: one("cpu"), memory: one("memory") };
    };
    const out = { requests: side("requests"), limits: side("limits") };
    for (const k of ["cpu", "memory"] as const) {
        if (bad.has(k)) continue;
        if (amount(k, out.requests[k])! > amount(k, out.limits[k])!) {
            p.add(`${path}.requests.${k}`, `must be at most limits.${k} (${out.limits[k]})`, out.requests[k]);
        }
    }
    return out;
}

/** A volume size: a positive number of bytes, at least MIN_STORAGE. */
export function storageSize(p: Problems, path: string, value: unknown, opts: { required?: boolean; example: string }): string | undefined {
    const means = `a size in bytes such as ${opts.example} (at least ${MIN_STORAGE})`;
    const q = string(p, path, value, { required: opts.required, means });
    if (q === undefined) return undefined;
    const n = bytes(q);
    if (n === undefined || n < bytes(MIN_STORAGE)!) {
        p.add(path, `must be ${means}`, value);
        return undefined;
    }
    return q;
}
