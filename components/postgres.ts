import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DATA_ENV } from "./config/env";
import { PostgresConfig } from "./config/types";
import { declareClientAccess, fromSecret, metadata, podPlacement, PodPlacementConfig, resources, restrictedContainerSecurity, restrictedPodSecurity, shell, volumeClaimSpec } from "./kube";
import { LABEL_TIER, selectorLabels } from "./plan/names";

/** How apps reach a data service: one Secret with the same keys whatever runs the service. */
export interface Connection {
    /** Secret with keys host, port, username, password, url (and database for Postgres). */
    secretName: pulumi.Output<string>;
    /** A cluster DNS name in the cluster; a managed service's private IP, known once it exists. */
    host: pulumi.Input<string>;
    port: number;
    /** Env vars an app gets, each a secretKeyRef into `secretName`. */
    env: k8s.types.input.core.v1.EnvVar[];
}

export interface PostgresArgs {
    /** The Namespace resource's name output, so objects wait for the Namespace. */
    namespace: pulumi.Input<string>;
    namespaceName: string;
    stack: string;
    labels: Record<string, string>;
    config: PostgresConfig;
    /** The server image (platform:images.postgres). */
    image: string;
    protectData: boolean;
    /** kubernetes.placement: the nodes this runs on. */
    placement?: PodPlacementConfig;
}

export const POSTGRES_PORT = 5432;
const POSTGRES_UID = 999; // the postgres user of the official image

export const postgresSecretName = "postgres-credentials";

export function postgresEnv(secretName: pulumi.Input<string>): k8s.types.input.core.v1.EnvVar[] {
    return Object.entries(DATA_ENV.postgres).map(([name, key]) => fromSecret(name, secretName, key));
}

/** PostgreSQL in the cluster: a single-instance StatefulSet with its volume, Services and policies. */
export class Postgres extends pulumi.ComponentResource {
    readonly connection: Connection;
    readonly statefulSet: k8s.apps.v1.StatefulSet;
    readonly password: random.RandomPassword;

    constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:data:Postgres", name, {}, opts);
        const { config, namespace } = args;
        const keep = { protect: args.protectData, retainOnDelete: args.protectData };
        const selector = selectorLabels("postgres", args.stack);
        const labels = { ...args.labels, ...selector, "app.kubernetes.io/component": "database", "app.kubernetes.io/version": config.version, [LABEL_TIER]: "data" };
        const host = `postgres.${args.namespaceName}.svc.cluster.local`;

        // Replacing the password would lock every client out of a data directory initialised with
        // the old one, so it is protected like the data itself.
        this.password = new random.RandomPassword("postgres-password", { length: 32, special: false }, { parent: this, protect: args.protectData });
        const password = this.password.result;
        const secret = new k8s.core.v1.Secret("postgres-credentials", {
            metadata: metadata(postgresSecretName, namespace, labels),
            type: "Opaque",
            stringData: {
                host,
                port: String(POSTGRES_PORT),
                database: config.database,
                username: config.user,
                password,
                url: pulumi.interpolate`postgresql://${config.user}:${password}@${host}:${POSTGRES_PORT}/${config.database}?sslmode=disable`,
            },
        }, { parent: this, ...keep, additionalSecretOutputs: ["stringData", "data"] });

        new k8s.core.v1.Service("postgres-headless", {
            metadata: metadata("postgres-headless", namespace, labels),
            spec: { clusterIP: "None", selector, ports: [{ name: "postgres", port: POSTGRES_PORT, targetPort: "postgres" }], publishNotReadyAddresses: true },
        }, { parent: this });

        this.statefulSet = new k8s.apps.v1.StatefulSet("postgres", {
            metadata: metadata("postgres", namespace, labels),
            spec: {
                serviceName: "postgres-headless",
                replicas: 1,
                selector: { matchLabels: selector },
                // PVCs outlive the StatefulSet: deleting or scaling it never deletes data.
                persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
                template: {
                    metadata: { labels },
                    spec: {
                        securityContext: restrictedPodSecurity(POSTGRES_UID, POSTGRES_UID),
                        ...podPlacement(args.placement),
                        automountServiceAccountToken: false,
                        terminationGracePeriodSeconds: 60,
                        containers: [{
                            name: "postgres",
                            image: args.image,
                            ports: [{ name: "postgres", containerPort: POSTGRES_PORT }],
                            env: [
                                fromSecret("POSTGRES_USER", secret.metadata.name, "username"),
                                fromSecret("POSTGRES_DB", secret.metadata.name, "database"),
                                // A file, not an env var: the server's environment is readable in /proc.
                                { name: "POSTGRES_PASSWORD_FILE", value: "/etc/postgres-credentials/password" },
                                { name: "PGDATA", value: "/var/lib/postgresql/data/pgdata" },
                            ],
                            resources: resources(config.resources),
                            securityContext: restrictedContainerSecurity,
                            startupProbe: { exec: { command: shell(READY) }, periodSeconds: 5, failureThreshold: 60 },
                            readinessProbe: { exec: { command: shell(READY) }, periodSeconds: 10, timeoutSeconds: 5 },
                            livenessProbe: { exec: { command: shell(READY) }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 },
                            volumeMounts: [
                                { name: "data", mountPath: "/var/lib/postgresql/data" },
                                { name: "credentials", mountPath: "/etc/postgres-credentials", readOnly: true },
                                { name: "run", mountPath: "/var/run/postgresql" },
                                { name: "tmp", mountPath: "/tmp" },
                            ],
                        }],
                        volumes: [
                            { name: "credentials", secret: { secretName: secret.metadata.name, items: [{ key: "password", path: "password" }], defaultMode: 0o440 } },
                            { name: "run", emptyDir: {} },
                            { name: "tmp", emptyDir: {} },
                        ],
                    },
                },
                volumeClaimTemplates: [{ metadata: { name: "data", labels: selector }, spec: volumeClaimSpec(config.storage, config.storageClass) }],
            },
        }, { parent: this, ...keep });

        declareClientAccess({ service: "postgres", port: POSTGRES_PORT, namespace, labels, selector, statefulSet: this.statefulSet }, this);

        this.connection = { secretName: secret.metadata.name, host, port: POSTGRES_PORT, env: postgresEnv(secret.metadata.name) };
        this.registerOutputs({ host, secretName: secret.metadata.name });
    }
}

const READY = 'pg_isready -q -h 127.0.0.1 -p 5432 -U "$POSTGRES_USER" -d "$POSTGRES_DB"';
