// The gcs side of the destination seam (BACKUP_DEST=gcs), driven through a
// stand-in `gcloud` (fixtures/fake-gcloud) that keeps objects in a local
// directory: no test talks to Google. It checks what the scripts ask gcloud
// to do (upload order, no-clobber, batched deletes, listing an empty
// prefix) and that the same store/prune/drill code runs on top of it.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { cleanupTmp, explain, giveToUser, lockRedis, redisCli, runScript, services, tmpDir } from "./helpers";

const FAKE = path.join(__dirname, "fixtures", "fake-gcloud");

describe("gcs destination through gcloud storage (stand-in gcloud)", function () {
  this.timeout(60_000);
  let root: string;
  let shim: string;
  let env: Record<string, string>;
  let ID = "";
  const objects = () => fs.readdirSync(path.join(root, "bk-test", "env-a")).sort();
  const calls = () => fs.readFileSync(path.join(root, "calls.log"), "utf8").trim().split("\n");

  before(() => {
    const s = services();
    root = tmpDir("fake-gcs");
    fs.writeFileSync(path.join(root, "calls.log"), "");
    giveToUser(root);
    shim = tmpDir("gcloud-bin");
    fs.symlinkSync(FAKE, path.join(shim, "gcloud"));
    env = {
      REDIS_HOST: s.redisHost,
      REDIS_PORT: s.redisPort,
      REDIS_PASSWORD_FILE: s.redisPasswordFile,
      BACKUP_DEST: "gcs",
      BACKUP_GCS_URL: "gs://bk-test/env-a",
      FAKE_GCS_ROOT: root,
    };
  });
  after(() => cleanupTmp());

  const run = (script: string, args: string[], extra: Record<string, string> = {}) =>
    runScript(script, args, { BACKUP_WORK_DIR: tmpDir("gcs-w"), ...env, ...extra }, { pathPrefix: [shim] });

  it("stores a backup into an empty prefix: data and manifest first, the .sha256 last, each only if no such object exists", async () => {
    const unlock = await lockRedis();
    try {
      redisCli([], "FLUSHALL\nSET a 1\nSET b 2\n");
      const r = await run("redis-backup.sh", ["run"], { BACKUP_NOW: "2025-03-10T02:00:00Z" });
      assert.equal(r.code, 0, explain(r));
      assert.equal(r.log.dest, "gs://bk-test/env-a");
      ID = String(r.log.backup);
      assert.match(ID, /^redis-20250310T020000Z-[0-9a-f]{8}$/);
      assert.deepEqual(r.log.kept, [ID]);
    } finally {
      unlock();
    }
    assert.deepEqual(objects(), [`${ID}.manifest`, `${ID}.rdb`, `${ID}.sha256`]);
    const uploads = calls().filter((c) => c.startsWith("storage cp"));
    assert.deepEqual(
      uploads.map((c) => c.split(" ").pop()),
      [`gs://bk-test/env-a/${ID}.rdb`, `gs://bk-test/env-a/${ID}.manifest`, `gs://bk-test/env-a/${ID}.sha256`],
    );
    // a precondition the bucket checks, not --no-clobber (a check before the upload that races)
    for (const c of uploads) assert.match(c, /^storage cp --if-generation-match=0 \//);
  });

  it("prunes with batched deletes, .sha256 files first, and leaves sub-prefixes and other files alone", async () => {
    const dir = path.join(root, "bk-test", "env-a");
    for (const ts of ["20250301T020000Z", "20250302T020000Z", "20250303T020000Z"]) {
      for (const ext of ["rdb", "manifest", "sha256"]) fs.writeFileSync(path.join(dir, `redis-${ts}.${ext}`), "old");
    }
    fs.mkdirSync(path.join(dir, "archive"));
    fs.writeFileSync(path.join(dir, "archive", "redis-20240101T020000Z.sha256"), "kept elsewhere");
    giveToUser(root);
    fs.writeFileSync(path.join(root, "calls.log"), "");
    const r = await run("redis-backup.sh", ["prune"], { BACKUP_KEEP_DAILY: "2", BACKUP_KEEP_WEEKLY: "0", BACKUP_KEEP_MONTHLY: "0" });
    assert.equal(r.code, 0, explain(r));
    assert.deepEqual(r.log.kept, [ID, "redis-20250303T020000Z"]);
    assert.deepEqual(r.log.pruned, ["redis-20250302T020000Z", "redis-20250301T020000Z"]);
    assert.deepEqual(objects(), [
      "archive",
      "redis-20250303T020000Z.manifest", "redis-20250303T020000Z.rdb", "redis-20250303T020000Z.sha256",
      `${ID}.manifest`, `${ID}.rdb`, `${ID}.sha256`,
    ]);
    const rms = calls().filter((c) => c.startsWith("storage rm"));
    assert.equal(rms.length, 2, rms.join("\n"));
    assert.equal(rms[0], "storage rm gs://bk-test/env-a/redis-20250302T020000Z.sha256 gs://bk-test/env-a/redis-20250301T020000Z.sha256");
    assert.match(rms[1], /^storage rm( gs:\/\/bk-test\/env-a\/redis-2025030[12]T020000Z\.(rdb|manifest)){4}$/);
  });

  it("the restore drill fetches the newest backup from the bucket and restores it", async () => {
    const r = await run("restore-drill.sh", ["run", "redis"]);
    assert.equal(r.code, 0, explain(r));
    assert.equal(r.log.backup, ID);
    assert.equal(r.log.loaded_keys, 2);
  });

  it("an upload refused by the bucket fails the run (exit 6) and leaves the bucket as it was", async () => {
    const before = objects();
    const unlock = await lockRedis();
    let r;
    try {
      r = await run("redis-backup.sh", ["run"], { BACKUP_NOW: "2025-03-11T02:00:00Z", FAKE_GCS_FAIL_UPLOADS: "1" });
    } finally {
      unlock();
    }
    assert.equal(r.code, 6, explain(r));
    assert.match(String(r.log.error), /cannot write redis-20250311T020000Z-[0-9a-f]{8}\.rdb to gs:\/\/bk-test\/env-a: .*403/);
    assert.deepEqual(objects(), before);
  });
});
