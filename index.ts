import { runProgram } from "./components/program";

// The program reads the cluster's live state before it declares anything, so it is asynchronous;
// Pulumi awaits the exported promise and takes its fields as the stack outputs.
export = runProgram().then((environment) => ({
    namespace: environment.namespace,
    tier: environment.outputs.tier,
    apps: environment.outputs.apps,
    postgres: environment.outputs.postgres,
    redis: environment.outputs.redis,
    backups: environment.outputs.backups,
}));
