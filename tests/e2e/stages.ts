import { Kube, Obj } from "./kube";

// Failure injection on the live control plane: kwok Stages a test adds to the running cluster (weight
// 1 wins over the cluster's own stages in scripts/cluster/stages.yaml) and removes to stand for the fix.

const STAGES = "/apis/kwok.x-k8s.io/v1alpha1/stages";

export class Stages {
    private readonly created: string[] = [];

    /** `namespace`: the only namespace whose pods the stages touch (set once the test has one). */
    constructor(private readonly kube: Kube, public namespace = "") {}

    async add(name: string, selector: Obj[], statusTemplate: string): Promise<void> {
        if (!this.namespace) throw new Error("Stages.add before a namespace was set: a stage would touch every namespace");
        await this.kube.create(STAGES, {
            apiVersion: "kwok.x-k8s.io/v1alpha1", kind: "Stage", metadata: { name },
            spec: {
                resourceRef: { apiGroup: "v1", kind: "Pod" }, weight: 1,
                selector: { matchExpressions: [{ key: ".metadata.namespace", operator: "In", values: [this.namespace] }, ...selector] },
                next: { statusTemplate },
            },
        });
        this.created.push(name);
    }

    async remove(name: string): Promise<void> {
        await this.kube.delete(`${STAGES}/${name}`);
        this.created.splice(this.created.indexOf(name), 1);
    }

    async removeAll(): Promise<void> {
        for (const s of [...this.created]) await this.remove(s).catch(() => undefined);
    }
}

export const labelIs = (label: string, value: string) => ({ key: `.metadata.labels["${label}"]`, operator: "In", values: [value] });

/** Pods that run but never pass readiness. */
export const NEVER_READY = `
{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: false, started: true, restartCount: 0, state: {running: {startedAt: {{ $now | Quote }}}}}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
`;

/** A Job pod whose command exits with `code`, leaving `message` as its termination message. */
export function exits(code: number, message?: string): string {
    const msg = message ? `, message: ${JSON.stringify(message)}` : "";
    return `
{{ $now := Now }}
conditions:
- {type: Ready, status: "False", reason: PodFailed, lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: false, started: false, restartCount: 0, state: {terminated: {exitCode: ${code}, reason: Error${msg}, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Failed
startTime: {{ $now | Quote }}
`;
}

/** A Job pod whose command exits 1. */
export const EXITS_1 = exits(1);

/** A Job pod as it starts (the same moment the cluster's pod-ready stage takes, so this one wins by weight). */
export const STARTING_JOB_POD = [
    { key: ".metadata.deletionTimestamp", operator: "DoesNotExist" },
    { key: ".status.podIP", operator: "DoesNotExist" },
    { key: ".metadata.ownerReferences.[].kind", operator: "In", values: ["Job"] },
];
