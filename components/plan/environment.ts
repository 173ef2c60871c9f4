import { StackConfig } from "../config/types";
import type { LiveState } from "../live";
import { AppPlan, planApp } from "./apps";
import { commonLabels } from "./names";

export interface EnvironmentPlan {
    config: StackConfig;
    namespace: string;
    /** Production data is protected: `protect` stops a destroy, `retainOnDelete` keeps the object if removed. */
    protectData: boolean;
    labels: Record<string, string>;
    apps: AppPlan[];
    /** Which data services some app (or backup) connects to. */
    clientsOf: { postgres: string[]; redis: string[] };
}

/** `live`: what the cluster runs now (components/live.ts); nothing before the first deploy. */
export function planEnvironment(config: StackConfig, live?: LiveState): EnvironmentPlan {
    const apps = config.apps.map((a) => planApp(a, config, live));
    return {
        config,
        namespace: config.namespace,
        protectData: config.tier === "production",
        labels: commonLabels(config.stack),
        apps,
        clientsOf: {
            postgres: config.apps.filter((a) => a.uses.includes("postgres")).map((a) => a.name),
            redis: config.apps.filter((a) => a.uses.includes("redis")).map((a) => a.name),
        },
    };
}
