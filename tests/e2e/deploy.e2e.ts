import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { Receiver } from "../analysis/servers";
import { evaluate } from "../../tools/evaluate";
import { engineWorkspace, ensurePulumi, ROOT } from "../../tools/engine";
import { fromTags } from "../../tools/release";

// `npm run deploy` with the real Pulumi engine on the local stack (file backend, manifests written
// to out/local). The local stack has no cluster, so no analysis Job runs; the failure is made real
// in the engine instead: the file the new analysis Job's manifest goes to is made unwritable, so
// that Job fails to be created — after the traffic objects of the new state were applied, exactly
// where a failed analysis fails `pulumi up`. The command must then put traffic back by itself.
// The same command against a live API server is the cluster issue's proof.

const STACK = "local";

type Obj = Record<string, any>;

function manifests(dir: string): Map<string, { file: string; doc: Obj }> {
    const out = new Map<string, { file: string; doc: Obj }>();
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) walk(p);
            else if (/\.ya?ml$/.test(e.name)) {
                for (const doc of yaml.loadAll(fs.readFileSync(p, "utf8")) as Obj[]) {
                    if (doc) out.set(`${doc.kind}/${doc.metadata?.name}`, { file: p, doc });
                }
            }
        }
    };
    walk(dir);
    return out;
}

describe("npm run deploy with the real engine (local stack)", function () {
    this.timeout(30 * 60 * 1000);
    let work = "", env: NodeJS.ProcessEnv = {};
    let receiver: Receiver;
    const timings: Record<string, number> = {};

    const pulumi = (args: string[]) => {
        const r = spawnSync("pulumi", [...args, "--stack", STACK, "--non-interactive"], { cwd: work, env, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.status}: ${r.stderr}${r.stdout}`);
        return r.stdout;
    };
    // Asynchronous: the webhook receiver lives in this process and must answer while deploy runs.
    const deploy = (label: string): Promise<{ code: number | null; out: string }> => new Promise((resolve) => {
        const t = Date.now();
        const p = spawn(path.join(work, "node_modules", ".bin", "ts-node"), ["--transpile-only", "tools/deploy.ts", "--stack", STACK, "--cwd", work],
            { cwd: work, env: { ...env, PLATFORM_WEBHOOK_URL: receiver.url, PLATFORM_RUN_URL: "https://ci.example/runs/1" } });
        let out = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (out += d));
        p.on("close", (code) => {
            timings[label] = (Date.now() - t) / 1000;
            resolve({ code, out });
        });
    });
    const stackConfig = () => (yaml.load(fs.readFileSync(path.join(work, `Pulumi.${STACK}.yaml`), "utf8")) as Obj).config;
    const analysisJobOf = async () => {
        const e = await evaluate(STACK, stackConfig());
        return e.resources.find((r) => r.type === "kubernetes:batch/v1:Job" && /-analysis-/.test(r.inputs.metadata.name))!.inputs.metadata.name as string;
    };

    before(async function () {
        ({ work, env } = engineWorkspace(ROOT, "platform-deploy-e2e-", ensurePulumi()));
        spawnSync("pulumi", ["stack", "select", "--create", STACK, "--non-interactive"], { cwd: work, env });
        receiver = await new Receiver().start();
        // 4 replicas make weights 25 and 50 different pod splits (replicas routing).
        pulumi(["config", "set", "--path", "apps.api.replicas", "4"]);
        pulumi(["config", "set", "--path", "apps.api.canary.weight", "25"]);
        pulumi(["config", "set", "--path", "apps.api.analysis.http[0].name", "health"]);
        pulumi(["config", "set", "--path", "apps.api.analysis.http[0].path", "/healthz"]);
    });

    after(async function () {
        await receiver?.stop();
        process.stdout.write(`      wall times (s): ${JSON.stringify(timings)}\n`);
        if (work && !process.env.PLATFORM_E2E_KEEP) fs.rmSync(work, { recursive: true, force: true });
    });

    it("deploys, records the validated release in stack tags, aborts a failed canary step to weight 0, and holds it on the next deploy", async function () {
        const first = await deploy("deploy (validated)");
        assert.equal(first.code, 0, first.out);
        assert.match(first.out, /deploy local: succeeded in [\d.]+ s, every traffic move verified by its analysis; recorded as the last validated release/);
        const tags = JSON.parse(pulumi(["stack", "tag", "ls", "--json"]));
        const recorded = fromTags(tags);
        assert.ok(recorded, JSON.stringify(tags));
        assert.deepEqual(recorded.apps.api.release, { "canary.stable": "2.7.0", "canary.canary": "2.8.0", "canary.weight": 25 });
        const out = path.join(work, "out", STACK);
        const validated = manifests(out);
        const validatedJob = await analysisJobOf();
        assert.equal(recorded.apps.api.analysisJob, validatedJob);
        assert.equal(validated.get("Deployment/api-canary")!.doc.spec.replicas, 1);
        assert.equal(validated.get("Deployment/api-stable")!.doc.spec.replicas, 3);

        // The next step, 50 %: its analysis Job cannot be created (a directory where its manifest goes).
        pulumi(["config", "set", "--path", "apps.api.canary.weight", "50"]);
        const failingJob = await analysisJobOf();
        assert.notEqual(failingJob, validatedJob);
        const jobFile = validated.get(`Job/${validatedJob}`)!.file.replace(validatedJob, failingJob);
        fs.mkdirSync(jobFile);
        fs.writeFileSync(path.join(jobFile, "blocked"), "the analysis of this step fails\n");

        const failed = await deploy("deploy (fails, rolls back)");
        assert.equal(failed.code, 1, failed.out);
        const summary = failed.out.slice(failed.out.indexOf("==== deploy summary"));
        process.stdout.write(`${summary.split("\n").map((l) => `      ${l}`).join("\n")}\n`);
        assert.match(summary, /deploy local: FAILED after [\d.]+ s: /);
        assert.match(summary, /restored apps\.api\.canary\.weight: "?50"? -> "?0"?/);
        const seconds = Number(/rolled back in ([\d.]+) s \(failure to restored traffic\); the restored state's analysis passed/.exec(summary)?.[1]);
        assert.ok(seconds > 0, summary);
        timings["failure to restored traffic"] = seconds;
        assert.match(summary, /rolling back api to the release validated at \S+ \(a canary aborts to weight 0\)/);

        // The canary aborted to weight 0: stable takes every request, the canary's pods are gone.
        const now = manifests(out);
        assert.equal(now.has("Deployment/api-canary"), false);
        assert.equal(now.get("Deployment/api-stable")!.doc.spec.replicas, 4);
        for (const [k, v] of validated) {
            if (!/api/.test(k)) assert.deepStrictEqual(now.get(k)?.doc, v.doc, `${k} (another app) changed`);
        }
        assert.equal(String(stackConfig()["platform:apps"].api.canary.weight), "0");
        assert.equal(JSON.parse(pulumi(["stack", "output", "apps", "--json"])).api.traffic.stable, 100);

        // The repository still says 50 %: the next deploy of that config holds the failed step.
        pulumi(["config", "set", "--path", "apps.api.canary.weight", "50"]);
        const again = await deploy("deploy (the failed step again: held)");
        assert.equal(again.code, 4, again.out);
        assert.match(again.out, /api: HELD at its validated release: the config names the release that failed at /);
        assert.equal(manifests(out).has("Deployment/api-canary"), false, "no traffic goes to the failed step again");
        assert.equal(String(stackConfig()["platform:apps"].api.canary.weight), "0");

        const events = receiver.received.map((m) => (m.text as string).split(":")[0]);
        assert.deepEqual(events, ["[local] deploy started", "[local] deploy succeeded", "[local] deploy started", "[local] deploy FAILED", "[local] automatic ROLLBACK done", "[local] deploy started", "[local] deploy succeeded"]);
        assert.ok(!failed.out.includes(receiver.secretPath), "the webhook URL must never be printed");
    });
});
