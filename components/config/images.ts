import { object, Problems, string } from "./check";
import { PostgresConfig, RedisConfig, Tier } from "./types";

// The platform's own images (not the apps'): the data services, the backup tools and the default
// smoke test. `platform:images.<name>` pins one as `<repository>:<tag>@sha256:<digest>`; the tag
// stays for the reader, the digest is what the node pulls. Production must pin every one it runs.

export interface PlatformImages {
    postgres: string;
    redis: string;
    /** gcloud, for backups stored in (and drilled from) GCS. */
    cloudCli: string;
    /** curl, for the default smoke test. */
    smokeTest: string;
    /** Node.js 20, for the analysis Jobs (scripts/analysis/analyze.js needs only its built-ins). */
    analysis: string;
}

export const IMAGE_KEYS = ["postgres", "redis", "cloudCli", "smokeTest", "analysis"] as const;

/**
 * The smoke test's curl 8.11.1 (a release tag, never rebuilt), by the digest published for it in
 * many independent public manifests (docs: README, Security). The other defaults follow the
 * configured versions, so they cannot carry one fixed digest: production must pin them.
 */
export const DEFAULT_SMOKE_TEST_IMAGE = "curlimages/curl:8.11.1@sha256:c1fe1679c34d9784c1b0d1e5f62ac0a79fca01fb6377cdd33e90473c6f9f9a69";
/**
 * Node.js 20.18.1 on bookworm-slim (a release tag, never rebuilt), by the digest that several
 * independent public Dockerfiles pin for it: every stack verifies its deploys with it, production
 * included, so it is pinned by default like curl.
 */
export const DEFAULT_ANALYSIS_IMAGE = "node:20.18.1-bookworm-slim@sha256:b2c8e0eb8a6aeeae33b2711f8f516003e27ee45804e270468d937b3214f2f0cc";
export const DEFAULT_CLOUD_CLI_IMAGE = "gcr.io/google.com/cloudsdktool/google-cloud-cli:502.0.0-slim";

const PINNED = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*:([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})@sha256:[a-f0-9]{64}$/;
export const isPinned = (image: string) => /@sha256:[a-f0-9]{64}$/.test(image);

export function validateImages(p: Problems, value: unknown, tier: Tier, postgres: PostgresConfig, redis: RedisConfig): PlatformImages {
    const v = object(p, "images", value, IMAGE_KEYS) ?? {};
    const image = (k: (typeof IMAGE_KEYS)[number]) => string(p, `images.${k}`, v[k], {
        pattern: PINNED, means: "an image pinned by digest: <repository>:<tag>@sha256:<64 hex digits>",
    });
    const images: PlatformImages = {
        postgres: image("postgres") ?? `postgres:${postgres.version}-bookworm`,
        redis: image("redis") ?? `redis:${redis.version}-bookworm`,
        cloudCli: image("cloudCli") ?? DEFAULT_CLOUD_CLI_IMAGE,
        smokeTest: image("smokeTest") ?? DEFAULT_SMOKE_TEST_IMAGE,
        analysis: image("analysis") ?? DEFAULT_ANALYSIS_IMAGE,
    };
    // The backup tools must match the server: the tag names the configured major version.
    for (const [k, version] of [["postgres", postgres.version], ["redis", redis.version]] as const) {
        const tag = /:([^:@/]+)(@|$)/.exec(images[k].slice(images[k].lastIndexOf("/") + 1))?.[1] ?? "";
        if (v[k] !== undefined && images[k] !== undefined && !tag.startsWith(version)) {
            p.add(`images.${k}`, `must be a tag of version ${version} (platform:${k}.version), e.g. ${k}:${version}-bookworm@sha256:…`, v[k]);
        }
    }
    if (tier === "production") {
        const gcs = [postgres.backup, redis.backup].some((b) => b.enabled && b.destination === "gcs");
        const used: [(typeof IMAGE_KEYS)[number], boolean][] = [
            ["postgres", postgres.mode === "incluster" || postgres.backup.enabled],
            ["redis", redis.mode === "incluster"],
            ["cloudCli", gcs],
        ];
        for (const [k, needed] of used) {
            if (needed && !isPinned(images[k]) && v[k] === undefined) {
                p.add(`images.${k}`, `is required in production: pin ${images[k]} by digest (${images[k]}@sha256:…, from \`docker buildx imagetools inspect ${images[k]}\`)`);
            }
        }
    }
    return images;
}
