// The store contract against a private 3-master Redis Cluster (SPEC §6: Redis
// single node, Sentinel or Cluster). Every key shares one hash tag, so every
// script is legal on Cluster; the change feed subscribes to one node and
// hears PUBLISHes made through any other. Under load, the data's slot is moved
// to another master (ASK, then MOVED redirects) and that master is failed over
// to its replica: the store answers right or fails closed, never wrongly.
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../../src/store/redis.ts";
import type { ChangeEvent, Store } from "../../src/store/types.ts";
import { StoreUnavailableError } from "../../src/store/types.ts";
import { startRedisCluster, type RedisClusterHandle } from "../helpers/redis-cluster.ts";
import { makePat, storeContract, waitUntil, type StoreFixture } from "./store.contract.ts";
import { transferContract } from "./store-transfer.contract.ts";

let cluster: RedisClusterHandle;
let fixtures = 0;

beforeAll(async () => {
  cluster = await startRedisCluster();
});

afterAll(async () => {
  await cluster?.stop();
});

const connect = (keyPrefix: string): Promise<RedisStore> => RedisStore.connect({ cluster: { nodes: cluster.nodes }, keyPrefix });

const fixture = async (): Promise<StoreFixture> => {
  const keyPrefix = `${cluster.keyPrefix}${++fixtures}:`;
  const opened: Store[] = [];
  const open = async (): Promise<Store> => {
    const s = await connect(keyPrefix);
    opened.push(s);
    return s;
  };
  let current = await open();
  return {
    store: current,
    reopen: async () => {
      await current.close();
      current = await open();
      return current;
    },
    peer: open,
    cleanup: async () => {
      await Promise.all(opened.map((s) => s.close()));
    },
  };
};

storeContract("redis cluster", fixture);
transferContract("redis cluster", fixture);

describe("redis store on a cluster", () => {
  it("keeps all data in one slot, on one master", async () => {
    const keyPrefix = `${cluster.keyPrefix}layout:`;
    const s = await connect(keyPrefix);
    const raw = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })));
    try {
      const p = makePat();
      await s.insertPat(p);
      await s.putDomain({ id: "d", name: "D", upstream: null, createdAt: 1 });
      await s.putMembership({ domainId: "d", userId: p.userId, roles: [] });
      const perNode = await Promise.all(raw.nodes("master").map((n) => n.keys(`${keyPrefix}*`)));
      const holding = perNode.filter((keys) => keys.length > 0);
      expect(holding).toHaveLength(1);
      expect(holding[0]?.length).toBeGreaterThanOrEqual(5);
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it("a change made through one store is heard by a store whose feed sits on another node", async () => {
    const keyPrefix = `${cluster.keyPrefix}feed:`;
    const stores = await Promise.all([connect(keyPrefix), connect(keyPrefix), connect(keyPrefix)]);
    try {
      await waitUntil(() => stores.every((s) => s.eventsLive()), 5000, "every feed to be live");
      const heard = stores.map(() => [] as ChangeEvent[]);
      stores.forEach((s, i) => s.subscribe((e) => heard[i]?.push(e)));
      const p = makePat();
      expect(await stores[0]?.insertPat(p)).toBe("ok");
      await waitUntil(() => heard.every((h) => h.some((e) => e.kind === "pat" && e.id === p.id)), 3000, "every store to hear the insert");
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

describe("redis store on a cluster under load: slot moved, master failed over", () => {
  let ha: RedisClusterHandle;
  beforeAll(async () => {
    ha = await startRedisCluster({ replicas: 1 });
  }, 60_000);
  afterAll(async () => {
    await ha?.stop();
  });

  it("every call answers right or fails closed (StoreUnavailableError) through ASK, MOVED and a failover, and all succeed after", { timeout: 90_000 }, async () => {
    const keyPrefix = `${ha.keyPrefix}load:`;
    const [s, watcher] = await Promise.all([RedisStore.connect({ cluster: { nodes: ha.nodes }, keyPrefix, commandTimeoutMs: 2000 }), RedisStore.connect({ cluster: { nodes: ha.nodes }, keyPrefix })]);
    const raw = new Cluster(ha.nodes.map((n) => ({ host: n.host, port: n.port })));
    const slot = Number(await raw.call("CLUSTER", "KEYSLOT", `${keyPrefix}{pg}:x`));
    raw.disconnect();
    const heard = new Set<string>();
    watcher.subscribe((e) => {
      if (e.kind === "pat") heard.add(e.id);
    });
    const written = new Map<string, string>();
    let ok = 0;
    let unavailable = 0;
    const wrong: string[] = [];
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        const p = makePat();
        try {
          if ((await s.insertPat(p)) === "ok") written.set(p.id, p.name);
          const back = await s.getPat(p.id);
          if (written.has(p.id) && back?.name !== p.name) wrong.push(`${p.id}: read ${back?.name ?? "nothing"}`);
          ok++;
        } catch (err) {
          if (err instanceof StoreUnavailableError) unavailable++;
          else wrong.push(String(err));
        }
      }
    };
    const workers = Array.from({ length: 4 }, () => worker());
    try {
      await new Promise((r) => setTimeout(r, 300));
      const from = await ha.masterOf(slot);
      const to = ha.nodes.map((n) => n.port).find((p) => p !== from) ?? from;
      await ha.moveSlot(slot, to);
      expect(await ha.masterOf(slot)).toBe(to);
      await new Promise((r) => setTimeout(r, 300));
      const promoted = await ha.failover(to, slot);
      expect(await ha.masterOf(slot)).toBe(promoted);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      running = false;
      await Promise.all(workers);
    }
    expect(wrong).toEqual([]);
    expect(ok).toBeGreaterThan(50);
    // After the moves every call succeeds, every write is readable, and changes are heard.
    const p = makePat();
    expect(await s.insertPat(p)).toBe("ok");
    expect((await s.getPat(p.id))?.name).toBe(p.name);
    for (const [id, name] of [...written].slice(-50)) expect((await s.getPat(id))?.name).toBe(name);
    await waitUntil(() => heard.has(p.id), 5000, "the change feed to deliver after the failover");
    process.stdout.write(`cluster under load: ${ok} round trips, ${unavailable} failed closed, ${written.size} PATs written\n`);
    await Promise.all([s.close(), watcher.close()]);
  });
});
