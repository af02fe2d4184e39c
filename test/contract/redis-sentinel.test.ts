// The store contract through Redis Sentinel (store.redis_mode: sentinel): the
// client asks a private sentinel for the master, and the change feed follows
// the same Sentinel-resolved master.
import { afterAll, beforeAll } from "vitest";
import { RedisStore } from "../../src/store/redis.ts";
import type { Store } from "../../src/store/types.ts";
import { startRedisSentinel, type RedisSentinelHandle } from "../helpers/redis-sentinel.ts";
import { storeContract, type StoreFixture } from "./store.contract.ts";
import { transferContract } from "./store-transfer.contract.ts";

let sentinel: RedisSentinelHandle;
let fixtures = 0;

beforeAll(async () => {
  sentinel = await startRedisSentinel();
});

afterAll(async () => {
  await sentinel?.stop();
});

const fixture = async (): Promise<StoreFixture> => {
  const keyPrefix = `${sentinel.keyPrefix}${++fixtures}:`;
  const opened: Store[] = [];
  const open = async (): Promise<Store> => {
    const s = await RedisStore.connect({ sentinel: { sentinels: sentinel.sentinels, name: sentinel.name }, keyPrefix });
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

storeContract("redis sentinel", fixture);
transferContract("redis sentinel", fixture);
