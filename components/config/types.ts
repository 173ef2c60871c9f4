// The validated stack config: what `platform:*` keys mean once every default is filled in.

import type { AnalysisConfig } from "./analysis";
import type { PlacementConfig } from "./placement";

export type Tier = "local" | "staging" | "production";
export type Strategy = "rolling" | "blueGreen" | "canary";
export type Color = "blue" | "green";
export type RoutingKind = "gateway" | "nginx" | "replicas";
export type DataService = "postgres" | "redis";
export type BackupDestination = "pvc" | "gcs";

export interface Resources {
    requests: { cpu: string; memory: string };
    limits: { cpu: string; memory: string };
}

export interface BackupConfig {
    enabled: boolean;
    schedule: string;
    keepDaily: number;
    keepWeekly: number;
    keepMonthly: number;
    destination: BackupDestination;
    /** Size of the backup volume when destination is "pvc". */
    storage: string;
    restoreDrill: { schedule: string };
    /** Postgres only: take a verified backup before any migration Job runs. */
    beforeMigrations: boolean;
    /** Postgres only: take a verified backup, named after the release, before an update changes any app. */
    beforeDeploy: boolean;
    /** gcs only: a bucket retention policy (no deletion before `days`), locked only when `locked`. */
    retention?: { days: number; locked: boolean };
}

export interface PostgresConfig {
    mode: "incluster" | "cloudsql";
    version: string;
    storage: string;
    storageClass?: string;
    resources: Resources;
    database: string;
    user: string;
    cloudsql?: { tier: string; availabilityType: "ZONAL" | "REGIONAL"; diskSizeGb: number; network: string };
    backup: BackupConfig;
}

export interface RedisConfig {
    mode: "incluster" | "memorystore";
    version: string;
    persistence: boolean;
    storage: string;
    storageClass?: string;
    resources: Resources;
    memorystore?: { tier: "BASIC" | "STANDARD_HA"; memorySizeGb: number; network: string };
    backup: BackupConfig;
}

export interface BlueGreenConfig {
    activeColor: Color;
    blue: string;
    green: string;
    /** Replicas of the colour that does not take traffic; 0 scales it away. */
    idleReplicas: number;
}

export interface CanaryConfig {
    stable: string;
    canary?: string;
    weight: number;
    /** Pinned canary size; by default the canary is sized to take all traffic. */
    canaryReplicas?: number;
}

export interface NetworkConfig {
    /** Apps this app connects to: their pods admit it, and its egress reaches them. */
    calls: string[];
    /** Address blocks outside the cluster this app may connect to (everything else is denied). */
    egressCidrs: string[];
}

export interface RoutingConfig {
    kind: RoutingKind;
    /** Where the router's traffic to the app's pods comes from (the only outside source admitted). */
    from: { namespaces: string[]; cidrs: string[] };
    host?: string;
    path: string;
    gateway?: { name: string; namespace: string };
    ingressClassName: string;
    /** nginx: the certificate Secret (issued by cert-manager when an issuer is named); gateway: the HTTPS listener. */
    tls?: { secretName?: string; issuer?: string; clusterIssuer?: string; listener?: string };
}

export interface AutoscalingConfig {
    minReplicas: number;
    maxReplicas: number;
    targetCPUUtilization: number;
}

export interface BuildConfig {
    context: string;
    dockerfile?: string;
    target?: string;
    args: Record<string, string>;
}

export interface AppConfig {
    name: string;
    image: string;
    port: number;
    healthPath: string;
    replicas: number;
    component: string;
    resources: Resources;
    env: Record<string, string>;
    uses: DataService[];
    strategy: Strategy;
    tag?: string;
    blueGreen?: BlueGreenConfig;
    canary?: CanaryConfig;
    routing?: RoutingConfig;
    migrations?: { command: string[] };
    smokeTest?: { command: string[] };
    autoscaling?: AutoscalingConfig;
    build?: BuildConfig;
    /** Deploy tags registries move (main, stable, …) knowingly; pods are annotated so the policy pack lets them pass. */
    allowMutableTags?: boolean;
    network: NetworkConfig;
    /** How long a track's rollout and its smoke test may take before `pulumi up` fails. */
    rolloutTimeoutSeconds: number;
    /** Checks run after each traffic move (config/analysis.ts). */
    analysis?: AnalysisConfig;
    /** Nodes and image pull policy of the pods that run the app's image (config/placement.ts). */
    placement: PlacementConfig;
    /** Exposes the Service that carries the app's traffic on this port of every node. */
    nodePort?: number;
}

export interface GcpConfig {
    enabled: boolean;
    project?: string;
    region?: string;
    /** How many recent image versions the Artifact Registry cleanup policy keeps. */
    keepImageVersions: number;
}

export interface StackConfig {
    /** The Pulumi stack name: the environment's name. */
    stack: string;
    tier: Tier;
    namespace: string;
    kubernetes: {
        renderYamlToDirectory?: string;
        context?: string;
        /** Nodes of the platform's own pods: data services, their backup and drill Jobs, analysis Jobs. */
        placement: Pick<PlacementConfig, "nodeSelector" | "tolerations">;
    };
    gcp: GcpConfig;
    postgres: PostgresConfig;
    redis: RedisConfig;
    apps: AppConfig[];
    /** The platform's own images (config/images.ts). */
    images: { postgres: string; redis: string; cloudCli: string; smokeTest: string; analysis: string };
}
