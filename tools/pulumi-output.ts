// What `npm run deploy` reads from Pulumi's own words: the failure line to announce, which analysis
// Jobs ran and failed in the cluster, which apps a failed update's diagnostics name, and whether the
// update never started because another one holds the stack.

/** The last lines of a command's output that say what went wrong (analysis line first). */
export function failureLines(output: string, n = 3): string {
    const lines = output.split("\n").map((l) => l.trim()).filter(Boolean);
    const analysis = [...new Set(lines.filter((l) => /analysis failed: app /.test(l)))];
    if (analysis.length) return analysis.slice(0, n).join(" | ");
    // Pulumi's diagnostics ("error: <why>") before its generic "error: update failed".
    const unique = (ls: string[]) => [...new Set(ls)];
    const starts = unique(lines.filter((l) => /^error:/i.test(l)));
    const specific = starts.filter((l) => !/^error: update failed$/i.test(l));
    const errors = specific.length ? specific : starts.length ? starts : unique(lines.filter((l) => /\berror\b/i.test(l)));
    return (errors.length ? errors.slice(0, n) : lines.slice(-n)).join(" | ");
}

/** The diagnostics blocks of an update: the resource each names and the text under it. */
function diagnostics(output: string): { type: string; name: string; text: string }[] {
    const blocks: { type: string; name: string; text: string }[] = [];
    // Only the Diagnostics section names resources by type token (`Updating (stack):` is no resource).
    const at = output.search(/^Diagnostics:$/m);
    if (at < 0) return blocks;
    for (const b of output.slice(at).split(/\n(?=  \S[^\n]* \([^\n]*\):\n)/)) {
        const m = /^ {2}(\S+:\S+) \(([^)\n]+)\):\n([\s\S]*)$/.exec(b);
        if (m) blocks.push({ type: m[1], name: m[2], text: m[3] });
    }
    return blocks;
}

/**
 * The analysis Jobs that pulumi's diagnostics report as run and failed in the cluster (their pods
 * hold the result): not those the engine failed to create or write.
 */
export function failedAnalysisJobs(output: string): string[] {
    const jobs = new Set<string>();
    for (const d of diagnostics(output)) {
        if (d.type === "kubernetes:batch/v1:Job" && /^[a-z0-9-]+-analysis-[0-9a-f]{8}$/.test(d.name) &&
            /BackoffLimitExceeded|DeadlineExceeded|failed to fully initialize or become live/.test(d.text)) jobs.add(d.name);
    }
    return [...jobs];
}

/** One resource of the stack's state (`pulumi stack export`), as far as the deploy command reads it. */
export interface StateResource {
    urn: string;
    type: string;
    parent?: string;
}

/** The App component that declares apps' objects (components/app.ts). */
export const APP_COMPONENT = "platform:apps:AppRelease";

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

/** The app a resource belongs to: the nearest AppRelease among its parents. */
function appOfResource(urn: string, byUrn: Map<string, StateResource>): string | undefined {
    for (let r = byUrn.get(urn); r; r = r.parent ? byUrn.get(r.parent) : undefined) {
        if (r.type === APP_COMPONENT) return nameOf(r.urn);
    }
    return undefined;
}

/**
 * Which apps a failed update's errors belong to, from the resources its diagnostics name: through
 * the state's parent chain to the app's component, or, for an object the update could not create
 * (so not in the state), the app whose name prefixes the object's. `unattributed` lists errors that
 * belong to no app (a namespace, the provider): then every changed app is suspect.
 */
export function failedAppsOf(output: string, resources: StateResource[], apps: string[]): { apps: string[]; unattributed: string[] } {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const found = new Set<string>();
    const unattributed: string[] = [];
    const longestFirst = [...apps].sort((a, b) => b.length - a.length);
    for (const d of diagnostics(output)) {
        if (d.type === "pulumi:pulumi:Stack" || !/\berror\b/i.test(d.text)) continue;
        const inState = resources.filter((r) => r.type === d.type && nameOf(r.urn) === d.name).map((r) => appOfResource(r.urn, byUrn)).find(Boolean);
        const app = inState ?? (d.type === APP_COMPONENT ? d.name : longestFirst.find((a) => d.name === a || d.name.startsWith(`${a}-`)));
        if (app && apps.includes(app)) found.add(app);
        else unattributed.push(`${d.type} (${d.name})`);
    }
    return { apps: [...found].sort(), unattributed };
}

/** The update did not run: another one holds the stack (Pulumi Cloud's 409, a DIY backend's lock). */
export function stackLocked(output: string): boolean {
    return /\[409\] Conflict|another update is currently in progress|the stack is currently locked/i.test(output);
}
