import { strict as assert } from "assert";
import { Result, run } from "./harness";
import { schemaErrors } from "./schemas";
import { problemsOf, refused } from "./validation/helpers";

// TLS on every route that has it configured: Ingress tls (cert-manager issues the Secret when an
// issuer is named), an HTTPRoute attached to the Gateway's HTTPS listener; outputs say https only then.

describe("TLS", () => {
    let staging: Result;
    let production: Result;
    before(async () => {
        staging = await run("staging");
        production = await run("production");
    });

    it("nginx: both Ingresses of a canary carry the certificate; only the primary asks cert-manager for it", () => {
        const primary = staging.object("Ingress", "api");
        const canary = staging.object("Ingress", "api-canary");
        assert.deepEqual(primary.spec.tls, [{ hosts: ["api.staging.acme.example"], secretName: "api-tls" }]);
        assert.deepEqual(canary.spec.tls, primary.spec.tls);
        assert.equal(primary.metadata.annotations?.["cert-manager.io/cluster-issuer"], "letsencrypt");
        assert.equal(canary.metadata.annotations?.["cert-manager.io/cluster-issuer"], undefined);
        assert.deepEqual([primary, canary].map(schemaErrors), ["", ""]);
    });

    it("gateway: the HTTPRoute attaches to the HTTPS listener", () => {
        const route = production.object("HTTPRoute", "api");
        assert.equal(route.spec.parentRefs[0].sectionName, "https");
        assert.equal(schemaErrors(route), "");
    });

    it("advertises https only where TLS is configured", async () => {
        assert.equal(staging.outputs.apps.api.url, "https://api.staging.acme.example/");
        assert.equal(production.outputs.apps.web.url, "https://www.acme.example/");
        const plain = await run("staging", { "platform:apps.api.routing.tls": undefined });
        assert.equal(plain.outputs.apps.api.url, "http://api.staging.acme.example/");
        assert.equal(plain.object("Ingress", "api").spec.tls, undefined);
    });

    it("refuses TLS without a router, without a certificate source, or with two issuers", () => {
        refused(problemsOf("local", { "platform:apps.api.routing.tls": { clusterIssuer: "x" } }), "platform:apps.api.routing.tls", "router");
        refused(problemsOf("staging", { "platform:apps.api.routing.tls": {} }), "platform:apps.api.routing.tls", "secretName");
        refused(problemsOf("staging", { "platform:apps.api.routing.tls": { issuer: "a", clusterIssuer: "b" } }), "platform:apps.api.routing.tls", "both");
        refused(problemsOf("production", { "platform:apps.api.routing.tls": { secretName: "x" } }), "platform:apps.api.routing.tls.secretName", "not a known key");
        refused(problemsOf("production", { "platform:apps.api.routing.tls": { listener: "" } }), "platform:apps.api.routing.tls.listener", "empty");
    });
});
