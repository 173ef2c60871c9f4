import { strict as assert } from "assert";
import * as fc from "fast-check";
import { ConfigError } from "../components/config/validate";
import { validateStackConfig } from "../components/plan/rules";
import { readStackFile, runInvalid, setPath, STACKS } from "./harness";

// Bad config must fail before any resource exists, with one line per problem naming the key,
// the bad value and what is allowed.

const invalid: [string, Record<string, unknown>, string][] = [
    ["unknown strategy", { "platform:apps.worker.strategy": "bluegreen" },
        'platform:apps.worker.strategy must be one of "rolling", "blueGreen", "canary" (got "bluegreen")'],
    ["negative replicas", { "platform:apps.api.replicas": -2 }, "platform:apps.api.replicas must be an integer from 1 to 1000 (got -2)"],
    ["fractional replicas", { "platform:apps.api.replicas": 1.5 }, "platform:apps.api.replicas must be an integer from 1 to 1000 (got 1.5)"],
    ["storage in words", { "platform:postgres.storage": "20 gigs" }, 'platform:postgres.storage must be a size in bytes such as 20Gi (at least 1Mi) (got "20 gigs")'],
    ["missing image", { "platform:apps.worker.image": undefined }, "platform:apps.worker.image is required"],
    ["image with a tag", { "platform:apps.worker.image": "registry.local/acme/worker:2.7.0" }, "platform:apps.worker.image must be an image repository without tag or digest"],
    ["unknown data service", { "platform:apps.api.uses": ["postgres", "mysql"] }, 'platform:apps.api.uses[1] must be one of "postgres", "redis" (got "mysql")'],
    ["misspelled app key", { "platform:apps.api.replcias": 3 }, "platform:apps.api.replcias is not a known key (allowed under apps.api: image, port"],
    ["misspelled top-level key", { "platform:postgress": { version: 16 } }, "platform:postgress is not a known key (allowed: platform:tier"],
    ["port as text", { "platform:apps.api.port": "http" }, 'platform:apps.api.port must be an integer from 1 to 65535 (got "http")'],
    ["privileged port", { "platform:apps.api.port": 80 }, "platform:apps.api.port must be 1024 or above"],
    ["latest tag", { "platform:apps.worker.tag": "latest" }, 'platform:apps.worker.tag must name an exact version: "latest" is not allowed (got "latest")'],
    ["uses not a list", { "platform:apps.api.uses": "postgres" }, 'platform:apps.api.uses must be a list of strings (got "postgres")'],
    ["persistence not boolean", { "platform:redis.persistence": "sometimes" }, 'platform:redis.persistence must be true or false (got "sometimes")'],
    ["namespace with capitals", { "platform:namespace": "Platform_Local" }, 'platform:namespace must be a DNS-1123 label'],
    ["unknown tier", { "platform:tier": "prod" }, 'platform:tier must be one of "local", "staging", "production" (got "prod")'],
    ["weight above 100", { "platform:apps.api.canary.weight": 150 }, "platform:apps.api.canary.weight must be an integer from 0 to 100 (got 150)"],
    ["weight without a canary", { "platform:apps.api.canary.canary": undefined, "platform:apps.api.canary.weight": 10 },
        "platform:apps.api.canary.canary is required when apps.api.canary.weight is above 0"],
    ["unknown colour", { "platform:apps.web.blueGreen.activeColor": "red" }, 'platform:apps.web.blueGreen.activeColor must be one of "blue", "green" (got "red")'],
    ["key of another strategy", { "platform:apps.worker.canary": { stable: "1.0.0", weight: 0 } }, 'platform:apps.worker.canary is only used with strategy "canary"'],
    ["bad cron", { "platform:postgres.backup": { schedule: "every night" } }, 'platform:postgres.backup.schedule must be a five-field cron expression such as "15 2 * * *" that Kubernetes accepts'],
    ["a backup before migrations with backups off", { "platform:postgres.backup": { enabled: false, beforeMigrations: true } },
        "platform:postgres.backup.beforeMigrations needs platform:postgres.backup.enabled: true (it runs the daily backup as a Job) (got true)"],
    ["gcs backups without Google Cloud", { "platform:redis.backup": { destination: "gcs" } },
        'platform:redis.backup.destination can be "gcs" only when platform:gcp.enabled is true; use "pvc" otherwise (got "gcs")'],
    ["gateway routing without a gateway", { "platform:apps.api.routing": { kind: "gateway", host: "api.example.com" } },
        'platform:apps.api.routing.gateway is required when apps.api.routing.kind is "gateway"'],
    ["secret env overridden", { "platform:apps.api.env": { DATABASE_URL: "postgres://x" } }, "platform:apps.api.env.DATABASE_URL is set by the platform"],
];

describe("invalid config", () => {
    for (const [what, overrides, message] of invalid) {
        it(`rejects ${what} with the key and value, registering nothing`, async () => {
            const { message: got, registered } = await runInvalid("local", overrides);
            assert.ok(got.includes(message), `expected «${message}» in:\n${got}`);
            assert.equal(registered, 0);
        });
    }

    it("reports every problem at once, one line each", async () => {
        const { message } = await runInvalid("staging", {
            "platform:apps.api.replicas": -2, "platform:apps.web.blueGreen.activeColor": "red", "platform:redis.storage": "lots",
        });
        assert.match(message, /^Invalid stack config \(3 problems\):/);
        assert.equal(message.split("\n").filter((l) => l.startsWith("  - platform:")).length, 3);
    });

    it("accepts integers typed as text, as `pulumi config set --path` stores them", () => {
        const cfg = setPath(readStackFile("local"), "platform:apps.api.replicas", "3");
        const valid = validateStackConfig(cfg, "local");
        assert.equal(valid.apps.find((a) => a.name === "api")!.replicas, 3);
    });

    it("rejects random non-integer replicas and weights (property)", () => {
        const base = readStackFile("local");
        const notAnInteger = fc.oneof(
            fc.double({ noInteger: true }), fc.integer({ max: 0 }), fc.string().filter((s) => !/^\s*\d+\s*$/.test(s)),
            fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }),
        );
        fc.assert(fc.property(notAnInteger, (v) => {
            assert.throws(() => validateStackConfig(setPath(base, "platform:apps.api.replicas", v), "local"),
                (e: Error) => e instanceof ConfigError && e.problems.some((p) => p.startsWith("platform:apps.api.replicas must be an integer")));
        }), { numRuns: 200 });
        fc.assert(fc.property(fc.oneof(fc.integer({ min: 101 }), fc.integer({ max: -1 }), fc.double({ noInteger: true })), (w) => {
            assert.throws(() => validateStackConfig(setPath(base, "platform:apps.api.canary.weight", w), "local"),
                (e: Error) => e instanceof ConfigError && e.problems.some((p) => p.startsWith("platform:apps.api.canary.weight must be an integer from 0 to 100")));
        }), { numRuns: 200 });
    });

    it("rejects random misspelled app keys (property)", () => {
        const base = readStackFile("local");
        const known = ["image", "port", "healthPath", "replicas", "component", "resources", "env", "uses", "strategy", "tag", "blueGreen", "canary", "routing", "migrations", "smokeTest", "autoscaling", "build", "allowMutableTags", "calls", "egressCidrs"];
        fc.assert(fc.property(fc.stringMatching(/^[a-zA-Z]{1,12}$/).filter((k) => !known.includes(k)), (key) => {
            assert.throws(() => validateStackConfig(setPath(base, `platform:apps.worker.${key}`, 1), "local"),
                (e: Error) => e instanceof ConfigError && e.problems.some((p) => p.startsWith(`platform:apps.worker.${key} is not a known key`)));
        }), { numRuns: 100 });
    });

    it("accepts every stack file as it is", () => {
        for (const stack of STACKS) validateStackConfig(readStackFile(stack), stack);
    });
});
