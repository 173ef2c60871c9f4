import { strict as assert } from "assert";
import { validateStackConfig } from "../components/plan/rules";
import { readStackFile } from "../tools/evaluate";
import { evaluateInFreshProcess, generatedApps } from "../tools/fresh";

// A stack loads only the SDKs it uses: @pulumi/gcp (about a second to load) only with
// platform:gcp.enabled, @pulumi/docker only when the stack builds an image. Each evaluation runs in
// a fresh process loaded as Pulumi's runtime loads the program (tools/runtime.ts), since in this
// process every SDK is already loaded by other tests.

describe("fresh-process evaluation loads only the SDKs the stack uses", function () {
    this.timeout(180_000);

    it("the local stack (no gcp.enabled) loads neither @pulumi/gcp nor @pulumi/docker", () => {
        const r = evaluateInFreshProcess({ stack: "local" });
        assert.ok(r.resources > 30, `only ${r.resources} resources registered`);
        assert.deepEqual(r.sdks, ["@pulumi/kubernetes", "@pulumi/pulumi", "@pulumi/random"]);
    });

    it("production (gcp.enabled, no image builds) loads @pulumi/gcp but not @pulumi/docker", () => {
        const r = evaluateInFreshProcess({ stack: "production" });
        assert.ok(r.sdks.includes("@pulumi/gcp"), r.sdks.join(", "));
        assert.ok(!r.sdks.includes("@pulumi/docker"), r.sdks.join(", "));
    });
});

describe("the bench's generated stacks", () => {
    for (const stack of ["staging", "production"]) {
        it(`${stack} with 1, 10 and 50 generated apps is a valid config (npm run bench evaluates them)`, () => {
            for (const n of [1, 10, 50]) {
                const config = validateStackConfig(generatedApps(readStackFile(stack), n), stack);
                assert.equal(config.apps.length, n);
            }
        });
    }
});

