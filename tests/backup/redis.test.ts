// Redis backups against the real redis-server started by scripts/test-services:
// RDB via redis-cli --rdb, redis-check-rdb, drill into a scratch redis-server,
// on-call restore into a data directory; damaged RDBs and failures lose nothing.
import { strict as assert } from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import {
  asServiceUser, cleanupTmp, copyBackup, dirState, explain, flipBytes, giveToUser, lockRedis, redisCli, runScript, services, sha256File, tmpDir,
  writeExecutable,
} from "./helpers";

// 2000 strings, 200 hashes, 100 lists, 50 sets, 50 sorted sets, 10 keys with a
// TTL in db 0; 500 strings in db 1
const SEEDED_KEYS = 2910;

function seedCommands(): string {
  const c: string[] = ["FLUSHALL"];
  for (let i = 0; i < 2000; i++) c.push(`SET str:${i} "value ${i} with spaces and \\"quotes\\""`);
  for (let i = 0; i < 200; i++) c.push(`HSET hash:${i} a ${i} b ${i * 2} c "x y"`);
  for (let i = 0; i < 100; i++) c.push(`RPUSH list:${i} 1 2 3 ${i}`);
  for (let i = 0; i < 50; i++) c.push(`SADD set:${i} a b c ${i}`);
  for (let i = 0; i < 50; i++) c.push(`ZADD zset:${i} 1 a 2 b ${i} c`);
  for (let i = 0; i < 10; i++) c.push(`SET ttl:${i} v EX 3600`);
  c.push("SELECT 1");
  for (let i = 0; i < 500; i++) c.push(`SET db1:${i} ${i}`);
  return c.join("\n") + "\n";
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

describe("Redis backup (scripts/backup/redis-backup.sh) against a real redis-server", function () {
  this.timeout(60_000);
  let env: Record<string, string>;
  let dest: string;
  let shims: string;
  let goodId = "";

  let unlock: (() => void) | undefined;

  before(async () => {
    const s = services();
    unlock = await lockRedis();
    redisCli([], seedCommands());
    assert.equal(redisCli(["DBSIZE"]), "2410");
    assert.equal(redisCli(["-n", "1", "DBSIZE"]), "500");
    dest = tmpDir("redis-dest");
    shims = tmpDir("redis-shims");
    env = {
      REDIS_HOST: s.redisHost,
      REDIS_PORT: s.redisPort,
      REDIS_PASSWORD_FILE: s.redisPasswordFile,
      BACKUP_DEST: "pvc",
      BACKUP_DIR: dest,
      BACKUP_WORK_DIR: tmpDir("redis-work"),
    };
    // fault injection: a redis-cli that damages the RDB it downloaded
    writeExecutable(
      path.join(shims, "redis-cli"),
      `#!/bin/bash
"$REAL_REDIS_CLI" "$@" || exit $?
f=
prev=
for a in "$@"; do [[ $prev == --rdb ]] && f=$a; prev=$a; done
[[ -n $f ]] || exit 0
size=$(stat -c %s "$f")
case $FAULT in
  truncate) truncate -s $((size * 2 / 3)) "$f" ;;
  flip) printf 'XXXXXXXX' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none ;;
esac
`,
    );
  });

  after(() => {
    unlock?.();
    cleanupTmp();
  });

  it("takes an RDB with redis-cli --rdb, checks it with redis-check-rdb and records the key count", async () => {
    const r = await runScript("redis-backup.sh", ["run"], { ...env, BACKUP_NOW: "2025-03-10T02:00:00Z" });
    assert.equal(r.code, 0, explain(r));
    goodId = String(r.log.backup);
    assert.match(goodId, /^redis-20250310T020000Z-[0-9a-f]{8}$/);
    assert.equal(r.log.backup, goodId);
    assert.equal(r.log.verified, true);
    assert.equal(r.log.keys, SEEDED_KEYS);
    assert.deepEqual(r.log.kept, [goodId]);
    assert.deepEqual(Object.keys(dirState(dest)), [`${goodId}.manifest`, `${goodId}.rdb`, `${goodId}.sha256`]);
    const rdb = path.join(dest, `${goodId}.rdb`);
    assert.equal(r.log.checksum, `sha256:${sha256File(rdb)}`);
    const manifest = fs.readFileSync(path.join(dest, `${goodId}.manifest`), "utf8");
    assert.match(manifest, new RegExp(`^keys\\t${SEEDED_KEYS}$`, "m"));
    assert.match(manifest, new RegExp(`^live_keys\\t${SEEDED_KEYS}$`, "m"));
    assert.match(manifest, /^expires\t10$/m);
    // an independent look at the stored file
    const check = spawnSync("redis-check-rdb", [rdb], { encoding: "utf8" });
    assert.equal(check.status, 0, check.stdout);
    assert.match(check.stdout, new RegExp(`${SEEDED_KEYS} keys read`));
  });

  it("on-call restore installs the RDB into a data directory that a redis-server then serves", async () => {
    assert.ok(goodId);
    const data = tmpDir("redis-data");
    fs.writeFileSync(path.join(data, "dump.rdb"), "previous");
    fs.mkdirSync(path.join(data, "appendonlydir"));
    giveToUser(data);
    const refused = await runScript("redis-restore.sh", ["restore"], { ...env, REDIS_DATA_DIR: data });
    assert.equal(refused.code, 2, explain(refused));
    assert.match(String(refused.log.error), /RESTORE_CONFIRM/);

    const r = await runScript("redis-restore.sh", ["restore"], {
      ...env, REDIS_DATA_DIR: data, RESTORE_CONFIRM: data, BACKUP_NOW: "2025-03-20T10:00:00Z",
    });
    assert.equal(r.code, 0, explain(r));
    assert.equal(r.log.backup, goodId);
    assert.deepEqual(r.log.moved_aside, ["dump.rdb.before-restore-20250320T100000Z", "appendonlydir.before-restore-20250320T100000Z"]);
    assert.equal(sha256File(path.join(data, "dump.rdb")), sha256File(path.join(dest, `${goodId}.rdb`)));
    assert.equal(fs.readFileSync(path.join(data, "dump.rdb.before-restore-20250320T100000Z"), "utf8"), "previous");

    // a redis-server started on that directory has the backed-up keys
    const sock = path.join(data, "r.sock");
    const srv = spawn("redis-server", ["--port", "0", "--unixsocket", sock, "--dir", data, "--save", "", "--appendonly", "no"], {
      ...asServiceUser(), stdio: "ignore",
    });
    const exited = new Promise((res) => srv.on("close", res));
    try {
      let pong = "";
      for (let i = 0; i < 100 && pong !== "PONG"; i++) {
        await new Promise((res) => setTimeout(res, 50));
        pong = spawnSync("redis-cli", ["-s", sock, "ping"], { encoding: "utf8" }).stdout.trim();
      }
      assert.equal(pong, "PONG");
      const info = spawnSync("redis-cli", ["-s", sock, "info", "keyspace"], { encoding: "utf8" }).stdout;
      assert.match(info, /db0:keys=2410,expires=10/);
      assert.match(info, /db1:keys=500,expires=0/);
      assert.equal(spawnSync("redis-cli", ["-s", sock, "hget", "hash:7", "b"], { encoding: "utf8" }).stdout.trim(), "14");
    } finally {
      srv.kill();
      await exited;
    }
  });

  function seededDest() {
    assert.ok(goodId, "needs the backup of the first test");
    const dir = tmpDir("redis-dest-x");
    copyBackup(dest, goodId, dir);
    for (const ext of ["rdb", "manifest", "sha256"]) fs.writeFileSync(path.join(dir, `redis-20250301T020000Z.${ext}`), "old");
    giveToUser(dir);
    return {
      dir,
      before: dirState(dir),
      env: { ...env, BACKUP_DIR: dir, BACKUP_KEEP_DAILY: "1", BACKUP_KEEP_WEEKLY: "0", BACKUP_KEEP_MONTHLY: "0", BACKUP_NOW: "2025-03-11T02:00:00Z" },
    };
  }

  for (const fault of ["flip", "truncate"] as const) {
    it(`a ${fault === "flip" ? "byte-flipped" : "truncated"} RDB fails redis-check-rdb; nothing stored or pruned`, async () => {
      const d = seededDest();
      const r = await runScript("redis-backup.sh", ["run"], { ...d.env, FAULT: fault, REAL_REDIS_CLI: "/usr/bin/redis-cli" }, {
        pathPrefix: [shims],
      });
      assert.equal(r.code, 4, explain(r));
      assert.equal(r.log.stage, "verify");
      assert.match(String(r.log.error), /redis-check-rdb/);
      assert.equal(r.log.pruned, undefined);
      assert.deepEqual(dirState(d.dir), d.before);
    });
  }

  it("fails clearly when Redis is unreachable", async () => {
    const d = seededDest();
    const r = await runScript("redis-backup.sh", ["run"], { ...d.env, REDIS_PORT: "1" });
    assert.equal(r.code, 3, explain(r));
    assert.match(String(r.log.error), /Could not connect to Redis at 127\.0\.0\.1:1: Connection refused/);
    assert.deepEqual(dirState(d.dir), d.before);
  });

  it("fails clearly on a wrong password", async () => {
    const d = seededDest();
    const wrong = path.join(tmpDir("pw"), "password");
    fs.writeFileSync(wrong, "wrong", { mode: 0o600 });
    giveToUser(wrong);
    const r = await runScript("redis-backup.sh", ["run"], { ...d.env, REDIS_PASSWORD_FILE: wrong });
    assert.equal(r.code, 3, explain(r));
    assert.match(String(r.log.error), /WRONGPASS/);
    assert.deepEqual(dirState(d.dir), d.before);
  });

  it("dump and store as two steps; a staged RDB that no longer matches its sha256 is not stored", async () => {
    const d = seededDest();
    const w = tmpDir("redis-work2");
    const dump = await runScript("redis-backup.sh", ["dump"], { ...d.env, BACKUP_WORK_DIR: w });
    assert.equal(dump.code, 0, explain(dump));
    flipBytes(path.join(w, "staged", `${dump.log.backup}.rdb`), [0.5], 2);
    const store = await runScript("redis-backup.sh", ["store"], { ...d.env, BACKUP_WORK_DIR: w });
    assert.equal(store.code, 5, explain(store));
    assert.match(String(store.log.error), /checksum mismatch/);
    assert.deepEqual(dirState(d.dir), d.before);
  });

  it("fails when the destination is not writable, and loses nothing", async () => {
    const d = seededDest();
    fs.chmodSync(d.dir, 0o555);
    try {
      const r = await runScript("redis-backup.sh", ["run"], d.env);
      assert.equal(r.code, 6, explain(r));
      assert.match(String(r.log.error), /is not writable/);
      assert.deepEqual(dirState(d.dir), d.before);
    } finally {
      fs.chmodSync(d.dir, 0o755);
    }
  });

  it("never prunes the backup it has just stored, even when a newer-dated one exists", async () => {
    const d = seededDest();
    // a backup dated in the future (a clock that was wrong once): by restic's
    // rules keep-daily=1 keeps only it; the new backup is protected anyway
    const future = "redis-20300101T000000Z";
    for (const ext of ["rdb", "manifest", "sha256"]) fs.writeFileSync(path.join(d.dir, `${future}.${ext}`), "future");
    giveToUser(d.dir);
    const r = await runScript("redis-backup.sh", ["run"], d.env);
    assert.equal(r.code, 0, explain(r));
    assert.match(String(r.log.backup), /^redis-20250311T020000Z-[0-9a-f]{8}$/);
    assert.deepEqual((r.log.kept as string[]).slice().sort(), [r.log.backup, future]);
    assert.deepEqual((r.log.pruned as string[]).slice().sort(), ["redis-20250301T020000Z", goodId]);
  });
  it("refuses a server running with rdbchecksum no (its RDB carries no CRC64); the drill refuses such an RDB too, so a changed byte cannot pass", async () => {
    const port = await freePort();
    const data = tmpDir("redis-nocrc");
    const srv = spawn("redis-server", [
      "--port", String(port), "--bind", "127.0.0.1", "--dir", data, "--save", "", "--appendonly", "no",
      "--rdbchecksum", "no", "--repl-diskless-sync-delay", "0",
    ], { ...asServiceUser(), stdio: "ignore" });
    const exited = new Promise((res) => srv.on("close", res));
    const cli = (...a: string[]) => spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...a], { encoding: "utf8" });
    try {
      let pong = "";
      for (let i = 0; i < 100 && pong !== "PONG"; i++) {
        await new Promise((res) => setTimeout(res, 50));
        pong = cli("ping").stdout.trim();
      }
      assert.equal(pong, "PONG");
      for (let i = 0; i < 20; i++) cli("SET", `k:${i}`, `payload-number-${i}`);
      const dest = tmpDir("redis-nocrc-dest");
      const r = await runScript("redis-backup.sh", ["run"], {
        REDIS_HOST: "127.0.0.1", REDIS_PORT: String(port), BACKUP_DEST: "pvc", BACKUP_DIR: dest, BACKUP_WORK_DIR: tmpDir("w"),
      });
      assert.equal(r.code, 4, explain(r));
      assert.equal(r.log.stage, "verify");
      assert.equal(r.log.verified, false);
      assert.match(String(r.log.error), /rdbchecksum/);
      assert.deepEqual(fs.readdirSync(dest), []);

      // an RDB of that server with one changed byte, stored as a backup
      const id = "redis-20250310T020000Z";
      const rdb = path.join(dest, `${id}.rdb`);
      assert.equal(cli("--rdb", rdb).status, 0);
      const buf = fs.readFileSync(rdb);
      const at = buf.indexOf("payload-number-7");
      assert.ok(at > 0);
      buf[at] = "P".charCodeAt(0);
      fs.writeFileSync(rdb, buf);
      fs.writeFileSync(path.join(dest, `${id}.manifest`), `format\tredis-backup-manifest-v1\nbackup\t${id}\nkeys\t20\n`);
      fs.writeFileSync(path.join(dest, `${id}.sha256`), [`${id}.rdb`, `${id}.manifest`].map((f) => `${sha256File(path.join(dest, f))}  ${f}\n`).join(""));
      giveToUser(dest);
      const d = await runScript("restore-drill.sh", ["run", "redis"], { BACKUP_DEST: "pvc", BACKUP_DIR: dest, BACKUP_WORK_DIR: tmpDir("w") });
      assert.equal(d.code, 4, explain(d));
      assert.match(String(d.log.error), /rdbchecksum/);
      assert.notEqual(d.log.restored, true);
    } finally {
      srv.kill();
      await exited;
    }
  });
});
