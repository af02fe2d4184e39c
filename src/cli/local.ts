/**
 * What the CLI's local commands share: they run on the gateway's machine (or
 * in its container) and work on the store the gateway's config names, with no
 * gateway in between: `export`, `import`, `backup`, `admin-key create`. They
 * may run beside a live gateway: the embedded store takes several processes
 * and Redis any number of clients.
 */
import path from "node:path";
import type { Settings } from "../config/config.ts";
import type { Store } from "../store/types.ts";
import { CliError, type Ctx, type Opt } from "./command.ts";
import { packageRoot } from "./root.ts";

const ROOT = packageRoot();

/** The --config option of every command that reads the gateway's config. */
export const CONFIG_OPT: Opt = { type: "string", arg: "FILE", help: "the gateway's config (env PATGATE_CONFIG; default config/patgate.yaml)" };

/** --config, else PATGATE_CONFIG, else the shipped config/patgate.yaml. */
export function configFile(c: Ctx): string {
  return c.str("config") ?? c.io.env.PATGATE_CONFIG ?? path.join(ROOT, "config", "patgate.yaml");
}

/** The settings the gateway would run with; an invalid config is one CliError line. */
export async function loadConfig(c: Ctx): Promise<Settings> {
  const { ConfigError, loadSettings } = await import("../config/config.ts");
  try {
    return loadSettings(configFile(c), c.io.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const problems = err.message.split("\n");
    throw new CliError(`the config is invalid: ${problems[0] ?? ""}${problems.length > 1 ? ` (and ${problems.length - 1} more; see patgate routes check)` : ""}`);
  }
}

/** True when the config names the embedded store (as config.ts's usesRedis, without loading the config code). */
export function isEmbedded(s: Settings): boolean {
  return s.store.redisMode === "single" && s.store.redisUrl === null;
}

/** A person-readable name for the store the settings name, e.g. `the embedded store data/patgate.db`. */
export function describeStore(s: Settings): string {
  if (isEmbedded(s)) {
    const rel = path.relative(process.cwd(), s.store.embeddedPath);
    return `the embedded store ${rel === "" || rel.startsWith("..") ? s.store.embeddedPath : rel}`;
  }
  const where = s.store.redisMode === "single" ? redactedUrl(s.store.redisUrl ?? "") : s.store.redisNodes.map((n) => `${n.host}:${n.port}`).join(",");
  return `the Redis store (${s.store.redisMode}, ${where}, prefix ${s.store.keyPrefix})`;
}

function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    u.username = "";
    return u.toString();
  } catch {
    return "redis";
  }
}

/**
 * Opens the configured store, runs `fn`, closes it. A store that cannot be
 * reached or opened is one CliError line; Redis gets one ping first, so a
 * wrong address fails here rather than in the middle of the work.
 */
export async function withStore<T>(settings: Settings, fn: (store: Store) => Promise<T>): Promise<T> {
  const { openStore } = await import("../store/open.ts");
  const { StoreUnavailableError } = await import("../store/types.ts");
  let store: Store;
  try {
    store = await openStore(settings.store);
  } catch (err) {
    throw new CliError(`cannot open ${describeStore(settings)}: ${(err as Error).message}`);
  }
  try {
    await store.ping();
    return await fn(store);
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw new CliError(`${describeStore(settings)}: ${err.message}`);
    throw err;
  } finally {
    await store.close();
  }
}
