// What the destination goes through besides a normal run (issue 13): runs
// racing each other on one volume or bucket prefix, a run terminated in the
// middle of its upload, leftovers of runs that were killed, a full volume.
// Against the real redis-server (a Redis backup is the quickest real backup);
// the store code is shared with the PostgreSQL backup. Interleavings are
// forced with slow-storage hooks (a `cp` on PATH for pvc, the stand-in
// gcloud's barrier for gcs), never left to chance.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import {
  cleanupTmp, explain, giveToUser, lockRedis, redisCli, RunResult, runScript, services, startScript, tmpDir, writeExecutable,
} from "./helpers";

const FAKE = path.join(__dirname, "fixtures", "fake-gcloud");
const N = 4;
const ID_RE = /^redis-20250310T020000Z(-[0-9a-f]{8})?$/;

/** ids of the complete backups in a directory (all three files there), and the names of any other file */
function destState(dir: string): { complete: string[]; other: string[] } {
  const names = fs.readdirSync(dir).filter((f) => fs.statSync(path.join(dir, f)).isFile());
  const complete = names
    .filter((f) => f.endsWith(".sha256"))
    .map((f) => f.slice(0, -".sha256".length))
    .filter((id) => names.includes(`${id}.rdb`) && names.includes(`${id}.manifest`))
    .sort();
  const other = names.filter((f) => !complete.some((id) => f.startsWith(`${id}.`)));
  return { complete, other };
}

/** `sha256sum -c` of a backup where it is stored */
function verifies(dir: string, id: string): boolean {
  return spawnSync("sha256sum", ["--strict", "-c", `${id}.sha256`], { cwd: dir, encoding: "utf8" }).status === 0;
}

/**
 * The invariants of concurrent runs, checked once they have all ended:
 * a run that logged ok has its backup complete and intact in the destination,
 * unless the retention of another run that ended later pruned it; no run
 * removed anything else; the newest backup a run logged is there.
 */
function checkRaceOutcome(dir: string, results: RunResult[], keepsAtLeast: number): void {
  const { complete, other } = destState(dir);
  const okIds = results.filter((r) => r.log.status === "ok").map((r) => String(r.log.backup));
  const prunedByRuns = new Set(results.flatMap((r) => (r.log.pruned as string[] | undefined) ?? []));
  const why = `complete backups at the end: ${JSON.stringify(complete)}; other files: ${JSON.stringify(other)}\n` +
    results.map((r, i) => `run ${i}: ${explain(r)}`).join("\n");
  assert.ok(complete.length >= keepsAtLeast, `fewer backups than the retention keeps (${keepsAtLeast})\n${why}`);
  for (const id of okIds) {
    assert.ok(complete.includes(id) || prunedByRuns.has(id), `a run logged ok for ${id}, which is not there and was not pruned by retention\n${why}`);
  }
  const newest = okIds.slice().sort().pop();
  assert.ok(newest && complete.includes(newest), `the newest backup logged ok (${newest}) is not there\n${why}`);
  for (const id of complete) assert.ok(verifies(dir, id), `${id} does not match its .sha256\n${why}`);
  assert.deepEqual(other, [], `files left behind\n${why}`);
  for (const r of results) assert.equal(r.code, 0, `every run succeeds (their ids cannot collide)\n${why}`);
}

describe("backups racing, interrupted, killed, or on a full volume", function () {
  this.timeout(120_000);
  let env: Record<string, string>;
  let shims: string;
  let unlock: (() => void) | undefined;

  before(async () => {
    const s = services();
    unlock = await lockRedis();
    redisCli([], "FLUSHALL\n" + Array.from({ length: 500 }, (_, i) => `SET race:${i} "${"v".repeat(200)}${i}"`).join("\n") + "\n");
    env = { REDIS_HOST: s.redisHost, REDIS_PORT: s.redisPort, REDIS_PASSWORD_FILE: s.redisPasswordFile };
    // slow storage for pvc: the scripts write to the volume with cp. Writing a
    // data file (*.rdb*) into BACKUP_DIR registers in BARRIER_DIR and waits
    // until BARRIER_N runs have arrived, then BARRIER_DELAY seconds more;
    // HANG_UPLOAD=1 writes part of the file and then hangs (a slow upload).
    shims = tmpDir("hazard-shims");
    writeExecutable(
      path.join(shims, "cp"),
      `#!/bin/bash
dst=\${@: -1}
src=\${@: -2:1}
if [[ -n \${BACKUP_DIR:-} && $dst == "$BACKUP_DIR"/* && $dst == *.rdb* ]]; then
  if [[ \${HANG_UPLOAD:-} == 1 ]]; then
    head -c 1000 -- "$src" >"$dst"
    exec sleep 60
  fi
  if [[ -n \${BARRIER_DIR:-} ]]; then
    : >"$BARRIER_DIR/$$"
    for ((i = 0; i < 400; i++)); do
      (( $(find "$BARRIER_DIR" -type f | wc -l) >= BARRIER_N )) && break
      sleep 0.05
    done
    sleep "\${BARRIER_DELAY:-0}"
  fi
fi
exec /bin/cp "$@"
`,
    );
  });

  after(() => {
    unlock?.();
    cleanupTmp();
  });

  it(`${N} runs started in the same second on one volume, keep-daily=1, slow storage: all ok, never an empty destination`, async () => {
    const dir = tmpDir("race-pvc");
    // yesterday's and the day before's backups, which keep-daily=1 prunes
    for (const ts of ["20250308T020000Z", "20250309T020000Z"]) {
      for (const ext of ["rdb", "manifest", "sha256"]) fs.writeFileSync(path.join(dir, `redis-${ts}.${ext}`), "old");
    }
    giveToUser(dir);
    const barrier = tmpDir("race-barrier");
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        runScript("redis-backup.sh", ["run"], {
          ...env, BACKUP_DEST: "pvc", BACKUP_DIR: dir, BACKUP_WORK_DIR: tmpDir("race-w"), BACKUP_NOW: "2025-03-10T02:00:00Z",
          BACKUP_KEEP_DAILY: "1", BACKUP_KEEP_WEEKLY: "0", BACKUP_KEEP_MONTHLY: "0",
          // all N reach the upload of the data file, then the first goes on
          // alone and stores and prunes while the others are still writing
          BARRIER_DIR: barrier, BARRIER_N: String(N), BARRIER_DELAY: String(i * 1.5),
        }, { pathPrefix: [shims] }),
      ),
    );
    assert.equal(fs.readdirSync(barrier).length, N, "all runs met at the upload (the interleaving was forced)");
    for (const r of results) assert.match(String(r.log.backup), ID_RE);
    checkRaceOutcome(dir, results, 1);
  });

  it(`${N} runs started in the same second into one bucket prefix (stand-in gcloud): ${N} distinct backups, uploads with a generation precondition`, async () => {
    const root = tmpDir("race-gcs");
    fs.writeFileSync(path.join(root, "calls.log"), "");
    giveToUser(root);
    const gcloudBin = tmpDir("race-gcloud-bin");
    fs.symlinkSync(FAKE, path.join(gcloudBin, "gcloud"));
    const barrier = tmpDir("race-barrier");
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        runScript("redis-backup.sh", ["run"], {
          ...env, BACKUP_DEST: "gcs", BACKUP_GCS_URL: "gs://bk-race/env", FAKE_GCS_ROOT: root, BACKUP_WORK_DIR: tmpDir("race-w"),
          BACKUP_NOW: "2025-03-10T02:00:00Z",
          // keep everything: every run's backup must be there at the end
          BACKUP_KEEP_DAILY: "0", BACKUP_KEEP_WEEKLY: "0", BACKUP_KEEP_MONTHLY: "0",
          FAKE_GCS_BARRIER_DIR: barrier, FAKE_GCS_BARRIER_N: String(N), FAKE_GCS_DELAY: String(i * 0.5),
        }, { pathPrefix: [gcloudBin] }),
      ),
    );
    assert.equal(fs.readdirSync(barrier).length, N, "all runs met at the upload (the interleaving was forced)");
    const bucketDir = path.join(root, "bk-race", "env");
    checkRaceOutcome(bucketDir, results, N);
    assert.equal(new Set(results.map((r) => r.log.backup)).size, N, "every run stored its own backup");
    assert.equal(destState(bucketDir).complete.length, N);
    for (const r of results) {
      assert.equal(r.log.checksum, `sha256:${spawnSync("sha256sum", [path.join(bucketDir, `${r.log.backup}.rdb`)], { encoding: "utf8" }).stdout.slice(0, 64)}`);
    }
    const uploads = fs.readFileSync(path.join(root, "calls.log"), "utf8").split("\n").filter((c) => c.startsWith("storage cp") && c.includes(" gs://"));
    assert.equal(uploads.length, 3 * N);
    for (const c of uploads) assert.match(c, /^storage cp --if-generation-match=0 \//);
  });

  it("a run terminated (SIGTERM: Job deadline, node drain) in the middle of its upload removes its temporary file", async () => {
    const dir = tmpDir("term-pvc");
    const run = startScript("redis-backup.sh", ["run"], {
      ...env, BACKUP_DEST: "pvc", BACKUP_DIR: dir, BACKUP_WORK_DIR: tmpDir("term-w"), BACKUP_NOW: "2025-03-10T02:00:00Z", HANG_UPLOAD: "1",
    }, { pathPrefix: [shims] });
    const t0 = Date.now();
    while (!fs.readdirSync(dir).some((f) => f.endsWith(".part"))) {
      assert.ok(Date.now() - t0 < 30_000, "the upload never started");
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(run.child.pid!, "SIGTERM");
    const ended = await Promise.race([run.result, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000))]);
    if (!ended) {
      // the old scripts wait for the upload to finish before handling the signal
      spawnSync("pkill", ["-KILL", "-P", String(run.child.pid)]);
      run.child.kill("SIGKILL");
      assert.fail(`the run did not end within 10 s of SIGTERM; left: ${JSON.stringify(fs.readdirSync(dir))}`);
    }
    assert.equal(ended.log.status, "error", explain(ended));
    assert.notEqual(ended.code, 0);
    assert.match(String(ended.log.error), /terminated by signal/);
    assert.deepEqual(fs.readdirSync(dir), [], "nothing of the interrupted run is left");
  });

  it("a run terminated in the middle of its upload into a bucket removes the objects it had created", async () => {
    const root = tmpDir("term-gcs");
    fs.writeFileSync(path.join(root, "calls.log"), "");
    giveToUser(root);
    const gcloudBin = tmpDir("term-gcloud-bin");
    fs.symlinkSync(FAKE, path.join(gcloudBin, "gcloud"));
    const bucketDir = path.join(root, "bk-term", "env");
    const run = startScript("redis-backup.sh", ["run"], {
      ...env, BACKUP_DEST: "gcs", BACKUP_GCS_URL: "gs://bk-term/env", FAKE_GCS_ROOT: root, BACKUP_WORK_DIR: tmpDir("term-w"),
      BACKUP_NOW: "2025-03-10T02:00:00Z", FAKE_GCS_HANG: "manifest",
    }, { pathPrefix: [gcloudBin] });
    const t0 = Date.now();
    // the data object is there, the manifest upload hangs
    while (!(fs.existsSync(bucketDir) && fs.readdirSync(bucketDir).some((f) => f.endsWith(".rdb")) &&
      fs.readFileSync(path.join(root, "calls.log"), "utf8").includes(".manifest"))) {
      assert.ok(Date.now() - t0 < 30_000, "the upload never started");
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(run.child.pid!, "SIGTERM");
    const ended = await Promise.race([run.result, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000))]);
    if (!ended) {
      spawnSync("pkill", ["-KILL", "-P", String(run.child.pid)]);
      run.child.kill("SIGKILL");
      assert.fail(`the run did not end within 10 s of SIGTERM; left: ${JSON.stringify(fs.readdirSync(bucketDir))}`);
    }
    assert.equal(ended.log.status, "error", explain(ended));
    assert.match(String(ended.log.error), /terminated by signal/);
    assert.deepEqual(fs.readdirSync(bucketDir), [], "nothing of the interrupted run is left in the bucket");
  });

  it("the next run removes what killed runs left (temporary files, incomplete backups) once older than BACKUP_STALE_HOURS, reports them, and leaves younger ones alone", async () => {
    const dir = tmpDir("leftovers");
    const old = "redis-20250309T020000Z";
    for (const ext of ["rdb", "manifest", "sha256"]) fs.writeFileSync(path.join(dir, `${old}.${ext}`), "old");
    const write = (name: string, ageHours: number) => {
      fs.writeFileSync(path.join(dir, name), Buffer.alloc(64 * 1024));
      const t = new Date(Date.now() - ageHours * 3600_000);
      fs.utimesSync(path.join(dir, name), t, t);
    };
    // a full-size temporary file of a run killed (SIGKILL) two days ago
    write(".redis-20250308T020000Z.rdb.part", 48);
    // a run killed between data file and .sha256: an incomplete backup more
    // than 24 h older than the newest complete one
    write("redis-20250307T020000Z-0a1b2c3d.rdb", 72);
    // what a run still uploading looks like: must stay
    write(".redis-20250310T015500Z-aaaabbbb.rdb.Xy12ab.part", 0.05);
    write("redis-20250310T015500Z-aaaabbbb.rdb", 0.05);
    giveToUser(dir);
    const r = await runScript("redis-backup.sh", ["run"], {
      ...env, BACKUP_DEST: "pvc", BACKUP_DIR: dir, BACKUP_WORK_DIR: tmpDir("leftovers-w"), BACKUP_NOW: "2025-03-10T02:00:00Z",
    });
    assert.equal(r.code, 0, explain(r));
    assert.deepEqual(((r.log.leftovers as string[] | undefined) ?? []).slice().sort(), [
      ".redis-20250308T020000Z.rdb.part", "redis-20250307T020000Z-0a1b2c3d.rdb",
    ], explain(r));
    const left = fs.readdirSync(dir).sort();
    assert.ok(!left.includes(".redis-20250308T020000Z.rdb.part"), left.join(" "));
    assert.ok(!left.includes("redis-20250307T020000Z-0a1b2c3d.rdb"), left.join(" "));
    for (const f of [".redis-20250310T015500Z-aaaabbbb.rdb.Xy12ab.part", "redis-20250310T015500Z-aaaabbbb.rdb", `${old}.sha256`, `${r.log.backup}.sha256`]) {
      assert.ok(left.includes(f), `${f} must stay: ${left.join(" ")}`);
    }
    assert.deepEqual(r.log.incomplete, ["redis-20250310T015500Z-aaaabbbb"]);
  });

  it("fails fast, before taking the snapshot, when the volume is full", async () => {
    assert.equal(process.getuid?.(), 0, "this test mounts a small tmpfs and needs root (CI runs as root)");
    const s = services();
    const dir = tmpDir("full");
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", `size=1m,mode=0755,uid=${s.uid},gid=${s.gid}`, "tmpfs", dir], { encoding: "utf8" });
    assert.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
    try {
      // fill it: what is left is not even a block
      spawnSync("dd", ["if=/dev/zero", `of=${path.join(dir, "filler")}`, "bs=4k"], { encoding: "utf8" });
      const df = spawnSync("df", ["-B1", "--output=avail", dir], { encoding: "utf8" }).stdout.trim().split("\n").pop()?.trim();
      assert.equal(df, "0", "the volume is full");
      const r = await runScript("redis-backup.sh", ["run"], {
        ...env, BACKUP_DEST: "pvc", BACKUP_DIR: dir, BACKUP_WORK_DIR: tmpDir("full-w"), BACKUP_NOW: "2025-03-10T02:00:00Z",
      });
      assert.equal(r.code, 6, explain(r));
      assert.equal(r.log.stage, "start", explain(r));
      assert.equal(r.log.backup, undefined, "no snapshot was taken");
      assert.match(String(r.log.error), /no space|full/i);
      assert.deepEqual(fs.readdirSync(dir), ["filler"]);
    } finally {
      spawnSync("umount", [dir]);
    }
  });
});
