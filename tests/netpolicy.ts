import { isIP } from "net";
import { Manifest } from "../tools/render";
import { Result } from "./harness";

// NetworkPolicies read the way a CNI enforces them: a connection is allowed when the source's
// egress and the destination's ingress both allow it (a pod no policy of that type selects is open).

export interface Endpoint {
    labels: Record<string, string>;
    namespace: string;
    /** An address outside the cluster, for ipBlock peers. */
    ip?: string;
}

const matches = (sel: Record<string, string> | undefined, labels: Record<string, string>) => Object.entries(sel ?? {}).every(([k, v]) => labels[k] === v);

function ipIn(ip: string, cidr: string): boolean {
    const [base, bits] = cidr.split("/");
    if (isIP(ip) !== 4 || isIP(base) !== 4) return false;
    const n = (a: string) => a.split(".").reduce((acc, x) => acc * 256 + Number(x), 0);
    const block = 2 ** (32 - Number(bits));
    return Math.floor(n(ip) / block) === Math.floor(n(base) / block);
}

function peerMatches(peer: any, e: Endpoint, policyNs: string): boolean {
    if (peer.ipBlock) return !!e.ip && ipIn(e.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((x: string) => ipIn(e.ip!, x));
    if (e.ip) return false;
    const nsOk = peer.namespaceSelector ? matches(peer.namespaceSelector.matchLabels, { "kubernetes.io/metadata.name": e.namespace }) : e.namespace === policyNs;
    return nsOk && (!peer.podSelector || matches(peer.podSelector.matchLabels, e.labels));
}

function allows(policies: Manifest[], dir: "Ingress" | "Egress", self: Endpoint, other: Endpoint, port: number): boolean {
    const ns = policies[0]?.metadata.namespace ?? "";
    if (self.ip || self.namespace !== ns) return true; // outside the namespace: not ours to judge
    const selecting = policies.filter((p) => p.spec.policyTypes.includes(dir) && matches(p.spec.podSelector.matchLabels, self.labels));
    if (selecting.length === 0) return true;
    return selecting.some((p) => (dir === "Ingress" ? p.spec.ingress : p.spec.egress)?.some((rule: any) => {
        const peers = dir === "Ingress" ? rule.from : rule.to;
        const portOk = !rule.ports || rule.ports.some((x: any) => x.port === port);
        return portOk && (!peers || peers.some((peer: any) => peerMatches(peer, other, ns)));
    }));
}

export function canConnect(r: Result, from: Endpoint, to: Endpoint, port: number): boolean {
    const policies = r.ofKind("NetworkPolicy");
    return allows(policies, "Egress", from, to, port) && allows(policies, "Ingress", to, from, port);
}

