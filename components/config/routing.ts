import { isIP } from "net";

// Routing as the API server and the routers check it: an Ingress host is a DNS name (never an IP),
// labels of at most 63 characters and 253 in all; Ingress and Gateway API paths refuse `//`, dot
// segments, encoded slashes and characters outside RFC 3986. (One app per host and path is a rule
// across apps: plan/rules.ts.)

/** What an Ingress or a Gateway API hostname would refuse in `host`, or undefined. */
export function hostProblem(host: string): string | undefined {
    if (isIP(host.replace(/^\[|\]$/g, ""))) return "must be a DNS name, not an IP address";
    if (host.length > 253) return `must be at most 253 characters (it has ${host.length})`;
    const long = host.split(".").find((l) => l.length > 63);
    if (long) return `has a label longer than 63 characters (${long.length}): each part between dots is at most 63`;
    return undefined;
}

const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;

/** What an Ingress (pathType Prefix) or an HTTPRoute PathPrefix match would refuse in `path`. */
export function pathProblem(path: string): string | undefined {
    if (!path.startsWith("/")) return "must start with /";
    if (path.length > 1024) return "must be at most 1024 characters";
    if (!PATH_CHARS.test(path)) return "may only contain letters, digits, -._~!$&'()*+,;=:@/ and %-escapes of two hex digits";
    for (const seq of ["//", "/./", "/../"]) if (path.includes(seq)) return `must not contain "${seq}"`;
    if (/%2f/i.test(path)) return "must not contain an encoded slash (%2F)";
    for (const end of ["/..", "/."]) if (path.endsWith(end)) return `must not end with "${end}"`;
    return undefined;
}
