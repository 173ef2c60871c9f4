import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "./config/types";
import { ConfigError, parseRawConfig, validateConfig } from "./config/validate";
import { Environment } from "./environment";
import { planEnvironment } from "./plan/environment";

/** Reads and validates the whole stack config; throws ConfigError listing every problem. */
export function readStackConfig(): StackConfig {
    return validateConfig(parseRawConfig(pulumi.runtime.allConfig()), pulumi.getStack());
}

/**
 * The program: config → validated plan → resources. Nothing is declared unless the whole config
 * is valid, so bad input never leaves a half-applied environment.
 */
export function runProgram(opts: pulumi.ComponentResourceOptions = {}): Environment {
    let config: StackConfig;
    try {
        config = readStackConfig();
    } catch (e) {
        // RunError prints as a plain message in `pulumi preview`, without a stack trace.
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
    return new Environment(config.stack, { plan: planEnvironment(config) }, opts);
}
