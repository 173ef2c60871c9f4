import { strict as assert } from "assert";
import { problemsOf, refused } from "./helpers";

// The network keys: which apps an app calls, the address blocks it may reach, where its router's
// traffic comes from. Names must be apps of the stack; blocks must be CIDRs.

describe("validation: network keys", () => {
    it("refuses calls to an app that does not exist, or to itself", () => {
        refused(problemsOf("local", { "platform:apps.web.calls": ["apii"] }), "platform:apps.web.calls[0]", "another app", '"apii"');
        refused(problemsOf("local", { "platform:apps.web.calls": ["web"] }), "platform:apps.web.calls[0]", "itself");
    });

    it("refuses egress blocks and router sources that are not CIDRs or namespaces", () => {
        refused(problemsOf("local", { "platform:apps.worker.egressCidrs": ["example.com"] }), "platform:apps.worker.egressCidrs[0]", "CIDR");
        refused(problemsOf("local", { "platform:apps.worker.egressCidrs": ["10.0.0.0/33"] }), "platform:apps.worker.egressCidrs[0]", "CIDR");
        refused(problemsOf("staging", { "platform:apps.api.routing.from": { namespaces: ["Ingress_Nginx"] } }), "platform:apps.api.routing.from.namespaces[0]", "namespace");
        refused(problemsOf("staging", { "platform:apps.api.routing.from": { cidr: ["35.191.0.0/16"] } }), "platform:apps.api.routing.from.cidr", "not a known key");
    });

    it("accepts declared callers, blocks and router sources", () => {
        assert.deepEqual(problemsOf("staging", {
            "platform:apps.worker.calls": ["api"], "platform:apps.worker.egressCidrs": ["203.0.113.0/24", "2001:db8::/32"],
            "platform:apps.api.routing.from": { namespaces: ["ingress-internal"], cidrs: ["35.191.0.0/16", "130.211.0.0/22"] },
        }), []);
    });
});
