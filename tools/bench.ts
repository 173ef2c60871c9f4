import { performance } from "perf_hooks";
import { evaluate, evaluateStack, readStackFile, setPath } from "./evaluate";

// Evaluation time of the program under mocks: the production stack, and generated environments
// with 1, 10 and 50 apps, to show the cost grows no worse than linearly with the number of apps.

async function time(fn: () => Promise<unknown>, runs: number): Promise<number> {
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
        const t = performance.now();
        await fn();
        samples.push(performance.now() - t);
    }
    samples.sort((a, b) => a - b);
    return samples[Math.floor(samples.length / 2)];
}

function generated(apps: number): Record<string, unknown> {
    let config = readStackFile("staging");
    const template = (config["platform:apps"] as Record<string, any>);
    const kinds = Object.values(template);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < apps; i++) {
        // Each copy gets a host of its own (one app per host and path) and calls no app that the copy lacks.
        const app = structuredClone(kinds[i % kinds.length]);
        if (app.routing?.host) app.routing.host = `app${i}.${app.routing.host}`;
        delete app.calls;
        out[`app${i}`] = app;
    }
    config = setPath(config, "platform:apps", out);
    return config;
}

async function main(): Promise<void> {
    await evaluateStack("production"); // module load and warm-up, not measured
    const production = await time(() => evaluateStack("production"), 5);
    console.log(`production stack: ${production.toFixed(0)} ms (median of 5; target < 1000 ms)`);
    const sizes = [1, 10, 50];
    const results: [number, number][] = [];
    for (const n of sizes) {
        const config = generated(n);
        const ms = await time(() => evaluate("staging", config), n === 50 ? 3 : 5);
        results.push([n, ms]);
        console.log(`${String(n).padStart(3)} apps: ${ms.toFixed(0).padStart(6)} ms   ${(ms / n).toFixed(1)} ms per app`);
    }
    const [, one] = results[0];
    const [, fifty] = results[2];
    const perApp10 = (results[1][1] - one) / 9;
    const perApp50 = (fifty - one) / 49;
    console.log(`marginal cost per app: ${perApp10.toFixed(1)} ms (1→10), ${perApp50.toFixed(1)} ms (1→50); ratio ${(perApp50 / perApp10).toFixed(2)} (≤ ~1 means linear or better)`);
    console.log(`50 apps: ${fifty < 5000 ? "within" : "OVER"} the 5 s target; production: ${production < 1000 ? "within" : "OVER"} the 1 s target`);
}

main().catch((e) => {
    console.error(e.message);
    process.exit(1);
});
