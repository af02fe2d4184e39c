// One contract for every SessionStore: the Redis one (a private redis-server),
// the embedded database's table (a fresh database file per test) and the
// in-process twin.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { MemorySessionStore, type SessionStore } from "../../src/store/sessions.ts";
import { EmbeddedSessionStore } from "../../src/store/sessions-embedded.ts";
import { RedisSessionStore } from "../../src/store/sessions-redis.ts";
import { DatabaseSync } from "../../src/store/sqlite.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";

let redis: RedisHandle;
let redisStore: RedisStore;
let n = 0;
let dir = "";
const embedded: EmbeddedStore[] = [];

beforeAll(async () => {
  redis = await startRedis();
  redisStore = await RedisStore.connect({ url: redis.url, keyPrefix: redis.keyPrefix });
  dir = await mkdtemp(path.join(os.tmpdir(), "patgate-sessions-"));
});
afterEach(async () => {
  for (const s of embedded.splice(0)) await s.close();
});
afterAll(async () => {
  await redisStore.close();
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
});

async function embeddedSessions(file = path.join(dir, `s${++n}.db`)): Promise<EmbeddedSessionStore> {
  const store = await EmbeddedStore.open(file);
  embedded.push(store);
  return new EmbeddedSessionStore(store);
}

const kinds: Array<[string, () => Promise<SessionStore>]> = [
  ["memory", () => Promise.resolve(new MemorySessionStore())],
  ["redis", () => Promise.resolve(new RedisSessionStore(redisStore.redis, `${redis.keyPrefix}${++n}:`))],
  ["embedded", () => embeddedSessions()],
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const [name, make] of kinds) {
  describe(`SessionStore contract: ${name}`, () => {
    it("stores, reads, replaces and deletes", async () => {
      const s = await make();
      expect(await s.get("a")).toBeNull();
      await s.put("a", "one", 10_000);
      expect(await s.get("a")).toBe("one");
      await s.put("a", "two", 10_000);
      expect(await s.get("a")).toBe("two");
      expect(await s.delete("a")).toBe(true);
      expect(await s.delete("a")).toBe(false);
      expect(await s.get("a")).toBeNull();
      await s.close();
    });

    it("forgets an entry once its TTL has passed, and a put with no TTL left removes it", async () => {
      const s = await make();
      await s.put("short", "x", 50);
      await s.put("long", "y", 10_000);
      await sleep(120);
      expect(await s.get("short")).toBeNull();
      expect(await s.get("long")).toBe("y");
      await s.put("long", "z", 0);
      expect(await s.get("long")).toBeNull();
      await s.close();
    });

    it("take() hands a value to exactly one of two concurrent callers", async () => {
      const s = await make();
      await s.put("login", "state", 10_000);
      const got = await Promise.all([s.take("login"), s.take("login")]);
      expect(got.filter((v) => v === "state")).toHaveLength(1);
      expect(await s.get("login")).toBeNull();
      expect(await s.take("missing")).toBeNull();
      await s.close();
    });

    it("keeps ids apart (no prefix collisions)", async () => {
      const s = await make();
      await s.put("ab", "1", 10_000);
      await s.put("a", "2", 10_000);
      expect(await s.get("ab")).toBe("1");
      expect(await s.get("a")).toBe("2");
      await s.close();
    });
  });
}

describe("EmbeddedSessionStore: one table for every process on the database", () => {
  it("two store instances on one file (as two gateway processes) see each other's puts, takes and deletes at once", async () => {
    const file = path.join(dir, "shared.db");
    const a = await embeddedSessions(file);
    const b = await embeddedSessions(file);
    await a.put("s", "one", 10_000);
    expect(await b.get("s")).toBe("one");
    await b.put("s", "two", 10_000);
    expect(await a.get("s")).toBe("two");
    expect(await b.delete("s")).toBe(true);
    expect(await a.get("s")).toBeNull();
    await a.put("login", "state", 10_000);
    const got = await Promise.all([a.take("login"), b.take("login")]);
    expect(got.filter((v) => v === "state")).toHaveLength(1);
  });

  it("sweeps expired rows out of the table (reads never return them even before the sweep)", async () => {
    const file = path.join(dir, "sweep.db");
    const s = await embeddedSessions(file);
    await s.put("gone1", "x", 30);
    await s.put("gone2", "x", 30);
    await s.put("kept", "y", 60_000);
    await sleep(80);
    expect(await s.get("gone1")).toBeNull();
    const rows = (): string[] => {
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        return (db.prepare("SELECT id FROM ui_sessions ORDER BY id").all() as { id: string }[]).map((r) => r.id);
      } finally {
        db.close();
      }
    };
    expect(rows()).toEqual(["gone1", "gone2", "kept"]);
    expect(await s.sweep()).toBe(2);
    expect(rows()).toEqual(["kept"]);
    expect(await s.get("kept")).toBe("y");
  });
});
