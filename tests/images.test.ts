import * as assert from "assert";
import { evaluateStack } from "../tools/evaluate";
import { Result, run, runInvalid } from "./harness";

// Images built by the stack: pushed to the environment's Artifact Registry under the version of the
// track they land on, deployed there by digest; nothing is built or pushed by a preview.

const REGISTRY = "europe-west1-docker.pkg.dev/acme-production/platform-production";
const IMAGE = "docker:index/image:Image";
const build = (app: string, extra: Record<string, unknown> = {}) => ({
    [`platform:apps.${app}.build`]: { context: `services/${app}`, dockerfile: "Dockerfile", target: "runtime", args: { GIT_SHA: "abc123" } },
    [`platform:apps.${app}.image`]: `${REGISTRY}/${app}`,
    ...extra,
});

const images = (r: Result) => r.resources.filter((x) => x.type === IMAGE);
const container = (r: Result, kind: string, name: string) => r.object(kind, name).spec.template.spec.containers[0].image as string;
// The app's own Jobs (migrations, smoke tests), not the backups that run before migrations.
const jobImage = (r: Result, prefix: string) => r.ofKind("Job")
    .filter((j) => j.metadata.name.startsWith(prefix) && j.metadata.labels?.["app.kubernetes.io/component"] !== "backup").map((j) => j.spec.template.spec.containers[0].image as string);
const DIGEST = /@sha256:[0-9a-f]{64}$/;

describe("images built by the stack", () => {
    it("a rolling app: builds, pushes under its tag and deploys by digest", async () => {
        const r = await run("production", build("worker"));
        const [img] = images(r);
        assert.equal(images(r).length, 1);
        assert.equal(img.inputs.imageName, `${REGISTRY}/worker:2.7.0`);
        assert.deepEqual(img.inputs.build, { context: "services/worker", dockerfile: "Dockerfile", target: "runtime", args: { GIT_SHA: "abc123" }, platform: "linux/amd64" });
        assert.equal(img.inputs.buildOnPreview, false);
        assert.equal(img.inputs.skipPush, false, "pulumi up pushes");
        assert.deepEqual(img.ignoreChanges, ["skipPush"]);
        assert.equal(img.inputs.registry.server, "europe-west1-docker.pkg.dev");
        assert.equal(img.inputs.registry.username, "oauth2accesstoken");
        const repo = r.resources.find((x) => x.type === "gcp:artifactregistry/repository:Repository")!;
        assert.ok(img.dependencies.includes(repo.urn), "pushes only once the repository exists");
        const image = container(r, "Deployment", "worker");
        assert.match(image, DIGEST);
        assert.ok(image.startsWith(`${REGISTRY}/worker@sha256:`));
        assert.equal(r.outputs.apps.worker.images.main, image);
        assert.deepEqual(r.outputs.cloud.images.worker, { track: "main", image });
    });

    it("a blue/green app: lands on the idle colour only; the active colour keeps its tag", async () => {
        const r = await run("production", build("web", { "platform:apps.web.blueGreen.blue": "1.5.0", "platform:apps.web.smokeTest": { command: ["/app/bin/smoke"] } }));
        assert.equal(images(r)[0].inputs.imageName, `${REGISTRY}/web:1.5.0`);
        // green is active in Pulumi.production.yaml, so blue is idle.
        assert.match(container(r, "Deployment", "web-blue"), DIGEST);
        assert.equal(container(r, "Deployment", "web-green"), `${REGISTRY}/web:1.4.2`);
        assert.deepEqual(r.outputs.cloud.images.web.track, "blue");
        // Each colour's smoke test runs that colour's image.
        assert.deepEqual(jobImage(r, "web-smoke-blue"), [container(r, "Deployment", "web-blue")]);
        assert.deepEqual(jobImage(r, "web-smoke-green"), [`${REGISTRY}/web:1.4.2`]);
    });

    it("a canary app: lands on the canary track with its migration Job; stable keeps its tag", async () => {
        const r = await run("production", build("api", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 10 }));
        assert.equal(images(r)[0].inputs.imageName, `${REGISTRY}/api:2.8.0`);
        const canary = container(r, "Deployment", "api-canary");
        assert.match(canary, DIGEST);
        assert.equal(container(r, "Deployment", "api-stable"), `${REGISTRY}/api:2.7.0`);
        const migrations = jobImage(r, "api-migrate-");
        assert.deepEqual(migrations.sort(), [`${REGISTRY}/api:2.7.0`, canary].sort(), "each version's migration runs that version's image");
    });

    it("builds nothing where the build would run nowhere (canary at weight 0)", async () => {
        const r = await run("production", build("api", { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 0 }));
        assert.deepEqual(images(r), []);
        for (const d of r.ofKind("Deployment")) assert.doesNotMatch(d.spec.template.spec.containers[0].image, DIGEST);
    });

    it("without build, every track runs its configured tag", async () => {
        const r = await run("production");
        assert.deepEqual(images(r), []);
        for (const d of r.ofKind("Deployment")) assert.doesNotMatch(d.spec.template.spec.containers[0].image, /@sha256:/, d.metadata.name);
    });

    it("a preview neither builds nor pushes", async () => {
        const e = await evaluateStack("production", build("worker"), { preview: true });
        const img = e.resources.find((x) => x.type === IMAGE)!;
        assert.equal(img.inputs.buildOnPreview, false);
        assert.equal(img.inputs.skipPush, true);
    });

    describe("validation", () => {
        it("build needs gcp: one clear error", async () => {
            const { message, registered } = await runInvalid("staging", { "platform:apps.worker.build": { context: "services/worker" } });
            assert.equal(message.split("\n").length, 2, message);
            assert.match(message, /platform:apps\.worker\.build needs platform:gcp\.enabled: true/);
            assert.equal(registered, 0);
        });

        it("build needs the app's image to be the environment's repository", async () => {
            const { message } = await runInvalid("production", { "platform:apps.worker.build": { context: "services/worker" } });
            assert.match(message, new RegExp(`platform:apps\\.worker\\.image must be ${REGISTRY.replace(/\./g, "\\.")}/worker when build is set`));
        });

        it("refuses a build that would retag the version another track runs", async () => {
            // Pulumi.production.yaml runs 1.4.2 on both colours.
            const { message } = await runInvalid("production", build("web"));
            assert.match(message, /platform:apps\.web\.blueGreen\.blue must differ from the green track's version when build is set/);
        });

        it("refuses a digest as the version a build is pushed under", async () => {
            const { message } = await runInvalid("production", build("worker", { "platform:apps.worker.tag": `sha256:${"a".repeat(64)}` }));
            assert.match(message, /platform:apps\.worker\.tag must be a tag when build is set/);
        });
    });
});
