import { createHash } from "crypto";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { LiveState, NOTHING_LIVE } from "../components/live";

// Runs the real program in-process under Pulumi's mock monitor and records every resource it
// registers, with the options the engine would receive. The render tool and the tests use it.
//
// How options are seen: mocks hand `newResource` only type, name and inputs, so the mock monitor's
// registerResource is wrapped to read the whole RegisterResourceRequest — parent, protect,
// retainOnDelete, dependencies, ignoreChanges, provider — exactly what the engine would be sent.

export const PROJECT = "platform";
export const ROOT = path.resolve(__dirname, "..");

export interface RegisteredResource {
    type: string;
    name: string;
    urn: string;
    custom: boolean;
    inputs: Record<string, any>;
    parent?: string;
    provider?: string;
    protect: boolean;
    retainOnDelete: boolean;
    /** URNs this resource depends on (explicit dependsOn and inputs from other resources). */
    dependencies: string[];
    ignoreChanges: string[];
    deleteBeforeReplace: boolean;
    /** How long the engine waits for the object to become ready ("" = the provider's default). */
    customTimeouts: { create: string; update: string; delete: string };
}

export interface Evaluation {
    stack: string;
    resources: RegisteredResource[];
    outputs: Record<string, any>;
    /** Plain-text values of every generated password (to prove they never leak). */
    generatedSecrets: string[];
}

export type ConfigValues = Record<string, unknown>;

export interface EvaluateOptions {
    /** Evaluate as `pulumi preview` does (pulumi.runtime.isDryRun() is true); default: as `pulumi up`. */
    preview?: boolean;
    /** What the cluster runs now, as the program would read it (components/live.ts); default: nothing (a first deploy). */
    live?: LiveState;
}

/** Reads `Pulumi.<stack>.yaml` into a map of full config keys to values. */
export function readStackFile(stack: string): ConfigValues {
    const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) throw new Error(`No stack file ${file}: create Pulumi.${stack}.yaml or name an existing stack.`);
    const doc = (yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as { config?: ConfigValues };
    return { ...(doc.config ?? {}) };
}

/** Sets a value at a `pulumi config set --path` style path ("platform:apps.api.canary.weight"). */
export function setPath(config: ConfigValues, keyPath: string, value: unknown): ConfigValues {
    const out = structuredClone(config);
    const [ns, rest] = keyPath.includes(":") ? [keyPath.slice(0, keyPath.indexOf(":")), keyPath.slice(keyPath.indexOf(":") + 1)] : ["platform", keyPath];
    const parts = rest.split(".");
    const top = `${ns}:${parts[0]}`;
    if (parts.length === 1) {
        if (value === undefined) delete out[top];
        else out[top] = value;
        return out;
    }
    let node = (out[top] ??= {}) as Record<string, any>;
    for (const p of parts.slice(1, -1)) node = (node[p] ??= {});
    if (value === undefined) delete node[parts[parts.length - 1]];
    else node[parts[parts.length - 1]] = value;
    return out;
}

let monitorPatched = false;
let captured: RegisteredResource[] = [];
const generated: string[] = [];

function patchMonitor(): void {
    if (monitorPatched) return;
    monitorPatched = true;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { deserializeProperties } = require("@pulumi/pulumi/runtime/rpc");
    const original = MockMonitor.prototype.registerResource;
    MockMonitor.prototype.registerResource = function (req: any, callback: (err: any, res: any) => void) {
        original.call(this, req, (err: any, res: any) => {
            if (!err && res) {
                captured.push({
                    type: req.getType(),
                    name: req.getName(),
                    urn: res.getUrn(),
                    custom: req.getCustom(),
                    inputs: unwrapSecrets(deserializeProperties(req.getObject())),
                    parent: req.getParent() || undefined,
                    provider: req.getProvider() || undefined,
                    protect: req.getProtect() === true,
                    retainOnDelete: req.getRetainondelete() === true,
                    dependencies: req.getDependenciesList(),
                    ignoreChanges: req.getIgnorechangesList(),
                    deleteBeforeReplace: req.getDeletebeforereplace(),
                    customTimeouts: {
                        create: req.getCustomtimeouts()?.getCreate() ?? "", update: req.getCustomtimeouts()?.getUpdate() ?? "",
                        delete: req.getCustomtimeouts()?.getDelete() ?? "",
                    },
                });
            }
            callback(err, res);
        });
    };
}

const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

/** Replaces the wire form of secret values by the values themselves. */
function unwrapSecrets(value: any): any {
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value && typeof value === "object") {
        if (value[SIG_KEY] === SECRET_SIG) return unwrapSecrets(value.value);
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

export const MOCK_ACCESS_TOKEN = "ya29.mock-access-token-Q7v";

/**
 * Outputs that cloud resources compute and the program reads (the provider's answer, not an
 * input): a Cloud SQL private IP, Memorystore's endpoint, AUTH string and CA, a service account's
 * email, a pushed image's digest. Derived from the name and inputs, so evaluations are deterministic; generated
 * credentials join `generated` for the leak checks.
 */
function cloudOutputs(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    const hash = (...parts: string[]) => createHash("sha256").update(parts.join("\u0000")).digest("hex");
    const ip = (seed: string) => `10.${[0, 2, 4].map((i) => parseInt(hash(seed).slice(i, i + 2), 16)).join(".")}`;
    switch (type) {
        case "gcp:sql/databaseInstance:DatabaseInstance":
            return { privateIpAddress: ip(name), connectionName: `mock-project:${inputs.region}:${inputs.name ?? name}` };
        case "gcp:redis/instance:Instance": {
            const authString = `auth${hash(name).slice(0, 24)}`;
            generated.push(authString);
            const tls = inputs.transitEncryptionMode === "SERVER_AUTHENTICATION";
            return {
                host: ip(name), port: tls ? 6378 : 6379, authString,
                serverCaCerts: tls ? [{ cert: `-----BEGIN CERTIFICATE-----\nmock-ca-${name}\n-----END CERTIFICATE-----` }] : [],
            };
        }
        case "gcp:serviceaccount/account:Account":
            return {
                email: `${inputs.accountId}@${inputs.project}.iam.gserviceaccount.com`,
                name: `projects/${inputs.project}/serviceAccounts/${inputs.accountId}@${inputs.project}.iam.gserviceaccount.com`,
            };
        case "docker:index/image:Image": {
            const repository = String(inputs.imageName).replace(/:[^/:]+$/, "");
            return { repoDigest: `${repository}@sha256:${hash(String(inputs.imageName), JSON.stringify(inputs.build ?? {}))}` };
        }
        default:
            return {};
    }
}

const mocks: pulumi.runtime.Mocks = {
    newResource(args) {
        const state: Record<string, any> = { ...args.inputs };
        if (args.type === "random:index/randomPassword:RandomPassword") {
            // Deterministic per name, recognisable, and long enough to be unmistakable in a leak check.
            const value = `pw${Buffer.from(args.name).toString("hex")}Z9q${"x".repeat(12)}`.slice(0, args.inputs.length ?? 32);
            generated.push(value);
            state.result = value;
        }
        if (args.type.startsWith("kubernetes:") && state.metadata && !state.metadata.name) {
            state.metadata = { ...state.metadata, name: `${args.name}-mock` };
        }
        Object.assign(state, cloudOutputs(args.type, args.name, args.inputs));
        return { id: `${args.name}-id`, state };
    },
    call(args) {
        // The registry login token of `pulumi up` (gcp.organizations.getClientConfig).
        if (args.token === "gcp:organizations/getClientConfig:getClientConfig") return { ...args.inputs, accessToken: MOCK_ACCESS_TOKEN };
        return args.inputs;
    },
};

/** Config values as the engine hands them to the program: strings, objects as JSON text. */
export function configStrings(config: ConfigValues): Record<string, string> {
    return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

/**
 * Evaluates the program for `stack` with `config` (full keys → values). Resolves once every
 * resource is registered. Throws what the program throws (e.g. a config error).
 */
export async function evaluate(stack: string, config: ConfigValues, options: EvaluateOptions = {}): Promise<Evaluation> {
    patchMonitor();
    captured = [];
    generated.length = 0;
    pulumi.runtime.setAllConfig(configStrings(config), []);
    await pulumi.runtime.setMocks(mocks, PROJECT, stack, options.preview === true);
    // The program module is loaded fresh for every evaluation, as the engine would run it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runProgram } = require("../components/program") as typeof import("../components/program");
    // Under mocks there is no cluster: the live state is the test's.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require("../components/live") as typeof import("../components/live")).setLiveReader(async () => options.live ?? NOTHING_LIVE);
    const env = await runProgram();
    // A preview leaves some outputs unknown (a cloud resource's computed email, say): they read as
    // UNKNOWN_OUTPUT, as the CLI shows "output<string>", instead of never resolving.
    const lifted = pulumi.output(env.outputs) as unknown as { promise(withUnknowns: boolean): Promise<unknown> };
    const outputs = showUnknowns(await lifted.promise(true)) as Record<string, any>;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    await require("@pulumi/pulumi/runtime/settings").waitForRPCs();
    return { stack, resources: [...captured], outputs, generatedSecrets: [...generated] };
}

/** What an output unknown during a preview reads as in `Evaluation.outputs`. */
export const UNKNOWN_OUTPUT = "<unknown until update>";

function showUnknowns(value: unknown): unknown {
    if (value === pulumi.unknown) return UNKNOWN_OUTPUT;
    if (Array.isArray(value)) return value.map(showUnknowns);
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, showUnknowns(v)]));
    return value;
}

/** Resources registered by the last evaluation, also when it failed. */
export function lastRegistered(): RegisteredResource[] {
    return [...captured];
}

/** Evaluates a stack file, with `overrides` applied as `pulumi config set --path` would. */
export async function evaluateStack(stack: string, overrides: Record<string, unknown> = {}, options: EvaluateOptions = {}): Promise<Evaluation> {
    let config = readStackFile(stack);
    for (const [k, v] of Object.entries(overrides)) config = setPath(config, k, v);
    return evaluate(stack, config, options);
}
