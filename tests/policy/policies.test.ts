import * as assert from "assert";
import {
    canaryWeightsInRange, imageProblem, noUntaggedOrLatestImages, policies, protectedDataInProduction,
    requestsAndLimits, restrictedSecurityContext, stackOf,
} from "../../policy/policies";
import { MANAGED, RegisteredResource, Result, run } from "../harness";
import { altered, checkResources } from "./check";

// Each policy on what the program renders: every stack passes as declared; a rendered object with
// one thing broken (or a config that makes it so) fails, with a message that names the problem.

const REGISTRY = "europe-west1-docker.pkg.dev/acme-production/platform-production";

const find = (r: Result, type: string, name: string): RegisteredResource => {
    const x = r.resources.find((y) => y.type === type && y.name === name);
    assert.ok(x, `no ${type} ${name}`);
    return x!;
};
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const STATEFULSET = "kubernetes:apps/v1:StatefulSet";
const messages = (v: { message: string }[]) => v.map((x) => x.message).join("\n");

describe("policy pack", () => {
    const rendered: Record<string, Result> = {};
    before(async () => {
        rendered.local = await run("local");
        rendered.staging = await run("staging");
        rendered.production = await run("production");
        rendered.managed = await run("production", {
            ...MANAGED,
            "platform:apps.worker.build": { context: "services/worker" },
            "platform:apps.worker.image": `${REGISTRY}/worker`,
            "platform:apps.api.canary.canary": "2.8.0",
            "platform:apps.api.canary.weight": 50,
        });
    });

    it("has the eight mandatory policies, each with a unique name", () => {
        assert.deepEqual(policies.map((p) => p.name), [
            "no-untagged-or-latest-images", "containers-have-requests-and-limits", "restricted-security-context",
            "protected-data-in-production", "canary-weights-in-range", "production-postgres-backups",
            "no-mutable-tags", "production-daily-backups",
        ]);
        assert.ok(policies.every((p) => p.enforcementLevel === "mandatory"));
    });

    it("reads the stack from a URN", () => {
        assert.equal(stackOf("urn:pulumi:production::platform::kubernetes:apps/v1:Deployment::web"), "production");
        assert.equal(stackOf(rendered.staging.resources[0].urn), "staging");
    });

    describe("no-untagged-or-latest-images", () => {
        it("passes every stack as rendered, built digests included", async () => {
            for (const [name, r] of Object.entries(rendered)) assert.deepEqual(await checkResources(noUntaggedOrLatestImages, r.resources), [], name);
        });

        it("fails a container on latest, an untagged one and a built image tagged latest", async () => {
            const worker = find(rendered.production, DEPLOYMENT, "worker");
            const latest = altered(worker, (i) => (i.spec.template.spec.containers[0].image = "europe-docker.pkg.dev/acme-production/apps/worker:latest"));
            const untagged = altered(worker, (i) => (i.spec.template.spec.containers[0].image = "registry.local:5000/acme/worker"));
            const image = rendered.managed.resources.find((x) => x.type === "docker:index/image:Image")!;
            const builtLatest = altered(image, (i) => (i.imageName = `${REGISTRY}/worker:latest`));
            const v = await checkResources(noUntaggedOrLatestImages, [latest, untagged, builtLatest]);
            assert.equal(v.length, 3, messages(v));
            assert.match(messages(v), /Deployment worker: container app uses the "latest" tag/);
            assert.match(messages(v), /is untagged \(registry\.local:5000\/acme\/worker\)/, "a registry port is not a tag");
            assert.match(messages(v), /docker image worker-image uses the "latest" tag/);
        });

        it("judges image references, leaving an unknown (preview) digest alone", () => {
            assert.equal(imageProblem(undefined), undefined);
            assert.equal(imageProblem(`a/b@sha256:${"0".repeat(64)}`), undefined);
            assert.match(imageProblem("a/b@sha256:123")!, /malformed digest/);
            assert.equal(imageProblem("a/b:1.2.3"), undefined);
        });
    });

    describe("containers-have-requests-and-limits", () => {
        it("passes every stack as rendered", async () => {
            for (const [name, r] of Object.entries(rendered)) assert.deepEqual(await checkResources(requestsAndLimits, r.resources), [], name);
        });

        it("fails a container without a memory limit and a Job without any resources", async () => {
            const postgres = altered(find(rendered.production, STATEFULSET, "postgres"), (i) => delete i.spec.template.spec.containers[0].resources.limits.memory);
            const job = rendered.production.resources.find((x) => x.inputs?.kind === "Job")!;
            const bare = altered(job, (i) => delete i.spec.template.spec.containers[0].resources);
            const v = await checkResources(requestsAndLimits, [postgres, bare]);
            assert.equal(v.length, 2, messages(v));
            assert.match(v[0].message, /StatefulSet postgres: container postgres has no limits\.memory$/);
            assert.match(v[1].message, /has no requests\.cpu, requests\.memory, limits\.cpu, limits\.memory$/);
        });
    });

    describe("restricted-security-context", () => {
        it("passes every stack as rendered", async () => {
            for (const [name, r] of Object.entries(rendered)) assert.deepEqual(await checkResources(restrictedSecurityContext, r.resources), [], name);
        });

        it("fails root, privilege escalation, kept capabilities, no seccomp, host namespaces and host paths", async () => {
            const web = find(rendered.production, DEPLOYMENT, "web-blue");
            const cases: [(i: any) => void, RegExp][] = [
                [(i) => { delete i.spec.template.spec.securityContext.runAsNonRoot; delete i.spec.template.spec.containers[0].securityContext.runAsNonRoot; }, /runAsNonRoot is not true/],
                [(i) => (i.spec.template.spec.containers[0].securityContext.runAsUser = 0), /runs as uid 0/],
                [(i) => (i.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true), /allowPrivilegeEscalation is not false/],
                [(i) => (i.spec.template.spec.containers[0].securityContext.capabilities = { drop: ["NET_RAW"], add: ["SYS_ADMIN"] }), /does not drop ALL capabilities; adds capabilities SYS_ADMIN/],
                [(i) => { delete i.spec.template.spec.securityContext.seccompProfile; delete i.spec.template.spec.containers[0].securityContext.seccompProfile; }, /seccompProfile is not RuntimeDefault/],
                [(i) => (i.spec.template.spec.hostNetwork = true), /uses hostNetwork/],
                [(i) => (i.spec.template.spec.volumes = [{ name: "docker", hostPath: { path: "/var/run/docker.sock" } }]), /mounts the host path \/var\/run\/docker\.sock/],
            ];
            for (const [change, expected] of cases) {
                const v = await checkResources(restrictedSecurityContext, [altered(web, change)]);
                assert.equal(v.length, 1, `${expected}: ${messages(v)}`);
                assert.match(v[0].message, expected);
            }
        });
    });

    describe("protected-data-in-production", () => {
        it("passes production as rendered, in-cluster and with Cloud SQL and Memorystore", async () => {
            assert.deepEqual(await checkResources(protectedDataInProduction, rendered.production.resources), []);
            assert.deepEqual(await checkResources(protectedDataInProduction, rendered.managed.resources), []);
        });

        it("fails production data declared without protect", async () => {
            const unprotect = (x: RegisteredResource) => altered(x, (_i, copy) => (copy.protect = false));
            const managed = rendered.managed.resources;
            const targets = [
                find(rendered.production, STATEFULSET, "postgres"),
                managed.find((x) => x.type === "gcp:sql/databaseInstance:DatabaseInstance")!,
                managed.find((x) => x.type === "gcp:redis/instance:Instance")!,
            ];
            const v = await checkResources(protectedDataInProduction, targets.map(unprotect));
            assert.equal(v.length, 3, messages(v));
            assert.match(messages(v), /StatefulSet with volumes postgres holds production data but is not protected/);
            assert.match(messages(v), /Cloud SQL instance postgres/);
            assert.match(messages(v), /Memorystore instance redis/);
        });

        it("leaves other stacks alone, unless the policy config names them production", async () => {
            assert.deepEqual(await checkResources(protectedDataInProduction, rendered.staging.resources), []);
            const v = await checkResources(protectedDataInProduction, rendered.staging.resources, { productionStacks: ["staging"] });
            assert.ok(v.some((x) => /StatefulSet with volumes postgres/.test(x.message)), messages(v));
            assert.ok(v.some((x) => /StatefulSet with volumes redis/.test(x.message)), messages(v));
        });
    });

    describe("canary-weights-in-range", () => {
        it("passes every stack as rendered (nginx canary 10, Gateway canary 50)", async () => {
            for (const [name, r] of Object.entries(rendered)) assert.deepEqual(await checkResources(canaryWeightsInRange, r.resources), [], name);
            const route = rendered.managed.resources.find((x) => x.inputs?.kind === "HTTPRoute" && x.inputs.metadata.name === "api")!;
            assert.deepEqual(route.inputs.spec.rules[0].backendRefs.map((b: any) => b.weight), [50, 50], "the case is really exercised");
        });

        it("fails an HTTPRoute weight above 100 or below 0 and a bad nginx canary-weight", async () => {
            const route = rendered.managed.resources.find((x) => x.inputs?.kind === "HTTPRoute" && x.inputs.metadata.name === "api")!;
            const high = altered(route, (i) => (i.spec.rules[0].backendRefs[1].weight = 150));
            const low = altered(route, (i) => (i.spec.rules[0].backendRefs[0].weight = -1));
            const ingress = rendered.staging.resources.find((x) => x.inputs?.kind === "Ingress" && x.inputs.metadata.annotations?.["nginx.ingress.kubernetes.io/canary-weight"])!;
            assert.equal(ingress.inputs.metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"], "10");
            const over = altered(ingress, (i) => (i.metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"] = "101"));
            const words = altered(ingress, (i) => (i.metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"] = "ten"));
            const v = await checkResources(canaryWeightsInRange, [high, low, over, words]);
            assert.equal(v.length, 4, messages(v));
            assert.match(v[0].message, /HTTPRoute api rule 0 backend api-canary weight is 150, outside 0\.\.100/);
            assert.match(v[1].message, /weight is -1, outside 0\.\.100/);
            assert.match(v[2].message, /canary-weight is 101, outside 0\.\.100/);
            assert.match(v[3].message, /canary-weight is not an integer \("ten"\)/);
        });
    });
});
