// GFS retention of the backup scripts: the `prune` step on synthetic backups
// (empty files with the right names) in a pvc destination, with a fixed clock.
// Every expected set below was worked out by hand from restic's rules
// (see the comments); none is computed by code.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { cleanupTmp, explain, giveToUser, runScript, services, tmpDir } from "./helpers";

const PREFIX = "pg-app";

// 2025-01-01 .. 2025-03-31 at 02:00Z, every day except 2025-03-27, plus a
// second (manual) backup on 2025-03-30 at 14:00Z: 90 backups.
function ninetyDays(): string[] {
  const out: string[] = [];
  for (let t = Date.UTC(2025, 0, 1, 2); t <= Date.UTC(2025, 2, 31, 2); t += 86_400_000) {
    const d = new Date(t);
    if (d.getUTCMonth() === 2 && d.getUTCDate() === 27) continue;
    out.push(stamp(d));
  }
  out.push("20250330T140000Z");
  return out.sort();
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}

/** a pvc destination holding complete synthetic backups (empty .dump/.manifest/.sha256) */
function destWith(stamps: string[], extra: string[] = []): string {
  const dir = tmpDir("retention");
  for (const ts of stamps) {
    for (const ext of ["dump", "manifest", "sha256"]) fs.writeFileSync(path.join(dir, `${PREFIX}-${ts}.${ext}`), "");
  }
  for (const name of extra) fs.writeFileSync(path.join(dir, name), "");
  giveToUser(dir);
  return dir;
}

/** the complete backups left in dir, as timestamps */
function remaining(dir: string): string[] {
  const re = new RegExp(`^${PREFIX}-(\\d{8}T\\d{6}Z)\\.sha256$`);
  return fs
    .readdirSync(dir)
    .map((f) => re.exec(f)?.[1])
    .filter((ts): ts is string => ts !== undefined)
    .sort();
}

async function prune(dir: string, keep: [number, number, number], now = "2025-03-31T03:00:00Z") {
  const work = tmpDir("work");
  return runScript("pg-backup.sh", ["prune"], {
    BACKUP_DEST: "pvc",
    BACKUP_DIR: dir,
    BACKUP_WORK_DIR: work,
    BACKUP_PREFIX: PREFIX,
    BACKUP_NOW: now,
    BACKUP_KEEP_DAILY: String(keep[0]),
    BACKUP_KEEP_WEEKLY: String(keep[1]),
    BACKUP_KEEP_MONTHLY: String(keep[2]),
  });
}

const at2 = (mmdd: string) => `2025${mmdd}T020000Z`;

describe("backup retention (restic forget --keep-daily/--keep-weekly/--keep-monthly)", function () {
  this.timeout(30_000);
  before(() => services());
  after(() => cleanupTmp());

  // ISO weeks of 2025 used below: W14 = Mon 03-31.., W13 = 03-24..03-30,
  // W12 = 03-17..03-23, W11 = 03-10..03-16, W10 = 03-03..03-09,
  // W09 = 02-24..03-02, W08 = 02-17..02-23, W07 = 02-10..02-16,
  // W06 = 02-03..02-09, W05 = 01-27..02-02, W04 = 01-20..01-26,
  // W03 = 01-13..01-19, W02 = 01-06..01-12, W01 = 2024-12-30..01-05.
  const cases: { keep: [number, number, number]; why: string; expected: string[] }[] = [
    {
      keep: [7, 4, 0],
      why:
        "daily: newest of the last 7 days that have a backup: 31, 30 (14:00, not 02:00), 29, 28, 26, 25, 24 (27 has none); " +
        "weekly: newest of W14 (31), W13 (30 14:00), W12 (Sun 23), W11 (Sun 16)",
      expected: [at2("0316"), at2("0323"), at2("0324"), at2("0325"), at2("0326"), at2("0328"), at2("0329"), "20250330T140000Z", at2("0331")],
    },
    {
      keep: [3, 0, 3],
      why: "daily: 31, 30 14:00, 29; monthly: newest of March (31), February (28), January (31)",
      expected: [at2("0131"), at2("0228"), at2("0329"), "20250330T140000Z", at2("0331")],
    },
    {
      keep: [10, 0, 0],
      why: "the 10 newest days that have a backup skip the gap on 03-27: 31, 30 14:00, 29, 28, 26, 25, 24, 23, 22, 21",
      expected: [at2("0321"), at2("0322"), at2("0323"), at2("0324"), at2("0325"), at2("0326"), at2("0328"), at2("0329"), "20250330T140000Z", at2("0331")],
    },
    {
      keep: [1, 1, 1],
      why: "every policy keeps the newest backup and is used up by it",
      expected: [at2("0331")],
    },
    {
      keep: [0, 2, 0],
      why: "weekly only: W14 (31) and W13 (30 14:00)",
      expected: ["20250330T140000Z", at2("0331")],
    },
    {
      keep: [0, 0, 6],
      why:
        "monthly: March (31), February (28), January (31); 3 of 6 left when the list ends, " +
        "so restic also keeps the oldest backup (01-01)",
      expected: [at2("0101"), at2("0131"), at2("0228"), at2("0331")],
    },
    {
      keep: [0, 20, 0],
      why:
        "weekly: the newest of each of the 14 weeks W14..W01 (31, 30 14:00, Sundays 23, 16, 9, 2, 02-23, 02-16, 02-09, 02-02, " +
        "01-26, 01-19, 01-12, 01-05), then the oldest (01-01) because 6 weeks are left",
      expected: [
        at2("0101"), at2("0105"), at2("0112"), at2("0119"), at2("0126"), at2("0202"), at2("0209"), at2("0216"), at2("0223"),
        at2("0302"), at2("0309"), at2("0316"), at2("0323"), "20250330T140000Z", at2("0331"),
      ],
    },
  ];

  for (const c of cases) {
    it(`keeps exactly the hand-computed set for daily=${c.keep[0]} weekly=${c.keep[1]} monthly=${c.keep[2]}`, async () => {
      const all = ninetyDays();
      assert.equal(all.length, 90);
      const dir = destWith(all);
      const r = await prune(dir, c.keep);
      assert.equal(r.code, 0, explain(r));
      assert.deepEqual(remaining(dir), c.expected, c.why);
      // every file of a pruned backup is gone, every file of a kept one is there
      const files = fs.readdirSync(dir).sort();
      assert.deepEqual(files, c.expected.flatMap((ts) => ["dump", "manifest", "sha256"].map((e) => `${PREFIX}-${ts}.${e}`)).sort());
      assert.deepEqual((r.log.kept as string[]).slice().sort(), c.expected.map((ts) => `${PREFIX}-${ts}`));
      assert.equal((r.log.pruned as string[]).length, 90 - c.expected.length);
    });
  }

  it("keeps everything when every count is 0 (restic: an empty policy removes nothing)", async () => {
    const dir = destWith(ninetyDays());
    const r = await prune(dir, [0, 0, 0]);
    assert.equal(r.code, 0, explain(r));
    assert.equal(remaining(dir).length, 90);
    assert.deepEqual(r.log.pruned, []);
  });

  it("buckets weeks by ISO week-year across New Year (2024-12-30 is in 2025-W01)", async () => {
    // Sat 2024-12-28 and Sun 2024-12-29: 2024-W52; Mon 2024-12-30 and Thu 2025-01-02: 2025-W01; Mon 2025-01-06: W02
    const stamps = ["20241228T020000Z", "20241229T020000Z", "20241230T020000Z", "20250102T020000Z", "20250106T020000Z"];
    let dir = destWith(stamps);
    let r = await prune(dir, [0, 3, 0]);
    assert.equal(r.code, 0, explain(r));
    // W02: 01-06; W01: 01-02 (12-30 is the same week); 2024-W52: 12-29; the count is used up
    assert.deepEqual(remaining(dir), ["20241229T020000Z", "20250102T020000Z", "20250106T020000Z"]);

    dir = destWith(stamps);
    r = await prune(dir, [0, 0, 2]);
    assert.equal(r.code, 0, explain(r));
    // January 2025: 01-06; December 2024: 12-30
    assert.deepEqual(remaining(dir), ["20241230T020000Z", "20250106T020000Z"]);
  });

  it("does not depend on the clock (BACKUP_NOW)", async () => {
    const results: string[][] = [];
    for (const now of ["2025-03-31T03:00:00Z", "2025-06-01T00:00:00Z", "2031-01-01T00:00:00Z"]) {
      const dir = destWith(ninetyDays());
      const r = await prune(dir, [7, 4, 0], now);
      assert.equal(r.code, 0, explain(r));
      assert.equal(r.log.now, now);
      results.push(remaining(dir));
    }
    assert.deepEqual(results[1], results[0]);
    assert.deepEqual(results[2], results[0]);
    assert.equal(results[0].length, 9);
  });

  it("ignores other prefixes, incomplete backups and foreign files", async () => {
    const dir = destWith(
      ["20250101T020000Z", "20250102T020000Z", "20250103T020000Z"],
      [
        // another database whose name extends the prefix: not ours
        "pg-app-eu-20240101T020000Z.dump", "pg-app-eu-20240101T020000Z.sha256",
        // an interrupted (or still running) upload (no .sha256), less than
        // BACKUP_STALE_HOURS older than the newest backup: neither kept nor
        // pruned, reported
        "pg-app-20250102T230000Z.dump",
        "README.txt",
      ],
    );
    const r = await prune(dir, [1, 0, 0]);
    assert.equal(r.code, 0, explain(r));
    assert.deepEqual(remaining(dir), ["20250103T020000Z"]);
    for (const f of ["pg-app-eu-20240101T020000Z.dump", "pg-app-eu-20240101T020000Z.sha256", "pg-app-20250102T230000Z.dump", "README.txt"]) {
      assert.ok(fs.existsSync(path.join(dir, f)), `${f} must be left alone`);
    }
    assert.deepEqual(r.log.incomplete, ["pg-app-20250102T230000Z"]);
    assert.deepEqual(r.log.leftovers, []);
  });

  it("ignores and reports names of its prefix that are not backups (impossible dates, bad shapes); the prune goes on", async () => {
    const malformed = [
      // month 13, day 99: no such date
      "pg-app-20251399T020000Z.dump", "pg-app-20251399T020000Z.manifest", "pg-app-20251399T020000Z.sha256",
      // February 30th, hour 25
      "pg-app-20250230T020000Z.sha256", "pg-app-20250101T250000Z.sha256",
      // too short, and a suffix that is not the run suffix
      "pg-app-2025010T020000Z.sha256", "pg-app-20250101T020000Z-x.sha256",
    ];
    const dir = destWith(["20250101T020000Z", "20250102T020000Z", "20250103T020000Z"], malformed);
    const r = await prune(dir, [1, 0, 0]);
    assert.equal(r.code, 0, explain(r));
    assert.deepEqual(remaining(dir).filter((ts) => !malformed.some((m) => m.includes(ts))), ["20250103T020000Z"]);
    assert.deepEqual(r.log.pruned, ["pg-app-20250102T020000Z", "pg-app-20250101T020000Z"]);
    for (const f of malformed) assert.ok(fs.existsSync(path.join(dir, f)), `${f} is not ours to delete`);
    assert.deepEqual((r.log.ignored as string[]).slice().sort(), malformed.slice().sort());
  });

  it("counts backups whose ids carry a run suffix, several in one second, by their timestamp", async () => {
    const dir = destWith([], [
      ...["dump", "manifest", "sha256"].map((e) => `pg-app-20250103T020000Z-0000abcd.${e}`),
      ...["dump", "manifest", "sha256"].map((e) => `pg-app-20250103T020000Z-ffff0000.${e}`),
      ...["dump", "manifest", "sha256"].map((e) => `pg-app-20250102T020000Z.${e}`),
      ...["dump", "manifest", "sha256"].map((e) => `pg-app-20250101T020000Z-12345678.${e}`),
    ]);
    const r = await prune(dir, [2, 0, 0]);
    assert.equal(r.code, 0, explain(r));
    // daily=2: the newest of 01-03 (the larger suffix sorts newer) and 01-02
    assert.deepEqual(r.log.kept, ["pg-app-20250103T020000Z-ffff0000", "pg-app-20250102T020000Z"]);
    assert.deepEqual((r.log.pruned as string[]).slice().sort(), ["pg-app-20250101T020000Z-12345678", "pg-app-20250103T020000Z-0000abcd"]);
    assert.deepEqual(r.log.ignored, []);
  });

  it("rejects a bad policy value without touching anything", async () => {
    const dir = destWith(["20250101T020000Z", "20250102T020000Z"]);
    const work = tmpDir("work");
    const r = await runScript("pg-backup.sh", ["prune"], {
      BACKUP_DEST: "pvc", BACKUP_DIR: dir, BACKUP_WORK_DIR: work, BACKUP_PREFIX: PREFIX, BACKUP_KEEP_DAILY: "seven",
    });
    assert.equal(r.code, 2, explain(r));
    assert.match(String(r.log.error), /BACKUP_KEEP_DAILY must be a non-negative integer/);
    assert.equal(remaining(dir).length, 2);
  });
});
