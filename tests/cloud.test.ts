import * as assert from "assert";
import { backupStartTime, memorystoreName, memorystoreVersion } from "../components/cloud";
import { MANAGED, NETWORK, RegisteredResource, Result, run, runInvalid } from "./harness";

// Google Cloud: declared only with platform:gcp.enabled; managed Postgres and Redis replace the
// in-cluster ones behind the same Secrets, so apps are unchanged; stateful things are protected
// in production.

/** Staging with Google Cloud turned on (its stack file has none). */
const STAGING_GCP = { "platform:gcp": { enabled: true, project: "acme-staging", region: "europe-west1" } };

const ofType = (r: Result, type: string) => r.resources.filter((x) => x.type === type);
const one = (r: Result, type: string): RegisteredResource => {
    const found = ofType(r, type);
    assert.equal(found.length, 1, `exactly one ${type}, found ${found.length}`);
    return found[0];
};
const SQL = "gcp:sql/databaseInstance:DatabaseInstance";
const MEMORYSTORE = "gcp:redis/instance:Instance";
const REPOSITORY = "gcp:artifactregistry/repository:Repository";

/** Deployments and Jobs of the apps (not of data services or backups): what apps run, as sent. */
function appWorkloads(r: Result): Record<string, unknown> {
    const apps = new Set(r.resources.filter((x) => x.type === "platform:apps:AppRelease").map((x) => x.urn));
    // The backup before a migration connects like any Postgres client (TLS to Cloud SQL): not an app workload.
    const byApps = r.resources.filter((x) => x.parent && apps.has(x.parent) && ["Deployment", "Job"].includes(x.inputs?.kind)
        && x.inputs.metadata.labels["app.kubernetes.io/component"] !== "backup");
    return Object.fromEntries(byApps.map((x) => [`${x.inputs.kind}/${x.inputs.metadata.name}`, x.inputs]));
}

describe("Google Cloud", () => {
    for (const stack of ["local", "staging"]) {
        it(`declares nothing in Google Cloud for ${stack} (gcp disabled)`, async () => {
            const r = await run(stack);
            const cloudy = r.resources.filter((x) => /^(gcp:|docker:|pulumi:providers:(gcp|docker))/.test(x.type) || x.type.startsWith("platform:cloud:"));
            assert.deepEqual(cloudy.map((x) => x.type), []);
        });
    }

    describe("production stack file (in-cluster data)", () => {
        let r: Result;
        before(async () => {
            r = await run("production");
        });

        it("keeps the in-cluster data services by default", () => {
            assert.ok(r.has("StatefulSet", "postgres") && r.has("StatefulSet", "redis"));
            assert.deepEqual([...ofType(r, SQL), ...ofType(r, MEMORYSTORE)], []);
        });

        it("has a protected Docker repository whose cleanup keeps the recent versions", () => {
            const repo = one(r, REPOSITORY);
            assert.equal(repo.inputs.format, "DOCKER");
            assert.equal(repo.inputs.location, "europe-west1");
            assert.equal(repo.inputs.repositoryId, "platform-production");
            assert.equal(repo.inputs.cleanupPolicyDryRun, false);
            const policies = repo.inputs.cleanupPolicies as any[];
            const keep = policies.find((p) => p.action === "KEEP");
            assert.equal(keep.mostRecentVersions.keepCount, 20, "default keepImageVersions");
            // A keep policy does nothing without a delete policy next to it.
            assert.ok(policies.some((p) => p.action === "DELETE" && p.condition?.tagState === "ANY"));
            assert.ok(repo.protect && repo.retainOnDelete);
        });

        it("configures the project and region through its own gcp provider", () => {
            const provider = one(r, "pulumi:providers:gcp");
            assert.equal(provider.inputs.project, "acme-production");
            assert.equal(provider.inputs.region, "europe-west1");
            const cloud = one(r, "platform:cloud:Cloud").urn;
            const under = (x: RegisteredResource): boolean => x.parent === cloud || (!!x.parent && under(r.resources.find((y) => y.urn === x.parent)!));
            const declared = r.resources.filter((y) => y.type.startsWith("gcp:") && under(y));
            assert.ok(declared.length >= 1);
            for (const x of declared) {
                assert.ok(x.provider?.startsWith(provider.urn), `${x.type} ${x.name} uses ${x.provider}`);
            }
        });
    });

    it("keeps as many image versions as platform:gcp.keepImageVersions says", async () => {
        const r = await run("production", { "platform:gcp.keepImageVersions": 7 });
        const keep = (one(r, REPOSITORY).inputs.cleanupPolicies as any[]).find((p) => p.action === "KEEP");
        assert.equal(keep.mostRecentVersions.keepCount, 7);
    });

    describe("production with Cloud SQL and Memorystore", () => {
        let managed: Result;
        let incluster: Result;
        before(async () => {
            managed = await run("production", MANAGED);
            incluster = await run("production");
        });

        it("declares no in-cluster Postgres or Redis", () => {
            assert.ok(!managed.has("StatefulSet", "postgres") && !managed.has("StatefulSet", "redis"));
            assert.deepEqual(managed.resources.filter((x) => x.type === "platform:data:Postgres" || x.type === "platform:data:Redis"), []);
        });

        it("gives Cloud SQL a private IP only, TLS, PITR backups and deletion protection", () => {
            const sql = one(managed, SQL);
            const s = sql.inputs.settings;
            assert.equal(sql.inputs.databaseVersion, "POSTGRES_16");
            assert.equal(s.ipConfiguration.ipv4Enabled, false);
            assert.equal(s.ipConfiguration.privateNetwork, NETWORK);
            assert.equal(s.ipConfiguration.sslMode, "ENCRYPTED_ONLY");
            assert.equal(s.backupConfiguration.enabled, true);
            assert.equal(s.backupConfiguration.pointInTimeRecoveryEnabled, true);
            assert.ok(s.backupConfiguration.backupRetentionSettings.retainedBackups >= 7);
            assert.equal(s.backupConfiguration.startTime, "02:00", "from postgres.backup.schedule 15 2 * * *");
            assert.equal(sql.inputs.deletionProtection, true);
            assert.equal(s.deletionProtectionEnabled, true);
            assert.equal(s.availabilityType, "REGIONAL", "production default");
            assert.equal(s.retainBackupsOnDelete, true);
        });

        it("creates the app's database and user, the user with the generated password", () => {
            const sql = one(managed, SQL);
            const db = one(managed, "gcp:sql/database:Database");
            const user = one(managed, "gcp:sql/user:User");
            assert.equal(db.inputs.name, "app");
            assert.equal(user.inputs.name, "app");
            assert.equal(db.inputs.instance, sql.inputs.name);
            assert.equal(user.inputs.instance, sql.inputs.name);
            const password = managed.resources.find((x) => x.type === "random:index/randomPassword:RandomPassword" && x.name === "postgres-password")!;
            assert.ok(password && managed.evaluation.generatedSecrets.includes(user.inputs.password));
            assert.ok(user.dependencies.includes(password.urn));
        });

        it("publishes postgres-credentials with the in-cluster keys, host = the private IP", () => {
            const secret = managed.resource("Secret", "postgres-credentials");
            const keys = Object.keys(secret.inputs.stringData).sort();
            assert.deepEqual(keys, Object.keys(incluster.resource("Secret", "postgres-credentials").inputs.stringData).sort());
            const d = secret.inputs.stringData;
            assert.match(d.host, /^10\.\d+\.\d+\.\d+$/, "the instance's privateIpAddress (mocked)");
            assert.equal(d.port, "5432");
            assert.equal(d.url, `postgresql://app:${d.password}@${d.host}:5432/app?sslmode=require`);
            assert.equal(managed.outputs.postgres.host, d.host);
        });

        it("runs Memorystore with AUTH and TLS and says so in redis-credentials", () => {
            const redis = one(managed, MEMORYSTORE);
            assert.equal(redis.inputs.authEnabled, true);
            assert.equal(redis.inputs.transitEncryptionMode, "SERVER_AUTHENTICATION");
            assert.equal(redis.inputs.authorizedNetwork, NETWORK);
            assert.equal(redis.inputs.tier, "STANDARD_HA", "production default");
            assert.equal(redis.inputs.redisVersion, "REDIS_7_2");
            const d = managed.resource("Secret", "redis-credentials").inputs.stringData;
            for (const key of ["host", "port", "password", "url"]) assert.ok(d[key], `redis-credentials has ${key}`);
            assert.equal(d.port, "6378", "Memorystore's TLS port");
            assert.equal(d.url, `rediss://:${d.password}@${d.host}:6378/0`);
            assert.match(d["ca.crt"], /BEGIN CERTIFICATE/);
            assert.ok(managed.evaluation.generatedSecrets.includes(d.password), "the AUTH string");
        });

        it("protects every stateful cloud resource and the Secrets in production", () => {
            for (const type of [SQL, MEMORYSTORE, "gcp:sql/database:Database", REPOSITORY]) {
                const x = one(managed, type);
                assert.ok(x.protect && x.retainOnDelete, `${type} protect + retainOnDelete`);
            }
            assert.ok(one(managed, "gcp:sql/user:User").protect);
            for (const name of ["postgres-credentials", "redis-credentials"]) {
                const x = managed.resource("Secret", name);
                assert.ok(x.protect && x.retainOnDelete, name);
            }
        });

        it("leaves the apps' Deployments and Jobs byte-identical to in-cluster mode", () => {
            const a = appWorkloads(incluster);
            const b = appWorkloads(managed);
            assert.ok(Object.keys(a).length >= 4, `found ${Object.keys(a).join(", ")}`);
            assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
            for (const k of Object.keys(a)) assert.equal(JSON.stringify(b[k]), JSON.stringify(a[k]), k);
        });

        it("keeps the password and AUTH string out of everything but Secrets, the SQL user and the generator", () => {
            const secrets = managed.evaluation.generatedSecrets;
            assert.ok(secrets.length >= 2);
            for (const x of managed.resources) {
                const allowed = x.inputs?.kind === "Secret" || x.type.startsWith("random:") || x.type === "gcp:sql/user:User";
                if (allowed) continue;
                const text = JSON.stringify(x.inputs);
                for (const s of secrets) assert.ok(!text.includes(s), `secret leaks into ${x.type} ${x.name}`);
            }
            const outputs = JSON.stringify(managed.outputs);
            for (const s of secrets) assert.ok(!outputs.includes(s), "secret leaks into stack outputs");
        });
    });

    it("does not protect managed data outside production, but keeps Cloud SQL's deletion protection", async () => {
        const r = await run("staging", { ...STAGING_GCP, ...MANAGED });
        for (const type of [SQL, MEMORYSTORE, REPOSITORY]) {
            const x = one(r, type);
            assert.ok(!x.protect && !x.retainOnDelete, type);
        }
        const sql = one(r, SQL);
        assert.equal(sql.inputs.settings.availabilityType, "ZONAL", "non-production default");
        assert.equal(sql.inputs.deletionProtection, true);
        assert.equal(one(r, MEMORYSTORE).inputs.tier, "BASIC");
    });

    it("derives names and settings Google accepts", () => {
        const long = `a${"-b".repeat(31)}`; // a 63-character namespace
        const name = memorystoreName(long);
        assert.ok(name.length <= 40 && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name), name);
        assert.equal(memorystoreName("platform-production"), "platform-production-redis");
        assert.deepEqual(["6", "7.0", "7.2", "7"].map(memorystoreVersion), ["REDIS_6_X", "REDIS_7_0", "REDIS_7_2", "REDIS_7_2"]);
        assert.equal(backupStartTime("15 2 * * *"), "02:00");
        assert.equal(backupStartTime("0 23 * * 1"), "23:00");
        assert.equal(backupStartTime("*/30 * * * *"), "02:00", "no fixed hour: the default window");
    });

    describe("validation", () => {
        it("refuses Cloud SQL and Memorystore without gcp", async () => {
            const { message, registered } = await runInvalid("staging", MANAGED);
            assert.match(message, /platform:postgres\.mode can be "cloudsql" only when platform:gcp\.enabled is true/);
            assert.match(message, /platform:redis\.mode can be "memorystore" only when platform:gcp\.enabled is true/);
            assert.equal(registered, 0);
        });

        it("refuses a Redis version Memorystore does not offer", async () => {
            const { message } = await runInvalid("production", { ...MANAGED, "platform:redis.version": "8.0" });
            assert.match(message, /platform:redis\.version must be 6, 7\.0 or 7\.2 when platform:redis\.mode is "memorystore" \(the versions Memorystore offers\) \(got "8\.0"\)/);
        });
    });
});
