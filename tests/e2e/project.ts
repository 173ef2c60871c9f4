import { spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

// What every real-engine test needs: the engine (scripts/ensure-pulumi), a copy of the project as a
// fresh clone has it, its own file backend, and `pulumi` runs with their wall times.

export const ROOT = path.resolve(__dirname, "..", "..");
// The project to test: this repository, or PLATFORM_E2E_SOURCE (another checkout or copy).
export const SOURCE = path.resolve(process.env.PLATFORM_E2E_SOURCE ?? ROOT);
// The local and cluster stacks' throwaway passphrase (see docs/engine.md): their secrets are not secret.
export const PASSPHRASE = "platform-local-throwaway";

export interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
    seconds: number;
}

export interface RunOptions { allowFail?: boolean; label?: string }

/** Runs a script that prints `export NAME="value"` lines and applies them to a copy of `base`. */
export function exportsOf(script: string, args: string[], base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const r = spawnSync(script, args, { encoding: "utf8", env: base, stdio: ["ignore", "pipe", "inherit"] });
    if (r.status !== 0) throw new Error(`${path.relative(ROOT, script)} ${args.join(" ")} failed (exit ${r.status})`);
    const out: NodeJS.ProcessEnv = { ...base };
    for (const line of r.stdout.split("\n")) {
        const m = /^export ([A-Z_]+)="?(.*?)"?$/.exec(line.trim());
        if (m) out[m[1]] = m[2].replace("$PATH", base.PATH ?? "");
    }
    return out;
}

/** A copy of the project as a fresh clone would have it (tracked and unignored files), sharing node_modules. */
export function copyProject(dest: string): void {
    const git = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: SOURCE, encoding: "utf8" });
    if (git.status !== 0) {
        // not a git checkout: everything but what .gitignore keeps out of a clone
        const skip = new Set(["node_modules", ".git", ".pulumi-state", ".pulumi", "out", "bin", "tmp"]);
        fs.cpSync(SOURCE, dest, { recursive: true, filter: (src) => !skip.has(path.relative(SOURCE, src).split(path.sep)[0]) });
    }
    const files = git.status === 0 ? git.stdout.split("\0").filter((f) => f && fs.existsSync(path.join(SOURCE, f))) : [];
    for (const f of files) {
        fs.mkdirSync(path.dirname(path.join(dest, f)), { recursive: true });
        fs.copyFileSync(path.join(SOURCE, f), path.join(dest, f));
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dest, "node_modules"), "dir");
}

export const tail = (s: string, n = 60) => s.split("\n").slice(-n).join("\n");

/** One stack of a temporary copy of the project, with the real engine and a file backend of its own. */
export class Project {
    readonly work: string;
    readonly env: NodeJS.ProcessEnv;
    readonly timings: Record<string, number> = {};

    constructor(readonly stack: string, extraEnv: NodeJS.ProcessEnv = {}) {
        const t = Date.now();
        this.env = { ...exportsOf(path.join(ROOT, "scripts", "ensure-pulumi"), []), ...extraEnv };
        this.timings["ensure-pulumi"] = (Date.now() - t) / 1000;
        this.work = fs.mkdtempSync(path.join(os.tmpdir(), `platform-e2e-${stack}-`));
        copyProject(this.work);
        fs.mkdirSync(path.join(this.work, ".pulumi-state"));
        this.env.PULUMI_BACKEND_URL = `file://${path.join(this.work, ".pulumi-state")}`;
        this.env.PULUMI_CONFIG_PASSPHRASE = PASSPHRASE;
        delete this.env.PULUMI_CONFIG_PASSPHRASE_FILE;
        this.env.PULUMI_SKIP_UPDATE_CHECK = "true";
        this.env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION = "true";
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
