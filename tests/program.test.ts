import { strict as assert } from "assert";
import { Result, run, STACKS } from "./harness";
import { schemaErrors } from "./schemas";

// The program as a whole, for every stack file: schema-valid objects and the semantic rules that
// make them work together. Each rule is written once and run over every stack.

function podSpecs(r: Result): { owner: string; labels: Record<string, string>; spec: any }[] {
    const out: { owner: string; labels: Record<string, string>; spec: any }[] = [];
    for (const m of r.manifests) {
        const t = m.kind === "CronJob" ? m.spec.jobTemplate.spec.template : ["Deployment", "StatefulSet", "Job"].includes(m.kind) ? m.spec.template : undefined;
        if (t) out.push({ owner: `${m.kind}/${m.metadata.name}`, labels: t.metadata?.labels ?? {}, spec: t.spec });
    }
    return out;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);

function allContainers(spec: any): any[] {
    return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

for (const stack of STACKS) {
    describe(`stack ${stack}`, function () {
        let r: Result;
        before(async () => {
            r = await run(stack);
        });

        it("declares the namespace, both data services and every configured app", () => {
            assert.ok(r.has("Namespace", r.outputs.namespace));
            assert.ok(r.has("StatefulSet", "postgres"));
            assert.ok(r.has("StatefulSet", "redis"));
            for (const app of Object.keys(r.outputs.apps)) assert.ok(r.ofKind("Deployment").some((d) => d.metadata.name.startsWith(app)), app);
            assert.ok(Object.keys(r.outputs.apps).length >= 3);
        });

        it("validates every Kubernetes object against the official schemas", () => {
            const errors = r.manifests.map(schemaErrors).filter((e) => e);
            assert.deepEqual(errors, []);
            assert.ok(r.manifests.length > 30);
        });

        it("gives every Service a selector that matches the pods of some workload", () => {
            const pods = podSpecs(r);
            for (const svc of r.ofKind("Service")) {
                const sel = svc.spec.selector;
                assert.ok(sel && Object.keys(sel).length, `${svc.metadata.name} has no selector`);
                assert.ok(pods.some((p) => matches(sel, p.labels)), `Service ${svc.metadata.name} selects no pod template`);
            }
        });

        it("never lets a Service select Job pods (migrations and smoke tests take no traffic)", () => {
            const jobPods = podSpecs(r).filter((p) => p.owner.startsWith("Job/") || p.owner.startsWith("CronJob/"));
            for (const svc of r.ofKind("Service")) {
                for (const p of jobPods) assert.ok(!matches(svc.spec.selector, p.labels), `Service ${svc.metadata.name} selects ${p.owner}`);
            }
        });

        it("points Service targetPorts and probe ports at ports the containers declare", () => {
            const pods = podSpecs(r);
            for (const svc of r.ofKind("Service")) {
                for (const p of pods.filter((x) => matches(svc.spec.selector, x.labels))) {
                    const ports = p.spec.containers.flatMap((c: any) => c.ports ?? []);
                    for (const sp of svc.spec.ports) {
                        assert.ok(ports.some((cp: any) => cp.name === sp.targetPort || cp.containerPort === sp.targetPort),
                            `Service ${svc.metadata.name} targetPort ${sp.targetPort} not in ${p.owner}`);
                    }
                }
            }
            for (const p of pods) {
                for (const c of p.spec.containers) {
                    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter((x) => x?.httpGet)) {
                        assert.ok((c.ports ?? []).some((cp: any) => cp.name === probe.httpGet.port || cp.containerPort === probe.httpGet.port), `${p.owner} probe port`);
                    }
                }
            }
        });

        it("makes every secretKeyRef and configMapKeyRef name an object and key the program creates", () => {
            const secrets = new Map(r.ofKind("Secret").map((s) => [s.metadata.name, new Set(Object.keys({ ...s.data, ...s.stringData }))]));
            const configMaps = new Map(r.ofKind("ConfigMap").map((c) => [c.metadata.name, new Set(Object.keys({ ...c.data }))]));
            let refs = 0;
            for (const p of podSpecs(r)) {
                for (const c of allContainers(p.spec)) {
                    for (const e of c.env ?? []) {
                        const s = e.valueFrom?.secretKeyRef;
                        const cm = e.valueFrom?.configMapKeyRef;
                        if (s) {
                            refs++;
                            assert.ok(secrets.get(s.name)?.has(s.key), `${p.owner} ${e.name} -> Secret ${s.name}/${s.key}`);
                        }
                        if (cm) assert.ok(configMaps.get(cm.name)?.has(cm.key), `${p.owner} ${e.name} -> ConfigMap ${cm.name}/${cm.key}`);
                    }
                }
                for (const v of p.spec.volumes ?? []) {
                    if (v.secret) assert.ok(secrets.has(v.secret.secretName), `${p.owner} volume Secret ${v.secret.secretName}`);
                    if (v.configMap) assert.ok(configMaps.has(v.configMap.name), `${p.owner} volume ConfigMap ${v.configMap.name}`);
                }
            }
            assert.ok(refs > 0);
        });

        it("has NetworkPolicies that select existing pods", () => {
            const pods = podSpecs(r);
            for (const np of r.ofKind("NetworkPolicy")) {
                assert.ok(pods.some((p) => matches(np.spec.podSelector.matchLabels ?? {}, p.labels)), `NetworkPolicy ${np.metadata.name} selects nothing`);
            }
        });

        it("lets only declared clients reach the data services", () => {
            const deny = r.object("NetworkPolicy", "data-default-deny");
            assert.deepEqual(deny.spec.policyTypes, ["Ingress"]);
            assert.equal(deny.spec.ingress, undefined);
            const pods = podSpecs(r);
            const postgres = pods.find((p) => p.owner === "StatefulSet/postgres")!;
            assert.ok(matches(deny.spec.podSelector.matchLabels, postgres.labels));
            const allow = r.object("NetworkPolicy", "postgres-allow-clients").spec.ingress[0];
            const clients = pods.filter((p) => matches(allow.from[0].podSelector.matchLabels, p.labels)).map((p) => p.owner);
            const users = r.ofKind("Deployment").filter((d) => JSON.stringify(d.spec.template.spec.containers[0].env ?? []).includes("postgres-credentials"));
            for (const u of users) assert.ok(clients.includes(`Deployment/${u.metadata.name}`), `${u.metadata.name} uses postgres but may not reach it`);
            for (const c of clients.filter((c) => c.startsWith("Deployment/"))) {
                assert.ok(users.some((u) => `Deployment/${u.metadata.name}` === c), `${c} may reach postgres without using it`);
            }
        });

        it("uses DNS-1123 names of at most 63 characters", () => {
            for (const m of r.manifests) assert.match(m.metadata.name, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, `${m.kind} ${m.metadata.name}`);
        });

        it("pins every image to a tag or digest, never latest", () => {
            for (const p of podSpecs(r)) {
                for (const c of allContainers(p.spec)) {
                    assert.match(c.image, /(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[a-f0-9]{64})$/, `${p.owner} ${c.image}`);
                    assert.doesNotMatch(c.image, /:latest$/, `${p.owner} ${c.image}`);
                }
            }
        });

        it("gives every container requests, limits and the restricted security context", () => {
            for (const p of podSpecs(r)) {
                assert.equal(p.spec.securityContext?.runAsNonRoot, true, p.owner);
                assert.equal(p.spec.securityContext?.seccompProfile?.type, "RuntimeDefault", p.owner);
                for (const c of allContainers(p.spec)) {
                    const where = `${p.owner} ${c.name}`;
                    for (const side of ["requests", "limits"]) {
                        assert.ok(c.resources?.[side]?.cpu && c.resources?.[side]?.memory, `${where} ${side}`);
                    }
                    assert.equal(c.securityContext?.allowPrivilegeEscalation, false, where);
                    assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"], where);
                    assert.equal(c.securityContext?.runAsNonRoot, true, where);
                }
            }
            assert.equal(r.ofKind("Namespace")[0].metadata.labels!["pod-security.kubernetes.io/enforce"], "restricted");
        });

        it("keeps generated passwords out of everything but Secret data and the stack outputs", () => {
            const passwords = r.evaluation.generatedSecrets;
            assert.ok(passwords.length >= 2);
            for (const res of r.resources) {
                const text = JSON.stringify(res.inputs);
                const isSecret = res.inputs?.kind === "Secret" || res.type.startsWith("random:");
                for (const pw of passwords) assert.ok(isSecret || !text.includes(pw), `password leaks into ${res.type} ${res.name}`);
            }
            const outputs = JSON.stringify(r.outputs);
            for (const pw of passwords) assert.ok(!outputs.includes(pw), "password leaks into stack outputs");
            for (const m of r.ofKind("Secret")) assert.ok(Object.values({ ...m.stringData }).every((v) => v === "<redacted>"));
        });

        it("selects pods only by labels that never change (no version, tag or weight)", () => {
            for (const d of [...r.ofKind("Deployment"), ...r.ofKind("StatefulSet")]) {
                const sel = d.spec.selector.matchLabels;
                assert.deepEqual(Object.keys(sel).filter((k) => !["app.kubernetes.io/name", "app.kubernetes.io/instance", "platform.dev/track"].includes(k)), [], d.metadata.name);
            }
            for (const s of r.ofKind("Service")) assert.ok(!("app.kubernetes.io/version" in s.spec.selector), s.metadata.name);
        });

        it("carries the Kubernetes recommended labels on every app pod", () => {
            for (const d of r.ofKind("Deployment")) {
                const labels = d.spec.template.metadata.labels;
                for (const k of ["name", "instance", "version", "component", "part-of", "managed-by"]) assert.ok(labels[`app.kubernetes.io/${k}`], `${d.metadata.name} ${k}`);
            }
        });

        it("gives every app Deployment probes, draining, a spread and a PDB", () => {
            for (const d of r.ofKind("Deployment")) {
                const spec = d.spec.template.spec;
                const c = spec.containers[0];
                assert.ok(c.readinessProbe?.httpGet && c.livenessProbe?.httpGet && c.startupProbe?.httpGet, d.metadata.name);
                assert.ok(c.lifecycle?.preStop?.sleep?.seconds > 0, d.metadata.name);
                assert.ok(spec.terminationGracePeriodSeconds > c.lifecycle.preStop.sleep.seconds, d.metadata.name);
                assert.deepEqual(spec.topologySpreadConstraints.map((t: any) => t.topologyKey).sort(), ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
                assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
                const pdb = r.object("PodDisruptionBudget", d.metadata.name);
                assert.deepEqual(pdb.spec.selector.matchLabels, d.spec.selector.matchLabels);
            }
        });

        it("protects stateful resources exactly in production", () => {
            const production = stack === "production";
            for (const [kind, name] of [["StatefulSet", "postgres"], ["StatefulSet", "redis"], ["Secret", "postgres-credentials"], ["Secret", "redis-credentials"], ["Namespace", r.outputs.namespace]]) {
                const res = r.resource(kind, name);
                assert.equal(res.protect, production, `${kind}/${name} protect`);
                assert.equal(res.retainOnDelete, production, `${kind}/${name} retainOnDelete`);
            }
            for (const sts of r.ofKind("StatefulSet")) assert.equal(sts.spec.persistentVolumeClaimRetentionPolicy.whenDeleted, "Retain");
            const passwords = r.resources.filter((x) => x.type === "random:index/randomPassword:RandomPassword");
            assert.ok(passwords.every((p) => p.protect === production));
            for (const d of r.ofKind("Deployment")) assert.equal(r.resource("Deployment", d.metadata.name).protect, false);
        });

        it("creates every Kubernetes object through the stack's own provider", () => {
            const provider = r.resources.find((x) => x.type === "pulumi:providers:kubernetes")!;
            assert.ok(provider);
            for (const res of r.resources.filter((x) => x.type.startsWith("kubernetes:"))) {
                assert.ok(res.provider?.startsWith(provider.urn), `${res.type} ${res.name} uses ${res.provider}`);
            }
        });
    });
}

describe("local stack", () => {
    it("renders to a directory instead of a cluster", async () => {
        const r = await run("local");
        const provider = r.resources.find((x) => x.type === "pulumi:providers:kubernetes")!;
        assert.equal(provider.inputs.renderYamlToDirectory, "out/local");
    });
});
