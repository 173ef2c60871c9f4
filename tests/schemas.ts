// Validation of Kubernetes objects against the official OpenAPI schemas (kubernetes-models and its
// Gateway API package), shared by the mock-engine tests and the real-engine tests.

const MODEL_MODULES: Record<string, string> = {
    "v1": "kubernetes-models/v1",
    "apps/v1": "kubernetes-models/apps/v1",
    "batch/v1": "kubernetes-models/batch/v1",
    "policy/v1": "kubernetes-models/policy/v1",
    "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
    "autoscaling/v2": "kubernetes-models/autoscaling/v2",
    "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1",
};

/** The schema error of one object as "Kind/name: what is wrong", or "" when it is valid. */
export function schemaErrors(m: Record<string, any>): string {
    const where = `${m.kind}/${m.metadata.name}`;
    const moduleName = MODEL_MODULES[m.apiVersion];
    if (!moduleName) return `${where}: no schema known for ${m.apiVersion}`;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Model = require(moduleName)[m.kind];
    if (!Model) return `${where}: no schema for ${m.apiVersion} ${m.kind}`;
    try {
        new Model(m).validate();
        return "";
    } catch (e) {
        return `${where}: ${(e as Error).message}`;
    }
}
