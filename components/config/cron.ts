// CronJob schedules as Kubernetes parses them (robfig/cron's standard parser): five fields of
// numbers, ranges, lists and steps, month and weekday names. Quartz extensions that permissive
// parsers accept (`?`, `L`, `W`, `#`, a seconds field, weekday 7) are refused here, at the config
// key, instead of by the API server in the middle of an update.

interface Field {
    name: string;
    min: number;
    max: number;
    names?: string[];
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FIELDS: Field[] = [
    { name: "minute", min: 0, max: 59 },
    { name: "hour", min: 0, max: 23 },
    { name: "day of month", min: 1, max: 31 },
    { name: "month", min: 1, max: 12, names: MONTHS },
    { name: "day of week", min: 0, max: 6, names: DAYS },
];

function value(text: string, f: Field): number | string {
    if (/^[0-9]+$/.test(text)) {
        const n = Number(text);
        return n < f.min || n > f.max ? `${f.name} ${n} is outside ${f.min}-${f.max}` : n;
    }
    const i = f.names?.indexOf(text.toLowerCase()) ?? -1;
    if (i >= 0) return f.min + i;
    return `${f.name} "${text}" is not a number${f.names ? " or a three-letter name" : ""}`;
}

/** The values a field selects, or what is wrong with it. */
function field(text: string, f: Field): Set<number> | string {
    const out = new Set<number>();
    for (const part of text.split(",")) {
        const m = /^([^/]+)(?:\/([0-9]+))?$/.exec(part);
        if (!m) return `${f.name} "${part}" is not a value, range or step`;
        const step = m[2] === undefined ? 1 : Number(m[2]);
        if (step === 0) return `${f.name} step must be positive`;
        let start: number;
        let end: number;
        if (m[1] === "*") {
            [start, end] = [f.min, f.max];
        } else {
            const bounds = m[1].split("-");
            if (bounds.length > 2) return `${f.name} "${part}" is not a value, range or step`;
            const a = value(bounds[0], f);
            if (typeof a === "string") return a;
            const b = bounds.length === 2 ? value(bounds[1], f) : m[2] !== undefined ? f.max : a;
            if (typeof b === "string") return b;
            if (a > b) return `${f.name} range ${m[1]} runs backwards`;
            [start, end] = [a, b];
        }
        for (let v = start; v <= end; v += step) out.add(v);
    }
    return out;
}

/** What Kubernetes would refuse in a schedule, or undefined when it accepts it. */
export function cronProblem(schedule: string): string | undefined {
    const parts = schedule.trim().split(/\s+/);
    if (parts.length !== 5) return `has ${parts.length} field${parts.length === 1 ? "" : "s"}`;
    for (let i = 0; i < 5; i++) {
        const r = field(parts[i], FIELDS[i]);
        if (typeof r === "string") return r;
    }
    return undefined;
}

/**
 * Whether a schedule plainly runs every day: day of month, month and day of week all `*`. The
 * policy pack applies the same rule to programs other than this one (policy/policies.ts).
 */
export function runsEveryDay(schedule: string): boolean {
    const parts = schedule.trim().split(/\s+/);
    return cronProblem(schedule) === undefined && parts[2] === "*" && parts[3] === "*" && parts[4] === "*";
}
