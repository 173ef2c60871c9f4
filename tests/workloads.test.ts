import { strict as assert } from "assert";
import { run, STACKS } from "./harness";

// Every container's root filesystem is read-only; what the software must write goes to an emptyDir
// (or its data volume) mounted where it writes.

const WRITABLE: Record<string, string[]> = {
    app: ["/tmp"], "migration": ["/tmp"], "smoke-test": ["/tmp"],
    postgres: ["/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"],
    redis: ["/data", "/tmp"],
};

for (const stack of STACKS) {
    describe(`stack ${stack}: workloads`, () => {
        it("run every container with a read-only root filesystem and writable mounts where the software writes", async () => {
            const r = await run(stack);
            let checked = 0;
            for (const m of r.manifests) {
                const t = m.kind === "CronJob" ? m.spec.jobTemplate.spec.template : ["Deployment", "StatefulSet", "Job"].includes(m.kind) ? m.spec.template : undefined;
                if (!t) continue;
                const volumes = new Map((t.spec.volumes ?? []).map((v: any) => [v.name, v]));
                const claims = new Set((m.spec.volumeClaimTemplates ?? []).map((v: any) => v.metadata.name));
                for (const c of [...(t.spec.initContainers ?? []), ...t.spec.containers]) {
                    const where = `${m.kind}/${m.metadata.name} ${c.name}`;
                    assert.equal(c.securityContext?.readOnlyRootFilesystem, true, where);
                    for (const dir of WRITABLE[c.name] ?? []) {
                        const mount = (c.volumeMounts ?? []).find((v: any) => v.mountPath === dir);
                        assert.ok(mount && !mount.readOnly, `${where} cannot write ${dir}`);
                        const v: any = volumes.get(mount.name);
                        assert.ok(v?.emptyDir || v?.persistentVolumeClaim || claims.has(mount.name), `${where} ${dir} is not an emptyDir or a volume`);
                    }
                    checked++;
                }
            }
            assert.ok(checked > 5);
        });
    });
}
