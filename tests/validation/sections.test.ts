import { strict as assert } from "assert";
import { runInvalid } from "../harness";
import { problemsOf } from "./helpers";

// A strategy's section missing or not an object, as hand edits leave it: one `platform:` line that
// names the key and what it must be, never a TypeError from plan code running on unchecked config
// (the plan's rules run only once every key passed, components/plan/rules.ts).

describe("validation: strategy sections missing or of the wrong type", () => {
    it("`apps.web.strategy canary` on a blue/green app: one line saying what a canary needs", () => {
        assert.deepEqual(problemsOf("local", { "platform:apps.web.strategy": "canary" }), [
            'platform:apps.web.strategy is "canary", but apps.web has blueGreen settings and no canary: give apps.web.canary {stable, canary?, weight} ' +
            'and apps.web.routing (a canary is routed by weight) in place of apps.web.blueGreen, or set strategy back to "blueGreen" (got "canary")',
        ]);
        // With routing already there, the line asks for the canary section alone.
        assert.deepEqual(problemsOf("staging", { "platform:apps.web.strategy": "canary" }), [
            'platform:apps.web.strategy is "canary", but apps.web has blueGreen settings and no canary: give apps.web.canary {stable, canary?, weight} ' +
            'in place of apps.web.blueGreen, or set strategy back to "blueGreen" (got "canary")',
        ]);
    });

    it("a strategy deleted from a blue/green app (so rolling): one line", () => {
        assert.deepEqual(problemsOf("local", { "platform:apps.web.strategy": undefined }), [
            'platform:apps.web.strategy is unset, so "rolling", but apps.web has blueGreen settings and no tag: give apps.web.tag (the version to run) ' +
            'in place of apps.web.blueGreen, or set strategy back to "blueGreen" (got nothing)',
        ]);
    });

    it("a rolling app switched to blueGreen: one line", () => {
        assert.deepEqual(problemsOf("staging", { "platform:apps.worker.strategy": "blueGreen" }), [
            'platform:apps.worker.strategy is "blueGreen", but apps.worker has a tag and no blueGreen: give apps.worker.blueGreen {activeColor, blue, green} ' +
            'in place of apps.worker.tag, or set strategy back to "rolling" (got "blueGreen")',
        ]);
    });

    it("`apps.api.canary` deleted from a canary app: one line", () => {
        assert.deepEqual(problemsOf("local", { "platform:apps.api.canary": undefined }), [
            'platform:apps.api.canary is required with strategy "canary" (an object {stable, canary?, weight, canaryReplicas?})',
        ]);
    });

    it("`apps.web.blueGreen` set to \"5\": one line", () => {
        assert.deepEqual(problemsOf("local", { "platform:apps.web.blueGreen": "5" }), [
            'platform:apps.web.blueGreen must be an object {activeColor, blue, green, idleReplicas?} (got "5")',
        ]);
    });

    it("each of them fails the program before anything is registered, with that line", async () => {
        for (const overrides of [{ "platform:apps.web.strategy": "canary" }, { "platform:apps.api.canary": undefined }, { "platform:apps.web.blueGreen": "5" }]) {
            const { message, registered } = await runInvalid("local", overrides);
            assert.match(message, /^Invalid stack config \(1 problem\):\n {2}- platform:apps\.(web|api)\./);
            assert.equal(registered, 0);
        }
    });
});
