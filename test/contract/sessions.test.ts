// One contract for every SessionStore: the Redis one (a private redis-server)
// and the in-process one used beside the embedded store.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../../src/store/redis.ts";
import { MemorySessionStore, type SessionStore } from "../../src/store/sessions.ts";
import { RedisSessionStore } from "../../src/store/sessions-redis.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";

let redis: RedisHandle;
let redisStore: RedisStore;
let n = 0;

beforeAll(async () => {
  redis = await startRedis();
  redisStore = await RedisStore.connect({ url: redis.url, keyPrefix: redis.keyPrefix });
});
afterAll(async () => {
  await redisStore.close();
  await redis.stop();
});

const kinds: Array<[string, () => SessionStore]> = [
  ["memory", () => new MemorySessionStore()],
  ["redis", () => new RedisSessionStore(redisStore.redis, `${redis.keyPrefix}${++n}:`)],
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const [name, make] of kinds) {
  describe(`SessionStore contract: ${name}`, () => {
    it("stores, reads, replaces and deletes", async () => {
      const s = make();
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
      const s = make();
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
      const s = make();
      await s.put("login", "state", 10_000);
      const got = await Promise.all([s.take("login"), s.take("login")]);
      expect(got.filter((v) => v === "state")).toHaveLength(1);
      expect(await s.get("login")).toBeNull();
      expect(await s.take("missing")).toBeNull();
      await s.close();
    });

    it("keeps ids apart (no prefix collisions)", async () => {
      const s = make();
      await s.put("ab", "1", 10_000);
      await s.put("a", "2", 10_000);
      expect(await s.get("ab")).toBe("1");
      expect(await s.get("a")).toBe("2");
      await s.close();
    });
  });
}
