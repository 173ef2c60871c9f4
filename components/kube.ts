import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Resources } from "./config/types";
import { usesLabel } from "./plan/names";

// Building blocks every workload shares, so that each component states only what is its own.

/** The Kubernetes "restricted" Pod Security profile, at pod level. */
export function restrictedPodSecurity(uid: number, fsGroup?: number): k8s.types.input.core.v1.PodSecurityContext {
    return {
        runAsNonRoot: true,
        runAsUser: uid,
        runAsGroup: uid,
        ...(fsGroup !== undefined ? { fsGroup, fsGroupChangePolicy: "OnRootMismatch" } : {}),
        seccompProfile: { type: "RuntimeDefault" },
    };
}

/** The Kubernetes "restricted" Pod Security profile, at container level. */
export const restrictedContainerSecurity: k8s.types.input.core.v1.SecurityContext = {
    runAsNonRoot: true,
    // Nothing writes outside the emptyDirs and volumes mounted for it (see TMP_VOLUME).
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
};

export function resources(r: Resources): k8s.types.input.core.v1.ResourceRequirements {
    return { requests: { ...r.requests }, limits: { ...r.limits } };
}

export function metadata(name: string, namespace: pulumi.Input<string>, labels: Record<string, string>,
    annotations?: Record<string, string>): k8s.types.input.meta.v1.ObjectMeta {
    return { name, namespace, labels, ...(annotations && Object.keys(annotations).length ? { annotations } : {}) };
}

/** Env var read from a key of a Secret the program creates. */
export function fromSecret(name: string, secret: pulumi.Input<string>, key: string): k8s.types.input.core.v1.EnvVar {
    return { name, valueFrom: { secretKeyRef: { name: secret, key } } };
}

/** A shell probe command: exec probes have no shell, and these need the container's env. */
export const shell = (script: string) => ["sh", "-c", script];

/** A writable, size-limited /tmp for containers whose root filesystem is read-only. */
export const TMP_VOLUME: k8s.types.input.core.v1.Volume = { name: "tmp", emptyDir: { sizeLimit: "256Mi" } };
export const TMP_MOUNT: k8s.types.input.core.v1.VolumeMount = { name: "tmp", mountPath: "/tmp" };

/** Annotation that stops `pulumi up` waiting for a Service's endpoints. */
export const SKIP_AWAIT = { "pulumi.com/skipAwait": "true" };

/**
 * On a Job: when the last attempt left it failed (or still running), the next `pulumi up` replaces
 * it instead of waiting on it again, so a retry after a fix needs no hand deletion.
 */
export const REPLACE_UNREADY = { "pulumi.com/replaceUnready": "true" };

/** How long `pulumi up` waits for an object it awaits: Kubernetes' own deadline plus a margin. */
export function awaitTimeouts(deadlineSeconds: number): pulumi.CustomTimeouts {
    const t = `${deadlineSeconds + 60}s`;
    return { create: t, update: t };
}

export interface PodPlacementConfig { nodeSelector: Record<string, string>; tolerations: k8s.types.input.core.v1.Toleration[] }

/** `nodeSelector` and `tolerations` of a pod spec, each only when set (config/placement.ts). */
export function podPlacement(placement: PodPlacementConfig | undefined):
    { nodeSelector?: Record<string, string>; tolerations?: k8s.types.input.core.v1.Toleration[] } {
    return {
        ...(placement && Object.keys(placement.nodeSelector).length ? { nodeSelector: placement.nodeSelector } : {}),
        ...(placement && placement.tolerations.length ? { tolerations: placement.tolerations } : {}),
    };
}

/** A ReadWriteOnce volume claim of `storage`, on `storageClass` when given. */
export function volumeClaimSpec(storage: string, storageClass?: string): k8s.types.input.core.v1.PersistentVolumeClaimSpec {
    return {
        accessModes: ["ReadWriteOnce"],
        ...(storageClass ? { storageClassName: storageClass } : {}),
        resources: { requests: { storage } },
    };
}

export interface ClientAccessArgs {
    /** Service name, port name and the `uses` value of its clients: "postgres" or "redis". */
    service: "postgres" | "redis";
    port: number;
    namespace: pulumi.Input<string>;
    labels: Record<string, string>;
    selector: Record<string, string>;
    statefulSet: k8s.apps.v1.StatefulSet;
}

/**
 * How clients reach a single-instance data service: its client Service (ready once the StatefulSet
 * is), a PodDisruptionBudget that makes a node drain wait for an operator, and a NetworkPolicy that
 * admits only pods labelled as its clients.
 */
export function declareClientAccess(a: ClientAccessArgs, parent: pulumi.Resource): void {
    new k8s.core.v1.Service(a.service, {
        metadata: metadata(a.service, a.namespace, a.labels),
        spec: { selector: a.selector, ports: [{ name: a.service, port: a.port, targetPort: a.service }] },
    }, { parent, dependsOn: [a.statefulSet] });

    new k8s.policy.v1.PodDisruptionBudget(a.service, {
        metadata: metadata(a.service, a.namespace, a.labels),
        spec: { minAvailable: 1, selector: { matchLabels: a.selector } },
    }, { parent });

    new k8s.networking.v1.NetworkPolicy(`${a.service}-allow-clients`, {
        metadata: metadata(`${a.service}-allow-clients`, a.namespace, a.labels),
        spec: {
            podSelector: { matchLabels: a.selector },
            policyTypes: ["Ingress"],
            ingress: [{
                from: [{ podSelector: { matchLabels: { [usesLabel(a.service)]: "true" } } }],
                ports: [{ protocol: "TCP", port: a.port }],
            }],
        },
    }, { parent });
}
