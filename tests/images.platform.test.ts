import { strict as assert } from "assert";
import { Result, run } from "./harness";
import { problemsOf, refused } from "./validation/helpers";

// The platform's own images (data services, backup tools, the default smoke test) are pinned by
// digest: production refuses to run one by tag alone; the smoke test's curl is pinned everywhere.

const images = (r: Result) => r.manifests.flatMap((m) => {
    const t = m.kind === "CronJob" ? m.spec.jobTemplate.spec.template : ["Deployment", "StatefulSet", "Job"].includes(m.kind) ? m.spec.template : undefined;
    return t ? [...(t.spec.initContainers ?? []), ...t.spec.containers].map((c: any) => ({ owner: `${m.kind}/${m.metadata.name}`, image: c.image as string })) : [];
});
const APPS = /acme-(production|staging)\/apps\/|registry\.local\//;

describe("platform images", () => {
    it("production runs every platform image by digest", async () => {
        const r = await run("production", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 });
        const platform = images(r).filter((i) => !APPS.test(i.image));
        assert.ok(platform.some((i) => i.image.startsWith("postgres:")) && platform.some((i) => i.image.includes("google-cloud-cli")));
        for (const i of platform) assert.match(i.image, /:[^@/]+@sha256:[a-f0-9]{64}$/, `${i.owner} ${i.image}`);
    });

    it("pins the default smoke test's curl by digest in every stack", async () => {
        const r = await run("staging", { "platform:apps.web.smokeTest": undefined });
        const smoke = images(r).filter((i) => i.image.startsWith("curlimages/curl"));
        assert.ok(smoke.length > 0);
        for (const i of smoke) assert.match(i.image, /^curlimages\/curl:8\.11\.1@sha256:[a-f0-9]{64}$/);
    });

    it("refuses production without a pinned image for what it runs", () => {
        refused(problemsOf("production", { "platform:images": undefined }), "platform:images.postgres", "required in production", "postgres:16-bookworm");
        refused(problemsOf("production", { "platform:images": undefined }), "platform:images.cloudCli", "required in production");
        refused(problemsOf("production", { "platform:images.redis": undefined }), "platform:images.redis", "required in production");
    });

    it("refuses an image without a digest, or a database image of another version", () => {
        refused(problemsOf("staging", { "platform:images": { postgres: "postgres:16-bookworm" } }), "platform:images.postgres", "pinned by digest");
        refused(problemsOf("staging", { "platform:images": { postgres: `postgres:15-bookworm@sha256:${"a".repeat(64)}` } }), "platform:images.postgres", "version 16");
        assert.deepEqual(problemsOf("staging", { "platform:images": { postgres: `postgres:16.4-bookworm@sha256:${"a".repeat(64)}` } }), []);
    });
});
