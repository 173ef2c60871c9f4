import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { ANALYSIS_ENV } from "./config/env";
import { metadata, podPlacement, PodPlacementConfig, REPLACE_UNREADY, restrictedContainerSecurity, restrictedPodSecurity } from "./kube";
import { ANALYSIS_TIMEOUT_SECONDS, AnalysisPlan } from "./plan/analysis";
import { selectorLabels, versionLabel } from "./plan/names";

// The analysis after a traffic move: a Job running scripts/analysis/analyze.js (contract:
// scripts/analysis/README.md) that `pulumi up` waits for once the traffic objects have changed.

const SCRIPT = path.join(__dirname, "..", "scripts", "analysis", "analyze.js");
/** The `node` user of the image. */
const NODE_UID = 1000;

/** The analysis program as ConfigMap data, read from the repository at evaluation time. */
export function analysisScripts(): Record<string, string> {
    return { "analyze.js": fs.readFileSync(SCRIPT, "utf8") };
}

export interface AnalysisArgs {
    app: string;
    plan: AnalysisPlan;
    namespace: pulumi.Input<string>;
    stack: string;
    labels: Record<string, string>;
    scriptsConfigMap: pulumi.Input<string>;
    /** Node.js 20 (`images.analysis`): the program needs only its built-ins. */
    image: string;
    /** kubernetes.placement: the nodes this runs on. */
    placement?: PodPlacementConfig;
    /** The traffic objects and tracks of this state: the analysis starts once they are done. */
    after: pulumi.Resource[];
}

/** Verifies the version that just took traffic; a failure fails `pulumi up`. */
export class Analysis extends pulumi.ComponentResource {
    readonly job: k8s.batch.v1.Job;

    constructor(name: string, args: AnalysisArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:apps:Analysis", name, {}, opts);
        const { plan } = args;
        // Analysis pods carry no track labels: no Service sends traffic to them.
        const labels = {
            ...args.labels,
            ...selectorLabels(`${args.app}-analysis`, args.stack),
            "app.kubernetes.io/component": "analysis",
            "app.kubernetes.io/version": versionLabel(plan.version),
        };
        this.job = new k8s.batch.v1.Job(plan.job, {
            // replaceUnready: a failed analysis (say, Prometheus was down) runs again on the next
            // `pulumi up` of the same state, as smoke tests and migrations do.
            metadata: metadata(plan.job, args.namespace, labels, REPLACE_UNREADY),
            spec: {
                // The program retries inside (attempts, measurements); a second pod would only
                // repeat a verdict and delay the rollback. No TTL: see the migration Jobs.
                backoffLimit: 0,
                activeDeadlineSeconds: plan.deadlineSeconds,
                template: {
                    metadata: { labels },
                    spec: {
                        restartPolicy: "Never",
                        securityContext: restrictedPodSecurity(NODE_UID),
                        ...podPlacement(args.placement),
                        automountServiceAccountToken: false,
                        volumes: [{ name: "scripts", configMap: { name: args.scriptsConfigMap, defaultMode: 0o444 } }],
                        containers: [{
                            name: "analysis",
                            image: args.image,
                            command: ["node", "/scripts/analyze.js"],
                            env: [
                                { name: ANALYSIS_ENV.spec, value: JSON.stringify(plan.spec) },
                                { name: ANALYSIS_ENV.timeout, value: String(ANALYSIS_TIMEOUT_SECONDS) },
                            ],
                            volumeMounts: [{ name: "scripts", mountPath: "/scripts", readOnly: true }],
                            // The result line becomes the termination message: `kubectl describe` shows it.
                            terminationMessagePolicy: "FallbackToLogsOnError",
                            resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "200m", memory: "128Mi" } },
                            securityContext: { ...restrictedContainerSecurity, readOnlyRootFilesystem: true },
                        }],
                    },
                },
            },
            // Re-running the same check (`pulumi up --replace`, after a rollback) must delete the
            // finished Job first: a Job's name is its identity, two cannot coexist.
        }, {
            parent: this, dependsOn: args.after, deleteBeforeReplace: true,
            customTimeouts: { create: `${plan.awaitSeconds}s`, update: `${plan.awaitSeconds}s` },
        });
        this.registerOutputs({ job: plan.job });
    }
}
