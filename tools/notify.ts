// Team-channel announcements: one JSON POST to a Slack- or Discord-compatible incoming webhook
// (Slack reads `text`, Discord reads `content`; both get the same message). The URL comes from
// the environment (a CI secret) and is never printed: a failed delivery is reported by status only
// and never fails the deploy it announces.

export const WEBHOOK_ENV = "PLATFORM_WEBHOOK_URL";

export type NoticeEvent = "start" | "success" | "failure" | "rollback" | "rollback-failed" | "health-failed" | "locked" | "not-recorded" | "interrupted";

export interface AppChange {
    app: string;
    /** Images by track (the stack output `apps.<app>.images`). */
    versionsBefore?: Record<string, string>;
    versionsAfter?: Record<string, string>;
    trafficBefore?: Record<string, unknown>;
    trafficAfter?: Record<string, unknown>;
}

export interface Notice {
    event: NoticeEvent;
    stack: string;
    /** One line: what happened. */
    summary: string;
    apps?: AppChange[];
    /** The CI run (or whatever the operator passes) to look at. */
    runUrl?: string;
}

const TITLES: Record<NoticeEvent, string> = {
    start: "deploy started",
    success: "deploy succeeded",
    failure: "deploy FAILED",
    rollback: "automatic ROLLBACK done",
    "rollback-failed": "automatic rollback FAILED: act now",
    "health-failed": "health check FAILED",
    locked: "deploy NOT STARTED: another update is running",
    "not-recorded": "deployed but NOT RECORDED as validated: act now",
    interrupted: "deploy INTERRUPTED: look now",
};

const tag = (image: string) => image.replace(/^.*[:@]/, "");
const versions = (v?: Record<string, string>) => (v ? Object.entries(v).map(([t, i]) => `${t} ${tag(i)}`).join(", ") : "none");
const traffic = (t?: Record<string, unknown>) => (t ? JSON.stringify(t) : "none");

/** The message text: stack, event, one line per app with versions and traffic before → after, the link. */
export function messageText(n: Notice): string {
    const lines = [`[${n.stack}] ${TITLES[n.event]}: ${n.summary}`];
    for (const a of n.apps ?? []) {
        const v = a.versionsAfter && versions(a.versionsAfter) !== versions(a.versionsBefore)
            ? `${versions(a.versionsBefore)} → ${versions(a.versionsAfter)}` : versions(a.versionsBefore ?? a.versionsAfter);
        const t = a.trafficAfter && traffic(a.trafficAfter) !== traffic(a.trafficBefore)
            ? `${traffic(a.trafficBefore)} → ${traffic(a.trafficAfter)}` : traffic(a.trafficBefore ?? a.trafficAfter);
        lines.push(`• ${a.app}: versions ${v}; traffic ${t}`);
    }
    if (n.runUrl) lines.push(`run: ${n.runUrl}`);
    const text = lines.join("\n");
    // Discord refuses content over 2000 characters.
    return text.length > 1900 ? `${text.slice(0, 1890)}\n…` : text;
}

export function payload(n: Notice): Record<string, unknown> {
    const text = messageText(n);
    return { text, content: text, username: "platform" };
}

/**
 * Posts the notice; returns what happened in words (never the URL). `url` defaults to
 * $PLATFORM_WEBHOOK_URL; without one the notice is only printed.
 */
export async function notify(n: Notice, url = process.env[WEBHOOK_ENV], timeoutMs = 10_000): Promise<string> {
    if (!url) return `notify: ${WEBHOOK_ENV} is not set; ${n.event} not announced`;
    const post = () => fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload(n)),
        signal: AbortSignal.timeout(timeoutMs),
    });
    try {
        // fetch reuses a kept-alive connection; one the server closed while a rollback ran fails with
        // ECONNRESET before the request was read, so that one failure is retried once.
        const res = await post().catch((e: Error & { cause?: { code?: string } }) => {
            if (e.cause?.code === "ECONNRESET" || e.cause?.code === "UND_ERR_SOCKET") return post();
            throw e;
        });
        await res.arrayBuffer();
        return res.ok ? `notify: ${n.event} announced` : `notify: ${n.event} NOT announced: the webhook answered HTTP ${res.status}`;
    } catch (e) {
        const err = e as Error & { cause?: { code?: string } };
        const why = err.name === "TimeoutError" ? "timed out" : err.cause?.code ?? "request failed";
        return `notify: ${n.event} NOT announced: the webhook ${why}`;
    }
}

/** The link to this CI run, from GitHub Actions' environment; PLATFORM_RUN_URL overrides it. */
export function runUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
    if (env.PLATFORM_RUN_URL) return env.PLATFORM_RUN_URL;
    if (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID) {
        return `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
    }
    return undefined;
}
