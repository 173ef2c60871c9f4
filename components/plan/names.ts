import { createHash } from "crypto";

// Names and labels are derived here and nowhere else, so that identities stay stable: a name or a
// selector never contains a value an operator changes in a rollout (image tag, weight, colour choice).

export const PART_OF = "platform";
export const LABEL_TRACK = "platform.dev/track";
export const LABEL_TIER = "platform.dev/tier";
export const LABEL_ENVIRONMENT = "platform.dev/environment";
export const usesLabel = (service: string) => `platform.dev/uses-${service}`;

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A short, stable hash for names of immutable objects (Jobs) that are keyed by their content. */
export function shortHash(...parts: string[]): string {
    return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 8);
}

/** Image reference from a repository and a tag or digest. */
export function imageRef(repository: string, version: string): string {
    return version.startsWith("sha256:") ? `${repository}@${version}` : `${repository}:${version}`;
}

/** A version as a label value (labels allow no ':' and at most 63 characters). */
export function versionLabel(version: string): string {
    return version.startsWith("sha256:") ? `sha256-${version.slice(7, 19)}` : version.slice(0, 63);
}

/** Labels every object of the environment carries. */
export function commonLabels(stack: string): Record<string, string> {
    return {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        [LABEL_ENVIRONMENT]: labelValue(stack),
    };
}

/** The selector of one workload track: fixed for the life of the Deployment. */
export function selectorLabels(workload: string, stack: string, track?: string): Record<string, string> {
    const labels: Record<string, string> = {
        "app.kubernetes.io/name": workload,
        "app.kubernetes.io/instance": labelValue(`${stack}-${workload}`),
    };
    if (track) labels[LABEL_TRACK] = track;
    return labels;
}

function labelValue(text: string): string {
    const cleaned = text.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 63);
    return cleaned.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
}
