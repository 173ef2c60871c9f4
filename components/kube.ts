import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Resources } from "./config/types";

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

/** Annotation that stops `pulumi up` waiting for a Service's endpoints. */
export const SKIP_AWAIT = { "pulumi.com/skipAwait": "true" };
