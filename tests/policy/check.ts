import { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { RegisteredResource } from "../../tools/evaluate";
import { PlatformPolicyConfig } from "../../policy/policies";

// Runs the policies offline, on what the program registers under mocks (tools/evaluate.ts), the
// way the engine's analyzer would call them: type, props, urn, name and options of each resource.

export interface Violation {
    resource?: string;
    message: string;
}

function opts(r: RegisteredResource) {
    return {
        protect: r.protect, ignoreChanges: r.ignoreChanges, deleteBeforeReplace: r.deleteBeforeReplace, aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [], parent: r.parent,
    };
}

class NotApplicable extends Error {}

const common = (config: PlatformPolicyConfig) => ({
    stackTags: new Map<string, string>(),
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
        throw new NotApplicable(reason);
    },
});

export function resourceArgs(r: RegisteredResource, config: PlatformPolicyConfig = {}): ResourceValidationArgs {
    return {
        type: r.type, props: r.inputs, urn: r.urn, name: r.name, opts: opts(r), ...common(config),
        isType: () => false, asType: () => undefined,
    } as unknown as ResourceValidationArgs;
}

/** Violations of a resource policy over `resources`, each with the resource's "type name". */
export async function checkResources(policy: ResourceValidationPolicy, resources: RegisteredResource[], config: PlatformPolicyConfig = {}): Promise<Violation[]> {
    const v = policy.validateResource;
    const validators = v === undefined ? [] : Array.isArray(v) ? v : [v];
    const out: Violation[] = [];
    for (const r of resources) {
        for (const validate of validators) {
            try {
                await validate(resourceArgs(r, config), (message) => out.push({ resource: `${r.type} ${r.name}`, message }));
            } catch (e) {
                if (!(e instanceof NotApplicable)) throw e;
            }
        }
    }
    return out;
}

export async function checkStack(policy: StackValidationPolicy, resources: RegisteredResource[], config: PlatformPolicyConfig = {}): Promise<Violation[]> {
    const byUrn = new Map<string, PolicyResource>();
    const policyResources = resources.map((r) => {
        const p = { type: r.type, props: r.inputs, urn: r.urn, name: r.name, opts: opts(r), dependencies: [], propertyDependencies: {}, isType: () => false, asType: () => undefined } as unknown as PolicyResource;
        byUrn.set(r.urn, p);
        return p;
    });
    resources.forEach((r, i) => {
        (policyResources[i] as any).parent = r.parent ? byUrn.get(r.parent) : undefined;
        (policyResources[i] as any).dependencies = r.dependencies.map((d) => byUrn.get(d)).filter((d) => d);
    });
    const out: Violation[] = [];
    const args = { resources: policyResources, ...common(config) } as unknown as StackValidationArgs;
    await policy.validateStack(args, (message, urn) => out.push({ resource: urn, message }));
    return out;
}

/** A copy of `r` with `change` applied to a deep copy of its inputs (and options). */
export function altered(r: RegisteredResource, change: (inputs: any, r: RegisteredResource) => void): RegisteredResource {
    const copy = structuredClone(r);
    change(copy.inputs, copy);
    return copy;
}
