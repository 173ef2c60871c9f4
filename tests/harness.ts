import { evaluate, Evaluation, EvaluateOptions, evaluateStack, lastRegistered, readStackFile, RegisteredResource, setPath } from "../tools/evaluate";
import { Manifest, toManifests } from "../tools/render";

// Test harness: evaluates the real program for a stack file plus in-test overrides and answers
// questions about what it registered. See tools/evaluate.ts for how options are recorded.

export { evaluate, evaluateStack, readStackFile, setPath };
export type { Evaluation, RegisteredResource };

export const STACKS = ["local", "cluster", "node", "staging", "production"] as const;

/** The VPC of the managed data services in the tests' production overrides. */
export const NETWORK = "projects/acme-production/global/networks/main";
/** Overrides that put production's Postgres on Cloud SQL and Redis on Memorystore. */
export const MANAGED = {
    "platform:postgres.mode": "cloudsql",
    "platform:postgres.cloudsql": { tier: "db-custom-2-7680", network: NETWORK },
    "platform:redis.mode": "memorystore",
    "platform:redis.memorystore": { memorySizeGb: 2, network: NETWORK },
};

export class Result {
    readonly manifests: Manifest[];
    private readonly byUrn: Map<string, RegisteredResource>;

    constructor(readonly evaluation: Evaluation) {
        this.manifests = toManifests(evaluation);
        this.byUrn = new Map(evaluation.resources.map((r) => [r.urn, r]));
    }

    get resources(): RegisteredResource[] {
        return this.evaluation.resources;
    }

    get outputs(): Record<string, any> {
        return this.evaluation.outputs;
    }

    /** The Kubernetes object of `kind` named `name` (its metadata.name). */
    object(kind: string, name: string): Manifest {
        const m = this.manifests.find((x) => x.kind === kind && x.metadata.name === name);
        if (!m) throw new Error(`no ${kind} ${name}; have: ${this.manifests.filter((x) => x.kind === kind).map((x) => x.metadata.name).join(", ")}`);
        return m;
    }

    has(kind: string, name: string): boolean {
        return this.manifests.some((x) => x.kind === kind && x.metadata.name === name);
    }

    ofKind(kind: string): Manifest[] {
        return this.manifests.filter((m) => m.kind === kind);
    }

    /** The registered resource behind a Kubernetes object. */
    resource(kind: string, name: string): RegisteredResource {
        const r = this.resources.find((x) => x.inputs?.kind === kind && x.inputs?.metadata?.name === name);
        if (!r) throw new Error(`no registered ${kind} ${name}`);
        return r;
    }

    /** "Kind/name" of everything a Kubernetes object depends on (components expanded to nothing). */
    dependsOn(kind: string, name: string): string[] {
        return this.resource(kind, name).dependencies
            .map((urn) => this.byUrn.get(urn))
            .filter((r): r is RegisteredResource => !!r && !!r.inputs?.kind)
            .map((r) => `${r.inputs.kind}/${r.inputs.metadata.name}`)
            .sort();
    }
}

export async function run(stack: string, overrides: Record<string, unknown> = {}, options: EvaluateOptions = {}): Promise<Result> {
    return new Result(await evaluateStack(stack, overrides, options));
}

/** Runs a config that must fail; returns the error message and what was registered meanwhile. */
export async function runInvalid(stack: string, overrides: Record<string, unknown>): Promise<{ message: string; registered: number }> {
    try {
        await evaluateStack(stack, overrides);
    } catch (e) {
        return { message: (e as Error).message, registered: lastRegistered().length };
    }
    throw new Error(`expected the config to be rejected: ${JSON.stringify(overrides)}`);
}

export interface Change {
    kind: string;
    name: string;
    op: "create" | "update" | "delete";
    /** Whether a changed input forces a replacement (a selector or the object's name). */
    replace: boolean;
}

/**
 * What `pulumi preview` would do going from `before` to `after`, by comparing the inputs of
 * resources with the same identity (type and logical name), as the engine does.
 */
/** An analysis Job (`<app>-analysis-<hash>`): every traffic state of a verified app runs its own (plan/analysis.ts). */
export const isAnalysisJob = (c: { kind: string; name: string }) => c.kind === "Job" && /-analysis-[0-9a-f]{8}$/.test(c.name);
/** The changes an operator action makes to the app's objects, its analysis Jobs aside. */
export const exceptAnalysis = (changes: Change[]) => changes.filter((c) => !isAnalysisJob(c));
/** The analysis of the new traffic state: its Job created, the previous state's deleted. */
export const analysisChanges = (changes: Change[]) => describe_(changes.filter(isAnalysisJob)).map((c) => c.replace(/-[0-9a-f]{8}$/, "-<hash>")).sort();

export function diff(before: Result, after: Result): Change[] {
    const key = (r: RegisteredResource) => `${r.type}::${r.name}`;
    const old = new Map(before.resources.filter((r) => r.custom).map((r) => [key(r), r]));
    const now = new Map(after.resources.filter((r) => r.custom).map((r) => [key(r), r]));
    const label = (r: RegisteredResource) => ({ kind: r.inputs?.kind ?? r.type, name: r.inputs?.metadata?.name ?? r.name });
    const changes: Change[] = [];
    for (const [k, r] of now) {
        const o = old.get(k);
        if (!o) changes.push({ ...label(r), op: "create", replace: false });
        else if (JSON.stringify(sorted(o.inputs)) !== JSON.stringify(sorted(r.inputs))) {
            changes.push({ ...label(r), op: "update", replace: replaces(o.inputs, r.inputs) });
        }
    }
    for (const [k, o] of old) if (!now.has(k)) changes.push({ ...label(o), op: "delete", replace: false });
    return changes.sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
}

/** Immutable fields whose change makes Kubernetes (and so Pulumi) replace the object. */
function replaces(a: any, b: any): boolean {
    const same = (x: unknown, y: unknown) => JSON.stringify(sorted(x)) === JSON.stringify(sorted(y));
    if (a?.metadata?.name !== b?.metadata?.name || a?.metadata?.namespace !== b?.metadata?.namespace) return true;
    if (["Deployment", "StatefulSet"].includes(a?.kind) && !same(a.spec?.selector, b.spec?.selector)) return true;
    if (a?.kind === "StatefulSet" && !same(a.spec?.volumeClaimTemplates, b.spec?.volumeClaimTemplates)) return true;
    if (a?.kind === "Job" && !same(a.spec, b.spec)) return true;
    if (a?.kind === "Service" && a.spec?.clusterIP !== b.spec?.clusterIP) return true;
    return false;
}

function sorted(v: any): any {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
    return v;
}

export const describe_ = (changes: Change[]) => changes.map((c) => `${c.op} ${c.kind}/${c.name}${c.replace ? " (replace)" : ""}`);
