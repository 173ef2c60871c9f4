import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DATA_ENV } from "./config/env";
import { RedisConfig } from "./config/types";
import { declareClientAccess, fromSecret, metadata, podPlacement, PodPlacementConfig, resources, restrictedContainerSecurity, restrictedPodSecurity, shell, TMP_MOUNT, TMP_VOLUME, volumeClaimSpec } from "./kube";
import { LABEL_TIER, selectorLabels } from "./plan/names";
import { Connection } from "./postgres";

export interface RedisArgs {
    /** The Namespace resource's name output, so objects wait for the Namespace. */
    namespace: pulumi.Input<string>;
    namespaceName: string;
    stack: string;
    labels: Record<string, string>;
    config: RedisConfig;
    /** The server image (platform:images.redis). */
    image: string;
    protectData: boolean;
    /** kubernetes.placement: the nodes this runs on. */
    placement?: PodPlacementConfig;
}

export const REDIS_PORT = 6379;
const REDIS_UID = 999; // the redis user of the official image
export const redisSecretName = "redis-credentials";

export function redisEnv(secretName: pulumi.Input<string>): k8s.types.input.core.v1.EnvVar[] {
    return Object.entries(DATA_ENV.redis).map(([name, key]) => fromSecret(name, secretName, key));
}

/** Redis in the cluster: password-protected, AOF persistence on a volume when enabled. */
export class Redis extends pulumi.ComponentResource {
    readonly connection: Connection;
    readonly statefulSet: k8s.apps.v1.StatefulSet;

    constructor(name: string, args: RedisArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:data:Redis", name, {}, opts);
        const { config, namespace } = args;
        const keep = { protect: args.protectData, retainOnDelete: args.protectData };
        const selector = selectorLabels("redis", args.stack);
        const labels = { ...args.labels, ...selector, "app.kubernetes.io/component": "cache", "app.kubernetes.io/version": config.version, [LABEL_TIER]: "data" };
        const host = `redis.${args.namespaceName}.svc.cluster.local`;

        const password = new random.RandomPassword("redis-password", { length: 32, special: false }, { parent: this, protect: args.protectData }).result;
        // The server reads its password from a config file in the Secret, never from its command line.
        const serverConfig = pulumi.interpolate`requirepass ${password}
dir /data
appendonly ${config.persistence ? "yes" : "no"}
appendfsync everysec
save ${config.persistence ? "3600 1 300 100 60 10000" : '""'}
`;
        const secret = new k8s.core.v1.Secret("redis-credentials", {
            metadata: metadata(redisSecretName, namespace, labels),
            type: "Opaque",
            stringData: {
                host,
                port: String(REDIS_PORT),
                password,
                url: pulumi.interpolate`redis://:${password}@${host}:${REDIS_PORT}/0`,
                "redis.conf": serverConfig,
            },
        }, { parent: this, ...keep, additionalSecretOutputs: ["stringData", "data"] });

        new k8s.core.v1.Service("redis-headless", {
            metadata: metadata("redis-headless", namespace, labels),
            spec: { clusterIP: "None", selector, ports: [{ name: "redis", port: REDIS_PORT, targetPort: "redis" }], publishNotReadyAddresses: true },
        }, { parent: this });

        const ping = shell("redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG");
        this.statefulSet = new k8s.apps.v1.StatefulSet("redis", {
            metadata: metadata("redis", namespace, labels),
            spec: {
                serviceName: "redis-headless",
                replicas: 1,
                selector: { matchLabels: selector },
                persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
                template: {
                    metadata: { labels },
                    spec: {
                        securityContext: restrictedPodSecurity(REDIS_UID, REDIS_UID),
                        ...podPlacement(args.placement),
                        automountServiceAccountToken: false,
                        terminationGracePeriodSeconds: 30,
                        containers: [{
                            name: "redis",
                            image: args.image,
                            command: ["redis-server", "/etc/redis/redis.conf"],
                            ports: [{ name: "redis", containerPort: REDIS_PORT }],
                            // redis-cli reads REDISCLI_AUTH, so probes authenticate without a password argument.
                            env: [fromSecret("REDISCLI_AUTH", secret.metadata.name, "password")],
                            resources: resources(config.resources),
                            securityContext: restrictedContainerSecurity,
                            startupProbe: { exec: { command: ping }, periodSeconds: 2, failureThreshold: 60 },
                            readinessProbe: { exec: { command: ping }, periodSeconds: 5, timeoutSeconds: 3 },
                            livenessProbe: { exec: { command: ping }, periodSeconds: 15, timeoutSeconds: 3, failureThreshold: 4 },
                            volumeMounts: [
                                { name: "data", mountPath: "/data" },
                                { name: "config", mountPath: "/etc/redis", readOnly: true },
                                TMP_MOUNT,
                            ],
                        }],
                        volumes: [
                            TMP_VOLUME,
                            { name: "config", secret: { secretName: secret.metadata.name, items: [{ key: "redis.conf", path: "redis.conf" }], defaultMode: 0o440 } },
                        ],
                    },
                },
                volumeClaimTemplates: [{ metadata: { name: "data", labels: selector }, spec: volumeClaimSpec(config.storage, config.storageClass) }],
            },
        }, { parent: this, ...keep });

        declareClientAccess({ service: "redis", port: REDIS_PORT, namespace, labels, selector, statefulSet: this.statefulSet }, this);

        this.connection = { secretName: secret.metadata.name, host, port: REDIS_PORT, env: redisEnv(secret.metadata.name) };
        this.registerOutputs({ host, secretName: secret.metadata.name });
    }
}
