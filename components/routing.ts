import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { metadata, SKIP_AWAIT } from "./kube";
import { RoutePlan } from "./plan/apps";

export interface RoutingArgs {
    app: string;
    namespace: pulumi.Input<string>;
    labels: Record<string, string>;
    route: RoutePlan;
    /** Port every app Service listens on. */
    servicePort: number;
    /** What must be ready before traffic moves (a component's dependsOn does not reach its children). */
    after: pulumi.Resource[];
}

/**
 * North-south traffic for one app: a Gateway API HTTPRoute with weighted backends, or ingress-nginx
 * Ingresses (a primary one and, for canaries, the canary Ingress that carries the weight).
 */
export class Routing extends pulumi.ComponentResource {
    /** The object whose change moves traffic; others order themselves around it. */
    readonly trafficObjects: pulumi.Resource[] = [];

    constructor(name: string, args: RoutingArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:apps:Routing", name, {}, opts);
        const { route, app, namespace, labels } = args;
        if (route.kind === "gateway") {
            this.trafficObjects.push(new k8s.apiextensions.CustomResource(`${app}-route`, {
                apiVersion: "gateway.networking.k8s.io/v1",
                kind: "HTTPRoute",
                metadata: metadata(app, namespace, labels),
                spec: {
                    parentRefs: [{
                        group: "gateway.networking.k8s.io", kind: "Gateway", name: route.gateway!.name, namespace: route.gateway!.namespace,
                        // With TLS, only the Gateway's HTTPS listener serves the route.
                        ...(route.tls?.listener ? { sectionName: route.tls.listener } : {}),
                    }],
                    hostnames: [route.host],
                    rules: [{
                        matches: [{ path: { type: "PathPrefix", value: route.path } }],
                        // group, kind and weight are what the API server would default: written out so
                        // a refresh finds nothing to change.
                        backendRefs: route.backends.map((b) => ({ group: "", kind: "Service", name: b.service, port: args.servicePort, weight: b.weight })),
                    }],
                },
            }, { parent: this, dependsOn: args.after }));
        } else {
            const [primary, canary] = route.backends;
            const rule = (service: string): k8s.types.input.networking.v1.IngressRule => ({
                host: route.host,
                http: { paths: [{ path: route.path, pathType: "Prefix", backend: { service: { name: service, port: { number: args.servicePort } } } }] },
            });
            const tls = route.tls?.secretName ? { tls: [{ hosts: [route.host], secretName: route.tls.secretName }] } : {};
            // cert-manager issues the certificate for the primary Ingress only: two would race for one Secret.
            const issuer: Record<string, string> | undefined = route.tls?.clusterIssuer ? { "cert-manager.io/cluster-issuer": route.tls.clusterIssuer }
                : route.tls?.issuer ? { "cert-manager.io/issuer": route.tls.issuer } : undefined;
            this.trafficObjects.push(new k8s.networking.v1.Ingress(`${app}-ingress`, {
                metadata: metadata(app, namespace, labels, issuer),
                spec: { ingressClassName: route.ingressClassName, ...tls, rules: [rule(primary.service)] },
            }, { parent: this, dependsOn: args.after }));
            if (canary) {
                this.trafficObjects.push(new k8s.networking.v1.Ingress(`${app}-canary-ingress`, {
                    metadata: metadata(`${app}-canary`, namespace, labels, {
                        "nginx.ingress.kubernetes.io/canary": "true",
                        "nginx.ingress.kubernetes.io/canary-weight": String(canary.weight),
                        // The canary's Deployment and smoke test gate this Ingress; its endpoints need no second wait.
                        ...SKIP_AWAIT,
                    }),
                    spec: { ingressClassName: route.ingressClassName, ...tls, rules: [rule(canary.service)] },
                }, { parent: this, dependsOn: args.after }));
            }
        }
        this.registerOutputs({ host: route.host, backends: route.backends });
    }
}
