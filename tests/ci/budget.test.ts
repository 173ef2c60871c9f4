import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

// The CI runner (scripts/ci/run.js, behind .ci/run) with fake tiers and fake builds: shell commands
// that record what ran in a file, builds whose cache is a marker file (warm when it exists). The
// estimates are minutes while the fake steps take well under a second, so the budget decisions are
// the plan's, not the machine's speed.

const ROOT = path.resolve(__dirname, "..", "..");
const RUNNER = path.join(ROOT, "scripts", "ci", "run.js");
const PLAN = path.join(ROOT, "scripts", "ci", "plan.json");

interface Decision { run: boolean; expected: number; wait: number; left: number }
interface BuildState { name: string; state: string; estimate: number; warm: boolean; startedAt?: number }
interface Tier { id: string; name: string; needs: string[]; seconds: number; byHand: string }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const budget = require(path.join(ROOT, "scripts", "ci", "budget.js")) as {
    readyIn(builds: BuildState[], now: number): Record<string, number>;
    decide(tier: Tier, at: { now: number; budget: number; builds: BuildState[] }): Decision;
    parseBudget(value: string | undefined, defaultMinutes: number): number;
    predict(plan: unknown, warm: Record<string, boolean>, budget: number): { tiers: { id: string; run: boolean; start?: number; end?: number }[]; end: number };
};

interface Fake { dir: string; plan: string; ran: () => string[] }

/** A plan of fake steps in a fresh directory: builds b1 (cold 30 min) and b2 (cold 10 min); tier 1 (5 min, no build), 2 (5 min, b1), 3 (10 min, b1 and b2). */
function fake(opts: { warm?: string[]; failTier?: string; failBuild?: string; tier3?: string } = {}): Fake {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ci-budget-"));
    const ran = path.join(dir, "ran");
    const mark = (what: string) => `echo ${what} >>${ran}`;
    for (const b of opts.warm ?? []) fs.writeFileSync(path.join(dir, `${b}.built`), "");
    const build = (name: string, coldMinutes: number) => ({
        name, what: `fake ${name}`, check: `test -f ${dir}/${name}.built`,
        build: opts.failBuild === name ? "exit 4" : `sleep 0.2 && touch ${dir}/${name}.built && echo "fake: built ${name} in 0.2s"`,
        coldSeconds: coldMinutes * 60, warmSeconds: 5,
    });
    const tier = (id: string, minutes: number, needs: string[]) => ({
        id, name: `fake tier ${id}`, needs, seconds: minutes * 60, byHand: `npm run fake:${id}`, always: id === "1",
        run: id === "3" && opts.tier3 ? opts.tier3 : `${mark(`tier${id}`)}; exit ${opts.failTier === id ? 3 : 0}`,
    });
    const plan = {
        budgetMinutes: 85,
        buildLog: path.join(dir, "build.log"),
        install: [{ name: "fake install", run: mark("install"), seconds: 0 }],
        builds: [build("b1", 30), build("b2", 10)],
        tiers: [tier("1", 5, []), tier("2", 5, ["b1"]), tier("3", 10, ["b1", "b2"])],
        cleanup: [{ run: mark("cleanup"), afterTiers: ["3"] }],
    };
    const file = path.join(dir, "plan.json");
    fs.writeFileSync(file, JSON.stringify(plan));
    return { dir, plan: file, ran: () => (fs.existsSync(ran) ? fs.readFileSync(ran, "utf8").trim().split("\n") : []) };
}

function run(f: Fake, env: NodeJS.ProcessEnv = {}) {
    const r = spawnSync(process.execPath, [RUNNER, "--plan", f.plan], {
        encoding: "utf8", timeout: 60000, env: { ...process.env, CI_BUDGET_MINUTES: "", CI_START_EPOCH: "", ...env },
    });
    return { status: r.status, out: r.stdout + r.stderr };
}

/** The time table's row of a step: its result column. */
function result(out: string, step: string): string {
    const table = out.slice(out.lastIndexOf("== CI time table"));
    const row = table.split("\n").find((l) => l.includes(step));
    assert.ok(row, `no row "${step}" in the time table:\n${table}`);
    return row.slice(row.indexOf(step) + step.length).trim();
}

describe("CI tiers within a time budget (scripts/ci/run.js with fake tiers)", function () {
    this.timeout(60000);

    it("CI_BUDGET_MINUTES=20 with cold caches: tier 1 runs, the later tiers are skipped loudly with how to run them, exit 0", function () {
        const f = fake();
        const r = run(f, { CI_BUDGET_MINUTES: "20" });
        assert.equal(r.status, 0, r.out);
        assert.deepEqual(f.ran(), ["install", "tier1"]);
        // tier 2 waits ~30 min for b1 (cold), then 5 min of tests: 35 > 20 (a slow machine may take a few seconds off)
        assert.match(r.out, /CI: SKIPPED tier 2 \(fake tier 2\): it would not fit the budget\.\nCI: {3}expected 3[45]\.\d min \((30\.0|29\.\d) min for the b1 build \(cold\), then 5\.0 min of tests\); (20\.0|19\.\d) min left of the 20\.0 min budget\.\nCI: {3}Run it by hand: npm run fake:2/);
        assert.match(r.out, /CI: SKIPPED tier 3 .*\n.*\nCI: {3}Run it by hand: npm run fake:3/);
        assert.match(result(r.out, "tier 1: fake tier 1"), /^passed$/);
        assert.match(result(r.out, "tier 2: fake tier 2"), /^SKIPPED: expected 3[45]\.\d min, (20\.0|19\.\d) min left$/);
        assert.match(result(r.out, "total"), /passed, 2 tier\(s\) SKIPPED/);
        // the cold caches were warmed on purpose for the next run, within the budget
        assert.match(result(r.out, "warm: the builds left"), /^all warm$/);
        assert.ok(fs.existsSync(path.join(f.dir, "b1.built")) && fs.existsSync(path.join(f.dir, "b2.built")));
        // each build's own timing lines are echoed from the build log
        assert.match(r.out, /== build: b1: ok \(was cold\) in 0 s\n {3}fake: built b1 in 0\.2s\n/);
    });

    it("the same budget with warm caches skips nothing: every tier runs, then the cleanup", function () {
        const f = fake({ warm: ["b1", "b2"] });
        const r = run(f, { CI_BUDGET_MINUTES: "20" });
        assert.equal(r.status, 0, r.out);
        assert.deepEqual(f.ran(), ["install", "tier1", "tier2", "tier3", "cleanup"]);
        assert.doesNotMatch(r.out, /CI: SKIPPED|SKIPPED:/);
        assert.match(result(r.out, "total"), /^passed$/);
    });

    it("a tier that does not fit the time left is skipped even after the earlier ones ran (77 of 85 min gone)", function () {
        const f = fake({ warm: ["b1", "b2"] });
        const r = run(f, { CI_START_EPOCH: String(Math.floor(Date.now() / 1000) - 77 * 60) });
        assert.equal(r.status, 0, r.out);
        assert.deepEqual(f.ran(), ["install", "tier1", "tier2"]);
        assert.match(result(r.out, "tier 3: fake tier 3"), /^SKIPPED: expected 10\.\d min, [78]\.\d min left$/);
    });

    it("a failing tier fails the run: exit 1, the later tiers do not run, the time table is printed", function () {
        const f = fake({ warm: ["b1", "b2"], failTier: "2" });
        const r = run(f, { CI_BUDGET_MINUTES: "20" });
        assert.equal(r.status, 1, r.out);
        assert.deepEqual(f.ran(), ["install", "tier1", "tier2"]);
        assert.match(result(r.out, "tier 2: fake tier 2"), /^FAILED \(exit 3\)$/);
        assert.match(result(r.out, "tier 3: fake tier 3"), /^not run: an earlier step failed$/);
        assert.match(result(r.out, "total"), /^FAILED$/);
    });

    it("with a small budget the run fails when tier 1, the only tier that ran, fails", function () {
        const f = fake({ failTier: "1" });
        const r = run(f, { CI_BUDGET_MINUTES: "20" });
        assert.equal(r.status, 1, r.out);
        assert.deepEqual(f.ran(), ["install", "tier1"]);
        assert.match(result(r.out, "total"), /^FAILED$/);
    });

    it("a build that fails fails the tier that needs it (the build log is shown)", function () {
        const f = fake({ warm: ["b2"], failBuild: "b1" });
        const r = run(f, { CI_BUDGET_MINUTES: "60" });
        assert.equal(r.status, 1, r.out);
        assert.deepEqual(f.ran(), ["install", "tier1"]);
        assert.match(result(r.out, "build: b1 (background)"), /^FAILED \(exit 4; log /);
        assert.match(result(r.out, "tier 2: fake tier 2"), /^FAILED: its build failed$/);
    });

    it("SIGTERM during a tier: the tier is stopped, the cleanup runs, the time table is printed, exit 130", async function () {
        const f = fake({ warm: ["b1", "b2"], tier3: "sleep 30" });
        const child = spawn(process.execPath, [RUNNER, "--plan", f.plan], { env: { ...process.env, CI_BUDGET_MINUTES: "", CI_START_EPOCH: "" } });
        let out = "";
        const t = Date.now();
        const status = await new Promise<number | null>((resolve) => {
            child.stdout.on("data", (d) => {
                out += d;
                if (out.includes("== tier 3: fake tier 3: sleep 30")) child.kill("SIGTERM");
            });
            child.stderr.on("data", (d) => (out += d));
            child.on("close", resolve);
        });
        assert.equal(status, 130, out);
        assert.ok(Date.now() - t < 20000, "the tier's sleep was not stopped");
        assert.match(result(out, "tier 3: fake tier 3"), /^INTERRUPTED$/);
        assert.match(result(out, "total"), /^INTERRUPTED$/);
        assert.deepEqual(f.ran(), ["install", "tier1", "tier2", "cleanup"]);
    });

    it("the gate tier (always) runs even when it does not fit: CI_BUDGET_MINUTES=1 runs tier 1 only, and its failure fails the run", function () {
        const f = fake({ warm: ["b1", "b2"] });
        const r = run(f, { CI_BUDGET_MINUTES: "1" });
        assert.equal(r.status, 0, r.out);
        assert.deepEqual(f.ran(), ["install", "tier1"]);
        assert.match(r.out, /CI: tier 1 \(fake tier 1\) runs whatever the budget: it is the gate/);
        assert.match(result(r.out, "tier 3: fake tier 3"), /^SKIPPED: expected 10\.\d min, [01]\.\d min left$/);
        const g = fake({ warm: ["b1", "b2"], failTier: "1" });
        assert.equal(run(g, { CI_BUDGET_MINUTES: "1" }).status, 1);
    });

    it("a bad CI_BUDGET_MINUTES is one sentence and exit 2, before anything runs", function () {
        const f = fake();
        const r = run(f, { CI_BUDGET_MINUTES: "twenty" });
        assert.equal(r.status, 2);
        assert.equal(r.out.trim(), 'CI: CI_BUDGET_MINUTES must be a positive number of minutes (got "twenty").');
        assert.deepEqual(f.ran(), []);
    });
});

describe("CI budget decisions (scripts/ci/budget.js)", function () {
    const tier = (needs: string[], minutes: number): Tier => ({ id: "x", name: "x", needs, seconds: minutes * 60, byHand: "x" });

    it("builds run one at a time: a waiting build is ready after the ones before it", function () {
        const builds = [
            { name: "engine", state: "running", startedAt: 100, estimate: 1000, warm: false },
            { name: "cluster", state: "waiting", estimate: 500, warm: false },
            { name: "node", state: "done", estimate: 60, warm: true },
        ];
        assert.deepEqual(budget.readyIn(builds, 400), { engine: 700, cluster: 1200, node: 0 });
    });

    it("a tier's expected duration is its builds' wait plus its tests; warm builds fit where cold ones do not", function () {
        const cold = [{ name: "engine", state: "running", startedAt: 0, estimate: 2100, warm: false }];
        const warm = [{ name: "engine", state: "running", startedAt: 0, estimate: 5, warm: true }];
        const d = budget.decide(tier(["engine"], 5), { now: 600, budget: 1200, builds: cold });
        assert.deepEqual(d, { run: false, expected: 1500 + 300, wait: 1500, left: 600, waitingFor: [{ name: "engine", seconds: 1500, warm: false }] });
        assert.equal(budget.decide(tier(["engine"], 5), { now: 600, budget: 1200, builds: warm }).run, true);
        assert.equal(budget.decide(tier([], 10), { now: 600, budget: 1200, builds: cold }).run, true);
        assert.equal(budget.decide(tier([], 10.1), { now: 600, budget: 1200, builds: cold }).run, false);
    });

    it("CI_BUDGET_MINUTES: unset is the plan's 85 minutes; a value is minutes", function () {
        assert.equal(budget.parseBudget(undefined, 85), 85 * 60);
        assert.equal(budget.parseBudget("20", 85), 1200);
        assert.throws(() => budget.parseBudget("-5", 85), /^Error: CI_BUDGET_MINUTES must be a positive number of minutes \(got "-5"\)$/);
    });
});

describe("the CI plan (scripts/ci/plan.json)", function () {
    const plan = JSON.parse(fs.readFileSync(PLAN, "utf8"));
    const scripts: Record<string, string> = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts;

    it("with every cache warm, every tier runs within the default budget, with 10 minutes to spare for slow tiers", function () {
        const warm = Object.fromEntries(plan.builds.map((b: { name: string }) => [b.name, true]));
        const p = budget.predict(plan, warm, plan.budgetMinutes * 60 - 10 * 60);
        assert.deepEqual(p.tiers.filter((t) => !t.run).map((t) => t.id), [], JSON.stringify(p));
    });

    it("the prediction skips what the runner skips: fake tiers 2 and 3 cold with 20 minutes; warm, none (tier 3 with 19)", function () {
        const f = JSON.parse(fs.readFileSync(fake().plan, "utf8"));
        const cold = budget.predict(f, {}, 20 * 60);
        assert.deepEqual(cold.tiers.map((t) => [t.id, t.run, t.start, t.end]), [["1", true, 0, 300], ["2", false, undefined, undefined], ["3", false, undefined, undefined]]);
        // cold with an hour: tier 2 waits for b1 (30 min), tier 3 for b2 (10 min after it)
        assert.deepEqual(budget.predict(f, {}, 60 * 60).tiers.map((t) => [t.id, t.run, t.start, t.end]), [["1", true, 0, 300], ["2", true, 1800, 2100], ["3", true, 2400, 3000]]);
        // warm: b1 done at 5 s, b2 at 10 s; tier 1 0-300, tier 2 300-600, tier 3 600-1200
        const warm = { b1: true, b2: true };
        assert.deepEqual(budget.predict(f, warm, 20 * 60).tiers.map((t) => [t.id, t.run, t.start, t.end]), [["1", true, 0, 300], ["2", true, 300, 600], ["3", true, 600, 1200]]);
        assert.deepEqual(budget.predict(f, warm, 19 * 60).tiers.map((t) => t.run), [true, true, false]);
    });

    it("each tier is an npm script, and every end-to-end suite belongs to exactly one tier", function () {
        const suites = fs.readdirSync(path.join(ROOT, "tests", "e2e")).filter((f) => f.endsWith(".e2e.ts"));
        const seen: string[] = [];
        for (const t of plan.tiers) {
            const m = /^npm (?:run )?([\w:]+)$/.exec(t.run);
            assert.ok(m && scripts[m[1]], `tier ${t.id} runs "${t.run}", not an npm script of package.json`);
            seen.push(...suites.filter((s) => scripts[m[1]].includes(`tests/e2e/${s}`)));
        }
        assert.deepEqual([...seen].sort(), suites.sort());
    });
});
