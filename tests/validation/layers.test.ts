import { strict as assert } from "assert";
import * as fs from "fs";
import { builtinModules } from "module";
import * as path from "path";

// Config → validated plan → resources: components/config/ checks each key on its own and must not
// depend on the plan (or on anything that does), so that no plan code ever runs on config that was
// not checked. Read from the source, so that a new import cannot slip in unnoticed.

const CONFIG = path.resolve(__dirname, "..", "..", "components", "config");

/** The module specifiers a TypeScript file imports, re-exports or requires. */
function importsOf(file: string): string[] {
    const text = fs.readFileSync(file, "utf8");
    const found: string[] = [];
    for (const re of [/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm, /^\s*import\s*["']([^"']+)["']/gm, /\b(?:require|import)\s*\(\s*["']([^"']+)["']\s*\)/g]) {
        for (const m of text.matchAll(re)) found.push(m[1]);
    }
    return found;
}

describe("layers: components/config/ stands alone", () => {
    const files = fs.readdirSync(CONFIG).filter((f) => f.endsWith(".ts")).map((f) => path.join(CONFIG, f));

    it("reads the import lines of every file (multi-line imports included)", () => {
        assert.ok(files.length >= 10, `only ${files.length} files in ${CONFIG}`);
        // validate.ts imports from ./check over several lines: the reader must see it.
        assert.ok(importsOf(path.join(CONFIG, "validate.ts")).includes("./check"));
    });

    it("imports only its own modules and Node's built-ins: nothing of components/plan/ or the components", () => {
        const outside = files.flatMap((f) => importsOf(f)
            .filter((m) => !(m.startsWith("./") && !m.slice(2).includes("/")) && !builtinModules.includes(m.replace(/^node:/, "")))
            .map((m) => `${path.basename(f)}: ${m}`));
        assert.deepEqual(outside, []);
    });
});
