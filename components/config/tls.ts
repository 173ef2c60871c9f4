import { object, patterns, Problems, string } from "./check";
import { RoutingConfig, RoutingKind } from "./types";

// TLS for an app's route. ingress-nginx terminates it with a certificate Secret, which cert-manager
// issues when an issuer is named. A Gateway terminates it on a listener of its own (the Gateway is
// not this program's): the route attaches to that HTTPS listener by its section name.

export function validateTls(p: Problems, path: string, value: unknown, kind: RoutingKind, app: string): RoutingConfig["tls"] {
    const allowed = kind === "gateway" ? ["listener"] : ["secretName", "issuer", "clusterIssuer"];
    const t = object(p, path, value, allowed);
    if (!t) return undefined;
    if (kind === "replicas") {
        p.add(path, "needs a router: routing.kind \"replicas\" has no Ingress or Gateway to terminate TLS", t);
        return undefined;
    }
    if (kind === "gateway") {
        const listener = string(p, `${path}.listener`, t.listener, {
            required: true, pattern: patterns.dnsSubdomain, means: "the section name of the Gateway's HTTPS listener, e.g. https",
        });
        return listener ? { listener } : undefined;
    }
    const name = (k: string, means: string) => string(p, `${path}.${k}`, t[k], { pattern: patterns.dnsSubdomain, means });
    const secretName = name("secretName", "a Secret name");
    const issuer = name("issuer", "a cert-manager Issuer name");
    const clusterIssuer = name("clusterIssuer", "a cert-manager ClusterIssuer name");
    if (issuer && clusterIssuer) p.add(path, "names both an issuer and a clusterIssuer: keep one", t);
    if (!secretName && !issuer && !clusterIssuer) {
        p.add(path, "needs secretName (an existing certificate Secret) or issuer/clusterIssuer (cert-manager issues it)", t);
        return undefined;
    }
    return { secretName: secretName ?? `${app}-tls`, issuer, clusterIssuer };
}
