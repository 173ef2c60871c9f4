import * as fc from "fast-check";
import { isIP } from "net";
import { Manifest } from "../tools/render";
import { ConfigValues } from "../tools/evaluate";
import { readStackFile, setPath, STACKS } from "./harness";

// A generator of stack configs as an adversary writes them: a stack file plus a few edits, each
// drawn from values that are valid, nearly valid or hostile (empty strings, IPs, Quartz cron, byte
// suffixes on CPU, names that collide with other apps or data services, 63+ character names).
// Exported for every test that asks "what the validator accepts, does the cluster accept?": the
// mock-engine property test (tests/validation/property.test.ts) and a server-side dry run.

export interface GeneratedConfig {
    stack: (typeof STACKS)[number];
    /** `pulumi config set --path` style overrides: full key → value (undefined deletes). */
    overrides: Record<string, unknown>;
    /**
     * Structural edits, applied after the overrides: whole sections deleted (undefined) or replaced
     * by a value of the wrong type. Deepest paths first, so a section replaced by a string is never
     * the parent of a later `--path` edit (which `pulumi config set --path` itself would refuse).
     */
    structural?: Record<string, unknown>;
}

/** The stack file with the overrides applied, as the program would read it. */
export function configOf(g: GeneratedConfig): ConfigValues {
    let cfg = readStackFile(g.stack);
    for (const [k, v] of Object.entries(g.overrides)) cfg = setPath(cfg, k, v);
    const depth = (k: string) => k.split(".").length;
    for (const [k, v] of Object.entries(g.structural ?? {}).sort(([a], [b]) => depth(b) - depth(a))) cfg = setPath(cfg, k, v);
    return cfg;
}

const APPS = ["web", "api", "worker"] as const;
const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);

const versions = fc.oneof(
    pick("1.4.2", "2.8.0", "v3", "2024-01-01.1", `sha256:${"ab".repeat(32)}`, `v${"9".repeat(62)}`),
    pick("", "latest", "_build", "1.0.", "1.0-", `v${"9".repeat(63)}`, "a:b", "main", "stable", "Edge"),
    fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,70}$/),
);
const cpus = pick("250m", "1", "0.5", "2", "10m", "1m", "1Gi", "2k", "500Mi", "", "0", "0.0001", "1500m", "3");
const memories = pick("128Mi", "256Mi", "1Gi", "512M", "1G", "500m", "1Mi", "16Mi", "", "0", "4Gi", "134217728", "1.5Gi");
const storages = pick("1Gi", "20Gi", "512Mi", "0", "0Gi", "500m", "", "1", "1Mi", "100G", "0.5Gi", "2Ti");
const hosts = pick(
    "api.acme.example", "www.acme.example", "staging.acme.example", "api.staging.acme.example", "*.acme.example", "acme.example",
    "10.0.0.1", "", `${"a".repeat(64)}.example`, "Upper.example", "localhost", `${"b".repeat(63)}.example`,
    Array.from({ length: 5 }, () => "c".repeat(60)).join("."),
);
const paths = pick("/", "/api", "/api/", "/v1/users", "/a//b", "/a/../b", "/a/.", "/x%2Fy", "/%20", "/a%zz", "", "api", "/a#b", "/~u/!$&'()*+,;=:@");
const schedules = pick("15 2 * * *", "*/15 * * * *", "0 0-23/6 * * *", "0 2 * * MON-FRI", "0 2 ? * *", "0 2 L * *", "0 0 2 * * *",
    "0 2 * * 7", "*/0 * * * *", "5-1 * * * *", "", "@daily", "60 * * * *", "0 3 1,15 jan,jul *");
const appNames = pick("jobs", "web2", "postgres", "redis", "redis-headless", "web-preview", "web-blue", "api-canary", "api-stable",
    "api-migration", "web-smoke-test", "postgres-backup", `a${"b".repeat(39)}`, `c${"d".repeat(38)}`);
const resources = fc.record({
    requests: fc.record({ cpu: cpus, memory: memories }, { requiredKeys: [] }),
    limits: fc.record({ cpu: cpus, memory: memories }, { requiredKeys: [] }),
}, { requiredKeys: [] });
const routing = fc.record({ kind: pick("nginx"), host: hosts, path: paths }, { requiredKeys: ["kind", "host"] });

const newApp = fc.record({
    image: pick("registry.local/acme/extra"),
    port: pick(8080, 9000),
    healthPath: pick("/healthz"),
    replicas: fc.integer({ min: 1, max: 3 }),
    strategy: pick("rolling"),
    tag: versions,
    uses: pick([], ["postgres"]),
    migrations: fc.option(pick({ command: ["/migrate"] }), { nil: undefined }),
    routing: fc.option(routing, { nil: undefined }),
}).map((a) => {
    const out: Record<string, unknown> = { ...a };
    if (a.migrations && !a.uses.includes("postgres")) out.uses = ["postgres"];
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return out;
});

const app = pick(...APPS);
/** One edit: a key and a value. */
const edit: fc.Arbitrary<[string, unknown]> = fc.oneof(
    fc.tuple(pick("platform:apps.worker.tag", "platform:apps.api.canary.canary", "platform:apps.api.canary.stable", "platform:apps.web.blueGreen.green", "platform:apps.web.blueGreen.blue"), versions),
    fc.tuple(app.map((a) => `platform:apps.${a}.resources`), resources),
    fc.tuple(pick("platform:postgres.resources", "platform:redis.resources"), resources),
    fc.tuple(pick("platform:postgres.storage", "platform:redis.storage", "platform:postgres.backup.storage", "platform:redis.backup.storage"), storages),
    fc.tuple(pick("platform:apps.web.routing", "platform:apps.api.routing", "platform:apps.worker.routing"), routing),
    fc.tuple(pick("platform:apps.api.routing.host", "platform:apps.web.routing.host"), hosts),
    fc.tuple(pick("platform:apps.api.routing.path", "platform:apps.web.routing.path"), paths),
    fc.tuple(pick("platform:postgres.backup.schedule", "platform:redis.backup.schedule", "platform:postgres.backup.restoreDrill.schedule"), schedules),
    fc.tuple(appNames.map((n) => `platform:apps.${n}`), newApp),
    fc.tuple(pick("platform:apps.api.canary.weight"), pick(0, 10, 50, 100)),
    fc.tuple(pick("platform:apps.web.blueGreen.activeColor"), pick("blue", "green")),
    fc.tuple(pick("platform:kubernetes.renderYamlToDirectory", "platform:postgres.storageClass"), pick("", "out/x", "standard")),
    fc.tuple(app.map((a) => `platform:apps.${a}.calls`), pick([], ["api"], ["web"], ["worker", "api"], ["nope"], [""])),
    fc.tuple(app.map((a) => `platform:apps.${a}.egressCidrs`), pick([], ["203.0.113.0/24"], ["2001:db8::/32"], ["10.0.0.0/33"], ["example.com"])),
    fc.tuple(app.map((a) => `platform:apps.${a}.allowMutableTags`), pick<unknown>(true, false, "yes")),
    fc.tuple(pick("platform:apps.api.routing.tls", "platform:apps.web.routing.tls"),
        pick({ clusterIssuer: "letsencrypt" }, { secretName: "api-cert" }, { listener: "https" }, {}, { issuer: "a", clusterIssuer: "b" }, { secretName: "" })),
    fc.tuple(pick("platform:images.smokeTest", "platform:images.postgres"),
        pick(`curlimages/curl:8.11.1@sha256:${"c".repeat(64)}`, `postgres:16-bookworm@sha256:${"d".repeat(64)}`, "postgres:16-bookworm", `postgres:15@sha256:${"e".repeat(64)}`)),
    fc.tuple(pick("platform:postgres.backup.retention"), pick({ days: 3 }, { days: 3, locked: true }, { days: 99 }, {})),
);

/** Configs an adversary would write: a stack file and one to four edits. */
export const configArbitrary: fc.Arbitrary<GeneratedConfig> = fc.record({
    stack: pick(...STACKS),
    edits: fc.array(edit, { minLength: 1, maxLength: 4 }),
}).map(({ stack, edits }) => ({ stack, overrides: Object.fromEntries(edits) }));

// ---- Structural mutations: sections missing or of the wrong type -------------------------------

/** What a hand edit leaves where an object (or list) belongs: nothing, a string, a number, a boolean, null, a list. */
const wrongShape = fc.oneof(
    fc.constant(undefined),
    pick("5", "", "true", "canary", "{}"),
    pick(0, 5, -1, 1.5),
    fc.boolean(),
    fc.constant(null),
    pick<unknown>([], ["x"], [{}], [1, 2]),
);
const STACK_SECTIONS = [
    "platform:apps", "platform:postgres", "platform:redis", "platform:gcp", "platform:kubernetes", "platform:images", "platform:tier",
    "platform:namespace", "platform:postgres.backup", "platform:postgres.backup.restoreDrill", "platform:postgres.backup.retention",
    "platform:postgres.cloudsql", "platform:postgres.resources", "platform:postgres.resources.limits", "platform:redis.backup",
    "platform:redis.memorystore", "platform:redis.resources", "gcp:project",
];
const APP_SECTIONS = [
    "", "blueGreen", "canary", "tag", "routing", "routing.gateway", "routing.tls", "routing.from", "routing.from.namespaces", "resources",
    "resources.requests", "env", "uses", "migrations", "migrations.command", "smokeTest", "smokeTest.command", "autoscaling", "build",
    "build.args", "analysis", "analysis.http", "analysis.prometheus", "analysis.prometheus.checks", "calls", "egressCidrs",
    "nodeSelector", "tolerations", "image", "replicas", "port", "healthPath",
];
const section = fc.oneof(
    pick(...STACK_SECTIONS),
    fc.tuple(app, pick(...APP_SECTIONS)).map(([a, s]) => `platform:apps.${a}${s ? `.${s}` : ""}`),
);
/** One structural edit: a section of the wrong shape, or a strategy or mode switched without its section. */
const structuralEdit: fc.Arbitrary<[string, unknown]> = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(section, wrongShape) },
    { weight: 2, arbitrary: fc.tuple(app.map((a) => `platform:apps.${a}.strategy`), pick("rolling", "blueGreen", "canary")) },
    { weight: 1, arbitrary: pick<[string, unknown]>(["platform:postgres.mode", "cloudsql"], ["platform:redis.mode", "memorystore"], ["platform:postgres.backup.destination", "gcs"]) },
);

/**
 * Configs as an operator's hand edits break them, for one stack: up to two ordinary edits and one
 * to three structural ones (tests/validation/property.test.ts).
 */
export const structuralArbitrary = (stack: (typeof STACKS)[number]): fc.Arbitrary<GeneratedConfig> => fc.record({
    edits: fc.array(edit, { maxLength: 2 }),
    structural: fc.array(structuralEdit, { minLength: 1, maxLength: 3 }),
}).map(({ edits, structural }) => ({ stack, overrides: Object.fromEntries(edits), structural: Object.fromEntries(structural) }));

// ---- What the API server and the routers refuse that the OpenAPI schemas do not check ----------

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const SUFFIX: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6, m: 1e-3, "": 1 };

function quantity(q: string): number {
    const m = /^([+-]?[0-9.]+)([a-zA-Z]*)$/.exec(String(q));
    if (!m || !(m[2] in SUFFIX)) return NaN;
    return Number(m[1]) * SUFFIX[m[2]];
}

function labelProblems(where: string, labels: Record<string, string> | undefined): string[] {
    return Object.entries(labels ?? {}).flatMap(([k, v]) => [
        ...(LABEL_NAME.test(k) ? [] : [`${where}: label key ${k}`]),
        ...(typeof v === "string" && v.length <= 63 && LABEL_VALUE.test(v) ? [] : [`${where}: label ${k}=${v}`]),
    ]);
}

function podTemplate(m: Manifest): any {
    if (m.kind === "CronJob") return m.spec?.jobTemplate?.spec?.template;
    return ["Deployment", "StatefulSet", "Job"].includes(m.kind) ? m.spec?.template : undefined;
}

function pathRuleProblems(where: string, path: string): string[] {
    const bad = !path.startsWith("/") || ["//", "/./", "/../", "%2f", "%2F", "#"].some((s) => path.includes(s)) || path.endsWith("/..") || path.endsWith("/.")
        || !/^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/.test(path);
    return bad ? [`${where}: path ${JSON.stringify(path)}`] : [];
}

function hostRuleProblems(where: string, host: string): string[] {
    const h = host.startsWith("*.") ? host.slice(2) : host;
    return isIP(host) || !SUBDOMAIN.test(h) || h.split(".").some((l) => !DNS_LABEL.test(l)) ? [`${where}: host ${JSON.stringify(host)}`] : [];
}

/**
 * What a real API server (and ingress-nginx's admission webhook) would refuse in these objects
 * beyond the OpenAPI schemas: name formats and lengths by kind, duplicate names, label syntax,
 * requests above limits, Ingress/HTTPRoute hosts and paths, two Ingresses on one host and path.
 */
export function apiServerProblems(manifests: Manifest[]): string[] {
    const problems: string[] = [];
    const seen = new Set<string>();
    const claims = new Map<string, string>();
    for (const m of manifests) {
        const name: string = m.metadata?.name ?? "";
        const where = `${m.kind}/${name}`;
        const key = `${m.apiVersion} ${m.kind} ${m.metadata?.namespace ?? ""} ${name}`;
        if (seen.has(key)) problems.push(`${where}: declared twice`);
        seen.add(key);
        const nameOk = m.kind === "Service" ? DNS_1035.test(name)
            : m.kind === "CronJob" ? name.length <= 52 && DNS_LABEL.test(name)
                : ["Job", "Namespace", "StatefulSet"].includes(m.kind) ? DNS_LABEL.test(name) : SUBDOMAIN.test(name);
        if (!nameOk) problems.push(`${where}: name`);
        problems.push(...labelProblems(where, m.metadata?.labels));
        const t = podTemplate(m);
        if (t) {
            problems.push(...labelProblems(`${where} pods`, t.metadata?.labels));
            for (const c of [...(t.spec?.initContainers ?? []), ...(t.spec?.containers ?? [])]) {
                for (const r of ["cpu", "memory"]) {
                    const req = c.resources?.requests?.[r];
                    const lim = c.resources?.limits?.[r];
                    if (req !== undefined && Number.isNaN(quantity(req))) problems.push(`${where} ${c.name}: requests.${r} ${req}`);
                    if (req !== undefined && lim !== undefined && quantity(req) > quantity(lim)) problems.push(`${where} ${c.name}: requests.${r} ${req} > limits ${lim}`);
                }
            }
        }
        problems.push(...labelProblems(`${where} selector`, m.spec?.selector?.matchLabels ?? (m.kind === "Service" ? m.spec?.selector : undefined)));
        if (m.kind === "Ingress") {
            const canary = m.metadata?.annotations?.["nginx.ingress.kubernetes.io/canary"] === "true";
            for (const rule of m.spec?.rules ?? []) {
                problems.push(...hostRuleProblems(where, rule.host ?? ""));
                for (const p of rule.http?.paths ?? []) {
                    problems.push(...pathRuleProblems(where, p.path));
                    const claim = `${rule.host}${p.path.length > 1 ? p.path.replace(/\/+$/, "") : p.path}`;
                    if (!canary && claims.has(claim)) problems.push(`${where}: ${claim} already defined in Ingress ${claims.get(claim)}`);
                    if (!canary) claims.set(claim, name);
                }
            }
        }
        if (m.kind === "HTTPRoute") {
            for (const h of m.spec?.hostnames ?? []) problems.push(...hostRuleProblems(where, h));
            for (const rule of m.spec?.rules ?? []) for (const match of rule.matches ?? []) problems.push(...pathRuleProblems(where, match.path?.value ?? "/"));
        }
        if (m.kind === "PersistentVolumeClaim" && !(quantity(m.spec?.resources?.requests?.storage) >= 1)) problems.push(`${where}: storage`);
        for (const v of t?.spec?.volumes ?? []) {
            if (v.emptyDir?.sizeLimit !== undefined && !(quantity(v.emptyDir.sizeLimit) > 0)) problems.push(`${where}: emptyDir ${v.name} sizeLimit`);
        }
        for (const vct of m.spec?.volumeClaimTemplates ?? []) {
            if (!(quantity(vct.spec?.resources?.requests?.storage) >= 1)) problems.push(`${where}: volume ${vct.metadata?.name} storage`);
        }
    }
    return problems;
}
