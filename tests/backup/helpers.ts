// Shared helpers of the backup tests: the real PostgreSQL/Redis started by
// scripts/test-services, running the backup scripts as an unprivileged user
// (as the pods run them, uid 999), temporary directories, JSON log lines.
import { spawn, spawnSync, ChildProcess } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const REPO = path.resolve(__dirname, "..", "..");
export const SCRIPTS = path.join(REPO, "scripts", "backup");
const TEST_SERVICES = path.join(REPO, "scripts", "test-services");

export interface Services {
  /** the directory of scripts/test-services */
  dir: string;
  /** the user the servers and the backup scripts run as */
  user: string;
  uid: number;
  gid: number;
  pgBin: string;
  pgHost: string;
  pgPort: string;
  pgSocketDir: string;
  pgPasswordFile: string;
  redisHost: string;
  redisPort: string;
  redisPasswordFile: string;
}

let cached: Services | undefined;

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function haveBinaries(): string | undefined {
  const pg = fs.existsSync("/usr/lib/postgresql")
    ? fs.readdirSync("/usr/lib/postgresql").some((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
    : false;
  const redis = ["redis-server", "redis-cli", "redis-check-rdb"].every(
    (b) => spawnSync("sh", ["-c", `command -v ${b}`]).status === 0,
  );
  if (pg && redis) return undefined;
  return (
    `${[pg ? "" : "PostgreSQL server", redis ? "" : "redis-server/redis-cli/redis-check-rdb"].filter(Boolean).join(" and ")} ` +
    "not installed: run `scripts/test-services install` (as root) before the backup tests."
  );
}

/** Start (if needed) the private PostgreSQL and Redis and return their facts. Never skips. */
export function services(): Services {
  if (cached) return cached;
  const missing = haveBinaries();
  if (missing) throw new Error(missing);
  const r = spawnSync("bash", [TEST_SERVICES, "start"], { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`scripts/test-services start failed (exit ${r.status}): ${r.stderr}${r.stdout}`);
  }
  const e = parseEnv(r.stdout);
  const isRoot = process.getuid?.() === 0;
  const user = e.TEST_SERVICES_USER;
  const uid = isRoot ? Number(spawnSync("id", ["-u", user], { encoding: "utf8" }).stdout.trim()) : process.getuid!();
  const gid = isRoot ? Number(spawnSync("id", ["-g", user], { encoding: "utf8" }).stdout.trim()) : process.getgid!();
  cached = {
    dir: e.TEST_SERVICES_DIR,
    user,
    uid,
    gid,
    pgBin: e.PG_BINDIR,
    pgHost: e.PGHOST,
    pgPort: e.PGPORT,
    pgSocketDir: e.PG_SOCKET_DIR,
    pgPasswordFile: e.PG_PASSWORD_FILE,
    redisHost: e.REDIS_HOST,
    redisPort: e.REDIS_PORT,
    redisPasswordFile: e.REDIS_PASSWORD_FILE,
  };
  return cached;
}

/** spawn options that run a child as the scripts' user (only needed, and only possible, as root) */
export function asServiceUser(): { uid?: number; gid?: number } {
  const s = services();
  return process.getuid?.() === 0 ? { uid: s.uid, gid: s.gid } : {};
}

const tmpDirs: string[] = [];

/** A fresh directory owned by the scripts' user; removed by cleanupTmp(). */
export function tmpDir(label: string): string {
  const s = services();
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `bk-${label}-`));
  fs.chmodSync(d, 0o755);
  fs.chownSync(d, s.uid, s.gid);
  tmpDirs.push(d);
  return d;
}

export function cleanupTmp(): void {
  while (tmpDirs.length) {
    const d = tmpDirs.pop()!;
    fs.rmSync(d, { recursive: true, force: true });
  }
}

/** chown -R to the scripts' user (files the test wrote as root) */
export function giveToUser(p: string): void {
  const s = services();
  fs.chownSync(p, s.uid, s.gid);
  if (fs.statSync(p).isDirectory()) {
    for (const f of fs.readdirSync(p)) giveToUser(path.join(p, f));
  }
}

export interface LogLine {
  event: string;
  phase: string;
  status: "ok" | "error";
  start: string;
  end: string;
  error?: string;
  exit_code?: number;
  [k: string]: unknown;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** the one JSON line on stdout */
  log: LogLine;
}

/** Run a backup script as the scripts' user with exactly the given environment (plus PATH). */
export function runScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  opts: { pathPrefix?: string[] } = {},
): Promise<RunResult> {
  return startScript(script, args, env, opts).result;
}

/** Like runScript, but hands out the child too (to signal it while it runs). */
export function startScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  opts: { pathPrefix?: string[] } = {},
): { child: ChildProcess; result: Promise<RunResult> } {
  const s = services();
  const PATH = [...(opts.pathPrefix ?? []), s.pgBin, "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].join(":");
  const fullEnv: Record<string, string> = { PATH, LANG: "C.UTF-8", ...env };
  const child = spawn("bash", [path.join(SCRIPTS, script), ...args], {
    env: fullEnv,
    ...asServiceUser(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const result = new Promise<RunResult>((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const lines = stdout.split("\n").filter((l) => l.trim() !== "");
      if (lines.length !== 1) {
        reject(new Error(`${script} ${args.join(" ")}: expected exactly one JSON line on stdout, got ${lines.length}:\n${stdout}\nstderr:\n${stderr}`));
        return;
      }
      let log: LogLine;
      try {
        log = JSON.parse(lines[0]) as LogLine;
      } catch (e) {
        reject(new Error(`${script}: stdout is not JSON: ${lines[0]}`));
        return;
      }
      resolve({ code, stdout, stderr, log });
    });
  });
  return { child, result };
}

/** describe a result for assertion messages */
export function explain(r: RunResult): string {
  return `exit ${r.code}\nlog: ${JSON.stringify(r.log)}\nstderr:\n${r.stderr}`;
}

// ---------------------------------------------------------------------------
// PostgreSQL and Redis access for the tests themselves (seeding, checking)

/** psql on the test server over its Unix socket (trust), as the postgres role. */
export function psql(db: string, sql: string): string {
  const s = services();
  const r = spawnSync(
    path.join(s.pgBin, "psql"),
    ["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h", s.pgSocketDir, "-p", s.pgPort, "-U", "postgres", "-d", db],
    { input: sql, encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
  );
  if (r.status !== 0) throw new Error(`psql ${db} failed: ${r.stderr}\nSQL: ${sql.slice(0, 500)}`);
  return r.stdout.trim();
}

/** A long-running psql (e.g. a concurrent writer) */
export function psqlAsync(db: string, sql: string): ChildProcess {
  const s = services();
  const child = spawn(
    path.join(s.pgBin, "psql"),
    ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", s.pgSocketDir, "-p", s.pgPort, "-U", "postgres", "-d", db, "-c", sql],
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdio: ["ignore", "ignore", "pipe"] },
  );
  return child;
}

/**
 * A Redis backup covers the whole server, so two test runs on one machine
 * (several engineers, or CI next to a developer) must not seed and back up
 * the shared redis-server at the same time: the Redis suites hold this
 * cross-process lock (a directory with the holder's pid; a dead holder's
 * lock is taken over).
 */
export async function lockRedis(timeoutMs = 45_000): Promise<() => void> {
  const lock = path.join(services().dir, "redis-tests.lock");
  const t0 = Date.now();
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, "pid"), String(process.pid));
      return () => fs.rmSync(lock, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let holder = NaN;
    try {
      holder = Number(fs.readFileSync(path.join(lock, "pid"), "utf8"));
    } catch {
      // being created or removed right now
    }
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
      fs.rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`another test run holds ${lock} (pid ${holder})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function redisCli(args: string[], input?: string): string {
  const s = services();
  const r = spawnSync("redis-cli", ["-h", s.redisHost, "-p", s.redisPort, ...args], {
    input,
    encoding: "utf8",
    // test-side only: the scripts themselves read the password file via --askpass
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", REDISCLI_AUTH: fs.readFileSync(s.redisPasswordFile, "utf8") },
  });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout.trim();
}

// ---------------------------------------------------------------------------
// files

export function sha256File(p: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
}

/** name -> sha256 of every file in dir (hidden files included) */
export function dirState(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = sha256File(p);
  }
  return out;
}

/** copy every file of a backup id from one directory to another */
export function copyBackup(fromDir: string, id: string, toDir: string): void {
  for (const f of fs.readdirSync(fromDir)) {
    if (f.startsWith(`${id}.`)) fs.copyFileSync(path.join(fromDir, f), path.join(toDir, f));
  }
  giveToUser(toDir);
}

/** Overwrite `count` bytes at each of the given fractions of the file with their complement. */
export function flipBytes(p: string, fractions: number[], count = 16): void {
  const buf = fs.readFileSync(p);
  for (const f of fractions) {
    const at = Math.floor(buf.length * f);
    for (let i = at; i < Math.min(at + count, buf.length); i++) buf[i] = buf[i] ^ 0xff;
  }
  fs.writeFileSync(p, buf);
}

/** Rewrite <dir>/<id>.sha256 so it matches the files as they are now. */
export function resealChecksums(dir: string, id: string): void {
  const shaPath = path.join(dir, `${id}.sha256`);
  const lines = fs
    .readFileSync(shaPath, "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const name = l.replace(/^[0-9a-f]{64} [ *]/, "");
      return `${sha256File(path.join(dir, name))}  ${name}`;
    });
  fs.writeFileSync(shaPath, lines.join("\n") + "\n");
}

/** Write an executable script (fault-injection shims on PATH). */
export function writeExecutable(p: string, body: string): void {
  fs.writeFileSync(p, body, { mode: 0o755 });
  giveToUser(p);
}

/** KEY<TAB>VALUE lines and "table<TAB>name<TAB>count" lines of a manifest */
export function readManifest(p: string): { kv: Record<string, string>; tables: Record<string, number> } {
  const kv: Record<string, string> = {};
  const tables: Record<string, number> = {};
  for (const line of fs.readFileSync(p, "utf8").split("\n")) {
    if (!line) continue;
    const parts = line.split("\t");
    if (parts[0] === "table") tables[parts[1]] = Number(parts[2]);
    else kv[parts[0]] = parts.slice(1).join("\t");
  }
  return { kv, tables };
}
