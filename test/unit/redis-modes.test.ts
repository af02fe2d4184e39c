// store.redis_mode: config → RedisStoreOptions → ioredis options, for the three
// modes. The real thing: test/contract/redis-cluster.test.ts and
// test/integration/cluster-propagation.test.ts (Cluster), test/contract/redis-sentinel.test.ts (Sentinel).
import path from "node:path";
import { describe, expect, it } from "vitest";
import { redisStoreOptions } from "../../src/store/open.ts";
import { ConfigError, loadSettings, parseSettings, type Settings } from "../../src/config/config.ts";
import { clientPlan } from "../../src/store/redis.ts";

const FILE = "/etc/patgate/patgate.yaml";
const SHIPPED = path.resolve(import.meta.dirname, "..", "..", "config", "patgate.yaml");
const PEPPER = "ab".repeat(32);

function settings(store: Record<string, unknown>, pepper: string | null = PEPPER): Settings {
  return parseSettings({
    catalog: { operations: ["read"] },
    upstreams: { default: { targets: ["http://127.0.0.1:11434"] } },
    store,
    security: pepper === null ? {} : { pepper },
  }, FILE);
}

function problems(store: Record<string, unknown>, pepper: string | null = PEPPER): string[] {
  try {
    settings(store, pepper);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split("\n").map((l) => l.slice(FILE.length + 2));
    throw err;
  }
  throw new Error("expected the config to be refused");
}

describe("store.redis_mode in the config", () => {
  it("defaults to single; no URL is the embedded store", () => {
    const s = settings({});
    expect(s.store).toMatchObject({ redisMode: "single", redisUrl: null, redisNodes: [], sentinelName: null });
    expect(redisStoreOptions(s.store)).toBeNull();
  });

  it("the shipped file reads mode, nodes and master name from the environment", () => {
    const s = loadSettings(SHIPPED, {
      PATGATE_PEPPER: PEPPER,
      PATGATE_REDIS_MODE: "sentinel",
      PATGATE_REDIS_NODES: "s1:26379, s2 [fd00::3]:26380",
      PATGATE_REDIS_SENTINEL_NAME: "mymaster",
      REDIS_URL: "rediss://patgate:s3cret@ignored/2",
    });
    expect(s.store).toMatchObject({
      redisMode: "sentinel",
      redisUrl: "rediss://patgate:s3cret@ignored/2",
      redisNodes: [{ host: "s1", port: 26379 }, { host: "s2", port: 26379 }, { host: "fd00::3", port: 26380 }],
      sentinelName: "mymaster",
    });
  });

  it("cluster takes a list of seeds (default port 6379) and needs no URL", () => {
    const s = settings({ redis_mode: "cluster", redis_nodes: ["10.0.0.1:7000", "redis-0.redis"] });
    expect(redisStoreOptions(s.store)).toEqual({ keyPrefix: "patgate:", cluster: { nodes: [{ host: "10.0.0.1", port: 7000 }, { host: "redis-0.redis", port: 6379 }] } });
  });

  it.each([
    [{ redis_mode: "replicated" }, "store.redis_mode: must be one of single, cluster, sentinel"],
    [{ redis_mode: "cluster" }, "store.redis_nodes: must list at least one cluster node"],
    [{ redis_mode: "sentinel", sentinel_name: "m" }, "store.redis_nodes: must list at least one sentinel"],
    [{ redis_mode: "sentinel", redis_nodes: "s1" }, "store.sentinel_name: is required with store.redis_mode sentinel"],
    [{ redis_mode: "cluster", redis_nodes: "c1", sentinel_name: "m" }, "store.sentinel_name: is only for store.redis_mode sentinel"],
    [{ redis_url: "redis://r", redis_nodes: "c1" }, "store.redis_nodes: is only for store.redis_mode cluster or sentinel"],
    [{ redis_mode: "cluster", redis_nodes: "c1:99999" }, 'store.redis_nodes: "c1:99999" is not host:port'],
    [{ redis_mode: "cluster", redis_nodes: ["redis://c1:6379"] }, 'store.redis_nodes: "redis://c1:6379" is not host:port'],
    [{ redis_mode: "cluster", redis_nodes: "c1", redis_url: "redis://x/3" }, "store.redis_url: names a database, but Redis Cluster has only database 0"],
  ])("refuses %o", (store, message) => {
    expect(problems(store)).toContainEqual(expect.stringContaining(message));
  });

  it.each([
    [{ redis_mode: "cluster", redis_nodes: "c1" }],
    [{ redis_mode: "sentinel", redis_nodes: "s1", sentinel_name: "m" }],
  ])("every Redis mode needs the pepper: %o", (store) => {
    expect(problems(store, null).some((p) => p.startsWith("security.pepper: is required with Redis"))).toBe(true);
  });

  it("audit.redis_stream works with cluster and sentinel", () => {
    const s = parseSettings({
      catalog: { operations: ["read"] },
      upstreams: { default: { targets: ["http://127.0.0.1:11434"] } },
      store: { redis_mode: "cluster", redis_nodes: "c1" },
      security: { pepper: PEPPER },
      audit: { redis_stream: "patgate:audit" },
    }, FILE);
    expect(s.audit.redisStream).toBe("patgate:audit");
  });
});

describe("ioredis options per mode", () => {
  it("sentinel: sentinels, master name, credentials and TLS for both, the URL's db, fail-fast settings", () => {
    const s = settings({ redis_mode: "sentinel", redis_nodes: "s1:26379,s2:26380", sentinel_name: "mymaster", redis_url: "rediss://pg:p%40ss@ignored:1/2", key_prefix: "pg1:" });
    const opts = redisStoreOptions(s.store);
    expect(opts).toEqual({
      keyPrefix: "pg1:",
      url: "rediss://pg:p%40ss@ignored:1/2",
      sentinel: { sentinels: [{ host: "s1", port: 26379 }, { host: "s2", port: 26380 }], name: "mymaster" },
    });
    const plan = clientPlan(opts ?? {});
    expect(plan.mode).toBe("sentinel");
    if (plan.mode !== "sentinel") return;
    expect(plan.options).toMatchObject({
      sentinels: [{ host: "s1", port: 26379 }, { host: "s2", port: 26380 }],
      name: "mymaster",
      username: "pg",
      password: "p@ss",
      sentinelUsername: "pg",
      sentinelPassword: "p@ss",
      tls: {},
      enableTLSForSentinelMode: true,
      sentinelTLS: {},
      db: 2,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 1000,
      sentinelCommandTimeout: 1000,
    });
    // Neither host nor port of the URL: the master comes from the sentinels.
    expect(plan.options).not.toHaveProperty("host");
    expect(plan.options).not.toHaveProperty("port");
  });

  it("sentinel without a URL: no credentials, no TLS", () => {
    const plan = clientPlan({ sentinel: { sentinels: [{ host: "s1", port: 26379 }], name: "m" } });
    if (plan.mode !== "sentinel") throw new Error(plan.mode);
    for (const k of ["password", "sentinelPassword", "tls", "enableTLSForSentinelMode", "sentinelTLS", "db"]) expect(plan.options).not.toHaveProperty(k);
  });

  it("cluster: seeds, no offline queue, credentials and TLS on every node", () => {
    const plan = clientPlan({ url: "rediss://:pw@x", cluster: { nodes: [{ host: "c1", port: 7000 }] } });
    if (plan.mode !== "cluster") throw new Error(plan.mode);
    expect(plan.seeds).toEqual([{ host: "c1", port: 7000 }]);
    expect(plan.options.enableOfflineQueue).toBe(false);
    expect(plan.options.redisOptions).toMatchObject({ password: "pw", tls: {}, maxRetriesPerRequest: 0, commandTimeout: 1000 });
    expect(plan.options.redisOptions).not.toHaveProperty("db");
    expect(() => clientPlan({ url: "redis://x/1", cluster: { nodes: [{ host: "c1", port: 7000 }] } })).toThrow(/only database 0/);
  });

  it("single: the URL as given", () => {
    const plan = clientPlan({ url: "redis://r:6380/3" });
    expect(plan).toMatchObject({ mode: "single", url: "redis://r:6380/3" });
    expect(() => clientPlan({})).toThrow(/one of url, cluster, sentinel/);
  });
});
