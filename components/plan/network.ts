import { DataService } from "../config/types";
import { EnvironmentPlan } from "./environment";
import { selectorLabels } from "./names";

// Which pods may talk to which, as data: the namespace denies all ingress and egress, then each
// workload gets exactly what it needs. NetworkPolicies (components/network.ts) are declared from this.

export type Peer =
    | { pods: Record<string, string> }
    | { namespace: string; pods?: Record<string, string> }
    | { cidr: string; except?: string[] }
    /** A data service: its pods in the cluster, or a managed instance's address. */
    | { data: DataService };

export interface Port {
    port: number;
    protocol: "TCP" | "UDP";
}

export interface Rule {
    peers: Peer[];
    /** No ports: every port of the peers. */
    ports: Port[];
}

export interface NetworkPolicyPlan {
    name: string;
    /** The pods it applies to; {} is every pod of the namespace. */
    pods: Record<string, string>;
    types: ("Ingress" | "Egress")[];
    ingress: Rule[];
    egress: Rule[];
}

const tcp = (...ports: number[]): Port[] => ports.map((port) => ({ port, protocol: "TCP" }));
/** GKE's metadata server: Workload Identity tokens (80; 988 under Dataplane V2). */
export const METADATA_SERVER = "169.254.169.254/32";
/** The internet: anywhere but private ranges. */
const PUBLIC: Peer = { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"] };
/** Google APIs are reached over the internet (on 443). */
const GOOGLE_APIS: Peer = PUBLIC;
const DNS: Rule = {
    peers: [{ namespace: "kube-system", pods: { "k8s-app": "kube-dns" } }],
    ports: [{ port: 53, protocol: "UDP" }, { port: 53, protocol: "TCP" }],
};

/**
 * Where an analysis reaches Prometheus, from its address: a Service in the cluster is reached in its
 * namespace (its pods are not ours to name, and a Service may map its port to another one on the pods,
 * so every port there), an IP at that address, any other host on the internet at the address's port.
 */
export function prometheusPeer(address: string, namespace: string): Rule {
    const url = new URL(address);
    const host = url.hostname;
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return { peers: [{ cidr: `${host}/32` }], ports: [] };
    const labels = host.split(".");
    const inCluster = labels.length === 1 || labels.length === 2 || (labels.length >= 3 && labels[2] === "svc");
    if (inCluster) return { peers: [{ namespace: labels.length === 1 ? namespace : labels[1] }], ports: [] };
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    return { peers: [PUBLIC], ports: tcp(port) };
}

export function planNetwork(env: EnvironmentPlan): NetworkPolicyPlan[] {
    const { config } = env;
    const { stack } = config;
    const plans: NetworkPolicyPlan[] = [
        { name: "default-deny", pods: {}, types: ["Ingress", "Egress"], ingress: [], egress: [] },
        { name: "allow-dns", pods: {}, types: ["Egress"], ingress: [], egress: [DNS] },
    ];
    const dataRules = (uses: DataService[]): Rule[] => uses.map((d) => ({ peers: [{ data: d }], ports: [] }));
    const routerPeers = (name: string): Peer[] => {
        const r = config.apps.find((a) => a.name === name)?.routing;
        if (!r || r.kind === "replicas" || !r.host) return [];
        return [...r.from.namespaces.map((namespace) => ({ namespace })), ...r.from.cidrs.map((cidr) => ({ cidr }))];
    };
    // Job pods exist only while the plan has Jobs: a policy for them would select nothing otherwise.
    const smokeTested = (name: string) => env.apps.some((a) => a.config.name === name && a.smokeTests.length > 0);

    for (const app of config.apps) {
        const pods = selectorLabels(app.name, stack);
        const callers = config.apps.filter((a) => a.network.calls.includes(app.name));
        const sources: Peer[] = [
            ...routerPeers(app.name),
            ...callers.map((c) => ({ pods: selectorLabels(c.name, stack) })),
            ...(smokeTested(app.name) ? [{ pods: selectorLabels(`${app.name}-smoke-test`, stack) }] : []),
            // Every analysis calls the app (its health and error-rate checks).
            ...(app.analysis ? [{ pods: selectorLabels(`${app.name}-analysis`, stack) }] : []),
        ];
        const callees = config.apps.filter((a) => app.network.calls.includes(a.name));
        plans.push({
            name: app.name, pods, types: ["Ingress", "Egress"],
            ingress: sources.length ? [{ peers: sources, ports: tcp(app.port) }] : [],
            egress: [
                ...dataRules(app.uses),
                // A callee is reached directly, or through its router (its public host).
                ...callees.map((c) => ({ peers: [{ pods: selectorLabels(c.name, stack) }], ports: tcp(c.port) })),
                ...callees.filter((c) => routerPeers(c.name).length).map((c) => ({ peers: routerPeers(c.name), ports: tcp(80, 443) })),
                ...(app.network.egressCidrs.length ? [{ peers: app.network.egressCidrs.map((cidr) => ({ cidr })), ports: [] }] : []),
            ],
        });
        if (app.migrations) {
            plans.push({ name: `${app.name}-migration`, pods: selectorLabels(`${app.name}-migration`, stack), types: ["Ingress", "Egress"], ingress: [], egress: dataRules(app.uses) });
        }
        if (smokeTested(app.name)) {
            plans.push({
                name: `${app.name}-smoke-test`, pods: selectorLabels(`${app.name}-smoke-test`, stack), types: ["Ingress", "Egress"], ingress: [],
                egress: [{ peers: [{ pods }], ports: tcp(app.port) }, ...(app.smokeTest ? dataRules(app.uses) : [])],
            });
        }
        // Analysis Jobs call the app's pods (HTTP checks, through its Services) and Prometheus.
        const a = app.analysis;
        if (a) {
            plans.push({
                name: `${app.name}-analysis`, pods: selectorLabels(`${app.name}-analysis`, stack), types: ["Ingress", "Egress"], ingress: [],
                egress: [
                    { peers: [{ pods }], ports: tcp(app.port) },
                    ...(a.prometheus ? [prometheusPeer(a.prometheus.address, env.namespace)] : []),
                ],
            });
        }
    }

    for (const kind of ["postgres", "redis"] as const) {
        const c = config[kind];
        const backedUp = c.backup.enabled && (kind === "postgres" || config.redis.mode === "incluster");
        if (!backedUp) continue;
        const gcs = c.backup.destination === "gcs";
        const google: Rule[] = [{ peers: [{ cidr: METADATA_SERVER }], ports: tcp(80, 988) }, { peers: [GOOGLE_APIS], ports: tcp(443) }];
        plans.push({
            name: `${kind}-backup`, pods: selectorLabels(`${kind}-backup`, stack), types: ["Ingress", "Egress"], ingress: [],
            egress: [
                ...dataRules([kind]),
                // Only the gcs form needs Google: tokens from the metadata server, then the Storage API.
                ...(gcs ? google : []),
            ],
        });
        // The restore drill reads backups and restores them into a scratch server: no data service.
        plans.push({
            name: `${kind}-restore-drill`, pods: selectorLabels(`${kind}-restore-drill`, stack), types: ["Ingress", "Egress"], ingress: [],
            egress: gcs ? google : [],
        });
    }
    return plans;
}
