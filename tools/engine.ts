import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

// The real Pulumi engine on a throwaway copy of the project: shared by the end-to-end tests
// (tests/e2e) and the bench (tools/bench.ts). Nothing here touches the developer's .pulumi-state
// or out/: the copy has its own file backend.

export const ROOT = path.resolve(__dirname, "..");
/** The local stack's documented throwaway passphrase (docs/engine.md): its secrets are not secret. */
export const LOCAL_PASSPHRASE = "platform-local-throwaway";

/** True when scripts/ensure-pulumi has everything cached (no build would start). */
export function engineBuilt(): boolean {
    return spawnSync(path.join(ROOT, "scripts", "ensure-pulumi"), ["--check"], { stdio: "ignore" }).status === 0;
}

/**
 * Runs a script that prints `export NAME="value"` lines (scripts/ensure-pulumi, ensure-cluster,
 * ensure-node) and applies them to a copy of `base`.
 */
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

/** The environment scripts/ensure-pulumi prints (the engine on PATH), applied to a copy of ours. */
export function ensurePulumi(): NodeJS.ProcessEnv {
    return exportsOf(path.join(ROOT, "scripts", "ensure-pulumi"), []);
}

/** A copy of `source` as a fresh clone would have it (tracked and unignored files), sharing our node_modules. */
export function copyProject(source: string, dest: string): void {
    const git = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: source, encoding: "utf8" });
    if (git.status !== 0) {
        // not a git checkout: everything but what .gitignore keeps out of a clone
        const skip = new Set(["node_modules", ".git", ".pulumi-state", ".pulumi", "out", "bin", "tmp"]);
        fs.cpSync(source, dest, { recursive: true, filter: (src) => !skip.has(path.relative(source, src).split(path.sep)[0]) });
    }
    const files = git.status === 0 ? git.stdout.split("\0").filter((f) => f && fs.existsSync(path.join(source, f))) : [];
    for (const f of files) {
        fs.mkdirSync(path.dirname(path.join(dest, f)), { recursive: true });
        fs.copyFileSync(path.join(source, f), path.join(dest, f));
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dest, "node_modules"), "dir");
}

/**
 * A temporary copy of the project with its own file backend and the local passphrase, and the
 * environment to run `pulumi` in it (from `ensurePulumi()`).
 */
export function engineWorkspace(source: string, prefix: string, pulumiEnv: NodeJS.ProcessEnv): { work: string; env: NodeJS.ProcessEnv } {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    copyProject(source, work);
    fs.mkdirSync(path.join(work, ".pulumi-state"));
    const env: NodeJS.ProcessEnv = {
        ...pulumiEnv,
        PULUMI_BACKEND_URL: `file://${path.join(work, ".pulumi-state")}`,
        PULUMI_CONFIG_PASSPHRASE: LOCAL_PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    };
    delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
    return { work, env };
}
