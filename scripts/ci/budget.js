// budget.js — the decisions of the CI runner (scripts/ci/run.js), pure: no clock, no processes.
// Contract: scripts/ci/README.md. Node.js built-ins only (it runs before `npm ci`).
"use strict";

/** Reads scripts/ci/plan.json's text; throws an Error whose message is one sentence naming the bad key. */
function parsePlan(text, file) {
    let plan;
    try {
        plan = JSON.parse(text);
    } catch (e) {
        throw new Error(`${file} is not JSON (${e.message})`);
    }
    const bad = (key, what, got) => { throw new Error(`${file}: ${key} must be ${what} (got ${JSON.stringify(got)})`); };
    const seconds = (key, v) => { if (typeof v !== "number" || !(v >= 0)) bad(key, "a number of seconds, 0 or more", v); };
    const text_ = (key, v) => { if (typeof v !== "string" || !v) bad(key, "a non-empty string", v); };
    if (!plan || typeof plan !== "object") bad("the plan", "an object", plan);
    if (typeof plan.budgetMinutes !== "number" || !(plan.budgetMinutes > 0)) bad("budgetMinutes", "a positive number of minutes", plan.budgetMinutes);
    text_("buildLog", plan.buildLog);
    for (const list of ["install", "builds", "tiers", "cleanup"]) if (!Array.isArray(plan[list])) bad(list, "a list", plan[list]);
    plan.install.forEach((s, i) => { text_(`install[${i}].name`, s.name); text_(`install[${i}].run`, s.run); seconds(`install[${i}].seconds`, s.seconds); });
    const builds = new Set();
    plan.builds.forEach((b, i) => {
        for (const k of ["name", "what", "check", "build"]) text_(`builds[${i}].${k}`, b[k]);
        seconds(`builds[${i}].coldSeconds`, b.coldSeconds);
        seconds(`builds[${i}].warmSeconds`, b.warmSeconds);
        if (builds.has(b.name)) bad(`builds[${i}].name`, "unique", b.name);
        builds.add(b.name);
    });
    const tiers = new Set();
    plan.tiers.forEach((t, i) => {
        for (const k of ["id", "name", "run", "byHand"]) text_(`tiers[${i}].${k}`, t[k]);
        seconds(`tiers[${i}].seconds`, t.seconds);
        if (!Array.isArray(t.needs)) bad(`tiers[${i}].needs`, "a list of build names", t.needs);
        if (t.always !== undefined && typeof t.always !== "boolean") bad(`tiers[${i}].always`, "true or false", t.always);
        t.needs.forEach((n, j) => { if (!builds.has(n)) bad(`tiers[${i}].needs[${j}]`, `one of the builds (${[...builds].join(", ")})`, n); });
        if (tiers.has(t.id)) bad(`tiers[${i}].id`, "unique", t.id);
        tiers.add(t.id);
    });
    plan.cleanup.forEach((c, i) => {
        text_(`cleanup[${i}].run`, c.run);
        if (!Array.isArray(c.afterTiers) || !c.afterTiers.every((id) => tiers.has(id))) bad(`cleanup[${i}].afterTiers`, "a list of tier ids", c.afterTiers);
    });
    return plan;
}

/** CI_BUDGET_MINUTES (or the plan's default) in seconds; throws a one-sentence Error for a bad value. */
function parseBudget(value, defaultMinutes) {
    if (value === undefined || value === "") return defaultMinutes * 60;
    const n = Number(value);
    if (!/^\s*\d+(\.\d+)?\s*$/.test(value) || !(n > 0)) throw new Error(`CI_BUDGET_MINUTES must be a positive number of minutes (got "${value}")`);
    return n * 60;
}

/** CI_START_EPOCH (seconds since 1970, set by .ci/run at its start) in ms, or `nowMs` when unset. */
function parseStart(value, nowMs) {
    if (value === undefined || value === "") return nowMs;
    const n = Number(value);
    if (!/^\s*\d+(\.\d+)?\s*$/.test(value) || n * 1000 > nowMs + 60000) throw new Error(`CI_START_EPOCH must be the run's start in seconds since 1970, not in the future (got "${value}")`);
    return n * 1000;
}

/**
 * Seconds from `now` until each build is expected done. Builds run one at a time in plan order
 * (state "waiting" | "running" | "done" | "failed"; `estimate` is its warm or cold figure): a waiting
 * build starts when the ones before it end. A running build past its estimate counts as done now:
 * the runner still waits for it, but only until the tier would no longer fit (run.js).
 */
function readyIn(builds, now) {
    const out = {};
    let t = now;
    for (const b of builds) {
        if (b.state === "done" || b.state === "failed") {
            out[b.name] = 0;
            continue;
        }
        t += b.state === "running" ? Math.max(b.estimate - (now - b.startedAt), 0) : b.estimate;
        out[b.name] = t - now;
    }
    return out;
}

/**
 * Whether a tier fits: its builds' expected wait plus its own expected seconds, against the time
 * left of the budget (all in seconds from the start of the run).
 */
function decide(tier, { now, budget, builds }) {
    const ready = readyIn(builds, now);
    const waits = tier.needs.map((name) => ({ name, seconds: ready[name], warm: builds.find((b) => b.name === name).warm }));
    const wait = Math.max(0, ...waits.map((w) => w.seconds));
    const expected = wait + tier.seconds;
    const left = budget - now;
    return { run: expected <= left, expected, wait, left, waitingFor: waits.filter((w) => w.seconds > 0) };
}

/**
 * What the plan predicts for caches warm or cold as given (`warm`: {build name: true}), if every step
 * takes its expected time: when each build is done, and each tier's start and end or its skip.
 */
function predict(plan, warm, budget) {
    let t = plan.install.reduce((sum, s) => sum + s.seconds, 0);
    let end = t;
    const done = plan.builds.map((b) => {
        const start = end;
        end += warm[b.name] ? b.warmSeconds : b.coldSeconds;
        return { ...b, warm: Boolean(warm[b.name]), estimate: end - start, start, end };
    });
    const at = (now) => done.map((b) => ({ ...b, state: b.end <= now ? "done" : b.start <= now ? "running" : "waiting", startedAt: b.start }));
    const tiers = plan.tiers.map((tier) => {
        const d = decide(tier, { now: t, budget, builds: at(t) });
        if (!d.run && !tier.always) return { id: tier.id, name: tier.name, run: false, at: t, expected: d.expected, left: d.left };
        const start = t + d.wait;
        t = start + tier.seconds;
        return { id: tier.id, name: tier.name, run: true, at: start - d.wait, start, end: t };
    });
    return { builds: done.map(({ name, warm: w, start, end: e }) => ({ name, warm: w, start, end: e })), tiers, end: t };
}

const min = (s) => `${(s / 60).toFixed(1)} min`;

/** The loud line of a skipped tier: what, why, and how to run it by hand. */
function skipMessage(tier, d, budget) {
    const why = d.waitingFor.length
        ? `${min(d.wait)} for the ${d.waitingFor.map((w) => `${w.name} build (${w.warm ? "warm" : "cold"})`).join(", ")}, then ${min(tier.seconds)} of tests`
        : `${min(tier.seconds)} of tests`;
    return [
        `CI: SKIPPED tier ${tier.id} (${tier.name}): it would not fit the budget.`,
        `CI:   expected ${min(d.expected)} (${why}); ${min(Math.max(d.left, 0))} left of the ${min(budget)} budget.`,
        `CI:   Run it by hand: ${tier.byHand}`,
    ].join("\n");
}

/** The loud line of a tier whose builds ran past their estimates while the runner waited for them. */
function lateMessage(tier, late, now, budget) {
    const builds = late.map((b) => `${b.name} (${b.warm ? "warm" : "cold"}, estimate ${min(b.estimate)}, running for ${min(now - (b.startedAt ?? now))})`);
    return [
        `CI: SKIPPED tier ${tier.id} (${tier.name}): its build ran past its estimate and the tests no longer fit the budget.`,
        `CI:   still building: ${builds.join(", ")}; ${min(tier.seconds)} of tests, ${min(Math.max(budget - now, 0))} left of the ${min(budget)} budget.`,
        `CI:   Run it by hand: ${tier.byHand}`,
    ].join("\n");
}

const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
const secs = (s) => s.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });

/** The time table: one row per step ({name, start, seconds?, result}) in order of start, then the total. */
function timeTable(rows, total, budget, outcome) {
    const sorted = [...rows].sort((a, b) => a.start - b.start);
    const width = Math.max(30, ...sorted.map((r) => r.name.length));
    const line = (start, seconds, name, result) => `${start.padStart(6)}  ${seconds.padStart(9)}  ${name.padEnd(width)}  ${result}`;
    return [
        `== CI time table (budget ${min(budget)} from the start of .ci/run; start is min:s)`,
        line("start", "seconds", "step", "result"),
        ...sorted.map((r) => line(clock(r.start), r.seconds === undefined ? "-" : secs(r.seconds), r.name, r.result)),
        line("", secs(total), "total", outcome),
    ].join("\n");
}

module.exports = { parsePlan, parseBudget, parseStart, readyIn, decide, predict, skipMessage, lateMessage, timeTable };
