import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "./config/types";
import { ConfigError, parseRawConfig } from "./config/validate";
import { Environment } from "./environment";
import { readLiveState } from "./live";
import { liveQuery } from "./plan/apps";
import { planEnvironment } from "./plan/environment";
import { validateStackConfig } from "./plan/rules";

/**
 * Reads and validates the whole stack config, key by key and then across apps; throws ConfigError
 * listing every problem.
 */
export function readStackConfig(): StackConfig {
    return validateStackConfig(parseRawConfig(pulumi.runtime.allConfig()), pulumi.getStack());
}

/**
 * The program: config → validated plan → resources. Nothing is declared unless the whole config
 * is valid, so bad input never leaves a half-applied environment.
 */
export async function runProgram(opts: pulumi.ComponentResourceOptions = {}): Promise<Environment> {
    let config: StackConfig;
    try {
        config = readStackConfig();
    } catch (e) {
        // RunError prints as a plain message in `pulumi preview`, without a stack trace.
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
    // Read before anything is declared: whether a track's size is asserted is a resource option.
    const live = await readLiveState({ namespace: config.namespace, context: config.kubernetes.context, ...liveQuery(config) });
    return new Environment(config.stack, { plan: planEnvironment(config, live) }, opts);
}
