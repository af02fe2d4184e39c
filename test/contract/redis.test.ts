import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../../src/store/redis.ts";
import { StoreUnavailableError } from "../../src/store/types.ts";
import type { ChangeEvent, Store } from "../../src/store/types.ts";
import { startRedis } from "../helpers/redis.ts";
import type { RedisHandle } from "../helpers/redis.ts";
import { makePat, storeContract, waitUntil, type StoreFixture } from "./store.contract.ts";
import { transferContract } from "./store-transfer.contract.ts";

let shared: RedisHandle;
let fixtures = 0;

beforeAll(async () => {
  shared = await startRedis();
});

afterAll(async () => {
  await shared.stop();
});

const fixture = async (): Promise<StoreFixture> => {
  // A fresh prefix per test: tests never see each other's data.
  const keyPrefix = `${shared.keyPrefix}${++fixtures}:`;
  const opened: Store[] = [];
  const connect = async (): Promise<Store> => {
    const s = await RedisStore.connect({ url: shared.url, keyPrefix });
    opened.push(s);
    return s;
  };
  let current = await connect();
  return {
    store: current,
    reopen: async () => {
      await current.close();
      current = await connect();
      return current;
    },
    peer: connect,
    cleanup: async () => {
      await Promise.all(opened.map((s) => s.close()));
    },
  };
};

storeContract("redis", fixture);
transferContract("redis", fixture);

/** Every Store method, called once; each must reject (or resolve) on its own. */
function everyCall(s: Store): Promise<unknown>[] {
  const p = makePat();
  return [
    s.getPat(p.id),
    s.listPatsByUser("u"),
    s.insertPat(p),
    s.replacePat(p, 1),
    s.deletePat(p.id),
    s.touchPats(new Map([[p.id, 1]])),
    s.getDomain("d"),
    s.listDomains(),
    s.putDomain({ id: "d", name: "D", upstream: null, createdAt: 1 }),
    s.deleteDomain("d"),
    s.getMembership("d", "u"),
    s.listMembers("d"),
    s.listMembershipsOfUser("u"),
    s.putMembership({ domainId: "d", userId: "u", roles: [] }),
    s.deleteMembership("d", "u"),
    s.getRole("r"),
    s.listRoles(),
    s.putRole({ name: "r", operations: [] }),
    s.deleteRole("r"),
    s.addAdminKey({ id: "k", hash: "00", createdAt: 1 }),
    s.deleteAdminKey("k"),
    (async () => {
      for await (const page of s.allPats()) void page;
    })(),
    s.ping(),
  ];
}

describe("redis store specifics", () => {
  it("puts every key under one hash tag", async () => {
    const keyPrefix = `${shared.keyPrefix}layout:`;
    const s = await RedisStore.connect({ url: shared.url, keyPrefix });
    try {
      const p = makePat();
      await s.insertPat(p);
      await s.putDomain({ id: "d", name: "D", upstream: null, createdAt: 1 });
      await s.putMembership({ domainId: "d", userId: p.userId, roles: [] });
      await s.putRole({ name: "r", operations: [] });
      const raw = new Redis(shared.url);
      try {
        const keys = await raw.keys(`${keyPrefix}*`);
        expect(keys.length).toBeGreaterThanOrEqual(7);
        for (const k of keys) expect(k.startsWith(`${keyPrefix}{pg}:`)).toBe(true);
      } finally {
        raw.disconnect();
      }
    } finally {
      await s.close();
    }
  });

  it("ignores malformed messages on the change channel", async () => {
    const keyPrefix = `${shared.keyPrefix}garbage:`;
    const s = await RedisStore.connect({ url: shared.url, keyPrefix });
    const raw = new Redis(shared.url);
    try {
      const seen: ChangeEvent[] = [];
      s.subscribe((e) => seen.push(e));
      for (const junk of ["not json", "null", "[]", '{"kind":"pat"}', '{"kind":"pat","id":5}', '{"kind":"bogus","id":"x"}']) {
        await raw.publish(`${keyPrefix}changes`, junk);
      }
      await s.putRole({ name: "real", operations: [] });
      await waitUntil(() => seen.length > 0, 3000, "the real event");
      expect(seen).toEqual([{ kind: "role", name: "real" }]);
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it("rejects a key prefix that would change the hash tag, and a missing address", async () => {
    await expect(RedisStore.connect({ url: shared.url, keyPrefix: "a{b}:" })).rejects.toThrow(/hash tag/);
    await expect(RedisStore.connect({})).rejects.toThrow(/one of url, cluster, sentinel/);
  });
});

// These kill their own private server, so the shared one above is never disturbed.
describe.skipIf(process.env["REDIS_URL"])("redis store while Redis is down", () => {
  let own: RedisHandle;

  beforeAll(async () => {
    own = await startRedis();
  });

  afterAll(async () => {
    await own.stop();
  });

  it("fails fast with StoreUnavailableError, then recovers by itself", async () => {
    const keyPrefix = `${own.keyPrefix}kill:`;
    const a = await RedisStore.connect({ url: own.url, keyPrefix });
    const b = await RedisStore.connect({ url: own.url, keyPrefix });
    try {
      const resets: number[] = [];
      const heardByB: ChangeEvent[] = [];
      a.subscribe((e) => {
        if (e.kind === "reset") resets.push(Date.now());
      });
      b.subscribe((e) => {
        if (e.kind !== "reset") heardByB.push(e);
      });
      expect(a.eventsLive()).toBe(true);

      await own.kill();
      await waitUntil(() => !a.eventsLive() && !b.eventsLive(), 2000, "eventsLive() to turn false");

      const started = Date.now();
      const results = await Promise.allSettled(everyCall(a));
      const elapsed = Date.now() - started;
      for (const r of results) {
        expect(r.status).toBe("rejected");
        if (r.status === "rejected") expect(r.reason).toBeInstanceOf(StoreUnavailableError);
      }
      expect(elapsed).toBeLessThan(2000);

      const resetsBefore = resets.length;
      await own.restart();
      await waitUntil(
        async () => a.eventsLive() && b.eventsLive() && (await a.ping().then(() => true, () => false)),
        10_000,
        "the store to recover",
      );
      expect(resets.length).toBeGreaterThan(resetsBefore);

      const p = makePat();
      expect(await a.insertPat(p)).toBe("ok");
      expect(await a.getPat(p.id)).toEqual(p);
      await waitUntil(() => heardByB.some((e) => e.kind === "pat" && e.id === p.id), 3000, "b to hear a's change");
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a hung Redis makes calls time out with StoreUnavailableError instead of hanging", async () => {
    const s = await RedisStore.connect({ url: own.url, keyPrefix: `${own.keyPrefix}hung:` });
    own.pause();
    try {
      const started = Date.now();
      const results = await Promise.allSettled(everyCall(s));
      for (const r of results) {
        expect(r.status).toBe("rejected");
        if (r.status === "rejected") expect(r.reason).toBeInstanceOf(StoreUnavailableError);
      }
      // Default command timeout is 1 s; calls run concurrently.
      expect(Date.now() - started).toBeLessThan(2000);
      // The subscriber's own heartbeat notices a silent server too.
      await waitUntil(() => !s.eventsLive(), 4000, "eventsLive() to turn false");
    } finally {
      own.resume();
    }
    try {
      await waitUntil(async () => s.eventsLive() && (await s.ping().then(() => true, () => false)), 10_000, "the store to recover");
      // Either the heartbeat timed out and the feed reconnected (with a reset), or
      // the queued pong arrived first: pongs follow every message published
      // before them, so trusting the same connection again loses nothing.
      expect(await s.getPat("x")).toBeNull();
    } finally {
      await s.close();
    }
  });

  it("connects while Redis is down without throwing, and recovers once it is up", async () => {
    await own.kill();
    const started = Date.now();
    const s = await RedisStore.connect({ url: own.url, keyPrefix: `${own.keyPrefix}late:` });
    try {
      expect(Date.now() - started).toBeLessThan(3000);
      expect(s.eventsLive()).toBe(false);
      await expect(s.getPat("x")).rejects.toBeInstanceOf(StoreUnavailableError);
      let resets = 0;
      s.subscribe((e) => {
        if (e.kind === "reset") resets++;
      });
      await own.restart();
      await waitUntil(async () => s.eventsLive() && (await s.ping().then(() => true, () => false)), 10_000, "the store to come up");
      expect(resets).toBeGreaterThan(0);
      expect(await s.getPat("x")).toBeNull();
    } finally {
      await s.close();
    }
  });
});
