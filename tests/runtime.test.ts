import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { pulumiTsNodeOptions, runtimeBootstrap } from "../tools/runtime";

// Type-checking happens in `npm test` and CI, never in `pulumi preview`/`pulumi up`: the same
// tsconfig.json makes `tsc` fail on a type error and makes the Pulumi runtime load the program
// without checking it. (tests/e2e/engine.e2e.ts shows the same with the real engine.)

const ROOT = path.resolve(__dirname, "..");
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const TYPE_ERROR = `const replicas: number = "three";\nconsole.log("program ran with", replicas);\n`;
const WELL_TYPED = `const replicas: number = 3;\nconsole.log("program ran with", replicas);\n`;

/** A project with the repository's tsconfig.json (and the transpiler it names), package.json and `index` as index.ts. */
function project(index: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-runtime-"));
    fs.copyFileSync(path.join(ROOT, "tsconfig.json"), path.join(dir, "tsconfig.json"));
    fs.mkdirSync(path.join(dir, "tools"));
    fs.copyFileSync(path.join(ROOT, "tools", "sucrase-transpiler.js"), path.join(dir, "tools", "sucrase-transpiler.js"));
    fs.copyFileSync(path.join(ROOT, "package.json"), path.join(dir, "package.json"));
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    fs.writeFileSync(path.join(dir, "index.ts"), index);
    return dir;
}

/** The type-check `npm test` runs first (the part of scripts.test before `&&`). */
function npmTestTypeCheck(dir: string) {
    const command = String(PACKAGE.scripts.test).split("&&")[0].trim();
    assert.match(command, /^tsc /, `npm test no longer starts with a tsc type-check: ${PACKAGE.scripts.test}`);
    const [, ...args] = command.split(/\s+/);
    return spawnSync(path.join(ROOT, "node_modules", ".bin", "tsc"), args, { cwd: dir, encoding: "utf8" });
}

/** Loads index.ts in a fresh node as Pulumi's runtime does (tools/runtime.ts), with `env` added. */
function runAsPulumi(dir: string, env: NodeJS.ProcessEnv = {}) {
    const full = { ...process.env, ...env };
    delete full.TS_NODE_TRANSPILE_ONLY;
    const code = runtimeBootstrap(pulumiTsNodeOptions(dir, full), `require(${JSON.stringify(path.join(dir, "index.ts"))});`);
    return spawnSync(process.execPath, ["-e", code], { cwd: dir, env: full, encoding: "utf8" });
}

describe("type-checking: in npm test and CI, never at deploy time", function () {
    this.timeout(120_000);
    const dirs: string[] = [];
    const make = (index: string) => {
        const d = project(index);
        dirs.push(d);
        return d;
    };
    after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

    it("npm test's type-check fails on a type error with the project's tsconfig.json (and passes without it)", () => {
        const bad = npmTestTypeCheck(make(TYPE_ERROR));
        assert.notEqual(bad.status, 0, "tsc accepted a string assigned to a number");
        assert.match(bad.stdout, /index\.ts\(1,7\): error TS2322: Type 'string' is not assignable to type 'number'/);
        const good = npmTestTypeCheck(make(WELL_TYPED));
        assert.equal(good.status, 0, good.stdout + good.stderr);
    });

    it("the Pulumi runtime loads the same program without type-checking it", () => {
        const r = runAsPulumi(make(TYPE_ERROR));
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /program ran with three/);
    });

    it("the runtime transpiles with sucrase (tools/sucrase-transpiler.js), and an error names the line of index.ts it was thrown on", () => {
        const index = [
            `const service = (process as any)[Symbol.for("ts-node.register.instance")];`,
            `console.log("transpiler:", JSON.stringify(service.options.transpiler));`,
            `interface Spec { replicas: number }`,
            `const spec: Spec = { replicas: 3 };`,
            `if (spec.replicas > 2) throw new Error("thrown on line 5");`,
        ].join("\n");
        const r = runAsPulumi(make(index));
        assert.notEqual(r.status, 0);
        assert.match(r.stdout, /transpiler: "\.\/tools\/sucrase-transpiler\.js"/);
        assert.match(r.stderr, /thrown on line 5\n\s+at Object\.<anonymous> \(.*index\.ts:5:\d+\)/);
    });

    it("the runtime reads tsconfig.json's ts-node section, not the environment's defaults", () => {
        // Without the section (what tsconfig.json had before) the runtime type-checks and fails:
        // this is what the test above would see if the section were lost.
        const dir = make(TYPE_ERROR);
        const tsconfig = fs.readFileSync(path.join(dir, "tsconfig.json"), "utf8");
        const without = tsconfig.replace(/"ts-node":\s*\{[^}]*\},?/, "");
        assert.notEqual(without, tsconfig, "tsconfig.json has no ts-node section");
        fs.writeFileSync(path.join(dir, "tsconfig.json"), without);
        const r = runAsPulumi(dir);
        assert.notEqual(r.status, 0, "the runtime accepted a type error without the ts-node section");
        assert.match(r.stderr, /TS2322/);
    });
});
