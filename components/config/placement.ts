import { isObject, oneOf, integer, patterns, Problems } from "./check";
import type { AppConfig, Tier } from "./types";

// Where an app's pods run and how they get their image: `nodeSelector`, `tolerations` and
// `imagePullPolicy` (the app's Deployments and its smoke-test and migration Jobs, which run its
// image), and `nodePort`, which exposes the Service that carries the app's traffic on every node.

export interface Toleration {
    key?: string;
    operator: "Equal" | "Exists";
    value?: string;
    effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

export interface PlacementConfig {
    nodeSelector: Record<string, string>;
    tolerations: Toleration[];
    imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
}

export const PLACEMENT_KEYS = ["nodeSelector", "tolerations", "imagePullPolicy", "nodePort"];
/** Kubernetes' default NodePort range (kube-apiserver --service-node-port-range). */
export const NODE_PORTS = [30000, 32767] as const;

/** A label key: an optional DNS-subdomain prefix and a name of at most 63 characters. */
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export function validatePlacement(p: Problems, path: string, v: Record<string, unknown>): PlacementConfig {
    const nodeSelector: Record<string, string> = {};
    if (v.nodeSelector !== undefined && !isObject(v.nodeSelector)) p.add(`${path}.nodeSelector`, "must be a map of node label keys to values", v.nodeSelector);
    for (const [k, val] of Object.entries(isObject(v.nodeSelector) ? v.nodeSelector : {})) {
        if (!LABEL_KEY.test(k) || k.length > 317) p.add(`${path}.nodeSelector`, `has an invalid label key "${k}" (a name of at most 63 characters, with an optional DNS prefix and '/')`, k);
        else if (typeof val !== "string" || !(val === "" || patterns.labelValue.test(val))) p.add(`${path}.nodeSelector.${k}`, "must be a label value (at most 63 letters, digits, '-', '_' or '.')", val);
        else nodeSelector[k] = val;
    }

    const tolerations: Toleration[] = [];
    if (v.tolerations !== undefined && !Array.isArray(v.tolerations)) p.add(`${path}.tolerations`, "must be a list of {key, operator, value, effect}", v.tolerations);
    (Array.isArray(v.tolerations) ? v.tolerations : []).forEach((t, i) => {
        const at = `${path}.tolerations[${i}]`;
        if (!isObject(t)) return p.add(at, "must be an object with key, operator, value and effect", t);
        for (const k of Object.keys(t)) if (!["key", "operator", "value", "effect"].includes(k)) p.add(`${at}.${k}`, `is not a known key (allowed under ${at}: key, operator, value, effect)`, t[k]);
        const operator = oneOf(p, `${at}.operator`, t.operator, ["Equal", "Exists"] as const, "Equal") ?? "Equal";
        const key = t.key === undefined ? undefined : String(t.key);
        if (key !== undefined && !LABEL_KEY.test(key)) p.add(`${at}.key`, "must be a taint key (a label key)", t.key);
        if (key === undefined && operator !== "Exists") p.add(`${at}.key`, "is required unless operator is \"Exists\" (which tolerates every taint)", t.key);
        if (operator === "Exists" && t.value !== undefined) p.add(`${at}.value`, "must be absent with operator \"Exists\"", t.value);
        const value = t.value === undefined ? undefined : String(t.value);
        if (value !== undefined && value !== "" && !patterns.labelValue.test(value)) p.add(`${at}.value`, "must be a taint value (a label value)", t.value);
        const effect = t.effect === undefined ? undefined : oneOf(p, `${at}.effect`, t.effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"] as const);
        tolerations.push({ ...(key !== undefined ? { key } : {}), operator, ...(value !== undefined ? { value } : {}), ...(effect ? { effect } : {}) });
    });

    const imagePullPolicy = v.imagePullPolicy === undefined ? undefined : oneOf(p, `${path}.imagePullPolicy`, v.imagePullPolicy, ["Always", "IfNotPresent", "Never"] as const);
    return { nodeSelector, tolerations, ...(imagePullPolicy ? { imagePullPolicy } : {}) };
}

export function validateNodePort(p: Problems, path: string, value: unknown): number | undefined {
    return value === undefined ? undefined : integer(p, `${path}.nodePort`, value, NODE_PORTS[0], NODE_PORTS[1]);
}

/**
 * A nodePort needs a Service that carries the app's client traffic (rolling, blue/green's active
 * Service, a replicas canary's app Service) and stays out of production, whose apps are reached
 * through their router. That it is unique in the cluster is a rule across apps (plan/rules.ts).
 */
export function validateNodePorts(p: Problems, apps: AppConfig[], tier: Tier): void {
    for (const app of apps) {
        if (app.nodePort === undefined) continue;
        const path = `apps.${app.name}.nodePort`;
        if (tier === "production") p.add(path, "is not allowed in production: expose the app through routing (a Gateway or an Ingress)", app.nodePort);
        if (app.strategy === "canary" && app.routing?.kind !== "replicas") {
            p.add(path, `needs a Service that carries the app's traffic; a canary routed by ${app.routing?.kind ?? "gateway"} has none (clients go through the router): use routing.kind "replicas" or drop nodePort`, app.nodePort);
        }
    }
}
