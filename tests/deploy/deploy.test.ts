import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigValues, evaluate, readStackFile, ROOT, setPath } from "../../tools/evaluate";
import { Cli, CommandResult, deploy, DeployOutcome, EXIT, failedAnalysisJobs, failureLines, parseArgs } from "../../tools/deploy";
import { failedAppsOf } from "../../tools/pulumi-output";
import { failedFromTags, fromTags, releaseChanged, StackApps, toTags, validatedFrom } from "../../tools/release";
import { Receiver } from "../analysis/servers";

// The deploy command's decisions, driven through its Pulumi CLI seam by the real program under the
// mock engine: `pulumi up` evaluates the stack's current config, and fails (as an analysis Job
// would) when the test's verdict says the new state is bad. What is restored, where traffic ends,
// the summary, the exit code and the notices (to a real HTTP receiver) are the command's own.
// The real engine runs the same command in tests/e2e/deploy.e2e.ts.

const PROM_CHECK = {
    http: [{ name: "health", path: "/healthz" }],
    prometheus: { address: "http://prometheus.monitoring.svc:9090", checks: [{ name: "error-rate", query: "x", threshold: 0.1 }] },
};

type Verdict = (config: ConfigValues) => string | undefined;

/** A stack: its config file, tags and last successful outputs, behind the CLI calls deploy makes. */
class EvaluatorStack {
    config: ConfigValues;
    tags: Record<string, string> = {};
    outputs: Record<string, any> | undefined;
    ups: string[][] = [];
    configSets: string[] = [];
    lastResult: "succeeded" | "failed" | undefined;
    /** Termination messages of the analysis pods in the cluster, by Job. */
    podMessages: Record<string, string> = {};
    /** Faults: another update holds the stack; a command (joined args) Pulumi refuses; unreadable tags or state. */
    locked = false;
    refuse?: RegExp;
    tagsUnreadable = false;
    stateUnreadable = false;
    private resources: { urn: string; type: string; parent?: string; inputs: any }[] = [];

    constructor(readonly stack: string, config: ConfigValues, public verdict: Verdict = () => undefined) {
        this.config = config;
    }

    /** A successful `pulumi up` of the current config, without the deploy command (history). */
    async upDirectly(): Promise<void> {
        const r = await this.run(["up"]);
        assert.equal(r.code, 0, r.stdout);
    }

    set(key: string, value: unknown): void {
        this.config = setPath(this.config, key, value);
    }

    async run(args: string[]): Promise<CommandResult> {
        if (this.refuse?.test(args.join(" "))) return { code: 255, stdout: "", stderr: `error: ${args.slice(0, 3).join(" ")} refused by the test\n` };
        if (args[0] === "up") {
            this.ups.push(args);
            if (this.locked) return { code: 255, stdout: "", stderr: "error: [409] Conflict: Another update is currently in progress.\n" };
            const e = await evaluate(this.stack, this.config);
            const failure = this.verdict(this.config);
            this.lastResult = failure ? "failed" : "succeeded";
            if (failure) {
                // A failed update leaves the resources it managed to change; the outputs stay those
                // of the last successful update (they are registered only at the end). As the real
                // engine does, pulumi says only that the Job failed; its pod holds the result line.
                const app = /app (\S+)/.exec(failure)?.[1] ?? "api";
                const job = e.resources.find((r) => r.type === "kubernetes:batch/v1:Job" && r.inputs.metadata.name.startsWith(`${app}-analysis-`))?.inputs.metadata.name ?? `${app}-analysis-00000000`;
                this.podMessages[job] = failure;
                return {
                    code: 255,
                    stdout: `Updating (${this.stack})\n +  kubernetes:batch/v1:Job ${job} **creating failed** error: 2 errors occurred:\nDiagnostics:\n` +
                        `  kubernetes:batch/v1:Job (${job}):\n    error: 2 errors occurred:\n    \t* resource "urn:…::${job}" was successfully created, but the Kubernetes API server reported that it failed to fully initialize or become live\n` +
                        "    \t* [BackoffLimitExceeded] Job has reached the specified backoff limit\n" +
                        `  pulumi:pulumi:Stack (platform-${this.stack}):\n    error: update failed\n`,
                    stderr: "error: update failed\n",
                };
            }
            this.outputs = e.outputs;
            this.resources = e.resources.map((r) => ({ urn: r.urn, type: r.type, parent: r.parent, inputs: r.inputs }));
            return { code: 0, stdout: "Update succeeded\n", stderr: "" };
        }
        if (args[0] === "config" && args[1] === "set" && args[2] === "--path") {
            this.configSets.push(`${args[3]}=${args[4]}`);
            this.set(args[3], args[4]);
            return { code: 0, stdout: "", stderr: "" };
        }
        if (args[0] === "config" && args[1] === "rm" && args[2] === "--path") {
            this.configSets.push(`rm ${args[3]}`);
            const [, app] = args[3].split(".");
            const apps = { ...(this.config["platform:apps"] as Record<string, unknown>) };
            delete apps[app];
            this.config = { ...this.config, "platform:apps": apps };
            return { code: 0, stdout: "", stderr: "" };
        }
        if (args[0] === "stack" && args[1] === "tag" && args[2] === "set") {
            this.tags[args[3]] = args[4];
            return { code: 0, stdout: "", stderr: "" };
        }
        if (args[0] === "stack" && args[1] === "tag" && args[2] === "rm") {
            delete this.tags[args[3]];
            return { code: 0, stdout: "", stderr: "" };
        }
        throw new Error(`unexpected pulumi ${args.join(" ")}`);
    }

    cli(): Cli {
        const unreadable = (what: string) => { throw new Error(`pulumi ${what} failed: error: could not read the state`); };
        return {
            run: (args: string[]) => this.run(args),
            outputs: async () => (this.stateUnreadable ? unreadable("stack output") : (this.outputs?.apps ?? {}) as StackApps),
            tags: async () => (this.tagsUnreadable ? unreadable("stack tag ls") : { ...this.tags }),
            appsConfig: async () => structuredClone(this.config["platform:apps"] as Record<string, unknown>),
            resources: async () => (this.stateUnreadable ? unreadable("stack export") : this.resources.map(({ urn, type, parent }) => ({ urn, type, parent }))),
            analysisResults: async (jobs: string[]) => jobs.flatMap((j) => (this.podMessages[j] ? [this.podMessages[j]] : [])),
            lastUpdateSucceeded: async () => this.lastResult === "succeeded",
        };
    }
}

const ANALYSIS_FAILED = "analysis failed: app api canary 2.8.0, check error-rate: measured 0.2, threshold below 0.1 (1 of 1 measurements failed, failure limit 0)";
const apiWeight = (c: ConfigValues) => Number((c["platform:apps"] as any).api.canary.weight);
const titles = (r: Receiver) => r.received.map((m) => m.text.split(":")[0]);

describe("npm run deploy: rollback decisions (mock engine)", function () {
    this.timeout(300_000);
    let receiver: Receiver;
    const lines: string[] = [];
    const run = async (s: EvaluatorStack, extra: { retryFailed?: boolean; noRollback?: boolean; noticeTimeoutMs?: number } = {}): Promise<DeployOutcome> => {
        lines.length = 0;
        return deploy({
            stack: s.stack, cwd: ".", upArgs: ["--policy-pack", "policy"], out: (l) => lines.push(l), ...extra,
            env: { PLATFORM_WEBHOOK_URL: receiver.url, PLATFORM_RUN_URL: "https://github.com/acme/platform/actions/runs/42" },
        }, s.cli());
    };

    beforeEach(async () => (receiver = await new Receiver().start()));
    afterEach(async () => receiver.stop());

    const staging = (verdict?: Verdict) => {
        const s = new EvaluatorStack("staging", readStackFile("staging"), verdict);
        s.set("platform:apps.api.analysis", PROM_CHECK);
        return s;
    };
    const targetsOf = (args: string[]) => args.filter((_, i) => args[i - 1] === "--target");

    it("a canary step 10 → 50 whose analysis fails aborts to weight 0 by itself, re-runs the analysis, says so, exits 1", async () => {
        const s = staging((c) => (apiWeight(c) === 50 ? ANALYSIS_FAILED : undefined));
        assert.equal((await run(s)).code, 0, lines.join("\n"));
        s.set("platform:apps.api.canary.weight", 50);
        const r = await run(s);
        assert.equal(r.code, EXIT.rolledBack, r.summary.join("\n"));
        // 10 % of users must not stay on a version that just failed: stable takes all traffic.
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=0"]);
        assert.deepEqual(s.outputs!.apps.api.traffic, { stable: 100, canary: 0 });
        // Only the failed app is updated, with its dependents.
        const restore = s.ups[s.ups.length - 1];
        assert.equal(targetsOf(restore).length, 1);
        assert.match(targetsOf(restore)[0], /platform:apps:AppRelease::api$/);
        assert.ok(restore.includes("--target-dependents"));
        assert.deepEqual(restore.slice(-2), ["--policy-pack", "policy"]);
        const summary = r.summary.join("\n");
        assert.match(summary, /^deploy staging: FAILED after \d+\.\d s: analysis failed: app api canary 2\.8\.0, check error-rate: measured 0\.2, threshold below 0\.1/);
        assert.match(summary, /rolling back api to the release validated at .* \(a canary aborts to weight 0\)/);
        assert.match(summary, /restored apps\.api\.canary\.weight: 50 -> 0/);
        assert.match(summary, /rolled back in \d+\.\d s \(failure to restored traffic\); the restored state's analysis passed/);
        assert.match(summary, /api: traffic \{"stable":90,"canary":10\} before, \{"stable":100,"canary":0\} now/);
        assert.ok(!lines.join("\n").includes(receiver.secretPath), "the webhook URL must never be printed");
        assert.match(receiver.received.at(-1).text, /• api: versions stable 2\.7\.0, canary 2\.8\.0 → stable 2\.7\.0; traffic \{"stable":90,"canary":10\} → \{"stable":100,"canary":0\}\nrun: https:\/\/github\.com\/acme\/platform\/actions\/runs\/42$/);
        assert.deepEqual(titles(receiver), [
            "[staging] deploy started", "[staging] deploy succeeded", "[staging] deploy started", "[staging] deploy FAILED", "[staging] automatic ROLLBACK done",
        ]);
        // The failed release is remembered; the aborted state is the validated one now.
        assert.deepEqual(failedFromTags(s.tags)!.apps.api.release, { "canary.stable": "2.7.0", "canary.canary": "2.8.0", "canary.weight": 50 });
        assert.equal(fromTags(s.tags)!.apps.api.release["canary.weight"], 0);
    });

    it("a failed release is not deployed again by the next deploy of the same config: held, exit 4; a changed release is tried", async () => {
        const s = staging((c) => (apiWeight(c) === 50 && (c["platform:apps"] as any).api.canary.canary === "2.8.0" ? ANALYSIS_FAILED : undefined));
        await run(s);
        s.set("platform:apps.api.canary.weight", 50);
        assert.equal((await run(s)).code, EXIT.rolledBack);
        // The next merge deploys the checkout's config from git, which still names the failed step.
        s.set("platform:apps.api.canary.weight", 50);
        s.set("platform:apps.worker.tag", "2.7.1");
        s.configSets = [];
        const upsBefore = s.ups.length;
        const held = await run(s);
        assert.equal(held.code, EXIT.heldFailedRelease, held.summary.join("\n"));
        assert.deepEqual(held.held, ["api"]);
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=0"]);
        assert.equal(s.ups.length, upsBefore + 1, "one update: everything else deploys");
        assert.deepEqual(s.outputs!.apps.api.traffic, { stable: 100, canary: 0 }, "no traffic goes to the failed release again");
        assert.match(s.outputs!.apps.worker.images.main, /:2\.7\.1$/);
        assert.match(held.summary.join("\n"), /api: HELD at its validated release: the config names the release that failed at \S+ \(analysis failed: app api/);
        assert.match(receiver.received.at(-1).text, /^\[staging\] deploy succeeded: .*HELD at the validated release \(a failed release is named\): api/);
        // A new canary version is a new release: tried.
        s.set("platform:apps.api.canary.canary", "2.8.1");
        s.set("platform:apps.api.canary.weight", 50);
        assert.equal((await run(s)).code, EXIT.deployed);
        assert.deepEqual(s.outputs!.apps.api.traffic, { stable: 50, canary: 50 });
        assert.equal(failedFromTags(s.tags), undefined, "the record is cleared once nothing is held");
    });

    it("--retry-failed tries the very release that failed", async () => {
        const s = staging((c) => (apiWeight(c) === 50 ? ANALYSIS_FAILED : undefined));
        await run(s);
        s.set("platform:apps.api.canary.weight", 50);
        assert.equal((await run(s)).code, EXIT.rolledBack);
        s.set("platform:apps.api.canary.weight", 50);
        const upsBefore = s.ups.length;
        const r = await run(s, { retryFailed: true });
        assert.equal(r.code, EXIT.rolledBack, r.summary.join("\n"));
        assert.equal(s.ups.length, upsBefore + 2, "tried (and rolled back again)");
        assert.ok(s.ups[upsBefore].every((a) => a !== "--target"), "the retry is a whole update");
    });

    it("the rollback touches only the app that failed: another app's change of the same release stays", async () => {
        const s = staging((c) => (apiWeight(c) === 50 ? ANALYSIS_FAILED : undefined));
        s.set("platform:apps.web.analysis", PROM_CHECK);
        await run(s);
        s.set("platform:apps.api.canary.weight", 50);
        s.set("platform:apps.web.blueGreen.activeColor", "green");
        const r = await run(s);
        assert.equal(r.code, EXIT.rolledBack, r.summary.join("\n"));
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=0"]);
        const restore = s.ups[s.ups.length - 1];
        assert.equal(targetsOf(restore).length, 1);
        assert.match(targetsOf(restore)[0], /AppRelease::api$/);
        assert.equal((s.config["platform:apps"] as any).web.blueGreen.activeColor, "green");
        assert.deepEqual(Object.keys(failedFromTags(s.tags)!.apps), ["api"]);
    });

    it("an app the failed release added has no traffic to restore: reported, not re-applied, and not a failed rollback", async () => {
        const s = staging((c) => ((c["platform:apps"] as any).search ? "analysis failed: app search main 1.0.0, check health: measured HTTP 503, threshold HTTP 200 (3 attempts)" : undefined));
        await run(s);
        s.set("platform:apps.search", { image: "europe-docker.pkg.dev/acme-staging/apps/search", port: 8080, healthPath: "/healthz", replicas: 1, strategy: "rolling", tag: "1.0.0" });
        const r = await run(s);
        assert.equal(r.code, EXIT.rolledBack, r.summary.join("\n"));
        assert.match(r.summary.join("\n"), /search: added by the failed release: it had no traffic to restore; not re-applied/);
        assert.equal(s.ups.length, 2, "no rollback update: nothing to restore");
        assert.deepEqual(s.configSets, []);
        // The next deploy of the same config leaves it out.
        const again = await run(s);
        assert.equal(again.code, EXIT.heldFailedRelease, again.summary.join("\n"));
        assert.deepEqual(s.configSets, ["rm apps.search"]);
        assert.equal(s.outputs!.apps.search, undefined);
    });

    it("an app the failed release removed is not re-created by the rollback", async () => {
        const s = staging((c) => (apiWeight(c) === 50 ? ANALYSIS_FAILED : undefined));
        await run(s);
        const apps = { ...(s.config["platform:apps"] as Record<string, unknown>) };
        delete apps.worker;
        s.config = { ...s.config, "platform:apps": apps };
        s.set("platform:apps.api.canary.weight", 50);
        const r = await run(s);
        assert.equal(r.code, EXIT.rolledBack);
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=0"]);
        assert.equal((s.config["platform:apps"] as any).worker, undefined);
        assert.ok(targetsOf(s.ups.at(-1)!).every((t) => !/worker/.test(t)));
    });

    it("a blue/green release and switch that fails puts the previous colour back in front, on the previous tag", async () => {
        const s = staging((c) => ((c["platform:apps"] as any).web.blueGreen.green === "1.6.0" ? "analysis failed: app web green 1.6.0, check health: measured HTTP 503, threshold HTTP 200 (3 attempts)" : undefined));
        assert.equal((await run(s)).code, 0);
        s.set("platform:apps.web.blueGreen.green", "1.6.0");
        s.set("platform:apps.web.blueGreen.activeColor", "green");
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets.sort(), ["platform:apps.web.blueGreen.activeColor=blue", "platform:apps.web.blueGreen.green=1.5.0"]);
        assert.equal(s.outputs!.apps.web.traffic.active, "blue");
        assert.match(s.outputs!.apps.web.images.green, /:1\.5\.0$/);
        assert.match(r.summary[0], /check health: measured HTTP 503/);
        // The restored state is the validated one: its analysis Job is replaced, so it runs again.
        const restore = s.ups.at(-1)!;
        assert.match(restore[restore.indexOf("--replace") + 1], /::web-analysis-[0-9a-f]{8}$/);
    });

    it("a rolling release that fails goes back to the previous tag", async () => {
        const s = staging((c) => ((c["platform:apps"] as any).worker.tag === "2.9.0" ? "analysis failed: app worker main 2.9.0, check http-errors: measured 0.3, threshold at most 0.1 (11 of 37 requests failed: 11 HTTP 500; stopped early of 100)" : undefined));
        await run(s);
        s.set("platform:apps.worker.tag", "2.9.0");
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets, ["platform:apps.worker.tag=2.7.0"]);
        assert.match(s.outputs!.apps.worker.images.main, /:2\.7\.0$/);
    });

    it("after a failed update outside the command, the stack tags still name the validated release", async () => {
        const s = staging((c) => (apiWeight(c) !== 10 ? ANALYSIS_FAILED : undefined));
        assert.equal((await run(s)).code, 0);
        s.set("platform:apps.api.canary.weight", 50);
        assert.equal((await s.run(["up"])).code, 255, "a plain `pulumi up` of a bad step fails");
        s.set("platform:apps.api.canary.weight", 100);
        s.verdict = (c) => (apiWeight(c) !== 10 && apiWeight(c) !== 0 ? ANALYSIS_FAILED : undefined);
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=0"]);
        assert.match(r.summary.join("\n"), /rolling back api to the release validated at \d{4}-\d\d-\d\dT/);
    });

    it("without any validated release there is nothing to roll back to: it says so and exits 1", async () => {
        const s = staging(() => ANALYSIS_FAILED);
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets, []);
        assert.match(r.summary.join("\n"), /no validated release is recorded for this stack: nothing to roll back to/);
        assert.deepEqual(titles(receiver), ["[staging] deploy started", "[staging] deploy FAILED"]);
    });

    it("when the restored release fails too, exits 2 and announces the failed rollback", async () => {
        let broken = false;
        const s = staging(() => (broken ? ANALYSIS_FAILED : undefined));
        await run(s);
        broken = true;
        s.set("platform:apps.api.canary.weight", 50);
        const r = await run(s);
        assert.equal(r.code, EXIT.rollbackFailed);
        assert.match(r.summary.join("\n"), /ROLLBACK FAILED after \d+\.\d s/);
        assert.equal(receiver.received.at(-1).text.split(":")[0], "[staging] automatic rollback FAILED");
    });

    it("a stack deployed before the command existed rolls back to its outputs if its last update succeeded", async () => {
        const s = staging((c) => (apiWeight(c) === 50 ? ANALYSIS_FAILED : undefined));
        await s.upDirectly();
        s.set("platform:apps.api.canary.weight", 50);
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=0"]);
    });
});

describe("npm run deploy: faults inside the deploy and its rollback", function () {
    this.timeout(300_000);
    let receiver: Receiver;
    beforeEach(async () => (receiver = await new Receiver().start()));
    afterEach(async () => receiver.stop());
    const run = (s: EvaluatorStack, extra: { noRollback?: boolean; noticeTimeoutMs?: number } = {}) => deploy({
        stack: s.stack, cwd: ".", upArgs: [], out: () => undefined, ...extra, env: { PLATFORM_WEBHOOK_URL: receiver.url },
    }, s.cli());
    const deployedAt10 = async (verdict: Verdict = (c) => (apiWeight(c) === 50 ? ANALYSIS_FAILED : undefined)) => {
        const s = new EvaluatorStack("staging", readStackFile("staging"), verdict);
        assert.equal((await run(s)).code, EXIT.deployed);
        s.set("platform:apps.api.canary.weight", 50);
        s.configSets = [];
        return s;
    };

    it("a config set that fails inside the rollback ends in a 'rollback failed' notice and exit 2", async () => {
        const s = await deployedAt10();
        s.refuse = /^config set/;
        const r = await run(s);
        assert.equal(r.code, EXIT.rollbackFailed, r.summary.join("\n"));
        assert.match(r.summary.join("\n"), /ROLLBACK FAILED: pulumi config set --path 'apps\.api\.canary\.weight' 0 --stack staging failed/);
        assert.equal(titles(receiver).at(-1), "[staging] automatic rollback FAILED");
    });

    it("a state that cannot be read inside the rollback ends in a 'rollback failed' notice and exit 2", async () => {
        const s = await deployedAt10();
        const cli = s.cli();
        let reads = 0;
        const r = await deploy({ stack: "staging", cwd: ".", upArgs: [], out: () => undefined, env: { PLATFORM_WEBHOOK_URL: receiver.url } }, {
            ...cli, resources: async () => { reads++; throw new Error("pulumi stack export failed: error: [500] Internal Server Error"); },
        });
        assert.equal(reads, 1);
        assert.equal(r.code, EXIT.rollbackFailed);
        assert.match(r.summary.join("\n"), /ROLLBACK FAILED: pulumi stack export failed/);
        assert.equal(titles(receiver).at(-1), "[staging] automatic rollback FAILED");
    });

    it("a stack locked by another update: no config change, no rollback, exit 6, a notice that another update runs", async () => {
        const s = await deployedAt10();
        s.locked = true;
        const tags = { ...s.tags };
        const r = await run(s);
        assert.equal(r.code, EXIT.locked, r.summary.join("\n"));
        assert.deepEqual(s.configSets, []);
        assert.equal(s.ups.filter((u) => u[0] === "up").length, 2, "no rollback update");
        assert.deepEqual(s.tags, tags, "nothing recorded as failed");
        assert.match(r.summary[0], /NOT STARTED: another update holds the stack \(error: \[409\] Conflict/);
        assert.equal(titles(receiver).at(-1), "[staging] deploy NOT STARTED");
    });

    it("a validated release that cannot be recorded: exit 7, 'deployed but not recorded', announced", async () => {
        const s = await deployedAt10(() => undefined);
        s.refuse = /^stack tag set platform-validated/;
        const r = await run(s);
        assert.equal(r.code, EXIT.notRecorded, r.summary.join("\n"));
        assert.match(r.summary[0], /DEPLOYED BUT NOT RECORDED/);
        assert.equal(titles(receiver).at(-1), "[staging] deployed but NOT RECORDED as validated");
        assert.equal(fromTags(s.tags)!.apps.api.release["canary.weight"], 10, "the record still names the release before");
    });

    it("tags that cannot be read refuse to deploy (exit 5, no update), unless --no-rollback", async () => {
        const s = await deployedAt10(() => undefined);
        s.tagsUnreadable = true;
        const r = await run(s);
        assert.equal(r.code, EXIT.refused, r.summary.join("\n"));
        assert.match(r.summary[0], /REFUSED, nothing deployed: the stack tags cannot be read/);
        assert.equal(s.ups.length, 1);
        const forced = await run(s, { noRollback: true });
        assert.equal(forced.code, EXIT.deployed, forced.summary.join("\n"));
        assert.match(forced.summary.join("\n"), /warning: the stack tags cannot be read .*deploying with --no-rollback: a failure stays in place/);
        assert.equal(s.ups.length, 2);
        // A damaged record is as unreadable as a missing one.
        s.tagsUnreadable = false;
        delete s.tags["platform-validated-0"];
        assert.equal((await run(s)).code, EXIT.refused);
    });

    it("a notice that hangs never delays the rollback", async () => {
        const s = await deployedAt10();
        // The receiver holds the failure notice for a minute; the command gives a notice 20 s.
        Object.assign(receiver, { delayMs: 60_000, delayMatching: /deploy FAILED/ });
        const t = Date.now();
        const r = await run(s, { noticeTimeoutMs: 20_000 });
        assert.equal(r.code, EXIT.rolledBack, r.summary.join("\n"));
        // The failure notice is in flight while the rollback runs: the restore did not wait for it.
        assert.ok(r.rollbackSeconds! < 20, `rollback took ${r.rollbackSeconds} s`);
        assert.ok((Date.now() - t) / 1000 < 60, "the notice is bounded");
        assert.deepEqual(titles(receiver), ["[staging] deploy started", "[staging] deploy succeeded", "[staging] deploy started", "[staging] automatic ROLLBACK done"]);
    });
});

describe("npm run deploy: its parts", () => {
    it("keeps the validated release in stack tags of at most 256 characters, and reads it back", () => {
        const apps: StackApps = {};
        for (let i = 0; i < 12; i++) apps[`app-${i}-with-a-long-name`] = { release: { "canary.stable": "sha256:" + "a".repeat(64), "canary.weight": 10 }, analysis: { job: `app-${i}-analysis-0123abcd` } };
        const v = validatedFrom(apps, new Date("2026-11-23T16:00:00Z"));
        const tags = toTags(v);
        assert.ok(Object.keys(tags).length > 3);
        for (const [k, value] of Object.entries(tags)) {
            assert.ok(k.length <= 40, k);
            assert.ok(value.length <= 256, `${k}: ${value.length}`);
        }
        assert.deepEqual(fromTags(tags), v);
        assert.equal(fromTags({ ...tags, "platform-validated-1": undefined as never }), undefined);
        assert.equal(fromTags({}), undefined);
    });

    it("the failure line is the analysis result when there is one", () => {
        const out = `Updating\n  + kubernetes:batch/v1:Job api-analysis-1 creating\n${ANALYSIS_FAILED}\nerror: update failed\n`;
        assert.equal(failureLines(out, 1), ANALYSIS_FAILED);
        assert.equal(failureLines("a\nb\nc\nd", 2), "c | d");
        const engine = "+  kubernetes:batch/v1:Job x creating (0s) error: failed to write\nDiagnostics:\n  kubernetes:batch/v1:Job (x):\n    error: failed to write YAML file\n  pulumi:pulumi:Stack (p):\n    error: update failed\n";
        assert.equal(failureLines(engine), "error: failed to write YAML file");
        // What pulumi prints for a failed analysis Job (tests/e2e/rollback.e2e.ts saw it): the Job is named, not the result.
        const failedJob = "Diagnostics:\n  kubernetes:batch/v1:Job (api-analysis-89c3026a):\n    error: 2 errors occurred:\n    \t* [BackoffLimitExceeded] Job has reached the specified backoff limit\n  kubernetes:batch/v1:Job (api-migrate-1):\n    error: x\n";
        assert.deepEqual(failedAnalysisJobs(failedJob), ["api-analysis-89c3026a"]);
        // A Job the engine could not even write (the local stack's render-only provider) ran nowhere.
        const unwritten = "Diagnostics:\n  kubernetes:batch/v1:Job (api-analysis-dc754963):\n    error: failed to write YAML file: \"out/local/1-manifest/x.yaml\": is a directory\n\n  pulumi:pulumi:Stack (platform-local):\n    error: update failed\n";
        assert.deepEqual(failedAnalysisJobs(unwritten), []);
    });

    it("which apps failed: the diagnostics' resources through the state's parents, else by name; a release changed on any key", () => {
        const state = [
            { urn: "urn:pulumi:s::platform::platform:core:Environment::staging", type: "platform:core:Environment" },
            { urn: "urn:pulumi:s::platform::platform:core:Environment$platform:apps:AppRelease::api", type: "platform:apps:AppRelease", parent: "urn:pulumi:s::platform::platform:core:Environment::staging" },
            { urn: "urn:pulumi:s::platform::platform:core:Environment$platform:apps:AppRelease$kubernetes:apps/v1:Deployment::api-canary", type: "kubernetes:apps/v1:Deployment", parent: "urn:pulumi:s::platform::platform:core:Environment$platform:apps:AppRelease::api" },
        ];
        // As the real engine prints it: progress (whose first line looks like a block header), then Diagnostics.
        const out = (blocks: string[]) => `Updating (s):\n +  kubernetes:batch/v1:Job x creating (0s) error: failed\n\nDiagnostics:\n${blocks.join("\n")}\n  pulumi:pulumi:Stack (platform-s):\n    error: update failed\n`;
        const deployment = "  kubernetes:apps/v1:Deployment (api-canary):\n    error: 1 error occurred:\n    \t* the Kubernetes API server reported that \"api-canary\" failed to fully initialize\n";
        // What the real engine printed in tests/e2e/deploy.e2e.ts: a Job it could not write (not in the state).
        const unwritten = "  kubernetes:batch/v1:Job (api-v2-analysis-b99300f7):\n    error: failed to write YAML file: is a directory\n";
        const namespace = "  kubernetes:core/v1:Namespace (namespace):\n    error: namespaces \"x\" is forbidden\n";
        assert.deepEqual(failedAppsOf(out([deployment]), state, ["api", "api-v2", "web"]), { apps: ["api"], unattributed: [] });
        assert.deepEqual(failedAppsOf(out([unwritten]), state, ["api", "api-v2", "web"]), { apps: ["api-v2"], unattributed: [] });
        assert.deepEqual(failedAppsOf(out([namespace]), state, ["api", "web"]), { apps: [], unattributed: ["kubernetes:core/v1:Namespace (namespace)"] });
        const validated = validatedFrom({
            api: { release: { "canary.stable": "2.7.0", "canary.weight": 10 }, releaseKeys: ["canary.stable", "canary.canary", "canary.weight"] },
            web: { release: { "blueGreen.activeColor": "blue", "blueGreen.blue": "1.4.2", "blueGreen.green": "1.5.0" }, releaseKeys: ["blueGreen.activeColor", "blueGreen.blue", "blueGreen.green"] },
        }, new Date());
        const config: Record<string, unknown> = {
            api: { canary: { stable: "2.7.0", canary: "2.8.0", weight: "10" } },
            web: { blueGreen: { activeColor: "blue", blue: "1.4.2", green: "1.5.0" }, replicas: 4 },
        };
        assert.deepEqual(Object.keys(config).filter((a) => releaseChanged(a, config[a], validated)), ["api"], "a canary version added is a new release; web's replicas are not a release");
    });

    it("usage errors name the missing argument", () => {
        assert.throws(() => parseArgs([]), /--stack is required/);
        assert.throws(() => parseArgs(["--stack", "x", "--force"]), /unknown argument --force/);
        assert.deepEqual(parseArgs(["--stack", "staging", "--", "--policy-pack", "policy"]).upArgs, ["--policy-pack", "policy"]);
    });
});

describe("npm run deploy: interrupted (a cancelled or timed-out CI job)", function () {
    this.timeout(120_000);
    let receiver: Receiver;
    before(async () => (receiver = await new Receiver().start()));
    after(async () => receiver.stop());

    it("SIGTERM during pulumi up: the state is announced, `pulumi cancel` and the runbook line are printed, exit 143", async () => {
        // A stand-in for the CLI on PATH: answers the reads, and `up` runs until it is stopped.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deploy-signal-"));
        fs.writeFileSync(path.join(dir, "pulumi"), [
            "#!/bin/sh",
            'case "$1 $2" in',
            '  "stack tag") echo "{}" ;;',
            '  "stack history") echo "[]" ;;',
            '  "stack output") echo "{}" ;;',
            '  "config --json") echo "{}" ;;',
            `  "up --yes") echo $$ > ${dir}/up-started; exec sleep 60 ;;`,
            '  *) echo "unexpected: $*" >&2; exit 1 ;;',
            "esac",
        ].join("\n"), { mode: 0o755 });
        const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(ROOT, "tools", "deploy.ts"), "--stack", "acme/staging", "--cwd", dir], {
            cwd: ROOT, env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, PLATFORM_WEBHOOK_URL: receiver.url },
        });
        let stdout = "";
        child.stdout.on("data", (d) => (stdout += d));
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
        for (let i = 0; i < 600 && !fs.existsSync(path.join(dir, "up-started")); i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(fs.existsSync(path.join(dir, "up-started")), `pulumi up never started:\n${stdout}`);
        child.kill("SIGTERM");
        assert.equal(await exited, EXIT.terminated, stdout);
        assert.match(stdout, /deploy acme\/staging: INTERRUPTED by SIGTERM while pulumi up: nothing was rolled back/);
        assert.match(stdout, /pulumi cancel --stack acme\/staging --yes/);
        assert.match(stdout, /docs\/operations\.md, "An interrupted deploy"/);
        assert.deepEqual(titles(receiver), ["[acme/staging] deploy started", "[acme/staging] deploy INTERRUPTED"]);
        process.kill(Number(fs.readFileSync(path.join(dir, "up-started"), "utf8")), "SIGKILL");
        fs.rmSync(dir, { recursive: true, force: true });
    });
});
