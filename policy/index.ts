import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

// The platform policy pack: `pulumi preview --policy-pack policy` (CI runs it on every preview and
// update). Constructing the pack starts the analyzer server, so the tests import ./policies.

export * from "./policies";

export const platformPolicyPack = new PolicyPack("platform", { policies });
