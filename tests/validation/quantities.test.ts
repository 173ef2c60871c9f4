import { strict as assert } from "assert";
import { problemsOf, refused } from "./helpers";

// CPU is counted in cores or millicores, memory and storage in bytes: a quantity the API server
// parses but that means nonsense for its resource (1Gi of CPU, 500m bytes of memory) is refused,
// as are requests above limits once defaults are filled in, and absurdly small values.

describe("validation: resource quantities", () => {
    it("refuses binary or decimal suffixes on CPU", () => {
        refused(problemsOf("local", { "platform:apps.api.resources": { limits: { cpu: "1Gi" } } }), "platform:apps.api.resources.limits.cpu", '"1Gi"', "millicores");
        refused(problemsOf("local", { "platform:postgres.resources": { requests: { cpu: "2k" } } }), "platform:postgres.resources.requests.cpu", '"2k"');
    });

    it("refuses millis on memory and storage", () => {
        refused(problemsOf("local", { "platform:apps.api.resources": { requests: { memory: "500m" } } }), "platform:apps.api.resources.requests.memory", '"500m"');
        refused(problemsOf("local", { "platform:redis.storage": "512m" }), "platform:redis.storage", '"512m"');
    });

    it("refuses requests above limits after defaults are applied", () => {
        // Only the request is set: the default memory limit of an app is 256Mi.
        refused(problemsOf("local", { "platform:apps.api.resources": { requests: { memory: "1Gi" } } }),
            "platform:apps.api.resources.requests.memory", "limits.memory (256Mi)", '"1Gi"');
        refused(problemsOf("staging", { "platform:postgres.resources": { requests: { cpu: "2" }, limits: { cpu: "1500m" } } }),
            "platform:postgres.resources.requests.cpu", "limits.cpu (1500m)");
    });

    it("refuses values below a sane floor", () => {
        refused(problemsOf("local", { "platform:apps.api.resources": { requests: { cpu: "1m" } } }), "platform:apps.api.resources.requests.cpu", "10m");
        refused(problemsOf("local", { "platform:apps.api.resources": { requests: { memory: "1Mi" } } }), "platform:apps.api.resources.requests.memory", "16Mi");
    });

    it("refuses storage sizes that are not positive", () => {
        refused(problemsOf("local", { "platform:postgres.storage": "0Gi" }), "platform:postgres.storage", '"0Gi"');
        refused(problemsOf("local", { "platform:redis.storage": "0" }), "platform:redis.storage");
        refused(problemsOf("staging", { "platform:postgres.backup.storage": "0.0Ti" }), "platform:postgres.backup.storage");
    });

    it("accepts what the stacks use and plain numbers of cores and bytes", () => {
        assert.deepEqual(problemsOf("local", { "platform:apps.api.resources": { requests: { cpu: "0.25", memory: "134217728" }, limits: { cpu: "1", memory: "1G" } } }), []);
    });
});
