import { strict as assert } from "assert";
import { generatedNames } from "../../components/plan/generated";
import { validateStackConfig } from "../../components/plan/rules";
import { isAnalysisJob, readStackFile, run, setPath } from "../harness";
import { problemsOf, refused } from "./helpers";

// Every object an app can ever generate (tracks, colour and preview Services, PDBs, HPAs, Ingresses,
// migration, smoke-test and pre-migration backup Jobs, the labels its pods are selected by) is
// reserved for it: another app or a data service may not generate the same, and each name fits.

const rolling = { image: "registry.local/acme/x", port: 8080, healthPath: "/healthz", replicas: 1, strategy: "rolling", tag: "1.0.0" };

describe("validation: generated names", () => {
    it("refuses an app named like a data service's Service", () => {
        refused(problemsOf("local", { "platform:apps.postgres": rolling }), "platform:apps.postgres", "Service postgres", "postgres");
        refused(problemsOf("local", { "platform:apps.redis-headless": rolling }), "platform:apps.redis-headless", "Service redis-headless");
    });

    it("refuses an app whose objects are another app's colour, preview or track objects", () => {
        refused(problemsOf("local", { "platform:apps.web-preview": rolling }), "platform:apps.web-preview", "Service web-preview", "apps.web");
        refused(problemsOf("local", { "platform:apps.api-canary": rolling }), "platform:apps.api-canary", "Deployment api-canary", "apps.api");
    });

    it("refuses an app whose pods would be selected as another app's Job pods or as backup pods", () => {
        refused(problemsOf("local", { "platform:apps.api-migration": rolling }), "platform:apps.api-migration", "app.kubernetes.io/name=api-migration");
        refused(problemsOf("staging", { "platform:apps.postgres-backup": rolling }), "platform:apps.postgres-backup", "postgres-backup");
        // Analysis pods are selected by <app>-analysis; a Service of an app of that name would take them in.
        refused(problemsOf("local", { "platform:apps.api-analysis": rolling }), "platform:apps.api-analysis", "app.kubernetes.io/name=api-analysis");
    });

    it("refuses an app name whose longest generated name passes 63 characters (the pre-migration backup Job)", () => {
        const name = `a${"b".repeat(39)}`; // 40 characters: allowed as a name, but <name>-migrate-<hash>-backup is 64
        const app = { ...rolling, uses: ["postgres"], migrations: { command: ["/migrate"] } };
        refused(problemsOf("production", { [`platform:apps.${name}`]: app }), `platform:apps.${name}`, "Job", "64 characters", "63");
        // Without a backup before migrations, the same app fits.
        assert.deepEqual(problemsOf("staging", { [`platform:apps.${name}`]: app }), []);
    });

    it("accepts the stack files and distinct apps", () => {
        assert.deepEqual(problemsOf("production", {}), []);
        assert.deepEqual(problemsOf("local", { "platform:apps.jobs": rolling, "platform:apps.web2": rolling }), []);
    });

    it("reserves every name the program renders for an app (the reservation is the plan's, suffixes included)", async () => {
        const overrides = { "platform:apps.api.canary.canary": "2.8.0", "platform:apps.api.canary.weight": 50, "platform:apps.web.blueGreen.blue": "1.5.0" };
        let cfg = readStackFile("production");
        for (const [k, v] of Object.entries(overrides)) cfg = setPath(cfg, k, v);
        const config = validateStackConfig(cfg, "production");
        const reserved = new Set(config.apps.flatMap((a) => generatedNames(a, true, true).objects.map((o) => `${o.kind} ${o.name}`)));
        const r = await run("production", overrides);
        const appKinds = ["Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job", "Ingress", "HTTPRoute"];
        const data = (name: string) => /^(postgres|redis)(-|$)/.test(name);
        const appObjects = r.manifests.filter((m) => (appKinds.includes(m.kind) || m.kind === "Service") && !data(m.metadata.name));
        // Analysis Jobs are named by a hash of the traffic state and checks: nothing else ends so.
        const missing = appObjects.filter((m) => !isAnalysisJob({ kind: m.kind, name: m.metadata.name })).map((m) => `${m.kind} ${m.metadata.name}`).filter((k) => !reserved.has(k));
        assert.deepEqual(missing, []);
        assert.ok(appObjects.some((m) => m.kind === "Job" && m.metadata.name.endsWith("-backup")), "a pre-migration backup Job is among them");
    });
});
