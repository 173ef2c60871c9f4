import { spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { engineWorkspace, ensurePulumi, exportsOf, ROOT } from "../../tools/engine";

// A stack of a throwaway copy of the project (tools/engine.ts) with `pulumi` runs that record their
// wall times, synchronous or not (a test may watch the API server while `pulumi up` runs).

// The project to test: this repository, or PLATFORM_E2E_SOURCE (another checkout or copy).
export const SOURCE = path.resolve(process.env.PLATFORM_E2E_SOURCE ?? ROOT);
export { exportsOf, ROOT };

export interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
    seconds: number;
}

export interface RunOptions { allowFail?: boolean; label?: string }

export const tail = (s: string, n = 60) => s.split("\n").slice(-n).join("\n");

/** One stack of a temporary copy of the project, with the real engine and a file backend of its own. */
export class Project {
    readonly work: string;
    readonly env: NodeJS.ProcessEnv;
    readonly timings: Record<string, number> = {};

    constructor(readonly stack: string, extraEnv: NodeJS.ProcessEnv = {}) {
        const t = Date.now();
        const { work, env } = engineWorkspace(SOURCE, `platform-e2e-${stack}-`, ensurePulumi());
        this.timings["ensure-pulumi"] = (Date.now() - t) / 1000;
        this.work = work;
        this.env = { ...env, ...extraEnv };
        this.run("pulumi", ["stack", "select", "--create", stack, "--non-interactive"]);
    }

    run(cmd: string, args: string[], opts: RunOptions = {}): Run {
        const t = Date.now();
        const r: SpawnSyncReturns<string> = spawnSync(cmd, args, { cwd: this.work, env: this.env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
        return this.finish(cmd, args, opts, { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", seconds: (Date.now() - t) / 1000 });
    }

    /** As `run`, without blocking the event loop (so a test can watch the API server meanwhile). */
    runAsync(cmd: string, args: string[], opts: RunOptions = {}): Promise<Run> {
        const t = Date.now();
        return new Promise((resolve, reject) => {
            const child = spawn(cmd, args, { cwd: this.work, env: this.env });
            let stdout = "", stderr = "";
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("error", reject);
            child.on("close", (status) => {
                try {
                    resolve(this.finish(cmd, args, opts, { status, stdout, stderr, seconds: (Date.now() - t) / 1000 }));
                } catch (e) {
                    reject(e);
                }
            });
        });
    }

    pulumi(args: string[], opts: RunOptions = {}): Run {
        return this.run("pulumi", [...args, "--stack", this.stack, "--non-interactive"], opts);
    }

    pulumiAsync(args: string[], opts: RunOptions = {}): Promise<Run> {
        return this.runAsync("pulumi", [...args, "--stack", this.stack, "--non-interactive"], opts);
    }

    dispose(): void {
        process.stdout.write(`      wall times (s): ${JSON.stringify(this.timings)}\n`);
        if (!process.env.PLATFORM_E2E_KEEP) fs.rmSync(this.work, { recursive: true, force: true });
        else process.stdout.write(`      kept ${this.work}\n`);
    }

    private finish(cmd: string, args: string[], opts: RunOptions, result: Run): Run {
        if (opts.label) this.timings[opts.label] = result.seconds;
        if (!opts.allowFail && result.status !== 0) {
            throw new Error(`${cmd} ${args.join(" ")} exited ${result.status}\n--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`);
        }
        return result;
    }
}
