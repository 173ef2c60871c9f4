import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { DataService } from "./config/types";
import { metadata } from "./kube";
import { NetworkPolicyPlan, Peer, Rule } from "./plan/network";
import { Connection } from "./postgres";

export interface NetworkPoliciesArgs {
    plans: NetworkPolicyPlan[];
    namespace: pulumi.Input<string>;
    labels: Record<string, string>;
    /** Selector of each in-cluster data service's pods; a managed one is reached at its connection's host. */
    dataPods: Partial<Record<DataService, Record<string, string>>>;
    connections: Partial<Record<DataService, Connection>>;
}

/** The namespace's NetworkPolicies: deny by default, then what each workload needs (plan/network.ts). */
export class NetworkPolicies extends pulumi.ComponentResource {
    constructor(name: string, args: NetworkPoliciesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:network:NetworkPolicies", name, {}, opts);
        const peer = (p: Peer): k8s.types.input.networking.v1.NetworkPolicyPeer => {
            if ("data" in p) {
                const pods = args.dataPods[p.data];
                if (pods) return { podSelector: { matchLabels: pods } };
                return { ipBlock: { cidr: pulumi.interpolate`${args.connections[p.data]!.host}/32` } };
            }
            if ("cidr" in p) return { ipBlock: { cidr: p.cidr, ...(p.except ? { except: p.except } : {}) } };
            if ("namespace" in p) {
                return {
                    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": p.namespace } },
                    ...(p.pods ? { podSelector: { matchLabels: p.pods } } : {}),
                };
            }
            return { podSelector: { matchLabels: p.pods } };
        };
        const ports = (r: Rule) => {
            // A data service's port is its own, in the cluster or managed.
            const data = r.peers.find((p): p is { data: DataService } => "data" in p);
            const list = data ? [{ port: args.connections[data.data]!.port, protocol: "TCP" }] : r.ports;
            return list.length ? { ports: list } : {};
        };
        for (const plan of args.plans) {
            new k8s.networking.v1.NetworkPolicy(`netpol-${plan.name}`, {
                metadata: metadata(plan.name, args.namespace, args.labels),
                spec: {
                    podSelector: { matchLabels: plan.pods },
                    policyTypes: plan.types,
                    ...(plan.types.includes("Ingress") ? { ingress: plan.ingress.map((r) => ({ from: r.peers.map(peer), ...ports(r) })) } : {}),
                    ...(plan.types.includes("Egress") ? { egress: plan.egress.map((r) => ({ to: r.peers.map(peer), ...ports(r) })) } : {}),
                },
            }, { parent: this });
        }
        this.registerOutputs({});
    }
}
