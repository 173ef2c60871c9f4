import { strict as assert } from "assert";
import { run } from "../harness";
import { problemsOf, refused } from "./helpers";

// Tags registries move (main, stable, edge, …) make a deploy unrepeatable and a rollback
// meaningless: refused unless the app opts in, and then visible on its pods for the policy pack.

describe("validation: tags known to move", () => {
    for (const [key, tag] of [["platform:apps.worker.tag", "main"], ["platform:apps.api.canary.canary", "edge"], ["platform:apps.web.blueGreen.green", "Stable"], ["platform:apps.worker.tag", "dev"]]) {
        it(`refuses ${key} = ${tag}`, () => {
            refused(problemsOf("local", { [key]: tag }), key, "registries move", "allowMutableTags");
        });
    }

    it("accepts a moving tag with apps.<app>.allowMutableTags: true, and marks the pods", async () => {
        const overrides = { "platform:apps.worker.tag": "main", "platform:apps.worker.allowMutableTags": true };
        assert.deepEqual(problemsOf("local", overrides), []);
        const r = await run("local", overrides);
        assert.equal(r.object("Deployment", "worker").spec.template.metadata.annotations?.["platform.dev/mutable-tag"], "allowed");
        assert.equal(r.object("Deployment", "api-stable").spec.template.metadata.annotations?.["platform.dev/mutable-tag"], undefined);
    });

    it("refuses a non-boolean opt-in", () => {
        refused(problemsOf("local", { "platform:apps.worker.allowMutableTags": "yes" }), "platform:apps.worker.allowMutableTags", "true or false");
    });
});
