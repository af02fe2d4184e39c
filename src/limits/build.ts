/**
 * Builds the limit step and usage metering for app.ts: with Redis, one more
 * connection (same mode and settings as the store's) for the shared counters
 * and the usage buckets; with the embedded store, the counters in process and
 * the buckets in the store's database (src/usage/sqlite-buckets.ts).
 */
import type { Logger } from "pino";
import type { Settings } from "../config/config.ts";
import { createRedisClient, untilReady, type RedisStoreOptions } from "../store/redis.ts";
import type { Metrics } from "../telemetry/metrics.ts";
import { EmbeddedStore } from "../store/embedded.ts";
import type { Store } from "../store/types.ts";
import type { UsageBuckets } from "../usage/buckets.ts";
import { Meter } from "../usage/meter.ts";
import { RedisBuckets } from "../usage/redis-buckets.ts";
import { SqliteBuckets } from "../usage/sqlite-buckets.ts";
import { Limiter } from "./limiter.ts";
import { RedisCounters } from "./redis-counters.ts";

/** What buildLimits opened; `start` wires it to the store and the metrics once they exist. */
export interface Limits {
  /** Resolves once the Redis connection is up (or has failed: the counters then fall back by policy). */
  readonly ready: Promise<boolean>;
  start(metrics: Metrics, store: Store): { limiter: Limiter; meter: Meter | null; buckets: UsageBuckets };
  /** Flushes usage and closes the connection. */
  close(): Promise<void>;
}

/** Opens the connection (if any); the buckets, limiter and meter come with `start`. */
export function buildLimits(settings: Settings, storeRedis: RedisStoreOptions | null, log: Logger): Limits {
  // limits.redis_url: a Redis of their own (a counters outage then leaves token checks standing, and on_store_down decides).
  const own = settings.limits.redisUrl;
  const redis: RedisStoreOptions | null = own === null ? storeRedis : { url: own, keyPrefix: settings.store.keyPrefix };
  const client = redis === null ? null : createRedisClient(redis);
  client?.on("error", () => undefined); // state, not news: the limiter logs when it falls back
  const ready = client !== null && redis !== null ? untilReady(client, redis) : Promise.resolve(true);
  const prefix = settings.store.keyPrefix;
  const retention = { "1h": settings.usage.hourlyRetentionMs, "1d": settings.usage.dailyRetentionMs };
  let limiter: Limiter | null = null;
  let meter: Meter | null = null;
  const bucketsIn = (store: Store): UsageBuckets => {
    if (client !== null) return new RedisBuckets(client, prefix, retention);
    // No Redis here means the embedded store (a Redis store always brings its connection settings).
    if (!(store instanceof EmbeddedStore)) throw new Error("usage buckets need Redis or the embedded store");
    return new SqliteBuckets(store, retention);
  };
  return {
    ready,
    start(metrics, store) {
      const buckets = bucketsIn(store);
      const shared = client === null ? null : new RedisCounters(client, prefix, settings.limits.leaseTtlMs);
      limiter = new Limiter(settings.limits, {
        usageOn: settings.usage.enabled,
        shared,
        log,
        sink: { decided: (policy, dimension, decision) => metrics.limitDecisions.observe(1, policy, dimension, decision) },
      });
      meter = settings.usage.enabled ? new Meter(settings.usage, buckets, log, () => metrics.usageFlushErrors.inc()) : null;
      return { limiter, meter, buckets };
    },
    async close() {
      await meter?.close();
      await limiter?.close();
      client?.disconnect();
    },
  };
}
