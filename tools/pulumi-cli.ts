import { spawn } from "child_process";
import { readAnalysisResults } from "../components/live";
import { StateResource } from "./pulumi-output";
import { StackApps } from "./release";

// The Pulumi CLI as the deploy command and the health check use it: every call is `pulumi <args>
// --stack <stack> --non-interactive` in the project directory, and the reads they make of it
// (outputs, tags, config, state, history). Tests replace it with a stack of their own.

const lastLines = (s: string, n: number) => s.trim().split("\n").slice(-n).join(" | ");

export interface CommandResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs the Pulumi CLI; `tee` streams its output as it comes (long updates must show progress). */
export function pulumiCli(o: { stack: string; cwd: string; env: NodeJS.ProcessEnv }) {
    const run = (args: string[], tee = false): Promise<CommandResult> => new Promise((resolve) => {
        const p = spawn("pulumi", [...args, "--stack", o.stack, "--non-interactive"], { cwd: o.cwd, env: o.env });
        let stdout = "", stderr = "";
        p.stdout.on("data", (d) => { stdout += d; if (tee) process.stdout.write(d); });
        p.stderr.on("data", (d) => { stderr += d; if (tee) process.stderr.write(d); });
        p.on("error", (e) => resolve({ code: 127, stdout, stderr: `${stderr}${e.message}` }));
        p.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
    const json = async (args: string[]): Promise<any> => {
        const r = await run(args);
        if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed: ${lastLines(r.stderr + r.stdout, 3)}`);
        return JSON.parse(r.stdout || "null");
    };
    /** An object-valued config key (`pulumi config --json` gives it as objectValue or JSON text). */
    const configObject = async (key: string): Promise<Record<string, unknown>> => {
        const v = ((await json(["config", "--json"])) ?? {})[key];
        return v?.objectValue ?? (v?.value ? JSON.parse(v.value) : {});
    };
    return {
        run,
        outputs: async (): Promise<StackApps> => ((await json(["stack", "output", "--json", "--show-secrets=false"])) ?? {}).apps ?? {},
        tags: async (): Promise<Record<string, string>> => (await json(["stack", "tag", "ls", "--json"])) ?? {},
        appsConfig: () => configObject("platform:apps"),
        resources: async (): Promise<StateResource[]> => ((await json(["stack", "export"]))?.deployment?.resources ?? [])
            .map((r: any) => ({ urn: r.urn, type: r.type, ...(r.parent ? { parent: r.parent } : {}) })),
        /** What the failed analysis Jobs' pods said (pulumi reports only that the Job failed). */
        analysisResults: async (jobs: string[]): Promise<string[]> => {
            const namespace = await json(["stack", "output", "namespace", "--json"]);
            const context = (await configObject("platform:kubernetes")).context as string | undefined;
            return readAnalysisResults({ namespace, jobs, context });
        },
        lastUpdateSucceeded: async (): Promise<boolean> => {
            const h = (await json(["stack", "history", "--json", "--page-size", "1"])) ?? [];
            return h[0]?.result === "succeeded";
        },
    };
}

export type Cli = ReturnType<typeof pulumiCli>;
