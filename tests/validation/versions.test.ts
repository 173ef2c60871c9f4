import { strict as assert } from "assert";
import { problemsOf, refused } from "./helpers";

// Versions become the app.kubernetes.io/version label of pods and Jobs: a label value is at most 63
// characters, starts and ends with a letter or digit. A tag Docker accepts but a label cannot hold
// is refused at the key, not by the API server halfway through an update.

describe("validation: versions are valid label values", () => {
    it("refuses a tag that starts with '_' (valid for Docker, not for a label)", () => {
        refused(problemsOf("local", { "platform:apps.worker.tag": "_build7" }), "platform:apps.worker.tag", "label", '"_build7"');
    });

    it("refuses a tag longer than 63 characters", () => {
        const tag = `2.7.0-${"a".repeat(60)}`;
        refused(problemsOf("local", { "platform:apps.worker.tag": tag }), "platform:apps.worker.tag", "63");
    });

    it("refuses a canary or colour version that ends with '.' or '-'", () => {
        refused(problemsOf("local", { "platform:apps.api.canary.canary": "2.8." }), "platform:apps.api.canary.canary", "label");
        refused(problemsOf("local", { "platform:apps.web.blueGreen.green": "1.5.0-" }), "platform:apps.web.blueGreen.green", "label");
    });

    it("accepts a 63-character tag and a digest", () => {
        assert.deepEqual(problemsOf("local", { "platform:apps.worker.tag": `v${"1".repeat(62)}` }), []);
        assert.deepEqual(problemsOf("local", { "platform:apps.worker.tag": `sha256:${"ab".repeat(32)}` }), []);
    });
});
