import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { Evaluation, evaluateStack, ROOT } from "./evaluate";

// Offline render: what `pulumi preview` would send to the cluster, written as one YAML file per
// Kubernetes object, without the engine or a cluster. Secret values are redacted.

export const REDACTED = "<redacted>";

export interface Manifest {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
    [key: string]: any;
}

// Apply order a person reading the directory expects: namespace and config before workloads.
const KIND_ORDER = [
    "Namespace", "ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim", "NetworkPolicy", "Service",
    "StatefulSet", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job", "CronJob", "Ingress", "HTTPRoute",
];

/** Kubernetes objects of an evaluation, in a deterministic order, secrets redacted. */
export function toManifests(evaluation: Evaluation): Manifest[] {
    const manifests = evaluation.resources
        .filter((r) => r.custom && r.type.startsWith("kubernetes:") && r.inputs.kind)
        .map((r) => normalise(r.inputs));
    return manifests.sort((a, b) => rank(a.kind) - rank(b.kind) || a.kind.localeCompare(b.kind) || a.metadata.name.localeCompare(b.metadata.name));
}

function rank(kind: string): number {
    const i = KIND_ORDER.indexOf(kind);
    return i === -1 ? KIND_ORDER.length : i;
}

/** Drops empty values and redacts Secret data, keeping apiVersion, kind and metadata first. */
export function normalise(object: Record<string, any>): Manifest {
    const { apiVersion, kind, metadata, ...rest } = prune(object);
    const manifest: Manifest = { apiVersion, kind, metadata, ...rest };
    if (kind === "Secret") {
        for (const field of ["data", "stringData"]) {
            if (manifest[field]) manifest[field] = Object.fromEntries(Object.keys(manifest[field]).sort().map((k) => [k, REDACTED]));
        }
    }
    return manifest;
}

function prune(value: any): any {
    if (Array.isArray(value)) return value.map(prune);
    if (value && typeof value === "object") {
        const out: Record<string, any> = {};
        for (const [k, v] of Object.entries(value)) {
            if (v === undefined || v === null) continue;
            out[k] = prune(v);
        }
        return out;
    }
    return value;
}

export function fileName(m: Manifest): string {
    return `${m.kind.toLowerCase()}-${m.metadata.name}.yaml`;
}

/** A short report: objects by kind; per app its strategy, images, replicas and traffic. */
export function summary(evaluation: Evaluation, manifests: Manifest[]): string {
    const lines = [`stack ${evaluation.stack}: ${manifests.length} Kubernetes objects`];
    const byKind = new Map<string, number>();
    for (const m of manifests) byKind.set(m.kind, (byKind.get(m.kind) ?? 0) + 1);
    for (const [kind, n] of [...byKind].sort((a, b) => rank(a[0]) - rank(b[0]))) lines.push(`  ${kind.padEnd(24)} ${n}`);
    const cloud = evaluation.resources.filter((r) => r.custom && !r.type.startsWith("kubernetes:") && !r.type.startsWith("pulumi:") && !r.type.startsWith("random:"));
    if (cloud.length) {
        lines.push(`cloud resources: ${cloud.length}`);
        for (const r of cloud) lines.push(`  ${r.type} ${r.name}${r.protect ? " (protected)" : ""}`);
    }
    lines.push("apps:");
    for (const [name, app] of Object.entries<any>(evaluation.outputs.apps ?? {})) {
        lines.push(`  ${name}: ${app.strategy}`);
        for (const [track, image] of Object.entries(app.images)) lines.push(`    ${track.padEnd(8)} ${image}  replicas: ${app.replicas[track]}`);
        lines.push(`    traffic  ${JSON.stringify(app.traffic)}`);
    }
    return lines.join("\n") + "\n";
}

export function writeRender(evaluation: Evaluation, outDir: string): Manifest[] {
    const manifests = toManifests(evaluation);
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.mkdirSync(outDir, { recursive: true });
    for (const m of manifests) fs.writeFileSync(path.join(outDir, fileName(m)), yaml.dump(m, { noRefs: true, lineWidth: 160 }));
    fs.writeFileSync(path.join(outDir, "summary.txt"), summary(evaluation, manifests));
    return manifests;
}

function parseArgs(argv: string[]): { stack: string; out?: string; set: Record<string, unknown> } {
    const args = { stack: "", out: undefined as string | undefined, set: {} as Record<string, unknown> };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--stack") args.stack = argv[++i];
        else if (a === "--out") args.out = argv[++i];
        else if (a === "--set") {
            // --set apps.api.canary.weight=50: preview a config change without editing the stack file.
            const [k, ...v] = argv[++i].split("=");
            const text = v.join("=");
            args.set[k] = /^-?\d+$/.test(text) ? Number(text) : text;
        } else throw new Error(`Unknown argument ${a}. Usage: npm run render -- --stack <name> [--out <dir>] [--set <path>=<value>]`);
    }
    if (!args.stack) throw new Error("Missing --stack. Usage: npm run render -- --stack <name> [--out <dir>] [--set <path>=<value>]");
    return args;
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2));
    const outDir = path.resolve(args.out ?? path.join(ROOT, "out", "render", args.stack));
    const evaluation = await evaluateStack(args.stack, args.set);
    const manifests = writeRender(evaluation, outDir);
    process.stdout.write(summary(evaluation, manifests));
    process.stdout.write(`wrote ${manifests.length} files to ${path.relative(process.cwd(), outDir) || "."}\n`);
}

if (require.main === module) {
    main().catch((e: Error) => {
        process.stderr.write(`${e.message}\n`);
        process.exit(1);
    });
}
