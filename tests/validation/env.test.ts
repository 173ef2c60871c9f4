import { strict as assert } from "assert";
import { RESERVED_ENV } from "../../components/config/env";
import { validateStackConfig } from "../../components/plan/rules";
import { readStackFile, run, setPath } from "../harness";
import { problemsOf } from "./helpers";

// `apps.<app>.env` may not set a variable the program sets itself in a container built from the
// app's config: the container would get it twice (server-side apply refuses duplicate keys), or a
// platform setting would look like the app's to change. The list is checked against what the
// program renders, so that a variable added to a component cannot go unreserved.

/** Backup containers set these too, but never get the app's env; apps may well need their own. */
const GENERIC_IN_BACKUPS = ["HOME", "PGSSLMODE"];

/** Every kind of container an app's config builds: tracks, migrations, custom and default smoke tests, analysis, backups before migrations and releases. */
const EVERYTHING = {
    "platform:apps.web.smokeTest": { command: ["/app/bin/smoke"] },
    "platform:apps.web.blueGreen.green": "1.5.0",
    "platform:apps.api.analysis": { http: [{ path: "/healthz" }], prometheus: { address: "http://prometheus.monitoring.svc:9090", checks: [{ name: "errors", query: "up", threshold: 1 }] } },
    "platform:apps.worker.migrations": { command: ["/migrate"] },
    "platform:apps.worker.uses": ["postgres", "redis"],
};

describe("validation: variables the platform sets are reserved in apps.<app>.env", () => {
    it("refuses each reserved name with where the platform sets it, one line each", () => {
        for (const [name, where] of RESERVED_ENV) {
            const problems = problemsOf("local", { "platform:apps.web.env": { [name]: "x" } });
            assert.equal(problems.length, 1, problems.join("\n"));
            assert.ok(problems[0].startsWith(`platform:apps.web.env.${name} is set by the platform ${where} and cannot be overridden (reserved: `), problems[0]);
            assert.ok(problems[0].endsWith(`${[...RESERVED_ENV.keys()].join(", ")}) (got "x")`), problems[0]);
        }
    });

    it("refuses SMOKE_TEST_URL on an app with a custom smoke test (its Job would get it twice)", () => {
        const problems = problemsOf("staging", { "platform:apps.web.env.SMOKE_TEST_URL": "http://elsewhere" });
        assert.deepEqual(problems.map((p) => p.slice(0, p.indexOf(" and cannot"))), ["platform:apps.web.env.SMOKE_TEST_URL is set by the platform in the app's smoke-test Jobs"]);
    });

    it("keeps the wording of the first reserved names", () => {
        const [problem] = problemsOf("local", { "platform:apps.api.env": { DATABASE_URL: "postgres://x" } });
        assert.ok(problem.startsWith("platform:apps.api.env.DATABASE_URL is set by the platform from Secrets or the port and cannot be overridden (reserved: "), problem);
    });

    it("accepts HOME and PGSSLMODE, which only backup containers set and apps may need", () => {
        assert.deepEqual(problemsOf("local", { "platform:apps.web.env": { HOME: "/tmp", PGSSLMODE: "verify-full" } }), []);
    });

    for (const stack of ["staging", "production"] as const) {
        it(`${stack}: every variable the program sets in a container built from an app's config is reserved`, async () => {
            let cfg = readStackFile(stack);
            for (const [k, v] of Object.entries(EVERYTHING)) cfg = setPath(cfg, k, v);
            const overrides = { ...EVERYTHING, "platform:postgres.backup": { ...(cfg["platform:postgres"] as any).backup, enabled: true, beforeMigrations: true, beforeDeploy: true } };
            cfg = setPath(cfg, "platform:postgres.backup", overrides["platform:postgres.backup"]);
            const apps = validateStackConfig(cfg, stack).apps;
            const r = await run(stack, overrides);
            const seen = new Set<string>();
            const unreserved: string[] = [];
            for (const app of apps) {
                const own = new Set(Object.keys(app.env));
                const pods = [app.name, `${app.name}-migration`, `${app.name}-smoke-test`, `${app.name}-analysis`];
                for (const m of r.manifests.filter((x) => ["Deployment", "Job"].includes(x.kind))) {
                    const podName = m.spec.template.metadata.labels["app.kubernetes.io/name"];
                    const backupOfApp = m.kind === "Job" && m.metadata.name.startsWith(`${app.name}-`) && m.metadata.name.endsWith("-backup");
                    if (!pods.includes(podName) && !backupOfApp) continue;
                    seen.add(backupOfApp ? "backup" : podName.slice(app.name.length) || "track");
                    for (const c of [...(m.spec.template.spec.initContainers ?? []), ...m.spec.template.spec.containers]) {
                        for (const { name } of c.env ?? []) {
                            if (own.has(name) || RESERVED_ENV.has(name) || (backupOfApp && GENERIC_IN_BACKUPS.includes(name))) continue;
                            unreserved.push(`${m.kind}/${m.metadata.name} ${c.name}: ${name}`);
                        }
                    }
                }
            }
            // Every kind of container was looked at.
            assert.deepEqual([...seen].sort(), ["-analysis", "-migration", "-smoke-test", "backup", "track"]);
            assert.deepEqual(unreserved, []);
        });
    }
});
