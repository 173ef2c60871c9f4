// PostgreSQL backups against the real PostgreSQL started by scripts/test-services:
// a backup taken while a writer commits, restored and compared; damaged
// dumps, unreachable server, wrong password, checksum mismatch and an
// unwritable destination each fail loudly and lose nothing.
import { strict as assert } from "assert";
import { ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import {
  cleanupTmp, copyBackup, dirState, explain, flipBytes, giveToUser, psql, psqlAsync, readManifest,
  runScript, services, sha256File, tmpDir, writeExecutable,
} from "./helpers";

const DB = `bk_pg_${process.pid}`;
// a role of the source cluster that owns objects, holds grants and is named in a policy
const ROLE = `bk_role_${process.pid}`;
const PREFIX = `pg-${DB}`;

const SEED = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, mood mood,
  meta jsonb, avatar bytea, created_at timestamptz DEFAULT now());
INSERT INTO customers (name, email, mood, meta, avatar)
  SELECT 'name ' || i, 'c' || i || '@example.test', (ARRAY['sad','ok','happy']::mood[])[1 + i % 3],
         jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b'), 'note', E'tab\\there "quoted" ü'),
         decode(md5(i::text) || md5((i * 7)::text), 'hex')
  FROM generate_series(1, 3000) i;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id),
  total numeric(12,2), tags text[], created_at timestamptz DEFAULT now());
CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders (id), line int NOT NULL, sku text,
  qty int, PRIMARY KEY (order_id, line));
CREATE TABLE ledger (id int PRIMARY KEY, order_count bigint NOT NULL);
INSERT INTO orders (customer_id, total, tags) SELECT 1 + i % 3000, i * 1.25, ARRAY['t' || i % 5] FROM generate_series(1, 2000) i;
INSERT INTO order_items SELECT o.id, g, 'sku-' || g, g FROM orders o, generate_series(1, 3) g;
INSERT INTO ledger VALUES (1, 2000);
CREATE TABLE writer_ctl (stop boolean NOT NULL);
INSERT INTO writer_ctl VALUES (false);
CREATE SCHEMA audit;
CREATE TABLE audit."Log Entries" (id bigint GENERATED ALWAYS AS IDENTITY, body json, at timestamptz);
INSERT INTO audit."Log Entries" (body, at) SELECT json_build_object('n', i, 's', repeat('x', i % 50)), now() FROM generate_series(1, 4000) i;
CREATE TABLE metrics (at date NOT NULL, v double precision) PARTITION BY RANGE (at);
CREATE TABLE metrics_2025_01 PARTITION OF metrics FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
CREATE TABLE metrics_2025_02 PARTITION OF metrics FOR VALUES FROM ('2025-02-01') TO ('2025-03-01');
INSERT INTO metrics SELECT '2025-01-01'::date + (i % 59), i / 7.0 FROM generate_series(1, 1500) i;
CREATE TABLE empty_table (x int);
CREATE VIEW order_totals AS SELECT customer_id, sum(total) AS total FROM orders GROUP BY 1;
CREATE MATERIALIZED VIEW mood_counts AS SELECT mood, count(*) AS n FROM customers GROUP BY 1;
SELECT lo_from_bytea(0, 'large object payload'::bytea);
ALTER TABLE empty_table OWNER TO ${ROLE};
GRANT SELECT ON customers TO ${ROLE};
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_read ON orders FOR SELECT TO ${ROLE} USING (total >= 0);
`;

// Commits one order with 3 items and bumps the ledger in ONE transaction, ~300
// times a second, until writer_ctl.stop (bounded: 20000 orders or 60 s).
const WRITER = `
DO $$
DECLARE n int := 0; t0 timestamptz := clock_timestamp();
BEGIN
  WHILE n < 20000 AND clock_timestamp() < t0 + interval '60 seconds' LOOP
    EXIT WHEN (SELECT stop FROM writer_ctl);
    WITH o AS (INSERT INTO orders (customer_id, total, tags) VALUES (1 + n % 3000, n, ARRAY['w']) RETURNING id),
         i AS (INSERT INTO order_items SELECT o.id, g, 'w-' || g, g FROM o, generate_series(1, 3) g)
    UPDATE ledger SET order_count = order_count + 1 WHERE id = 1;
    COMMIT;
    n := n + 1;
    PERFORM pg_sleep(0.002);
  END LOOP;
END $$;`;

const CUSTOMERS_DIGEST = `SELECT md5(string_agg(id || ':' || name || ':' || email || ':' || mood || ':' || meta::text || ':' || encode(avatar, 'hex'), ',' ORDER BY id)) FROM customers`;

/** per-table row counts, as the backup scripts name tables */
function tableCounts(db: string): Record<string, number> {
  const out: Record<string, number> = {};
  const rows = psql(
    db,
    `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' ORDER BY 1`,
  ).split("\n");
  for (const t of rows) out[t] = Number(psql(db, `SELECT count(*) FROM ONLY ${t}`));
  return out;
}

async function sleep(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what: string, cond: () => boolean, ms = 15_000) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("PostgreSQL backup (scripts/backup/pg-backup.sh) against a real PostgreSQL", function () {
  this.timeout(60_000);
  let env: Record<string, string>;
  let dest: string;
  let work: string;
  let shims: string;
  let goodId = "";

  before(() => {
    const s = services();
    psql("postgres", `DROP DATABASE IF EXISTS ${DB}; DROP DATABASE IF EXISTS ${DB}_restored; DROP ROLE IF EXISTS ${ROLE}`);
    psql("postgres", `CREATE ROLE ${ROLE} NOLOGIN; CREATE DATABASE ${DB}`);
    psql(DB, SEED);
    dest = tmpDir("pg-dest");
    work = tmpDir("pg-work");
    shims = tmpDir("pg-shims");
    env = {
      PGHOST: s.pgHost,
      PGPORT: s.pgPort,
      PGUSER: "postgres",
      PGDATABASE: DB,
      BACKUP_PG_PASSWORD_FILE: s.pgPasswordFile,
      BACKUP_DEST: "pvc",
      BACKUP_DIR: dest,
      BACKUP_WORK_DIR: work,
    };
    // fault injection: a pg_dump that runs the real one, then damages its output
    writeExecutable(
      path.join(shims, "pg_dump"),
      `#!/bin/bash
"$REAL_PG_DUMP" "$@" || exit $?
f=
for a in "$@"; do case $a in --file=*) f=\${a#--file=} ;; esac; done
[[ -n $f ]] || exit 0
size=$(stat -c %s "$f")
case $FAULT in
  truncate) truncate -s $((size / 2)) "$f" ;;
  flip) for at in $((size * 3 / 10)) $((size * 55 / 100)) $((size * 8 / 10)); do
          printf 'XXXXXXXXXXXXXXXX' | dd of="$f" bs=1 seek="$at" conv=notrunc status=none; done ;;
  empty) : >"$f" ;;
esac
`,
    );
  });

  after(() => {
    try {
      psql("postgres", `DROP DATABASE IF EXISTS ${DB} WITH (FORCE); DROP DATABASE IF EXISTS ${DB}_restored WITH (FORCE); DROP ROLE IF EXISTS ${ROLE}`);
    } finally {
      cleanupTmp();
    }
  });

  it("backs up a seeded database while a writer commits, and the restore matches the backup's snapshot", async () => {
    let writer: ChildProcess | undefined;
    let writerExit: Promise<number | null> | undefined;
    try {
      writer = psqlAsync(DB, WRITER);
      writerExit = new Promise((r) => writer!.on("close", r));
      await waitFor("the writer to commit", () => Number(psql(DB, "SELECT count(*) FROM orders")) > 2020);

      const r = await runScript("pg-backup.sh", ["run"], { ...env, BACKUP_NOW: "2025-03-10T02:00:00Z" });
      assert.equal(r.code, 0, explain(r));
      goodId = String(r.log.backup);
      // the run's time and a random part: runs in the same second never share an id
      assert.match(goodId, new RegExp(`^${PREFIX}-20250310T020000Z-[0-9a-f]{8}$`));
      assert.equal(r.log.status, "ok");
      assert.equal(r.log.backup, goodId);
      assert.equal(r.log.verified, true);
      assert.equal(r.log.sanity_ok, true);
      assert.deepEqual(r.log.kept, [goodId]);
      assert.deepEqual(r.log.pruned, []);

      const m = readManifest(path.join(dest, `${goodId}.manifest`));
      const mOrders = m.tables["public.orders"];
      // the writer committed both before the snapshot and after it
      assert.ok(mOrders > 2020, `orders in the backup: ${mOrders}`);
      await waitFor("the writer to commit after the snapshot", () => Number(psql(DB, "SELECT count(*) FROM orders")) > mOrders);
      psql(DB, "UPDATE writer_ctl SET stop = true");
      assert.equal(await writerExit, 0, "the writer failed");
      writer = undefined;
      const final = Number(psql(DB, "SELECT count(*) FROM orders"));
      assert.ok(final > mOrders);

      // the counts are one consistent snapshot: 3 items per order
      assert.equal(m.tables["public.order_items"], 3 * mOrders);
      assert.deepEqual(Object.keys(m.tables).sort(), [
        'audit."Log Entries"', "public.customers", "public.empty_table", "public.ledger", "public.metrics",
        "public.metrics_2025_01", "public.metrics_2025_02", "public.order_items", "public.orders", "public.writer_ctl",
      ]);
      assert.equal(m.tables["public.customers"], 3000);
      assert.equal(m.tables['audit."Log Entries"'], 4000);
      assert.equal(m.tables["public.metrics"], 0, "a partitioned parent holds no rows itself");
      assert.equal(m.tables["public.metrics_2025_01"] + m.tables["public.metrics_2025_02"], 1500);
      assert.equal(m.kv.large_objects, "1");
      assert.equal(r.log.tables, 10);
      assert.equal(r.log.rows, Object.values(m.tables).reduce((a, b) => a + b, 0));

      // the stored files and their checksums
      assert.deepEqual(Object.keys(dirState(dest)), [`${goodId}.dump`, `${goodId}.manifest`, `${goodId}.sha256`]);
      const dumpSha = sha256File(path.join(dest, `${goodId}.dump`));
      assert.equal(r.log.checksum, `sha256:${dumpSha}`);
      assert.equal(r.log.bytes, fs.statSync(path.join(dest, `${goodId}.dump`)).size);
      const sums = fs.readFileSync(path.join(dest, `${goodId}.sha256`), "utf8");
      assert.match(sums, new RegExp(`^${dumpSha}  ${goodId}\\.dump$`, "m"));
      assert.match(sums, new RegExp(`^${sha256File(path.join(dest, `${goodId}.manifest`))}  ${goodId}\\.manifest$`, "m"));

      // on-call restore into a new database on the same server, then compare independently
      const rr = await runScript("pg-restore.sh", ["restore"], {
        ...env, PGDATABASE: "", BACKUP_PREFIX: PREFIX, RESTORE_TARGET_DB: `${DB}_restored`,
      });
      assert.equal(rr.code, 0, explain(rr));
      assert.equal(rr.log.backup, goodId);
      const restored = `${DB}_restored`;
      assert.deepEqual(tableCounts(restored), m.tables);
      assert.equal(Number(psql(restored, "SELECT order_count FROM ledger")), mOrders);
      assert.equal(Number(psql(restored, "SELECT count(*) FROM order_items")), 3 * Number(psql(restored, "SELECT count(*) FROM orders")));
      assert.equal(psql(restored, CUSTOMERS_DIGEST), psql(DB, CUSTOMERS_DIGEST));
      assert.equal(psql(restored, "SELECT convert_from(lo_get(oid), 'UTF8') FROM pg_largeobject_metadata"), "large object payload");
      assert.equal(psql(restored, "SELECT count(*) FROM mood_counts"), "3");
      // owners, grants and policies came back too
      assert.equal(psql(restored, "SELECT tableowner FROM pg_tables WHERE tablename = 'empty_table'"), ROLE);
      assert.equal(psql(restored, `SELECT has_table_privilege('${ROLE}', 'customers', 'SELECT')`), "t");
      assert.equal(psql(restored, "SELECT polname FROM pg_policy"), "orders_read");
      assert.match(fs.readFileSync(path.join(dest, `${goodId}.manifest`), "utf8"), new RegExp(`^role\t${ROLE}$`, "m"));

      // restoring again into the same (now existing) database is refused
      const again = await runScript("pg-restore.sh", ["restore"], {
        ...env, BACKUP_PREFIX: PREFIX, RESTORE_TARGET_DB: `${DB}_restored`,
      });
      assert.equal(again.code, 8, explain(again));
      assert.match(String(again.log.error), /already exists/);
    } finally {
      if (writer) {
        psql(DB, "UPDATE writer_ctl SET stop = true");
        await writerExit;
      }
    }
  });

  /** a destination holding the good backup and two older synthetic ones, with a
   *  policy (keep 1 daily) under which a successful run would prune all three */
  function seededDest(): { dir: string; before: Record<string, string>; env: Record<string, string> } {
    assert.ok(goodId, "needs the backup of the first test");
    const dir = tmpDir("pg-dest-x");
    copyBackup(dest, goodId, dir);
    for (const ts of ["20250301T020000Z", "20250302T020000Z"]) {
      for (const ext of ["dump", "manifest", "sha256"]) fs.writeFileSync(path.join(dir, `${PREFIX}-${ts}.${ext}`), `old ${ext}`);
    }
    giveToUser(dir);
    return {
      dir,
      before: dirState(dir),
      env: { ...env, BACKUP_DIR: dir, BACKUP_KEEP_DAILY: "1", BACKUP_KEEP_WEEKLY: "0", BACKUP_KEEP_MONTHLY: "0", BACKUP_NOW: "2025-03-11T02:00:00Z" },
    };
  }

  for (const fault of ["truncate", "flip"] as const) {
    it(`fails verification on a ${fault === "truncate" ? "truncated" : "byte-flipped"} dump, stores and prunes nothing`, async () => {
      const d = seededDest();
      const r = await runScript("pg-backup.sh", ["run"], { ...d.env, FAULT: fault, REAL_PG_DUMP: path.join(services().pgBin, "pg_dump") }, {
        pathPrefix: [shims],
      });
      assert.equal(r.code, 4, explain(r));
      assert.equal(r.log.status, "error");
      assert.equal(r.log.stage, "verify");
      assert.equal(r.log.verified, false);
      assert.match(String(r.log.error), /pg_restore of the dump failed/);
      assert.equal(r.log.pruned, undefined, "the prune step must not have run");
      assert.deepEqual(dirState(d.dir), d.before, "the destination must be untouched");
    });
  }

  it("rejects an empty dump", async () => {
    const d = seededDest();
    const r = await runScript("pg-backup.sh", ["run"], { ...d.env, FAULT: "empty", REAL_PG_DUMP: path.join(services().pgBin, "pg_dump") }, {
      pathPrefix: [shims],
    });
    assert.equal(r.code, 4, explain(r));
    assert.match(String(r.log.error), /dump is empty/);
    assert.deepEqual(dirState(d.dir), d.before);
  });

  it("fails clearly when the server is unreachable", async () => {
    const d = seededDest();
    const r = await runScript("pg-backup.sh", ["run"], { ...d.env, PGPORT: "1" });
    assert.equal(r.code, 3, explain(r));
    assert.equal(r.log.stage, "snapshot");
    assert.match(String(r.log.error), /port 1 failed: Connection refused/);
    assert.deepEqual(dirState(d.dir), d.before);
  });

  it("fails clearly on a wrong password", async () => {
    const d = seededDest();
    const wrong = path.join(tmpDir("pw"), "password");
    fs.writeFileSync(wrong, "not-the-password\n", { mode: 0o600 });
    giveToUser(wrong);
    const r = await runScript("pg-backup.sh", ["run"], { ...d.env, BACKUP_PG_PASSWORD_FILE: wrong });
    assert.equal(r.code, 3, explain(r));
    assert.match(String(r.log.error), /password authentication failed for user "postgres"/);
    assert.deepEqual(dirState(d.dir), d.before);
  });

  it("refuses a password in PGPASSWORD (visible in /proc/<pid>/environ)", async () => {
    const d = seededDest();
    const r = await runScript("pg-backup.sh", ["run"], { ...d.env, PGPASSWORD: "x" });
    assert.equal(r.code, 2, explain(r));
    assert.match(String(r.log.error), /PGPASSWORD is set/);
    assert.deepEqual(dirState(d.dir), d.before);
  });

  it("dump and store as two steps; a staged dump that no longer matches its sha256 is not stored", async () => {
    const d = seededDest();
    const w = tmpDir("pg-work2");
    const dump = await runScript("pg-backup.sh", ["dump"], { ...d.env, BACKUP_WORK_DIR: w, BACKUP_DEST: "", BACKUP_DIR: "" });
    assert.equal(dump.code, 0, explain(dump));
    assert.equal(dump.log.phase, "dump");
    assert.equal(dump.log.verified, true);
    const id = String(dump.log.backup);
    assert.match(id, new RegExp(`^${PREFIX}-20250311T020000Z-[0-9a-f]{8}$`));
    const staged = path.join(w, "staged");
    assert.deepEqual(fs.readdirSync(staged).sort(), ["meta", `${id}.dump`, `${id}.manifest`, `${id}.sha256`]);
    assert.deepEqual(dirState(d.dir), d.before, "the dump step does not touch the destination");

    // damage in the emptyDir between the two containers
    flipBytes(path.join(staged, `${id}.dump`), [0.5], 4);
    const store = await runScript("pg-backup.sh", ["store"], { ...d.env, PGDATABASE: "", BACKUP_WORK_DIR: w });
    assert.equal(store.code, 5, explain(store));
    assert.match(String(store.log.error), /checksum mismatch/);
    assert.deepEqual(dirState(d.dir), d.before);
  });

  it("fails before dumping when the destination is not writable, and loses nothing", async () => {
    const d = seededDest();
    fs.chmodSync(d.dir, 0o555);
    try {
      const r = await runScript("pg-backup.sh", ["run"], d.env);
      assert.equal(r.code, 6, explain(r));
      assert.match(String(r.log.error), /is not writable/);
      assert.equal(r.log.backup, undefined, "no dump was attempted");
      assert.deepEqual(dirState(d.dir), d.before);
    } finally {
      fs.chmodSync(d.dir, 0o755);
    }
  });

  it("a successful run with the same policy prunes the older backups (so the failures above really prevented it)", async () => {
    const d = seededDest();
    const r = await runScript("pg-backup.sh", ["run"], d.env);
    assert.equal(r.code, 0, explain(r));
    const id = String(r.log.backup);
    assert.match(id, new RegExp(`^${PREFIX}-20250311T020000Z-[0-9a-f]{8}$`));
    assert.deepEqual(r.log.kept, [id]);
    assert.deepEqual((r.log.pruned as string[]).slice().sort(), [`${PREFIX}-20250301T020000Z`, `${PREFIX}-20250302T020000Z`, goodId]);
    assert.deepEqual(Object.keys(dirState(d.dir)), [`${id}.dump`, `${id}.manifest`, `${id}.sha256`]);
  });
  it("backs up a database with a table and an index in a non-default tablespace; verification, drill and on-call restore work", async () => {
    const space = `bk_space_${process.pid}`;
    const db = `${DB}_ts`;
    const loc = tmpDir("tablespace");
    const drop = () => {
      psql("postgres", `DROP DATABASE IF EXISTS ${db}_r WITH (FORCE)`);
      psql("postgres", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      psql("postgres", `DROP TABLESPACE IF EXISTS ${space}`);
    };
    drop();
    psql("postgres", `CREATE TABLESPACE ${space} LOCATION '${loc}'`);
    try {
      psql("postgres", `CREATE DATABASE ${db}`);
      psql(db, `CREATE TABLE hot (id int PRIMARY KEY, v text) TABLESPACE ${space};
        INSERT INTO hot SELECT i, md5(i::text) FROM generate_series(1, 3000) i;
        CREATE INDEX hot_v ON hot (v) TABLESPACE ${space};
        CREATE TABLE cold (id int); INSERT INTO cold VALUES (1), (2);`);
      const dir = tmpDir("ts-dest");
      const prefix = `pg-${db}`;
      const r = await runScript("pg-backup.sh", ["run"], { ...env, PGDATABASE: db, BACKUP_DIR: dir, BACKUP_WORK_DIR: tmpDir("ts-w") });
      assert.equal(r.code, 0, explain(r));
      assert.equal(r.log.verified, true);
      assert.equal(r.log.rows, 3002);
      const id = String(r.log.backup);
      assert.match(fs.readFileSync(path.join(dir, `${id}.manifest`), "utf8"), new RegExp(`^tablespace\t${space}$`, "m"));

      const drill = await runScript("restore-drill.sh", ["run", "pg"], {
        BACKUP_DEST: "pvc", BACKUP_DIR: dir, BACKUP_PREFIX: prefix, BACKUP_WORK_DIR: tmpDir("ts-drill"),
      });
      assert.equal(drill.code, 0, explain(drill));
      assert.equal(drill.log.rows, 3002);

      // on a server that has the tablespace, the restored table lands in it
      const restore = await runScript("pg-restore.sh", ["restore", id], {
        ...env, PGDATABASE: "", BACKUP_DIR: dir, BACKUP_PREFIX: prefix, BACKUP_WORK_DIR: tmpDir("ts-restore"), RESTORE_TARGET_DB: `${db}_r`,
      });
      assert.equal(restore.code, 0, explain(restore));
      assert.equal(psql(`${db}_r`, "SELECT tablespace FROM pg_tables WHERE tablename = 'hot'"), space);
      assert.equal(psql(`${db}_r`, "SELECT count(*) FROM hot"), "3000");
    } finally {
      drop();
    }
  });
});
