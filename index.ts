import { runProgram } from "./components/program";

const environment = runProgram();

export const namespace = environment.namespace;
export const tier = environment.outputs.tier;
export const apps = environment.outputs.apps;
export const postgres = environment.outputs.postgres;
export const redis = environment.outputs.redis;
