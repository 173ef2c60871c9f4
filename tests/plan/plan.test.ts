import { strict as assert } from "assert";
import * as fc from "fast-check";
import { canaryPodsForWeight, nextCanaryWeight } from "../../components/plan/apps";
import { imageRef, selectorLabels, shortHash, versionLabel } from "../../components/plan/names";

describe("plan: pure logic", () => {
    it("splits pods by weight for replicas routing, with at least one canary pod when the weight is above 0", () => {
        assert.equal(canaryPodsForWeight(4, 0), 0);
        assert.equal(canaryPodsForWeight(4, 10), 1);
        assert.equal(canaryPodsForWeight(4, 50), 2);
        assert.equal(canaryPodsForWeight(10, 25), 3);
        assert.equal(canaryPodsForWeight(4, 100), 4);
        fc.assert(fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 100 }), (n, w) => {
            const c = canaryPodsForWeight(n, w);
            assert.ok(c >= 0 && c <= n);
            assert.equal(c === 0, w === 0);
            assert.ok(Math.abs(c - (n * w) / 100) <= Math.max(0.5, 1), `${n} ${w} -> ${c}`);
        }));
    });

    it("ramps 10 → 50 → 100, then promotion", () => {
        assert.equal(nextCanaryWeight(0), 10);
        assert.equal(nextCanaryWeight(10), 50);
        assert.equal(nextCanaryWeight(30), 50);
        assert.equal(nextCanaryWeight(50), 100);
        assert.equal(nextCanaryWeight(100), undefined);
    });

    it("builds image references from tags and digests, and label-safe versions", () => {
        const digest = `sha256:${"ab".repeat(32)}`;
        assert.equal(imageRef("r.example/app", "1.2.3"), "r.example/app:1.2.3");
        assert.equal(imageRef("r.example/app", digest), `r.example/app@${digest}`);
        assert.equal(versionLabel(digest), "sha256-abababababab");
        assert.match(versionLabel(digest), /^[A-Za-z0-9._-]{1,63}$/);
    });

    it("keeps selectors free of versions and stable across calls", () => {
        assert.deepEqual(selectorLabels("api", "staging", "canary"), {
            "app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "staging-api", "platform.dev/track": "canary",
        });
        assert.equal(shortHash("a", "b"), shortHash("a", "b"));
        assert.notEqual(shortHash("a", "b"), shortHash("ab"));
    });
});
