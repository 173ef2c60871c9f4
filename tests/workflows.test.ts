import { ANALYSIS_MAX_SECONDS } from "../components/config/analysis";
import { BACKUP_DEADLINE_SECONDS } from "../components/backup";
import * as assert from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { validateWorkflow } = require("@action-validator/core") as { validateWorkflow(src: string): { errors: unknown[] } };

// The CI workflows: valid against the published GitHub workflow JSON schema (schemastore's, as
// bundled by @action-validator/core), and held to this project's rules by structural checks.

const DIR = path.join(__dirname, "..", ".github", "workflows");
const FILES = fs.readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort();
const load = (file: string) => yaml.load(fs.readFileSync(path.join(DIR, file), "utf8")) as Workflow;

interface Step { uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string>; name?: string }
interface Job {
    uses?: string; needs?: string | string[]; "runs-on"?: string; steps?: Step[]; permissions?: Record<string, string> | string;
    environment?: string | { name: string }; concurrency?: { group: string; "cancel-in-progress"?: boolean } | string; if?: string;
    strategy?: { matrix?: Record<string, unknown[]> }; "timeout-minutes"?: number;
}
interface Workflow { name?: string; on: Record<string, any>; permissions?: Record<string, string> | string; concurrency?: unknown; jobs: Record<string, Job> }

const PULUMI = /^pulumi\/actions@/;
/** Steps of pulumi/actions that run a command (without one, the action only installs the CLI). */
const pulumiSteps = (job: Job) => (job.steps ?? []).filter((s) => s.uses && PULUMI.test(s.uses) && s.with?.command);
const installsPulumi = (job: Job) => (job.steps ?? []).some((s) => s.uses && PULUMI.test(s.uses) && !s.with?.command);
/** Steps that run a project command driving the Pulumi CLI: the deploy (with rollback) or the health check. */
const commandSteps = (job: Job, name: "deploy" | "healthcheck") => (job.steps ?? []).filter((s) => s.run && new RegExp(`\\bnpm run ${name}\\b`).test(s.run));
const isDeploy = (job: Job) => pulumiSteps(job).some((s) => s.with?.command === "up") || commandSteps(job, "deploy").length > 0;
const needsOf = (job: Job) => (job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs]);
const WRITE_SCOPES_ALLOWED = new Set(["id-token", "pull-requests"]);

/** This project's rules for a workflow; an empty list means it keeps them all. */
export function workflowProblems(wf: Workflow): string[] {
    const problems: string[] = [];
    if (!wf || typeof wf !== "object" || !wf.on) return ["has no `on`"];
    if (!wf.jobs || Object.keys(wf.jobs).length === 0) problems.push("has no jobs");
    if (!wf.permissions || typeof wf.permissions !== "object") problems.push("has no top-level permissions map (least privilege: contents: read)");
    else for (const [scope, level] of Object.entries(wf.permissions)) if (level === "write") problems.push(`grants ${scope}: write to every job`);
    for (const [name, job] of Object.entries(wf.jobs ?? {})) {
        if (job.uses) {
            if (!job.uses.startsWith("./.github/workflows/")) problems.push(`job ${name} calls a workflow outside this repository`);
            continue;
        }
        if (!job["runs-on"]) problems.push(`job ${name} has no runs-on`);
        if (!job.steps?.length) problems.push(`job ${name} has no steps`);
        if (typeof job.permissions === "string") problems.push(`job ${name} has permissions "${job.permissions}" instead of a map`);
        const perms = typeof job.permissions === "object" ? job.permissions : {};
        for (const [scope, level] of Object.entries(perms)) {
            if (level === "write" && !WRITE_SCOPES_ALLOWED.has(scope)) problems.push(`job ${name} may write ${scope}`);
        }
        const usesAuth = (job.steps ?? []).some((s) => s.uses?.startsWith("google-github-actions/auth@"));
        if (perms["id-token"] === "write" && !usesAuth) problems.push(`job ${name} can mint OIDC tokens but does not authenticate to Google`);
        if (usesAuth && perms["id-token"] !== "write") problems.push(`job ${name} authenticates to Google without id-token: write`);
        if (usesAuth) {
            const auth = job.steps!.find((s) => s.uses?.startsWith("google-github-actions/auth@"))!;
            if (!auth.with?.workload_identity_provider) problems.push(`job ${name} authenticates to Google without Workload Identity Federation`);
            if (auth.with?.credentials_json) problems.push(`job ${name} uses a service account key`);
        }
        const commenting = pulumiSteps(job).some((s) => s.with?.["comment-on-pr"] === true);
        if (perms["pull-requests"] === "write" && !commenting) problems.push(`job ${name} may write pull requests but comments nothing`);
        if (commenting && perms["pull-requests"] !== "write") problems.push(`job ${name} comments on the PR without pull-requests: write`);
        for (const step of job.steps ?? []) {
            // A tag can be moved to other code; a commit cannot (the tag goes in a comment).
            if (step.uses && !step.uses.startsWith("./") && !/@[0-9a-f]{40}$/.test(step.uses)) {
                problems.push(`job ${name} uses ${step.uses} without pinning a commit SHA`);
            }
            if (step.run && /\$\{\{\s*secrets\./.test(step.run)) problems.push(`job ${name} puts a secret into a shell command (${step.name ?? step.run.slice(0, 30)})`);
        }
        const environment = typeof job.environment === "object" ? job.environment.name : job.environment ?? "";
        const previewOnly = environment.endsWith("-preview");
        for (const step of pulumiSteps(job)) {
            // Previews get the read-only token of a *-preview environment; only deploys get the deployers' one.
            const deploys = step.with?.command !== "preview";
            const token = deploys ? "${{ secrets.PULUMI_ACCESS_TOKEN }}" : "${{ secrets.PULUMI_PREVIEW_ACCESS_TOKEN }}";
            if (step.env?.PULUMI_ACCESS_TOKEN !== token) problems.push(`job ${name} runs pulumi ${step.with?.command} without PULUMI_ACCESS_TOKEN: ${token}`);
            if (!deploys && !previewOnly) problems.push(`job ${name} previews outside a *-preview environment (its credentials must be read-only)`);
            if (deploys && previewOnly) problems.push(`job ${name} runs pulumi ${step.with?.command} in the read-only environment ${environment}`);
            if (step.with?.policyPacks !== "policy") problems.push(`job ${name} runs pulumi without the policy pack`);
            if (!needsOf(job).includes("checks")) problems.push(`job ${name} runs pulumi before the checks pass`);
        }
        for (const step of [...commandSteps(job, "deploy"), ...commandSteps(job, "healthcheck")]) {
            // The health check only reads: the read-only token of a *-preview environment, never the deployers'.
            const reads = !commandSteps(job, "deploy").includes(step);
            const token = reads ? "${{ secrets.PULUMI_PREVIEW_ACCESS_TOKEN }}" : "${{ secrets.PULUMI_ACCESS_TOKEN }}";
            if (step.env?.PULUMI_ACCESS_TOKEN !== token) problems.push(`job ${name} runs the Pulumi CLI without PULUMI_ACCESS_TOKEN: ${token}`);
            if (reads && !previewOnly) problems.push(`job ${name} runs the health check outside a *-preview environment (its credentials must be read-only)`);
            if (step.env?.PLATFORM_WEBHOOK_URL !== "${{ secrets.PLATFORM_WEBHOOK_URL }}") problems.push(`job ${name} cannot announce: PLATFORM_WEBHOOK_URL is not the secret`);
            if (!installsPulumi(job)) problems.push(`job ${name} runs the Pulumi CLI without installing it`);
            if (/\$\{\{/.test(step.run!)) problems.push(`job ${name} puts an expression into the command line (pass it through env)`);
        }
        for (const step of commandSteps(job, "deploy")) {
            if (!/ -- .*--policy-pack policy\b/.test(step.run!)) problems.push(`job ${name} runs pulumi without the policy pack`);
            if (!needsOf(job).includes("checks")) problems.push(`job ${name} runs pulumi before the checks pass`);
        }
        if (isDeploy(job)) {
            if (pulumiSteps(job).some((s) => s.with?.command === "up")) problems.push(`deploy job ${name} runs pulumi up directly: deploy through npm run deploy (automatic rollback)`);
            const c = job.concurrency;
            if (!c || typeof c !== "object" || !c.group) problems.push(`deploy job ${name} has no concurrency group`);
            else if (c["cancel-in-progress"] !== false) problems.push(`deploy job ${name} may cancel an update in progress`);
            if (!job.environment) problems.push(`deploy job ${name} runs outside a GitHub environment`);
        }
    }
    if (wf.on && "pull_request" in wf.on && JSON.stringify(wf).includes("secrets.PULUMI_ACCESS_TOKEN")) {
        problems.push("runs on pull requests and references the deployers' PULUMI_ACCESS_TOKEN");
    }
    return problems;
}

describe("CI workflows", () => {
    it("exist: checks, pull request, staging, production and the hourly health check", () => {
        assert.deepEqual(FILES, ["checks.yml", "deploy-production.yml", "deploy-staging.yml", "health.yml", "pull-request.yml"]);
    });

    for (const file of FILES) {
        it(`${file} is valid against the GitHub workflow schema`, () => {
            const result = validateWorkflow(fs.readFileSync(path.join(DIR, file), "utf8"));
            assert.deepEqual(result.errors, []);
        });

        it(`${file} keeps the project's rules (pinned actions, least privilege, serialised deploys, no secret in a shell)`, () => {
            assert.deepEqual(workflowProblems(load(file)), []);
        });
    }

    it("the schema validator rejects a broken workflow (a job without runs-on, a misspelled key)", () => {
        const broken = "on: push\njobs:\n  a:\n    stepz:\n      - run: echo hi\n";
        assert.ok(validateWorkflow(broken).errors.length > 0);
        assert.ok(validateWorkflow("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    permissions: { contents: sometimes }\n    steps:\n      - run: echo hi\n").errors.length > 0);
    });

    it("the structural checks catch each kind of mistake", () => {
        const base = load("deploy-production.yml");
        const mutate = (f: (wf: Workflow) => void) => {
            const wf = structuredClone(base);
            f(wf);
            return workflowProblems(wf).join("\n");
        };
        assert.match(mutate((wf) => delete wf.jobs.up.concurrency), /no concurrency group/);
        assert.match(mutate((wf) => ((wf.jobs.up.concurrency as any)["cancel-in-progress"] = true)), /may cancel an update in progress/);
        assert.match(mutate((wf) => delete wf.permissions), /no top-level permissions/);
        assert.match(mutate((wf) => (wf.jobs.up.permissions = { contents: "write", "id-token": "write" })), /may write contents/);
        assert.match(mutate((wf) => (wf.jobs.up.steps!.find((s) => s.uses?.startsWith("actions/checkout"))!.uses = "actions/checkout@main")), /without pinning a commit SHA/);
        assert.match(mutate((wf) => (wf.jobs.up.steps!.find((s) => s.uses?.startsWith("actions/checkout"))!.uses = "actions/checkout@v4")), /without pinning a commit SHA/);
        assert.match(mutate((wf) => wf.jobs.up.steps!.push({ run: "echo ${{ secrets.PULUMI_ACCESS_TOKEN }}" })), /secret into a shell command/);
        assert.match(mutate((wf) => delete wf.jobs.up.environment), /outside a GitHub environment/);
        assert.match(mutate((wf) => (wf.jobs.up.needs = [])), /before the checks pass/);
        const deployStep = (wf: Workflow) => commandSteps(wf.jobs.up, "deploy")[0];
        assert.match(mutate((wf) => (deployStep(wf).run = deployStep(wf).run!.replace("--policy-pack policy", ""))), /without the policy pack/);
        assert.match(mutate((wf) => delete deployStep(wf).env!.PLATFORM_WEBHOOK_URL), /cannot announce/);
        assert.match(mutate((wf) => delete deployStep(wf).env!.PULUMI_ACCESS_TOKEN), /without PULUMI_ACCESS_TOKEN/);
        assert.match(mutate((wf) => (deployStep(wf).run += ' --message "${{ github.event.head_commit.message }}"')), /expression into the command line/);
        assert.match(mutate((wf) => (wf.jobs.up.steps = wf.jobs.up.steps!.filter((s) => !(s.uses && PULUMI.test(s.uses))))), /without installing it/);
        assert.match(mutate((wf) => wf.jobs.up.steps!.push({ uses: "pulumi/actions@v6", with: { command: "up", "stack-name": "x", policyPacks: "policy" }, env: { PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}" } })), /runs pulumi up directly/);
        assert.match(mutate((wf) => delete wf.jobs.up.steps!.find((s) => s.uses?.startsWith("google-github-actions/auth@"))!.with!.workload_identity_provider), /without Workload Identity Federation/);
        assert.match(mutate((wf) => delete wf.jobs.up["runs-on"]), /has no runs-on/);
    });

    it("every external action is pinned by commit SHA with its release tag in a comment", () => {
        let pinned = 0;
        for (const file of FILES) {
            for (const line of fs.readFileSync(path.join(DIR, file), "utf8").split("\n").filter((l) => /^\s*(- )?uses:/.test(l) && !l.includes("./"))) {
                assert.match(line, /uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, `${file}: ${line.trim()}`);
                pinned++;
            }
        }
        assert.ok(pinned >= 10);
    });

    it("pull-request previews hold only read-only credentials (a *-preview environment, the preview token)", () => {
        const pr = load("pull-request.yml");
        const [step] = pulumiSteps(pr.jobs.preview);
        assert.equal(pr.jobs.preview.environment, "${{ matrix.stack }}-preview");
        assert.equal(step.env?.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_PREVIEW_ACCESS_TOKEN }}");
        assert.ok(!fs.readFileSync(path.join(DIR, "pull-request.yml"), "utf8").includes("secrets.PULUMI_ACCESS_TOKEN"));
        const mutate = (f: (wf: Workflow) => void) => {
            const wf = structuredClone(pr);
            f(wf);
            return workflowProblems(wf).join("\n");
        };
        assert.match(mutate((wf) => (pulumiSteps(wf.jobs.preview)[0].env!.PULUMI_ACCESS_TOKEN = "${{ secrets.PULUMI_ACCESS_TOKEN }}")), /deployers' PULUMI_ACCESS_TOKEN/);
        assert.match(mutate((wf) => (wf.jobs.preview.environment = "${{ matrix.stack }}")), /previews outside a \*-preview environment/);
        assert.match(mutate((wf) => (pulumiSteps(wf.jobs.preview)[0].with!.command = "up")), /runs pulumi up in the read-only environment/);
        for (const file of ["deploy-staging.yml", "deploy-production.yml"]) {
            const up = Object.values(load(file).jobs).find(isDeploy)!;
            // deploys run `npm run deploy`, which drives pulumi with the deployers' token
            const deploy = up.steps!.find((s) => /npm run deploy/.test(s.run ?? ""))!;
            assert.equal(deploy.env?.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_ACCESS_TOKEN }}", file);
            assert.ok(!String(up.environment).endsWith("-preview"), file);
        }
    });

    it("pull requests: checks, then a preview of staging and production commented on the PR", () => {
        const wf = load("pull-request.yml");
        assert.deepEqual(Object.keys(wf.on), ["pull_request"]);
        assert.equal(wf.jobs.checks.uses, "./.github/workflows/checks.yml");
        const preview = wf.jobs.preview;
        assert.deepEqual(preview.strategy?.matrix?.stack, ["staging", "production"]);
        const [step] = pulumiSteps(preview);
        assert.equal(step.with?.command, "preview");
        assert.equal(step.with?.["comment-on-pr"], true);
        assert.equal(step.with?.["stack-name"], "${{ vars.PULUMI_ORG }}/${{ matrix.stack }}");
        assert.ok(!isDeploy(preview));
    });

    it("checks install, typecheck and run npm test", () => {
        const runs = (load("checks.yml").jobs.test.steps ?? []).map((s) => s.run).filter(Boolean);
        for (const cmd of ["npm ci", "npm run build", "npm test"]) assert.ok(runs.includes(cmd), cmd);
        const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
        assert.match(pkg.scripts.build, /tsc --noEmit/);
    });

    it("main deploys staging; a v* tag deploys production behind its environment; both through the rollback command; each stack has its own lock", () => {
        const staging = load("deploy-staging.yml");
        const production = load("deploy-production.yml");
        assert.deepEqual(staging.on, { push: { branches: ["main"] } });
        assert.deepEqual(production.on, { push: { tags: ["v*"] } });
        const up = (wf: Workflow) => Object.values(wf.jobs).find(isDeploy)!;
        assert.equal(up(staging).environment, "staging");
        assert.equal(up(production).environment, "production");
        assert.match(commandSteps(up(staging), "deploy")[0].run!, /^npm run deploy -- --stack "\$PULUMI_ORG\/staging" -- --policy-pack policy/);
        assert.match(commandSteps(up(production), "deploy")[0].run!, /^npm run deploy -- --stack "\$PULUMI_ORG\/production" -- --policy-pack policy/);
        for (const wf of [staging, production]) assert.equal(commandSteps(up(wf), "deploy")[0].env?.PULUMI_ORG, "${{ vars.PULUMI_ORG }}");
        const group = (wf: Workflow) => (up(wf).concurrency as { group: string }).group;
        assert.notEqual(group(staging), group(production));
        assert.match(group(staging), /staging/);
        assert.match(group(production), /production/);
    });

    it("a deploy job's timeout covers the pre-deploy backup's deadline, the update's analysis and a rollback with its analysis", () => {
        // CI's own timeout must not be what stops a deploy: it would leave no notice and no rollback.
        const minutes = (file: string) => Object.values(load(file).jobs).find(isDeploy)!["timeout-minutes"] as number;
        const analysis = (2 * ANALYSIS_MAX_SECONDS) / 60;
        const rollouts = 2 * 10; // two updates (the deploy and its rollback), each with rollouts of up to 10 minutes
        assert.ok(minutes("deploy-production.yml") >= BACKUP_DEADLINE_SECONDS / 60 + analysis + rollouts, `production: ${minutes("deploy-production.yml")} min`);
        assert.ok(minutes("deploy-production.yml") <= 360, "GitHub stops any job after 6 hours");
        assert.ok(minutes("deploy-staging.yml") >= analysis + rollouts, `staging: ${minutes("deploy-staging.yml")} min`);
    });

    it("every hour, the health check of each stack reads its outputs and cluster read-only, with retries, announcing failures", () => {
        const wf = load("health.yml");
        assert.deepEqual(wf.on.schedule, [{ cron: "17 * * * *" }]);
        const [job] = Object.values(wf.jobs);
        const [step] = commandSteps(job, "healthcheck");
        assert.deepEqual(job.strategy?.matrix?.stack, ["staging", "production"]);
        assert.equal((job.strategy as { "fail-fast"?: boolean })["fail-fast"], false, "one stack's failure must not cancel the other's check");
        assert.match(step.run!, /--stack "\$PULUMI_ORG\/\$STACK"/);
        assert.equal(step.env?.STACK, "${{ matrix.stack }}");
        assert.match(step.run!, /--attempts [2-9]/);
        assert.equal(job.environment, "${{ matrix.stack }}-preview", "the read-only credentials of that stack's preview environment");
        assert.ok(job.steps!.some((s) => s.uses?.startsWith("google-github-actions/get-gke-credentials@")), "backups and Deployments are read from the cluster");
        assert.ok(!isDeploy(job));
        assert.deepEqual(workflowProblems(wf), []);
        const healthStep = (w: Workflow) => commandSteps(Object.values(w.jobs)[0], "healthcheck")[0];
        const mutated = (change: (w: Workflow) => void) => {
            const copy = JSON.parse(JSON.stringify(wf)) as Workflow;
            change(copy);
            return workflowProblems(copy).join("\n");
        };
        assert.match(mutated((w) => (healthStep(w).env!.PULUMI_ACCESS_TOKEN = "${{ secrets.PULUMI_ACCESS_TOKEN }}")), /without PULUMI_ACCESS_TOKEN: \$\{\{ secrets\.PULUMI_PREVIEW_ACCESS_TOKEN \}\}/);
        assert.match(mutated((w) => (Object.values(w.jobs)[0].environment = "production")), /health check outside a \*-preview environment/);
    });
});
