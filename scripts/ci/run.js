#!/usr/bin/env node
// run.js — the CI runner behind .ci/run: cache status, installs, the Go builds in the background,
// the tiers in order within the time budget, cleanup, and the time table at the end of every run.
// Contract (plan, environment, output, exit codes): scripts/ci/README.md. Node.js built-ins only.
//
//   node scripts/ci/run.js [--plan <file>]            the whole run (what .ci/run does)
//   node scripts/ci/run.js [--plan <file>] --status   each build warm or cold, and its cold estimate
"use strict";

const { spawn, spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const { parsePlan, parseBudget, parseStart, decide, predict, skipMessage, lateMessage, timeTable } = require("./budget");

const args = process.argv.slice(2);
const planFile = args.includes("--plan") ? args[args.indexOf("--plan") + 1] : path.join(__dirname, "plan.json");
let plan, budget, t0;
try {
    plan = parsePlan(fs.readFileSync(planFile, "utf8"), planFile);
    budget = parseBudget(process.env.CI_BUDGET_MINUTES, plan.budgetMinutes);
    t0 = parseStart(process.env.CI_START_EPOCH, Date.now());
} catch (e) {
    console.error(`CI: ${e.message}.`);
    process.exit(2);
}
const now = () => (Date.now() - t0) / 1000;
const say = (s) => console.log(`== ${s}`);
const loud = (s) => { const bar = "!".repeat(100); console.log(`${bar}\n${s}\n${bar}`); };

/** Each build's check (exit 0: cached); prints one line per build and returns {name: warm}. */
function status() {
    const warm = {};
    say(`cache status (scripts/ci-status): warm = built and cached, nothing to build`);
    for (const b of plan.builds) {
        warm[b.name] = spawnSync("bash", ["-c", b.check], { stdio: "ignore", timeout: 60000 }).status === 0;
        const est = warm[b.name] ? `~${b.warmSeconds} s to verify` : `cold build ~${Math.round(b.coldSeconds / 60)} min (${b.coldSeconds} s)`;
        console.log(`   ${b.name.padEnd(14)} ${warm[b.name] ? "warm" : "COLD"}  ${est.padEnd(30)} ${b.what}; check: ${b.check}`);
    }
    const cold = plan.builds.filter((b) => !warm[b.name]);
    const sum = plan.builds.reduce((s, b) => s + (warm[b.name] ? b.warmSeconds : b.coldSeconds), 0);
    console.log(cold.length
        ? `   builds to do: ${cold.map((b) => b.name).join(", ")}: ~${Math.round(sum / 60)} min one at a time; warm them by hand with: ${cold.map((b) => b.build).join(" && ")}`
        : `   every build is warm`);
    const p = predict(plan, warm, budget);
    const m = (sec) => `${(sec / 60).toFixed(0)} min`;
    console.log(`   expected with these caches (each step taking its estimate; budget ${m(budget)}): builds done at ${p.builds.map((b) => `${b.name} ${m(b.end)}`).join(", ")};`);
    console.log(`   ${p.tiers.map((t) => t.run ? `tier ${t.id} ${m(t.start)}-${m(t.end)}` : `tier ${t.id} SKIPPED (needs ${m(t.expected)}, ${m(t.left)} left)`).join(", ")}; the tiers end at ${m(p.end)}`);
    return warm;
}

if (args.includes("--status")) {
    status();
    process.exit(0);
}

// --- processes: each in its own process group, so a signal or the end of the run stops all of it
const children = new Set();
function sh(command, stdio) {
    return new Promise((resolve) => {
        const child = spawn("bash", ["-c", command], { stdio, detached: true });
        children.add(child);
        child.on("error", (e) => { children.delete(child); resolve({ code: 127, error: e.message }); });
        child.on("close", (code, signal) => { children.delete(child); resolve({ code: code ?? 128, signal }); });
    });
}
function killAll() {
    for (const c of children) try { process.kill(-c.pid, "SIGTERM"); } catch { /* already gone */ }
}

const rows = [];
let failed = false, interrupted = false;
const started = new Set(); // tier ids that started (their cleanup is due)
let wake = () => {};
const changed = () => { const w = wake; wake = () => {}; w(); };
const nextChange = (ms) => new Promise((resolve) => { const t = setTimeout(resolve, ms); wake = () => { clearTimeout(t); resolve(); }; });

for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
        if (interrupted) return;
        interrupted = failed = true;
        console.log(`CI: ${sig}: stopping every step, then the cleanup and the time table.`);
        killAll();
        changed();
    });
}

// --- the builds, one at a time, in the background (two Go builds at once on 2 cores: not measured yet)
let builds = [];
let stopBuilds = false;
async function buildChain() {
    const log = fs.openSync(plan.buildLog, "a");
    for (const s of builds) {
        if (stopBuilds) break;
        s.state = "running";
        s.startedAt = now();
        const from = fs.fstatSync(log).size;
        const r = await sh(s.build, ["ignore", log, log]);
        s.seconds = now() - s.startedAt;
        s.state = r.code === 0 ? "done" : "failed";
        const result = stopBuilds ? "stopped (run over)" : r.code === 0 ? `ok (${s.warm ? "was warm" : "was cold"})` : `FAILED (exit ${r.code}; log ${plan.buildLog})`;
        rows.push({ name: `build: ${s.name} (background)`, start: s.startedAt, seconds: s.seconds, result });
        console.log(`== build: ${s.name}: ${result} in ${s.seconds.toFixed(0)} s`);
        // the ensure scripts' own timings (each binary's build seconds), for the record of a cold run
        const said = fs.readFileSync(plan.buildLog).subarray(from).toString("utf8").split("\n").filter((l) => /\b(built|installed|ready in)\b/.test(l));
        for (const l of said) console.log(`   ${l}`);
        changed();
    }
    fs.closeSync(log);
}

/** Waits until the builds named are done ("ready"), one failed ("failed"), or `deadline` (s from start) passes. */
async function awaitBuilds(names, deadline) {
    for (;;) {
        const these = builds.filter((b) => names.includes(b.name));
        if (these.some((b) => b.state === "failed")) return "failed";
        if (these.every((b) => b.state === "done")) return "ready";
        if (interrupted || now() >= deadline) return "timeout";
        await nextChange(Math.min(5000, Math.max(0, (deadline - now()) * 1000)));
    }
}

async function step(name, command) {
    const start = now();
    say(`${name}: ${command}`);
    const r = await sh(command, "inherit");
    const seconds = now() - start;
    return { start, seconds, ok: r.code === 0 && !interrupted, code: r.code };
}

async function runTier(tier) {
    const label = `tier ${tier.id}: ${tier.name}`;
    if (failed) return rows.push({ name: label, start: now(), result: "not run: an earlier step failed" });
    const d = decide(tier, { now: now(), budget, builds });
    if (!d.run && tier.always) console.log(`CI: tier ${tier.id} (${tier.name}) runs whatever the budget: it is the gate ("always" in the plan).`);
    if (!d.run && !tier.always) {
        loud(skipMessage(tier, d, budget));
        return rows.push({ name: label, start: now(), result: `SKIPPED: expected ${(d.expected / 60).toFixed(1)} min, ${(d.left / 60).toFixed(1)} min left` });
    }
    if (tier.needs.length) {
        const w0 = now();
        const w = await awaitBuilds(tier.needs, budget - tier.seconds);
        if (now() - w0 >= 1) rows.push({ name: `wait: ${tier.needs.join(", ")} for tier ${tier.id}`, start: w0, seconds: now() - w0, result: w });
        if (w === "failed") {
            failed = true;
            spawnSync("tail", ["-n", "40", plan.buildLog], { stdio: "inherit" });
            console.log(`CI: a build tier ${tier.id} needs failed (log above: ${plan.buildLog}).`);
            return rows.push({ name: label, start: now(), result: "FAILED: its build failed" });
        }
        if (w === "timeout" && !interrupted) {
            const late = builds.filter((b) => tier.needs.includes(b.name) && b.state !== "done");
            loud(lateMessage(tier, late, now(), budget));
            return rows.push({ name: label, start: now(), result: "SKIPPED: its build ran too long" });
        }
    }
    if (interrupted) return rows.push({ name: label, start: now(), result: "not run: interrupted" });
    started.add(tier.id);
    const r = await step(label, tier.run);
    rows.push({ name: label, start: r.start, seconds: r.seconds, result: r.ok ? "passed" : interrupted ? "INTERRUPTED" : `FAILED (exit ${r.code})` });
    if (!r.ok) failed = true;
}

async function main() {
    const s0 = now();
    const warm = status();
    rows.push({ name: "cache status", start: s0, seconds: now() - s0, result: plan.builds.map((b) => `${b.name} ${warm[b.name] ? "warm" : "cold"}`).join(", ") });
    builds = plan.builds.map((b) => ({ ...b, warm: warm[b.name], estimate: warm[b.name] ? b.warmSeconds : b.coldSeconds, state: "waiting" }));
    for (const s of plan.install) {
        if (failed) break;
        const r = await step(`install: ${s.name}`, s.run);
        rows.push({ name: `install: ${s.name}`, start: r.start, seconds: r.seconds, result: r.ok ? "ok" : `FAILED (exit ${r.code})` });
        if (!r.ok) failed = true;
    }
    let chain = Promise.resolve();
    if (!failed) {
        fs.mkdirSync(path.dirname(plan.buildLog), { recursive: true });
        say(`builds in the background, one at a time (log: ${plan.buildLog}): ${builds.map((b) => b.name).join(", ")}`);
        chain = buildChain();
    }
    for (const tier of plan.tiers) await runTier(tier);
    if (builds.some((b) => b.state === "running" || b.state === "waiting")) {
        if (!failed && now() < budget) {
            // Cold caches are warmed on purpose: the next run on this machine then fits more tiers.
            const w0 = now();
            say(`warming the caches for the next run: waiting for the builds still to do, until the budget's end (${((budget - now()) / 60).toFixed(1)} min left)`);
            const w = await awaitBuilds(builds.map((b) => b.name), budget);
            rows.push({ name: "warm: the builds left", start: w0, seconds: now() - w0, result: w === "ready" ? "all warm" : w === "failed" ? "a build FAILED (see above)" : interrupted ? "interrupted" : "stopped at the budget's end" });
        }
        stopBuilds = true;
        killAll();
    }
    await chain;
    for (const c of plan.cleanup) {
        if (!c.afterTiers.some((id) => started.has(id))) continue;
        const start = now();
        const r = await sh(c.run, "inherit");
        rows.push({ name: `cleanup: ${c.run}`, start, seconds: now() - start, result: r.code === 0 ? "ok" : `failed (exit ${r.code})` });
    }
}

main()
    .catch((e) => { failed = true; console.error(`CI: the runner failed: ${e.stack || e}`); })
    .finally(() => {
        const skipped = rows.filter((r) => r.result.startsWith("SKIPPED")).length;
        const outcome = interrupted ? "INTERRUPTED" : failed ? "FAILED" : skipped ? `passed, ${skipped} tier(s) SKIPPED (above)` : "passed";
        const table = timeTable(rows, now(), budget, outcome);
        console.log(`\n${table}`);
        try { fs.writeFileSync(path.join(path.dirname(plan.buildLog), "ci-times.txt"), `${table}\n`); } catch { /* the table was printed */ }
        process.exit(interrupted ? 130 : failed ? 1 : 0);
    });
