import { ConfigError } from "../../components/config/validate";
import { validateStackConfig } from "../../components/plan/rules";
import { readStackFile, setPath } from "../harness";

// Validator-level helpers: the config paths and values a refusal names, without evaluating.

/** The problems validation (per key, then across apps) reports for a stack file with overrides, or [] when it accepts it. */
export function problemsOf(stack: string, overrides: Record<string, unknown>): string[] {
    let cfg = readStackFile(stack);
    for (const [k, v] of Object.entries(overrides)) cfg = setPath(cfg, k, v);
    try {
        validateStackConfig(cfg, stack);
        return [];
    } catch (e) {
        if (e instanceof ConfigError) return e.problems;
        throw e;
    }
}

/** Asserts that some problem starts with `prefix` (the key) and contains every one of `parts`. */
export function refused(problems: string[], prefix: string, ...parts: string[]): void {
    const hit = problems.find((p) => p.startsWith(prefix) && parts.every((x) => p.includes(x)));
    if (!hit) throw new Error(`expected a problem «${prefix} … ${parts.join(" … ")}», got:\n${problems.join("\n") || "(accepted)"}`);
}
