import { problemsOf, refused } from "./helpers";

// An empty string is a value someone typed (`pulumi config set … ""`), not "unset": it must be
// refused at its key, never silently change behaviour (no route, no canary, apply to a cluster).

describe("validation: empty strings are values", () => {
    it("refuses an empty routing host (it silently dropped the route)", () => {
        refused(problemsOf("staging", { "platform:apps.api.routing.host": "" }), "platform:apps.api.routing.host", "empty");
    });

    it("refuses an empty canary version with a weight (it silently sent nothing to the canary)", () => {
        refused(problemsOf("local", { "platform:apps.api.canary.canary": "" }), "platform:apps.api.canary.canary", "empty");
    });

    it("refuses an empty render directory (it silently applied to the current cluster)", () => {
        refused(problemsOf("local", { "platform:kubernetes.renderYamlToDirectory": "" }), "platform:kubernetes.renderYamlToDirectory", "empty");
    });

    it("refuses an empty storage class and an empty optional setting", () => {
        refused(problemsOf("staging", { "platform:postgres.storageClass": "" }), "platform:postgres.storageClass", "empty");
        refused(problemsOf("local", { "platform:kubernetes.context": "" }), "platform:kubernetes.context", "empty");
    });
});
