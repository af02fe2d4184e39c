/**
 * Opening the store the configuration names, for the gateway (src/app.ts) and
 * for the CLI's local commands (export, import, backup, admin-key create),
 * which work on the store directly, beside a running gateway or without one.
 */
import { usesRedis, type StoreSettings } from "../config/config.ts";
import { EmbeddedStore, type EmbeddedStoreOptions } from "./embedded.ts";
import { RedisStore, type RedisStoreOptions } from "./redis.ts";
import type { Store } from "./types.ts";

/** The Redis store's connection settings from the config; null for the embedded store. */
export function redisStoreOptions(store: StoreSettings): RedisStoreOptions | null {
  if (!usesRedis(store)) return null;
  const base = { keyPrefix: store.keyPrefix, ...(store.redisUrl === null ? {} : { url: store.redisUrl }) };
  switch (store.redisMode) {
    case "single": return base;
    case "cluster": return { ...base, cluster: { nodes: store.redisNodes } };
    case "sentinel": return { ...base, sentinel: { sentinels: store.redisNodes, name: store.sentinelName ?? "" } };
  }
}

/**
 * Redis (any mode) or the embedded database, as `store` says; `redis` replaces
 * the connection settings derived from it (the gateway adds its health log).
 */
export async function openStore(store: StoreSettings, opts: { readonly embedded?: EmbeddedStoreOptions; readonly redis?: RedisStoreOptions | null } = {}): Promise<Store> {
  const redis = opts.redis ?? redisStoreOptions(store);
  return redis !== null ? await RedisStore.connect(redis) : await EmbeddedStore.open(store.embeddedPath, opts.embedded ?? {});
}
