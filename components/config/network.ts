import { isIP } from "net";
import { isObject, Problems, stringList } from "./check";
import { NetworkConfig } from "./types";

// Who may talk to an app, and where an app may connect: declared in config, turned into
// NetworkPolicies by the plan (plan/network.ts). Everything not declared is denied.

/** Where the routers' traffic comes from, by routing kind, unless routing.from says otherwise. */
export const DEFAULT_ROUTER_NAMESPACE = { nginx: "ingress-nginx" } as const;

function cidrProblem(cidr: string): string | undefined {
    const [addr, bits, extra] = cidr.split("/");
    const v = isIP(addr);
    if (!v || extra !== undefined || bits === undefined || !/^[0-9]{1,3}$/.test(bits) || Number(bits) > (v === 4 ? 32 : 128)) {
        return "must be a CIDR block such as 10.0.0.0/8 or 203.0.113.7/32";
    }
    return undefined;
}

export function cidrList(p: Problems, path: string, value: unknown): string[] {
    const list = stringList(p, path, value) ?? [];
    list.forEach((c, i) => {
        const problem = cidrProblem(c);
        if (problem) p.add(`${path}[${i}]`, problem, c);
    });
    return list;
}

/** apps.<app>.calls, apps.<app>.egressCidrs. */
export function validateAppNetwork(p: Problems, path: string, v: Record<string, unknown>): NetworkConfig {
    const calls = stringList(p, `${path}.calls`, v.calls) ?? [];
    return { calls, egressCidrs: cidrList(p, `${path}.egressCidrs`, v.egressCidrs) };
}

/** apps.<app>.routing.from: the namespaces and address blocks the router's traffic comes from. */
export function validateRouterSources(p: Problems, path: string, value: unknown, kind: string, gatewayNamespace?: string): { namespaces: string[]; cidrs: string[] } {
    if (value !== undefined && !isObject(value)) {
        p.add(path, "must be an object with namespaces and/or cidrs", value);
        return { namespaces: [], cidrs: [] };
    }
    const v = (value ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(v)) if (!["namespaces", "cidrs"].includes(k)) p.add(`${path}.${k}`, `is not a known key (allowed under ${path}: namespaces, cidrs)`, v[k]);
    const namespaces = stringList(p, `${path}.namespaces`, v.namespaces);
    namespaces?.forEach((n, i) => {
        if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n)) p.add(`${path}.namespaces[${i}]`, "must be a namespace name", n);
    });
    const cidrs = v.cidrs === undefined ? [] : cidrList(p, `${path}.cidrs`, v.cidrs);
    const fallback = kind === "nginx" ? [DEFAULT_ROUTER_NAMESPACE.nginx] : gatewayNamespace ? [gatewayNamespace] : [];
    return { namespaces: namespaces ?? (value === undefined || v.namespaces === undefined ? fallback : []), cidrs };
}
