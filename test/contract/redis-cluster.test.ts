// The store contract against a private 3-master Redis Cluster (SPEC §6: Redis
// single node, Sentinel or Cluster). Every key shares one hash tag, so every
// script is legal on Cluster; the change feed subscribes to one node and
// hears PUBLISHes made through any other.
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../../src/store/redis.ts";
import type { ChangeEvent, Store } from "../../src/store/types.ts";
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
