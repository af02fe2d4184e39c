// SqliteBuckets and RedisBuckets held to one contract (usage-buckets.contract.ts),
// then what only the SQLite table has to show: index searches, old buckets
// deleted on flush, totals kept across a reopen and the schema migration.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { Statements } from "../../src/store/embedded-rows.ts";
import { MIGRATIONS, migrate } from "../../src/store/schema.ts";
import { WIDTH_MS, bucketStart, zeroTotals, type BucketWidth, type UsageRow } from "../../src/usage/buckets.ts";
import { RedisBuckets } from "../../src/usage/redis-buckets.ts";
import { SqliteBuckets } from "../../src/usage/sqlite-buckets.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";
import { makePat } from "./store.contract.ts";
import { RETENTION, usageBucketsContract, type BucketSpace } from "./usage-buckets.contract.ts";

const HOUR = WIDTH_MS["1h"];
const DAY = WIDTH_MS["1d"];

let redis: RedisHandle;
let dir: string;
const toClose: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), "patgate-usage-"));
});

afterAll(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
  await redis?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

let spaces = 0;

/** A database file of its own; each open is another EmbeddedStore on it (its own connections and writer thread, as another process has). */
function sqliteSpace(): Promise<BucketSpace & { file: string }> {
  const file = join(dir, `usage-${++spaces}.db`);
  return Promise.resolve({
    file,
    async open(retention = RETENTION) {
      const store = await EmbeddedStore.open(file);
      toClose.push(store);
      return new SqliteBuckets(store, retention);
    },
  });
}

usageBucketsContract("sqlite", sqliteSpace);
usageBucketsContract("redis", () => {
  const prefix = `${redis.keyPrefix}${++spaces}:`;
  return Promise.resolve({
    open(retention = RETENTION) {
      const b = new RedisBuckets(new Redis(redis.url), prefix, retention);
      toClose.push(b);
      return Promise.resolve(b);
    },
  });
});

function row(start: number, patId: string, userId: string, requests: number): UsageRow {
  return { start, patId, userId, domainId: "d", model: "m", operation: "llm_chat_completions", totals: { ...zeroTotals(), requests, inputTokens: 10 * requests } };
}

/** A plain connection to the file, as another process (or an operator with sqlite3) holds it. */
function raw(file: string): DatabaseSync {
  const db = new DatabaseSync(file);
  db.exec("PRAGMA busy_timeout = 1000");
  return db;
}

describe("SqliteBuckets on the embedded store's file", () => {
  it("reads a range, one user's range and deletes old buckets by index searches, never a scan of the table", async () => {
    const space = await sqliteSpace();
    await (await space.open()).add([row(bucketStart(Date.now(), "1h"), "p", "u", 1)]);
    const db = raw(space.file);
    try {
      const q = new Statements(db);
      const plan = (stmt: { sourceSQL: string }, ...args: (string | number)[]): string =>
        (db.prepare(`EXPLAIN QUERY PLAN ${stmt.sourceSQL}`).all(...args) as { detail: string }[]).map((r) => r.detail).join("; ");
      const cases: [{ sourceSQL: string }, RegExp, ...(string | number)[]][] = [
        [q.usageRange, /SEARCH usage_buckets USING PRIMARY KEY \(width=\? AND start>\? AND start<\?\)/, "1h", 0, 1],
        [q.usageOfUser, /SEARCH usage_buckets USING INDEX usage_by_user \(width=\? AND user_id=\? AND start>\? AND start<\?\)/, "1h", "u", 0, 1],
        [q.pruneUsage, /SEARCH usage_buckets USING PRIMARY KEY \(width=\? AND start<\?\)/, "1h", 0],
      ];
      for (const [stmt, expected, ...args] of cases) {
        expect(plan(stmt, ...args)).toMatch(expected);
        expect(plan(stmt, ...args)).not.toMatch(/\bSCAN\b/);
      }
    } finally {
      db.close();
    }
  });

  it("deletes the buckets past their retention on the next flush (the rows are gone, not only hidden)", async () => {
    let now = Date.now();
    const space = await sqliteSpace();
    const store = await EmbeddedStore.open(space.file);
    toClose.push(store);
    const retention: Record<BucketWidth, number> = { "1h": 2 * DAY, "1d": 10 * DAY };
    const b = new SqliteBuckets(store, retention, () => now);
    const hour = bucketStart(now, "1h");
    await b.add([row(hour, "p", "u", 1)]);
    const count = (width: BucketWidth): number => {
      const db = raw(space.file);
      try {
        return Number((db.prepare("SELECT count(*) AS n FROM usage_buckets WHERE width = ?").get(width) as { n: number }).n);
      } finally {
        db.close();
      }
    };
    expect([count("1h"), count("1d")]).toEqual([1, 1]);
    // Three days on: the hour is past its retention (hidden from reads at once), its day is not.
    now += 3 * DAY;
    expect(await b.read("1h", hour, hour + HOUR, null)).toEqual([]);
    expect(count("1h")).toBe(1);
    await b.add([row(bucketStart(now, "1h"), "p", "u", 1)]);
    expect([count("1h"), count("1d")]).toEqual([1, 2]);
    expect((await b.read("1d", bucketStart(hour, "1d"), now, null)).map((r) => r.totals.requests)).toEqual([1, 1]);
    // Eleven days after the first: its day goes too.
    now += 8 * DAY;
    await b.add([row(bucketStart(now, "1h"), "p", "u", 1)]);
    expect([count("1h"), count("1d")]).toEqual([1, 2]);
  });

  it("keeps the totals across closing the store and opening the file again", async () => {
    const space = await sqliteSpace();
    const hour = bucketStart(Date.now(), "1h") - HOUR;
    const first = await EmbeddedStore.open(space.file);
    await new SqliteBuckets(first, RETENTION).add([row(hour, "p", "u", 3)]);
    await first.close();
    const again = await space.open();
    await again.add([row(hour, "p", "u", 4)]);
    expect((await again.read("1h", hour, hour + HOUR, "u"))[0]!.totals).toMatchObject({ requests: 7, inputTokens: 70 });
  });

  it("a database at schema version 3 gains the table on open and keeps its records", async () => {
    const file = join(dir, "v3", "store.db");
    await mkdir(join(dir, "v3"), { recursive: true });
    const old = new DatabaseSync(file);
    migrate(old, file, MIGRATIONS.filter((m) => m.version <= 3));
    old.prepare("INSERT INTO domains (id, name, upstream, created_at) VALUES ('d', 'D', NULL, 1)").run();
    expect(old.prepare("PRAGMA user_version").get()).toEqual({ user_version: 3 });
    old.close();
    const store = await EmbeddedStore.open(file);
    toClose.push(store);
    expect(await store.getDomain("d")).toMatchObject({ id: "d" });
    expect(await store.insertPat(makePat())).toBe("ok");
    const b = new SqliteBuckets(store, RETENTION);
    const hour = bucketStart(Date.now(), "1h");
    await b.add([row(hour, "p", "u", 2)]);
    expect(await b.read("1d", bucketStart(hour, "1d"), hour + HOUR, null)).toHaveLength(1);
    const db = raw(file);
    try {
      expect(db.prepare("PRAGMA user_version").get()).toEqual({ user_version: 4 });
    } finally {
      db.close();
    }
  });
});
