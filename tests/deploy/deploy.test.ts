import { strict as assert } from "assert";
import { ConfigValues, evaluate, readStackFile, setPath } from "../../tools/evaluate";
import { Cli, CommandResult, deploy, DeployOutcome, failedAnalysisJobs, failureLines, parseArgs } from "../../tools/deploy";
import { fromTags, StackApps, toTags, validatedFrom } from "../../tools/release";
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
    private resources: { urn: string; type: string; inputs: any }[] = [];

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
        if (args[0] === "up") {
            this.ups.push(args);
            const e = await evaluate(this.stack, this.config);
            const failure = this.verdict(this.config);
            this.lastResult = failure ? "failed" : "succeeded";
            if (failure) {
                // A failed update leaves the resources it managed to change; the outputs stay those
                // of the last successful update (they are registered only at the end). As the real
                // engine does, pulumi says only that the Job failed; its pod holds the result line.
                const job = e.resources.find((r) => r.type === "kubernetes:batch/v1:Job" && /-analysis-/.test(r.inputs.metadata.name))?.inputs.metadata.name ?? "api-analysis-00000000";
                this.podMessages[job] = failure;
                return {
                    code: 255,
                    stdout: `Updating (${this.stack})\n +  kubernetes:batch/v1:Job ${job} **creating failed** error: 2 errors occurred:\nDiagnostics:\n` +
                        `  kubernetes:batch/v1:Job (${job}):\n    error: 2 errors occurred:\n    \t* resource "urn:…::${job}" was successfully created, but the Kubernetes API server reported that it failed to fully initialize or become live\n` +
                        "    \t* [BackoffLimitExceeded] Job has reached the specified backoff limit\n",
                    stderr: "error: update failed\n",
                };
            }
            this.outputs = e.outputs;
            this.resources = e.resources.map((r) => ({ urn: r.urn, type: r.type, inputs: r.inputs }));
            return { code: 0, stdout: "Update succeeded\n", stderr: "" };
        }
        if (args[0] === "config" && args[1] === "set" && args[2] === "--path") {
            this.configSets.push(`${args[3]}=${args[4]}`);
            this.set(args[3], args[4]);
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
        return {
            run: (args: string[]) => this.run(args),
            outputs: async () => (this.outputs?.apps ?? {}) as StackApps,
            tags: async () => ({ ...this.tags }),
            appsConfig: async () => structuredClone(this.config["platform:apps"] as Record<string, unknown>),
            urnsOfJobs: async (names: string[]) => this.resources.filter((r) => r.type === "kubernetes:batch/v1:Job" && names.includes(r.inputs.metadata.name)).map((r) => r.urn),
            analysisResults: async (jobs: string[]) => jobs.flatMap((j) => (this.podMessages[j] ? [this.podMessages[j]] : [])),
            lastUpdateSucceeded: async () => this.lastResult === "succeeded",
        };
    }
}

const ANALYSIS_FAILED = "analysis failed: app api canary 2.8.0, check error-rate: measured 0.2, threshold below 0.1 (1 of 1 measurements failed, failure limit 0)";
const apiWeight = (c: ConfigValues) => Number((c["platform:apps"] as any).api.canary.weight);

describe("npm run deploy: rollback decisions (mock engine)", function () {
    this.timeout(120_000);
    let receiver: Receiver;
    const lines: string[] = [];
    const run = async (s: EvaluatorStack): Promise<DeployOutcome> => {
        lines.length = 0;
        return deploy({
            stack: s.stack, cwd: ".", upArgs: ["--policy-pack", "policy"], out: (l) => lines.push(l),
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

    it("a canary step 10 → 50 whose analysis fails goes back to 10 by itself, re-runs the analysis, says so, exits 1", async () => {
        const s = staging((c) => (apiWeight(c) === 50 ? ANALYSIS_FAILED : undefined));
        assert.equal((await run(s)).code, 0, lines.join("\n"));
        const validated = s.outputs!.apps.api;
        s.set("platform:apps.api.canary.weight", 50);
        const r = await run(s);
        assert.equal(r.code, 1, r.summary.join("\n"));
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=10"]);
        assert.deepEqual(s.outputs!.apps.api.traffic, validated.traffic);
        assert.deepEqual(s.outputs!.apps.api.traffic, { stable: 90, canary: 10 });
        // The restore update replaced the restored state's analysis Job, so its checks ran again.
        const restore = s.ups[s.ups.length - 1];
        const replaced = restore.filter((_, i) => restore[i - 1] === "--replace");
        assert.equal(replaced.length, 1);
        assert.match(replaced[0], new RegExp(`::${validated.analysis.job}$`));
        assert.deepEqual(restore.slice(-2), ["--policy-pack", "policy"]);
        const summary = r.summary.join("\n");
        assert.match(summary, /^deploy staging: FAILED after \d+\.\d s: analysis failed: app api canary 2\.8\.0, check error-rate: measured 0\.2, threshold below 0\.1/);
        assert.match(summary, /restored apps\.api\.canary\.weight: 50 -> 10/);
        assert.match(summary, /rolled back in \d+\.\d s \(failure to restored traffic\); re-ran api-analysis-[0-9a-f]{8}: passed/);
        assert.match(summary, /api: traffic \{"stable":90,"canary":10\} before, \{"stable":90,"canary":10\} now/);
        assert.ok(!lines.join("\n").includes(receiver.secretPath), "the webhook URL must never be printed");
        assert.match(receiver.received.at(-1).text, /• api: versions stable 2\.7\.0, canary 2\.8\.0; traffic \{"stable":90,"canary":10\}\nrun: https:\/\/github\.com\/acme\/platform\/actions\/runs\/42$/);
        assert.deepEqual(receiver.received.map((m) => m.text.split(":")[0]), [
            "[staging] deploy started", "[staging] deploy succeeded", "[staging] deploy started", "[staging] deploy FAILED", "[staging] automatic ROLLBACK done",
        ]);
    });

    it("a new canary (weight 0 → 10 with a new version) that fails goes back to weight 0: everything on stable", async () => {
        const s = staging((c) => (apiWeight(c) === 10 ? ANALYSIS_FAILED : undefined));
        s.set("platform:apps.api.canary.weight", 0);
        s.set("platform:apps.api.canary.canary", "2.7.1");
        await s.upDirectly();
        s.set("platform:apps.api.canary.canary", "2.8.0");
        s.set("platform:apps.api.canary.weight", 10);
        const r = await run(s);
        assert.equal(r.code, 1, r.summary.join("\n"));
        assert.deepEqual(s.configSets.sort(), ["platform:apps.api.canary.canary=2.7.1", "platform:apps.api.canary.weight=0"]);
        assert.deepEqual(s.outputs!.apps.api.traffic, { stable: 100, canary: 0 });
        assert.deepEqual(Object.keys(s.outputs!.apps.api.images), ["stable"]);
    });

    it("a blue/green release and switch that fails puts the previous colour back in front, on the previous tag", async () => {
        const s = staging((c) => ((c["platform:apps"] as any).web.blueGreen.green === "1.6.0" ? "analysis failed: app web green 1.6.0, check health: measured HTTP 503, threshold HTTP 200 (5 attempts)" : undefined));
        s.set("platform:apps.web.analysis", PROM_CHECK);
        assert.equal((await run(s)).code, 0);
        s.set("platform:apps.web.blueGreen.green", "1.6.0");
        s.set("platform:apps.web.blueGreen.activeColor", "green");
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets.sort(), ["platform:apps.web.blueGreen.activeColor=blue", "platform:apps.web.blueGreen.green=1.5.0"]);
        assert.equal(s.outputs!.apps.web.traffic.active, "blue");
        assert.match(s.outputs!.apps.web.images.green, /:1\.5\.0$/);
        assert.match(r.summary[0], /check health: measured HTTP 503/);
    });

    it("a rolling release that fails goes back to the previous tag", async () => {
        const s = staging((c) => ((c["platform:apps"] as any).worker.tag === "2.9.0" ? "error: update failed: Job worker-analysis failed" : undefined));
        await run(s);
        s.set("platform:apps.worker.tag", "2.9.0");
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets, ["platform:apps.worker.tag=2.7.0"]);
        assert.match(s.outputs!.apps.worker.images.main, /:2\.7\.0$/);
    });

    it("rolls back to the newest validated release, not an older one", async () => {
        const s = staging((c) => (apiWeight(c) === 100 ? ANALYSIS_FAILED : undefined));
        await run(s);
        s.set("platform:apps.api.canary.weight", 50);
        assert.equal((await run(s)).code, 0);
        assert.equal(fromTags(s.tags)!.apps.api.release["canary.weight"], 50);
        s.set("platform:apps.api.canary.weight", 100);
        await run(s);
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=50"]);
        assert.deepEqual(s.outputs!.apps.api.traffic, { stable: 50, canary: 50 });
    });

    it("after a failed update outside the command, the stack tags still name the validated release", async () => {
        const s = staging((c) => (apiWeight(c) !== 10 ? ANALYSIS_FAILED : undefined));
        assert.equal((await run(s)).code, 0);
        s.set("platform:apps.api.canary.weight", 50);
        assert.equal((await s.run(["up"])).code, 255, "a plain `pulumi up` of a bad step fails");
        s.set("platform:apps.api.canary.weight", 100);
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=10"]);
        assert.match(r.summary.join("\n"), /rolling back to the release validated at \d{4}-\d\d-\d\dT/);
    });

    it("without any validated release there is nothing to roll back to: it says so and exits 1", async () => {
        const s = staging(() => ANALYSIS_FAILED);
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets, []);
        assert.match(r.summary.join("\n"), /no validated release is recorded for this stack: nothing to roll back to/);
        assert.deepEqual(receiver.received.map((m) => m.text.split(":")[0]), ["[staging] deploy started", "[staging] deploy FAILED"]);
    });

    it("when the restored release fails too, exits 2 and announces the failed rollback", async () => {
        let broken = false;
        const s = staging(() => (broken ? ANALYSIS_FAILED : undefined));
        await run(s);
        broken = true;
        s.set("platform:apps.api.canary.weight", 50);
        const r = await run(s);
        assert.equal(r.code, 2);
        assert.match(r.summary.join("\n"), /ROLLBACK FAILED after \d+\.\d s/);
        assert.equal(receiver.received.at(-1).text.split(":")[0], "[staging] automatic rollback FAILED");
    });

    it("a stack deployed before the command existed rolls back to its outputs if its last update succeeded", async () => {
        const s = staging((c) => (apiWeight(c) === 50 ? ANALYSIS_FAILED : undefined));
        await s.upDirectly();
        s.set("platform:apps.api.canary.weight", 50);
        const r = await run(s);
        assert.equal(r.code, 1);
        assert.deepEqual(s.configSets, ["platform:apps.api.canary.weight=10"]);
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

    it("usage errors name the missing argument", () => {
        assert.throws(() => parseArgs([]), /--stack is required/);
        assert.throws(() => parseArgs(["--stack", "x", "--force"]), /unknown argument --force/);
        assert.deepEqual(parseArgs(["--stack", "staging", "--", "--policy-pack", "policy"]).upArgs, ["--policy-pack", "policy"]);
    });
});
