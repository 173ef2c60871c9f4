// ts-node's transpiler for every run that does not type-check (`pulumi preview`/`up`, npm test's
// mocha, the tools): sucrase, pure JavaScript. It only strips types and turns imports into
// CommonJS, keeping every line where it was, so stack traces point at the TypeScript lines. It
// transpiles this project's files about 4× faster than TypeScript's own transpiler (0.22 s instead
// of 1.0 s on this machine, paid by every run of the program; docs/engine.md). Type-checking stays
// with `tsc --noEmit -p .` in npm test and CI. Plain JavaScript, since ts-node requires it before it
// can compile anything.
"use strict";
const { transform } = require("sucrase");

/** ts-node's TranspilerModule interface (ts-node/dist/transpilers/types.d.ts). */
exports.create = function create() {
    return {
        transpile(input, { fileName }) {
            const out = transform(input, {
                transforms: ["typescript", "imports"],
                filePath: fileName,
                // tsconfig targets ES2022 and Node.js 20 runs it: class fields, `?.` and `??` stay as written.
                disableESTransforms: true,
                sourceMapOptions: { compiledFilename: fileName },
            });
            return { outputText: out.code, sourceMapText: JSON.stringify(out.sourceMap) };
        },
    };
};
