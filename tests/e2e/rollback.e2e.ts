import * as assert from "assert";
import { spawn } from "child_process";
import * as path from "path";
import { Receiver } from "../analysis/servers";
import { jobFailed, Kube, ns, Obj, WatchEvent } from "./kube";
import { exportsOf, Project, ROOT } from "./project";
import { exits, labelIs, Stages, STARTING_JOB_POD } from "./stages";

// `npm run deploy` against a live API server (the cluster stack on scripts/ensure-cluster): a traffic
// move whose analysis Job fails is put back by the command itself, and the server shows traffic
// exactly where it was. The analysis pod's failure is injected with a kwok Stage (the simulator runs
// no container); its termination message is the line scripts/analysis/analyze.js would print.
// The time from failure to restored traffic is read from the server's watch: the analysis Job
// marked Failed → the traffic object back at its validated state.

const STACK = "cluster";
const LABEL_TRACK = "platform.dev/track";
const HEALTH = [["name", "health"], ["path", "/healthz"], ["attempts", "2"], ["intervalSeconds", "1"]];

describe("`npm run deploy` rolls back a failed analysis on a live API server (the cluster stack)", function () {
    this.timeout(30 * 60 * 1000);
    let project: Project;
    let kube: Kube;
    let stages: Stages;
    let receiver: Receiver;
    let paths: ReturnType<typeof ns>;
    const figures: Record<string, number> = {};

    const set = (key: string, value: string | number) => project.pulumi(["config", "set", "--path", key, String(value)]);
    const outputs = () => JSON.parse(project.pulumi(["stack", "output", "apps", "--json"]).stdout);

    /** `npm run deploy` of the stack, recording the namespace's changes meanwhile. */
    async function deploy(label: string): Promise<{ code: number | null; out: string; summary: string; events: WatchEvent[] }> {
        const rec = await kube.record([paths.services, paths.jobs, paths.httproutes, paths.ingresses]);
        const t = Date.now();
        const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
            const p = spawn(path.join(project.work, "node_modules", ".bin", "ts-node"), ["--transpile-only", "tools/deploy.ts", "--stack", STACK, "--cwd", project.work],
                { cwd: project.work, env: { ...project.env, PLATFORM_WEBHOOK_URL: receiver.url, PLATFORM_RUN_URL: "https://ci.example/runs/7" } });
            let out = "";
            p.stdout.on("data", (d) => (out += d));
            p.stderr.on("data", (d) => (out += d));
            p.on("close", (code) => resolve({ code, out }));
        });
        figures[label] = (Date.now() - t) / 1000;
        await rec.stop();
        const at = out.indexOf("==== deploy summary");
        return { code, out, summary: at >= 0 ? out.slice(at) : out.slice(-3000), events: rec.events };
    }

    /** The objects that carry traffic, as the server has them. */
    async function traffic(): Promise<Obj> {
        return {
            services: Object.fromEntries((await kube.list(paths.services)).map((s) => [s.metadata.name, s.spec.selector])),
            routes: Object.fromEntries((await kube.list(paths.httproutes)).map((r) => [r.metadata.name, r.spec.rules])),
            ingresses: Object.fromEntries((await kube.list(paths.ingresses)).map((i) => [i.metadata.name, {
                backend: i.spec.rules[0].http.paths[0].backend.service.name,
                weight: i.metadata.annotations?.["nginx.ingress.kubernetes.io/canary-weight"] ?? null,
            }])),
        };
    }

    /**
     * A Stage that fails the analysis pods of `app` that verify `version`, except those of the
     * validated state's Job: the failed release's analysis fails, the restored state's passes.
     */
    async function failAnalysis(name: string, app: string, version: string, validatedJob: string, line: string): Promise<void> {
        await stages.add(name, [
            labelIs("app.kubernetes.io/name", `${app}-analysis`),
            labelIs("app.kubernetes.io/version", version),
            { key: `.metadata.labels["job-name"]`, operator: "NotIn", values: [validatedJob] },
            ...STARTING_JOB_POD,
        ], exits(1, line));
    }

    /** Seconds from the first failed analysis Job to the first event for which `restored` holds. */
    function failureToRestored(events: WatchEvent[], restored: (e: WatchEvent) => boolean): number {
        const failed = events.find((e) => e.object.kind === "Job" && /-analysis-/.test(e.object.metadata.name) && jobFailed(e.object));
        assert.ok(failed, "no analysis Job was seen failing");
        const back = events.find((e) => e.revision > failed!.revision && restored(e));
        assert.ok(back, "traffic was never seen restored after the failure");
        return (back!.seenAt - failed!.seenAt) / 1000;
    }

    before(async function () {
        const cluster = exportsOf(path.join(ROOT, "scripts", "ensure-cluster"), ["start"]);
        project = new Project(STACK, { KUBECONFIG: cluster.KUBECONFIG });
        kube = new Kube(cluster.KUBECONFIG!);
        const NS = `e2e-rb-${Date.now().toString(36)}`;
        paths = ns(NS);
        stages = new Stages(kube, NS);
        receiver = await new Receiver().start();
        set("namespace", NS);
        for (const app of ["api", "web"]) for (const [k, v] of HEALTH) set(`apps.${app}.analysis.http[0].${k}`, v);
        const first = await deploy("first deploy (validated)");
        assert.equal(first.code, 0, first.out.slice(-4000));
    });

    after(async function () {
        await stages?.removeAll();
        await receiver?.stop();
        if (project && !process.env.PLATFORM_E2E_KEEP) project.pulumi(["destroy", "--yes", "--skip-preview"], { allowFail: true, label: "destroy" });
        process.stdout.write(`      figures (s): ${JSON.stringify(figures)}\n`);
        project?.dispose();
    });

    it("a canary step (Gateway) whose analysis fails: aborted to weight 0 (every request on stable), no other app touched, the team is told", async function () {
        set("apps.api.canary.canary", "2.8.0");
        set("apps.api.canary.weight", 10);
        const step = await deploy("canary 0 → 10 (validated)");
        assert.equal(step.code, 0, step.out.slice(-4000));
        const validatedJob = outputs().api.analysis.job as string;
        const before = await traffic();
        assert.deepEqual(before.routes.api[0].backendRefs.map((b: Obj) => [b.name, b.weight]), [["api-stable", 90], ["api-canary", 10]]);
        const deployments = Object.fromEntries((await kube.list(paths.deployments)).map((d) => [d.metadata.name, d.metadata.generation]));

        const line = "analysis failed: app api canary 2.8.0, check error-rate: measured 0.2, threshold below 0.1 (1 of 1 measurements failed, failure limit 0)";
        await failAnalysis("e2e-rb-api-analysis-fails", "api", "2.8.0", validatedJob, line);
        receiver.received.length = 0;
        set("apps.api.canary.weight", 50);
        const failed = await deploy("canary 10 → 50 (analysis fails, rolled back)");
        process.stdout.write(`${failed.summary.split("\n").map((l) => `      ${l}`).join("\n")}\n`);
        assert.equal(failed.code, 1, failed.out.slice(-4000));
        // pulumi says only that the Job failed; the command reads the pod's result line and leads with it.
        assert.ok(failed.summary.includes(`deploy cluster: FAILED after`) && failed.summary.includes(`s: ${line}`), failed.summary);
        assert.match(failed.summary, /restored apps\.api\.canary\.weight: "?50"? -> "?0"?/);
        assert.match(failed.summary, /rolled back in [\d.]+ s \(failure to restored traffic\); the restored state's analysis passed/);

        // The server: the 50 % state was reached (the analysis runs after the move), then put back.
        const weightOf = (e: WatchEvent) => e.object.kind === "HTTPRoute" && e.object.spec.rules[0].backendRefs.find((b: Obj) => b.name === "api-canary")?.weight;
        assert.ok(failed.events.some((e) => weightOf(e) === 50), "the route never reached 50 %: the analysis did not run after the move");
        // Aborted: the route sends everything to stable (the canary's errors do not depend on its weight).
        const allOnStable = (rules: Obj[]) => rules[0].backendRefs.every((b: Obj) => b.name === "api-stable" || b.weight === 0);
        figures["canary: failed analysis → route all on stable"] = failureToRestored(failed.events, (e) => e.object.kind === "HTTPRoute" && e.object.metadata.name === "api" && allOnStable(e.object.spec.rules));
        const after = await traffic();
        assert.ok(allOnStable(after.routes.api), JSON.stringify(after.routes.api));
        // Every other app's traffic objects are as they were (api's own canary Service goes with its track).
        const othersOnly = (t: Obj) => Object.fromEntries(Object.entries(t).map(([kind, objects]) => [kind, Object.fromEntries(Object.entries(objects as Obj).filter(([n]) => !/^api(-|$)/.test(n)))]));
        assert.deepEqual(othersOnly(after), othersOnly(before), "another app's traffic changed");
        assert.equal(after.services["api-canary"], undefined, "the canary's Service goes with its track");
        // Only the failed app was updated: every other app's Deployments are as they were.
        const now = Object.fromEntries((await kube.list(paths.deployments)).map((d) => [d.metadata.name, d.metadata.generation]));
        const others = (d: Record<string, number>) => Object.fromEntries(Object.entries(d).filter(([n]) => !n.startsWith("api-")));
        assert.deepEqual(others(now), others(deployments), "the rollback changed another app's Deployment");
        assert.equal(now["api-canary"], undefined, "the canary's pods are gone");
        assert.notEqual(outputs().api.analysis.job, validatedJob, "the aborted state ran its own analysis");

        const notices = receiver.received.map((m) => (m.text as string).split(":")[0]);
        assert.deepEqual(notices, ["[cluster] deploy started", "[cluster] deploy FAILED", "[cluster] automatic ROLLBACK done"]);
        await stages.remove("e2e-rb-api-analysis-fails");
    });

    it("a blue/green switch whose analysis fails: the active Service selects the previous colour again, which never stopped serving", async function () {
        const active = (await kube.get(`${paths.services}/web`))!.spec.selector[LABEL_TRACK] as string;
        const idle = active === "blue" ? "green" : "blue";
        set(`apps.web.blueGreen.${idle}`, "1.5.0");
        const release = await deploy("release to the idle colour (validated)");
        assert.equal(release.code, 0, release.out.slice(-4000));
        const validatedJob = outputs().web.analysis.job as string;
        const before = await traffic();
        assert.equal(before.services.web[LABEL_TRACK], active);
        const activeDeployment = (await kube.get(`${paths.deployments}/web-${active}`))!;

        const line = `analysis failed: app web ${idle} 1.5.0, check health: measured HTTP 503, threshold 200 (2 of 2 attempts failed)`;
        await failAnalysis("e2e-rb-web-analysis-fails", "web", "1.5.0", validatedJob, line);
        set("apps.web.blueGreen.activeColor", idle);
        const failed = await deploy("switch (analysis fails, rolled back)");
        process.stdout.write(`${failed.summary.split("\n").map((l) => `      ${l}`).join("\n")}\n`);
        assert.equal(failed.code, 1, failed.out.slice(-4000));
        assert.ok(failed.summary.includes(`s: ${line}`), failed.summary);
        assert.match(failed.summary, new RegExp(`restored apps\\.web\\.blueGreen\\.activeColor: "?${idle}"? -> "?${active}"?`));
        const selected = (e: WatchEvent) => e.object.kind === "Service" && e.object.metadata.name === "web" ? e.object.spec.selector[LABEL_TRACK] : undefined;
        assert.ok(failed.events.some((e) => selected(e) === idle), "the Service never switched: the analysis did not run after the move");
        figures["blue/green: failed analysis → Service back on the old colour"] = failureToRestored(failed.events, (e) => selected(e) === active);
        assert.deepEqual(await traffic(), before, "traffic is not where the validated release had it");
        const kept = (await kube.get(`${paths.deployments}/web-${active}`))!;
        assert.equal(kept.metadata.uid, activeDeployment.metadata.uid, "the previous colour was replaced");
        assert.equal(kept.metadata.generation, activeDeployment.metadata.generation, "the previous colour's Deployment changed");
        await stages.remove("e2e-rb-web-analysis-fails");
    });
});
