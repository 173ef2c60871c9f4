import { strict as assert } from "assert";
import { problemsOf, refused } from "./helpers";

// Hosts and paths as the API server and ingress controllers check them (Ingress host: a DNS name,
// not an IP; Ingress path and Gateway API PathPrefix rules), and one claim per host and path.

const nginx = (host: string, path?: string) => ({ kind: "nginx", host, ...(path ? { path } : {}) });

describe("validation: routing", () => {
    it("refuses two apps claiming the same host and path", () => {
        refused(problemsOf("staging", { "platform:apps.api.routing": nginx("staging.acme.example") }),
            "platform:apps.", "staging.acme.example/", "web");
    });

    it("treats /api and /api/ as the same prefix", () => {
        const p = problemsOf("staging", {
            "platform:apps.web.routing": nginx("acme.example", "/api"), "platform:apps.api.routing": nginx("acme.example", "/api/"),
        });
        refused(p, "platform:apps.", "acme.example/api");
    });

    it("accepts two apps on one host under different paths", () => {
        assert.deepEqual(problemsOf("staging", {
            "platform:apps.web.routing": nginx("acme.example", "/"), "platform:apps.api.routing": nginx("acme.example", "/api"),
        }), []);
    });

    it("refuses an IP address, a label over 63 characters and a name over 253", () => {
        refused(problemsOf("staging", { "platform:apps.api.routing.host": "10.0.0.1" }), "platform:apps.api.routing.host", "IP");
        refused(problemsOf("staging", { "platform:apps.api.routing.host": `${"a".repeat(64)}.acme.example` }), "platform:apps.api.routing.host", "63");
        const long = Array.from({ length: 5 }, () => "b".repeat(60)).join(".");
        refused(problemsOf("staging", { "platform:apps.api.routing.host": long }), "platform:apps.api.routing.host", "253");
    });

    for (const path of ["/a//b", "/a/../b", "/a/./b", "/x%2Fy", "/x%2fy", "/a/..", "/a/.", "/a%zz", "/a#b", "/a b"]) {
        it(`refuses the path ${JSON.stringify(path)} (Ingress or Gateway API would)`, () => {
            refused(problemsOf("staging", { "platform:apps.api.routing.path": path }), "platform:apps.api.routing.path", JSON.stringify(path));
        });
    }

    it("accepts ordinary paths", () => {
        for (const path of ["/", "/api", "/api/v1/", "/a-b_c.d~e", "/%20x"]) assert.deepEqual(problemsOf("staging", { "platform:apps.api.routing.path": path }), [], path);
    });
});
