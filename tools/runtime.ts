import * as fs from "fs";
import * as path from "path";

// How Pulumi's Node.js runtime loads a TypeScript program, so that the bench and the tests load it
// the same way. The language host starts `node @pulumi/pulumi/cmd/run`, with
// PULUMI_NODEJS_TYPESCRIPT=true (the v3.68 host built by scripts/ensure-pulumi always sets it: the
// v3.259 CLI no longer passes Pulumi.yaml's runtime options to the host as flags, so `typescript`,
// `nodeargs` and `tsconfig` there are ignored). cmd/run/run.js (@pulumi/pulumi 3.270) then registers
// ts-node with the options below. `transpileOnly` is PULUMI_NODEJS_TRANSPILE_ONLY when set, else
// tsconfig's compilerOptions.noCheck, else undefined; ts-node ignores an undefined option, so the
// `"ts-node": { "transpileOnly": true }` section of tsconfig.json decides. `tsc` ignores that section:
// `npm test` still type-checks with the same tsconfig.

export interface TsNodeOptions {
    compiler: string;
    transpileOnly?: boolean;
    project: string;
    skipProject: boolean;
    compilerOptions: Record<string, unknown>;
}

/** The options cmd/run/run.js passes to ts-node's register() for a program in `dir`. */
export function pulumiTsNodeOptions(dir: string, env: NodeJS.ProcessEnv = process.env): TsNodeOptions {
    const tsConfigPath = path.resolve(dir, env.PULUMI_NODEJS_TSCONFIG_PATH ?? "tsconfig.json");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { loadTypeScriptCompilerOptions } = require("@pulumi/pulumi/tsutils");
    const compilerOptions = loadTypeScriptCompilerOptions(tsConfigPath) as Record<string, unknown>;
    const flag = env.PULUMI_NODEJS_TRANSPILE_ONLY;
    const transpileOnly = flag ? flag === "true" : (compilerOptions.noCheck as boolean | undefined);
    return {
        compiler: "typescript",
        ...(transpileOnly === undefined ? {} : { transpileOnly }),
        project: tsConfigPath,
        skipProject: !fs.existsSync(tsConfigPath),
        // commonjs branch of run.js (the project is not an ES module)
        compilerOptions: { target: "ES2020", module: "nodenext", moduleResolution: "nodenext", sourceMap: "true", ...compilerOptions },
    };
}

/**
 * JavaScript for `node -e` that loads a program the way the runtime does: @pulumi/pulumi first
 * (cmd/run requires it), then typescript and ts-node registered with `options`, then `then`.
 * Records milestones in `globalThis.__platformMarks` with `globalThis.__platformMark(name)`:
 * [wall ms since the process started, CPU ms (user + system) the process used so far].
 */
export function runtimeBootstrap(options: TsNodeOptions, then: string): string {
    return [
        `const { performance } = require("perf_hooks");`,
        `const marks = globalThis.__platformMarks = {};`,
        `const mark = globalThis.__platformMark = (name) => { const c = process.cpuUsage(); marks[name] = [performance.now(), (c.user + c.system) / 1000]; };`,
        `mark("nodeReady");`,
        `require("@pulumi/pulumi"); mark("pulumiSdk");`,
        `require("typescript"); require("ts-node").register(${JSON.stringify(options)}); mark("tsNode");`,
        then,
    ].join("\n");
}
