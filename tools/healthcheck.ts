import * as fs from "fs";
import * as path from "path";
import { LiveWorkloads, readWorkloads, WorkloadsQuery } from "../components/live";
import { AppHealthOutputs, backupFindings, DEFAULT_LIMITS, Finding, findingLine, HealthLimits, HealthOutputs, needsCluster, outputsFindings, replicaFinding } from "./health";
import { pulumiCli } from "./pulumi-cli";
import { notify, runUrl } from "./notify";

// npm run healthcheck -- --stack staging --stack production [--attempts 3] [--interval 10] [--timeout 10]
//                        [--backup-max-age-hours 26] [--drill-max-age-days 32]
//                        [--outputs <stack>=<file with `pulumi stack output --json`>] [--context <stack>=<kube context>]
//
// The hourly check of every environment, from its stack outputs and its cluster:
// - each app with a route: a GET of its `healthUrl` (the HTTP check of scripts/analysis/analyze.js:
//   retried, expecting 200); each app without one: every Deployment of its tracks has its replicas ready;
// - each backed-up service: its backup CronJob's last success is younger than 26 h, its restore drill
//   CronJob's younger than 32 d and the drill's last Job did not fail;
// - outputs that name no app fail.
// One line per check; every failure of a stack in one notice. Exit 0 when everything held, 1 when
// anything failed or could not be read, 3 usage. `--outputs` reads a stack's outputs from a file
// instead of the Pulumi CLI; the cluster is reached with the kubeconfig (KUBECONFIG or ~/.kube/config),
// in the stack's `platform:kubernetes.context`, `--context`'s, or the current context.

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { httpCheck } = require("../scripts/analysis/analyze.js") as {
    httpCheck(c: { name: string; url: string; expectStatus: number; attempts: number; intervalSeconds: number }, timeoutSeconds: number):
        Promise<{ passed: boolean; measured: string; detail: string }>;
};

export interface HealthOptions extends HealthLimits {
    stacks: string[];
    outputsFiles: Record<string, string>;
    contexts: Record<string, string>;
    attempts: number;
    intervalSeconds: number;
    timeoutSeconds: number;
    env: NodeJS.ProcessEnv;
    out: (line: string) => void;
    /** How the cluster is read (tests pass recorded objects); components/live.ts by default. */
    readWorkloads?: (q: WorkloadsQuery) => Promise<LiveWorkloads>;
    now?: () => Date;
}

export interface HealthResult extends Finding { stack: string; line: string }

interface StackView {
    outputs: HealthOutputs;
    /** The kube context to read the cluster with (undefined: the kubeconfig's current one); read only when needed. */
    context: () => Promise<string | undefined>;
}

async function stackView(o: HealthOptions, stack: string): Promise<StackView> {
    const file = o.outputsFiles[stack];
    if (file) return { outputs: JSON.parse(fs.readFileSync(file, "utf8")) ?? {}, context: async () => o.contexts[stack] };
    const cli = pulumiCli({ stack, cwd: path.resolve(__dirname, ".."), env: o.env });
    const json = async (args: string[]) => {
        const r = await cli.run(args);
        if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" ")}`);
        return JSON.parse(r.stdout || "null");
    };
    const outputs = (await json(["stack", "output", "--json", "--show-secrets=false"])) ?? {};
    return {
        outputs,
        context: async () => {
            if (o.contexts[stack]) return o.contexts[stack];
            // The context the stack deploys with (as `npm run deploy` reads it).
            const k = ((await json(["config", "--json"])) ?? {})["platform:kubernetes"];
            return (k?.objectValue ?? (k?.value ? JSON.parse(k.value) : {})).context;
        },
    };
}

async function urlFinding(o: HealthOptions, app: string, url: string): Promise<Finding> {
    const r = await httpCheck({ name: app, url, expectStatus: 200, attempts: o.attempts, intervalSeconds: o.intervalSeconds }, o.timeoutSeconds);
    return { subject: app, app, passed: r.passed, measured: `${url} answered ${r.measured} (${r.detail})`, limit: `HTTP 200 within ${o.attempts} attempts` };
}

/** Every check of one stack, in a stable order: outputs, apps by name, backups by service. */
async function checkStack(o: HealthOptions, stack: string, view: StackView): Promise<Finding[]> {
    const { outputs } = view;
    const findings = outputsFindings(outputs);
    let live: LiveWorkloads | undefined;
    if (needsCluster(outputs) && outputs.namespace) {
        try {
            live = await (o.readWorkloads ?? readWorkloads)({ namespace: outputs.namespace, context: await view.context() });
        } catch (e) {
            findings.push({ subject: "cluster", passed: false, measured: (e as Error).message, limit: `the backups and Deployments of namespace ${outputs.namespace} readable` });
        }
    }
    const now = (o.now ?? (() => new Date()))();
    const apps = Object.entries(outputs.apps ?? {}).sort(([x], [y]) => x.localeCompare(y)) as [string, AppHealthOutputs][];
    for (const [app, a] of apps) {
        if (a.healthUrl) findings.push(await urlFinding(o, app, a.healthUrl));
        else if (live) findings.push(replicaFinding(app, a, live));
    }
    if (live) {
        for (const [service, b] of Object.entries(outputs.backups ?? {}).sort(([x], [y]) => x.localeCompare(y))) {
            findings.push(...backupFindings(service, b, live, now, o));
        }
    }
    return findings;
}

export async function healthcheck(o: HealthOptions): Promise<{ code: 0 | 1; results: HealthResult[] }> {
    const results: HealthResult[] = [];
    for (const stack of o.stacks) {
        let findings: Finding[];
        let outputs: HealthOutputs = {};
        try {
            const view = await stackView(o, stack);
            outputs = view.outputs;
            findings = await checkStack(o, stack, view);
        } catch (e) {
            findings = [{ subject: "stack outputs", passed: false, measured: `cannot be read: ${(e as Error).message}`, limit: "readable" }];
        }
        const mine = findings.map((f) => ({ ...f, stack, line: findingLine(stack, f) }));
        for (const r of mine) o.out(r.line);
        results.push(...mine);
        const failed = mine.filter((r) => !r.passed);
        if (failed.length) {
            const apps = [...new Set(failed.map((f) => f.app).filter((a): a is string => !!a))];
            o.out(await notify({
                event: "health-failed", stack, runUrl: runUrl(o.env),
                summary: failed.map((f) => `${f.subject}: ${f.measured} (limit ${f.limit})`).join("; "),
                apps: apps.map((app) => ({ app, versionsBefore: outputs.apps?.[app]?.images, trafficBefore: outputs.apps?.[app]?.traffic })),
            }, o.env.PLATFORM_WEBHOOK_URL));
        }
    }
    return { code: results.every((r) => r.passed) ? 0 : 1, results };
}

const USAGE = "usage: npm run healthcheck -- --stack <stack> [--stack <stack> …] [--attempts n] [--interval s] [--timeout s] " +
    "[--backup-max-age-hours h] [--drill-max-age-days d] [--outputs <stack>=<file>] [--context <stack>=<kube context>]";

export function parseHealthArgs(argv: string[]): Omit<HealthOptions, "env" | "out"> {
    const o = {
        stacks: [] as string[], outputsFiles: {} as Record<string, string>, contexts: {} as Record<string, string>,
        attempts: 3, intervalSeconds: 10, timeoutSeconds: 10, ...DEFAULT_LIMITS,
    };
    const int = (flag: string, v: string | undefined, min = 0) => {
        if (!v || !/^\d+$/.test(v) || Number(v) < min) throw new Error(`${flag} needs a whole number (got ${v ?? "nothing"})${min ? `, at least ${min}` : ""}; ${USAGE}`);
        return Number(v);
    };
    const pair = (flag: string, v: string | undefined, what: string) => {
        const i = (v ?? "").indexOf("=");
        if (i <= 0 || i === v!.length - 1) throw new Error(`${flag} needs <stack>=<${what}> (got ${v ?? "nothing"}); ${USAGE}`);
        return [v!.slice(0, i), v!.slice(i + 1)];
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--stack") o.stacks.push(argv[++i] ?? "");
        else if (a === "--attempts") o.attempts = int(a, argv[++i], 1);
        else if (a === "--interval") o.intervalSeconds = int(a, argv[++i]);
        else if (a === "--timeout") o.timeoutSeconds = int(a, argv[++i], 1);
        else if (a === "--backup-max-age-hours") o.backupMaxAgeHours = int(a, argv[++i], 1);
        else if (a === "--drill-max-age-days") o.drillMaxAgeDays = int(a, argv[++i], 1);
        else if (a === "--outputs") {
            const [stack, file] = pair(a, argv[++i], "file");
            o.outputsFiles[stack] = file;
        } else if (a === "--context") {
            const [stack, context] = pair(a, argv[++i], "context");
            o.contexts[stack] = context;
        } else throw new Error(`unknown argument ${a}; ${USAGE}`);
    }
    if (o.stacks.length === 0 || o.stacks.some((s) => !s)) throw new Error(`--stack is required; ${USAGE}`);
    return o;
}

if (require.main === module) {
    let args: ReturnType<typeof parseHealthArgs>;
    try {
        args = parseHealthArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`healthcheck: ${(e as Error).message}\n`);
        process.exit(3);
    }
    healthcheck({ ...args, env: process.env, out: (l) => process.stdout.write(`${l}\n`) })
        .then((r) => process.exit(r.code), (e) => {
            process.stderr.write(`healthcheck: ${(e as Error).message}\n`);
            process.exit(1);
        });
}
