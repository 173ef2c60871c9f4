// The monthly restore drill (scripts/backup/restore-drill.sh): it restores the
// newest backups into scratch servers and passes, and fails loudly when the
// newest backup is damaged (without falling back to an older one).
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import {
  cleanupTmp, copyBackup, dirState, explain, flipBytes, lockRedis, psql, redisCli, resealChecksums, runScript, services, tmpDir,
} from "./helpers";

const DB = `bk_drill_${process.pid}`;
const PG_PREFIX = `pg-${DB}`;
// the ids of the backups the suite takes (time of the run + a random part)
let OLD_PG = "";
let NEW_PG = "";
let OLD_REDIS = "";
let NEW_REDIS = "";

describe("restore drill (scripts/backup/restore-drill.sh)", function () {
  this.timeout(60_000);
  let dest: string;
  let base: Record<string, string>;
  let pgEnv: Record<string, string>;
  let redisEnv: Record<string, string>;

  let unlock: (() => void) | undefined;

  before(async () => {
    const s = services();
    unlock = await lockRedis();
    psql("postgres", `DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}`);
    psql(
      DB,
      `CREATE TABLE items (id serial PRIMARY KEY, payload jsonb, blob bytea);
       INSERT INTO items (payload, blob) SELECT jsonb_build_object('i', i), decode(md5(i::text), 'hex') FROM generate_series(1, 2500) i;
       CREATE TABLE notes (id int, body text); INSERT INTO notes SELECT i, repeat('n', i % 100) FROM generate_series(1, 1200) i;`,
    );
    redisCli([], "FLUSHALL\n" + Array.from({ length: 300 }, (_, i) => `SET drill:${i} ${i}`).join("\n") + "\n");
    dest = tmpDir("drill-dest");
    base = { BACKUP_DEST: "pvc", BACKUP_DIR: dest };
    pgEnv = {
      ...base, PGHOST: s.pgHost, PGPORT: s.pgPort, PGUSER: "postgres", PGDATABASE: DB, BACKUP_PG_PASSWORD_FILE: s.pgPasswordFile,
    };
    redisEnv = { ...base, REDIS_HOST: s.redisHost, REDIS_PORT: s.redisPort, REDIS_PASSWORD_FILE: s.redisPasswordFile };

    // two backups of each; the newer Postgres one taken as two steps (two containers)
    const r1 = await runScript("pg-backup.sh", ["run"], { ...pgEnv, BACKUP_WORK_DIR: tmpDir("w"), BACKUP_NOW: "2025-03-01T02:00:00Z" });
    assert.equal(r1.code, 0, explain(r1));
    OLD_PG = String(r1.log.backup);
    const w = tmpDir("w");
    const r2a = await runScript("pg-backup.sh", ["dump"], { ...pgEnv, BACKUP_WORK_DIR: w, BACKUP_NOW: "2025-03-02T02:00:00Z" });
    assert.equal(r2a.code, 0, explain(r2a));
    const r2b = await runScript("pg-backup.sh", ["store"], { ...base, BACKUP_WORK_DIR: w });
    assert.equal(r2b.code, 0, explain(r2b));
    NEW_PG = String(r2a.log.backup);
    assert.equal(r2b.log.backup, NEW_PG);
    assert.match(NEW_PG, new RegExp(`^${PG_PREFIX}-20250302T020000Z-[0-9a-f]{8}$`));
    for (const now of ["2025-03-01T02:00:00Z", "2025-03-02T02:00:00Z"]) {
      const r = await runScript("redis-backup.sh", ["run"], { ...redisEnv, BACKUP_WORK_DIR: tmpDir("w"), BACKUP_NOW: now });
      assert.equal(r.code, 0, explain(r));
      assert.equal(r.log.keys, 300);
      if (now.startsWith("2025-03-01")) OLD_REDIS = String(r.log.backup);
      else NEW_REDIS = String(r.log.backup);
    }
    // the drills below only read the stored backups
    unlock?.();
    unlock = undefined;
  });

  after(() => {
    unlock?.();
    try {
      psql("postgres", `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    } finally {
      cleanupTmp();
    }
  });

  /** a copy of the destination to damage */
  function destCopy(): string {
    const d = tmpDir("drill-dest-x");
    for (const id of [OLD_PG, NEW_PG, OLD_REDIS, NEW_REDIS]) copyBackup(dest, id, d);
    return d;
  }

  const drill = (kind: string, env: Record<string, string>, phase = "run") =>
    runScript("restore-drill.sh", [phase, kind], { BACKUP_WORK_DIR: tmpDir("drill-w"), ...env });

  it("restores the newest Postgres backup into a scratch server and checks tables and row counts", async () => {
    const r = await drill("pg", { ...base, BACKUP_PREFIX: PG_PREFIX });
    assert.equal(r.code, 0, explain(r));
    assert.equal(r.log.event, "restore-drill");
    assert.equal(r.log.kind, "pg");
    assert.equal(r.log.backup, NEW_PG);
    assert.equal(r.log.checksum_ok, true);
    assert.equal(r.log.restored, true);
    assert.equal(r.log.tables, 2);
    assert.equal(r.log.rows, 3700);
  });

  it("runs as two steps too (fetch in one container, check in another)", async () => {
    const w = tmpDir("drill-w2");
    const f = await drill("pg", { ...base, BACKUP_PREFIX: PG_PREFIX, BACKUP_WORK_DIR: w }, "fetch");
    assert.equal(f.code, 0, explain(f));
    const c = await drill("pg", { BACKUP_WORK_DIR: w }, "check");
    assert.equal(c.code, 0, explain(c));
    assert.equal(c.log.backup, NEW_PG);
    assert.equal(c.log.rows, 3700);
  });

  it("a fetched copy serves as a pvc destination for the on-call restore (the gcs runbook)", async () => {
    const w = tmpDir("drill-w3");
    const f = await drill("pg", { ...base, BACKUP_PREFIX: PG_PREFIX, BACKUP_WORK_DIR: w }, "fetch");
    assert.equal(f.code, 0, explain(f));
    const target = `${DB}_oncall`;
    try {
      const r = await runScript("pg-restore.sh", ["restore"], {
        ...pgEnv, BACKUP_WORK_DIR: tmpDir("w"), BACKUP_DIR: path.join(w, "drill-pg"), BACKUP_PREFIX: PG_PREFIX,
        RESTORE_TARGET_DB: target,
      });
      assert.equal(r.code, 0, explain(r));
      assert.equal(r.log.backup, NEW_PG);
      assert.equal(psql(target, "SELECT count(*) FROM items"), "2500");
    } finally {
      psql("postgres", `DROP DATABASE IF EXISTS ${target}`);
    }
  });

  it("restores the newest Redis backup into a scratch redis-server with the same key count", async () => {
    const r = await drill("redis", base);
    assert.equal(r.code, 0, explain(r));
    assert.equal(r.log.backup, NEW_REDIS);
    assert.equal(r.log.keys, 300);
    assert.equal(r.log.loaded_keys, 300);
  });

  it("fails loudly when the newest Postgres backup no longer matches its sha256 (no fallback to the older one)", async () => {
    const d = destCopy();
    flipBytes(path.join(d, `${NEW_PG}.dump`), [0.6], 8);
    const before = dirState(d);
    const r = await drill("pg", { ...base, BACKUP_DIR: d, BACKUP_PREFIX: PG_PREFIX });
    assert.equal(r.code, 5, explain(r));
    assert.equal(r.log.status, "error");
    assert.equal(r.log.backup, NEW_PG);
    assert.match(String(r.log.error), /checksum mismatch/);
    assert.deepEqual(dirState(d), before, "a drill never changes the destination");
  });

  it("fails loudly when the newest Postgres dump was damaged before it was checksummed", async () => {
    const d = destCopy();
    flipBytes(path.join(d, `${NEW_PG}.dump`), [0.3, 0.6, 0.9], 16);
    resealChecksums(d, NEW_PG);
    const r = await drill("pg", { ...base, BACKUP_DIR: d, BACKUP_PREFIX: PG_PREFIX });
    assert.equal(r.code, 4, explain(r));
    assert.equal(r.log.stage, "verify");
    assert.equal(r.log.restored, false);
    assert.match(String(r.log.error), /pg_restore of the dump failed/);
  });

  it("fails when the restored row counts differ from those recorded with the backup", async () => {
    const d = destCopy();
    const m = path.join(d, `${NEW_PG}.manifest`);
    fs.writeFileSync(m, fs.readFileSync(m, "utf8").replace(/^table\tpublic\.notes\t1200$/m, "table\tpublic.notes\t1201"));
    resealChecksums(d, NEW_PG);
    const r = await drill("pg", { ...base, BACKUP_DIR: d, BACKUP_PREFIX: PG_PREFIX });
    assert.equal(r.code, 4, explain(r));
    assert.equal(r.log.stage, "sanity");
    assert.match(String(r.log.error), /< table public\.notes 1201; *> table public\.notes 1200/);
  });

  it("fails loudly when the newest RDB is corrupt", async () => {
    const d = destCopy();
    flipBytes(path.join(d, `${NEW_REDIS}.rdb`), [0.5], 4);
    resealChecksums(d, NEW_REDIS);
    const r = await drill("redis", { ...base, BACKUP_DIR: d });
    assert.equal(r.code, 4, explain(r));
    assert.equal(r.log.backup, NEW_REDIS);
    assert.match(String(r.log.error), /redis-check-rdb/);
  });

  it("fails when the Redis key count differs from the one recorded with the backup", async () => {
    const d = destCopy();
    const m = path.join(d, `${NEW_REDIS}.manifest`);
    fs.writeFileSync(m, fs.readFileSync(m, "utf8").replace(/^keys\t300$/m, "keys\t299"));
    resealChecksums(d, NEW_REDIS);
    const r = await drill("redis", { ...base, BACKUP_DIR: d });
    assert.equal(r.code, 4, explain(r));
    assert.match(String(r.log.error), /holds 300 keys, its manifest says 299/);
  });

  it("fails when the newest backup has lost its .sha256, naming it (never drills an older one instead)", async () => {
    const d = destCopy();
    fs.unlinkSync(path.join(d, `${NEW_PG}.sha256`));
    const before = dirState(d);
    const r = await drill("pg", { ...base, BACKUP_DIR: d, BACKUP_PREFIX: PG_PREFIX });
    assert.equal(r.code, 6, explain(r));
    assert.equal(r.log.backup, NEW_PG, explain(r));
    assert.match(String(r.log.error), new RegExp(`newest backup ${NEW_PG} is incomplete`));
    assert.equal(r.log.restored, undefined);
    assert.deepEqual(dirState(d), before, "a drill never changes the destination");
  });

  it("fails when there is no backup at all", async () => {
    const r = await drill("pg", { ...base, BACKUP_DIR: tmpDir("empty"), BACKUP_PREFIX: PG_PREFIX });
    assert.equal(r.code, 6, explain(r));
    assert.match(String(r.log.error), /no complete backup of pg-bk_drill_\d+/);
  });
});
