import * as fs from "fs";
import * as path from "path";
import { pulumiCli } from "./pulumi-cli";
import { notify, runUrl } from "./notify";
import { StackApps } from "./release";

// npm run healthcheck -- --stack staging --stack production [--attempts 3] [--interval 10]
//                        [--outputs <stack>=<file with `pulumi stack output --json`>]
//
// The hourly check of every environment: GETs each app's `healthUrl` from the stack outputs (the
// HTTP check of scripts/analysis/analyze.js: retried, expecting 200), prints one line per app and
// announces every failure in one notice per stack. Exit 0 when every app answered, 1 otherwise,
// 3 usage. `--outputs` reads a stack's outputs from a file instead of the Pulumi CLI.

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { httpCheck } = require("../scripts/analysis/analyze.js") as {
    httpCheck(c: { name: string; url: string; expectStatus: number; attempts: number; intervalSeconds: number }, timeoutSeconds: number):
        Promise<{ passed: boolean; measured: string; detail: string }>;
};

export interface HealthOptions {
    stacks: string[];
    outputsFiles: Record<string, string>;
    attempts: number;
    intervalSeconds: number;
    timeoutSeconds: number;
    env: NodeJS.ProcessEnv;
    out: (line: string) => void;
}

export interface HealthResult { stack: string; app: string; url?: string; passed: boolean; line: string }

async function outputsOf(o: HealthOptions, stack: string): Promise<StackApps> {
    const file = o.outputsFiles[stack];
    if (file) return (JSON.parse(fs.readFileSync(file, "utf8")).apps ?? {}) as StackApps;
    return pulumiCli({ stack, cwd: path.resolve(__dirname, ".."), env: o.env }).outputs();
}

export async function healthcheck(o: HealthOptions): Promise<{ code: 0 | 1; results: HealthResult[] }> {
    const results: HealthResult[] = [];
    for (const stack of o.stacks) {
        let apps: StackApps;
        try {
            apps = await outputsOf(o, stack);
        } catch (e) {
            const line = `${stack}: cannot read the stack outputs: ${(e as Error).message}`;
            results.push({ stack, app: "*", passed: false, line });
            o.out(line);
            o.out(await notify({ event: "health-failed", stack, summary: line, runUrl: runUrl(o.env) }, o.env.PLATFORM_WEBHOOK_URL));
            continue;
        }
        const failed: HealthResult[] = [];
        for (const [app, a] of Object.entries(apps).sort(([x], [y]) => x.localeCompare(y))) {
            const url = (a as { healthUrl?: string }).healthUrl;
            if (!url) {
                const line = `${stack} ${app}: no public URL (no route): not checked`;
                results.push({ stack, app, passed: true, line });
                o.out(line);
                continue;
            }
            const r = await httpCheck({ name: app, url, expectStatus: 200, attempts: o.attempts, intervalSeconds: o.intervalSeconds }, o.timeoutSeconds);
            const line = `${stack} ${app}: ${r.passed ? "healthy" : "UNHEALTHY"}: ${url} answered ${r.measured} (${r.detail})`;
            const result = { stack, app, url, passed: r.passed, line };
            results.push(result);
            if (!r.passed) failed.push(result);
            o.out(line);
        }
        if (failed.length) {
            o.out(await notify({
                event: "health-failed", stack, runUrl: runUrl(o.env),
                summary: failed.map((f) => `${f.app} ${f.url} answered ${f.line.replace(/^.* answered /, "")}`).join("; "),
                apps: failed.map((f) => ({ app: f.app, versionsBefore: apps[f.app].images, trafficBefore: apps[f.app].traffic })),
            }, o.env.PLATFORM_WEBHOOK_URL));
        }
    }
    return { code: results.every((r) => r.passed) ? 0 : 1, results };
}

export function parseHealthArgs(argv: string[]): Omit<HealthOptions, "env" | "out"> {
    const o = { stacks: [] as string[], outputsFiles: {} as Record<string, string>, attempts: 3, intervalSeconds: 10, timeoutSeconds: 10 };
    const usage = "usage: npm run healthcheck -- --stack <stack> [--stack <stack> …] [--attempts n] [--interval s] [--outputs <stack>=<file>]";
    const int = (flag: string, v: string | undefined) => {
        if (!v || !/^\d+$/.test(v)) throw new Error(`${flag} needs a whole number (got ${v ?? "nothing"}); ${usage}`);
        return Number(v);
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--stack") o.stacks.push(argv[++i] ?? "");
        else if (a === "--attempts") o.attempts = Math.max(1, int(a, argv[++i]));
        else if (a === "--interval") o.intervalSeconds = int(a, argv[++i]);
        else if (a === "--timeout") o.timeoutSeconds = Math.max(1, int(a, argv[++i]));
        else if (a === "--outputs") {
            const [stack, file] = (argv[++i] ?? "").split("=");
            if (!stack || !file) throw new Error(`--outputs needs <stack>=<file>; ${usage}`);
            o.outputsFiles[stack] = file;
        } else throw new Error(`unknown argument ${a}; ${usage}`);
    }
    if (o.stacks.length === 0 || o.stacks.some((s) => !s)) throw new Error(`--stack is required; ${usage}`);
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
