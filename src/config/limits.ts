/**
 * The `limits:` and `usage:` sections: limit policies (docs/limits.md) and
 * usage metering, validated at load like the rest of the config. Called from
 * config.ts with its Checker, so problems are listed with every other one.
 */
import type { Catalog } from "./catalog.ts";

/** Who a policy counts for: taken only from the verified PAT and the route table, never from a client header. */
export type LimitSubject = "pat" | "user" | "domain" | "domain_model" | "pat_model";
export const LIMIT_SUBJECTS: readonly LimitSubject[] = ["pat", "user", "domain", "domain_model", "pat_model"];

/** The limits one policy sets; 0 is "not limited". */
export interface LimitValues {
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
  readonly tokensPerDay: number;
  /** Requests (streams included) served at once. */
  readonly concurrent: number;
}

export interface LimitPolicy extends LimitValues {
  readonly name: string;
  readonly subject: LimitSubject;
  /** Empty: any. */
  readonly domains: ReadonlySet<string>;
  readonly models: ReadonlySet<string>;
  readonly operations: ReadonlySet<string>;
  /** shadow: count and log, never refuse. */
  readonly mode: "enforce" | "shadow";
  /** When the shared counters cannot be reached: count in-process with limit ÷ replicas, or refuse. Never open. */
  readonly onStoreDown: "local" | "closed";
  /** Lower the request's max_tokens to what the token limits leave. */
  readonly clampMaxTokens: boolean;
}

export interface LimitSettings {
  readonly policies: readonly LimitPolicy[];
  /** How many gateway replicas share the counters (for on_store_down: local). */
  readonly replicas: number;
  /** Output tokens reserved for a request that names no max_tokens. */
  readonly defaultMaxTokens: number;
  /** A concurrency lease of a replica that died is freed after this long. */
  readonly leaseTtlMs: number;
  /** A Redis of their own for the counters and usage buckets; null: the store's Redis (with the embedded store: counters in process, buckets in its file). */
  readonly redisUrl: string | null;
}

export interface UsageSettings {
  readonly enabled: boolean;
  /** Records are summed in process this long before they are written. */
  readonly flushIntervalMs: number;
  readonly hourlyRetentionMs: number;
  readonly dailyRetentionMs: number;
  /** Distinct (PAT, model, operation, …) rows one flush may hold; the rest are summed into one overflow row. */
  readonly maxSeries: number;
}

/** The parts of config.ts's Checker this file uses. */
interface Check {
  fail(at: string, msg: string): void;
  obj(v: unknown, at: string, keys: readonly string[]): Record<string, unknown>;
  str(v: unknown, at: string, def: string): string;
  int(v: unknown, at: string, def: number, min: number, max: number): number;
  duration(v: unknown, at: string, def: string): number;
  bool(v: unknown, at: string, def: boolean): boolean;
  list(v: unknown, at: string): string[];
}

const POLICY_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** Upper bound on any single limit value. */
export const MAX_LIMIT_VALUE = 1_000_000_000_000;

/** Parses `limits:` and `usage:`. */
export function parseLimitSettings(c: Check, rawLimits: unknown, rawUsage: unknown, catalog: Catalog): { limits: LimitSettings; usage: UsageSettings } {
  const l = c.obj(rawLimits, "limits", ["policies", "replicas", "default_max_tokens", "lease_ttl", "redis_url"]);
  const redisUrl = c.str(l.redis_url, "limits.redis_url", "").trim();
  if (redisUrl !== "" && !/^rediss?:\/\/[^\s]+$/.test(redisUrl)) c.fail("limits.redis_url", "must be a redis:// or rediss:// URL");
  const leaseTtlMs = c.duration(l.lease_ttl, "limits.lease_ttl", "30s");
  if (leaseTtlMs !== 0 && leaseTtlMs < 1000) c.fail("limits.lease_ttl", "must be at least 1s");
  const policies: LimitPolicy[] = [];
  const raw = l.policies ?? [];
  if (!Array.isArray(raw)) c.fail("limits.policies", "must be a list of policies");
  const names = new Set<string>();
  (Array.isArray(raw) ? raw : []).forEach((p: unknown, i: number) => {
    const at = `limits.policies[${i}]`;
    const where = at;
    const o = c.obj(p, where, ["name", "subject", "match", "requests_per_minute", "tokens_per_minute", "tokens_per_day", "concurrent", "mode", "on_store_down", "clamp_max_tokens"]);
    const name = c.str(o.name, `${at}.name`, "").trim();
    if (!POLICY_NAME.test(name)) c.fail(`${at}.name`, "is required: [a-z0-9_.-], up to 64 characters (it names the policy in 429s, headers and metrics)");
    else if (names.has(name)) c.fail(`${at}.name`, `"${name}" is used by another policy`);
    names.add(name);
    const subject = c.str(o.subject, `${at}.subject`, "");
    if (!(LIMIT_SUBJECTS as readonly string[]).includes(subject)) c.fail(`${at}.subject`, `must be one of ${LIMIT_SUBJECTS.join(", ")}`);
    const m = c.obj(o.match, `${where}.match`, ["domains", "models", "operations"]);
    const operations = c.list(m.operations, `${at}.match.operations`);
    for (const op of operations) if (!catalog.operations.has(op)) c.fail(`${at}.match.operations`, `unknown operation "${op}"`);
    const values = {
      requestsPerMinute: c.int(o.requests_per_minute, `${at}.requests_per_minute`, 0, 0, MAX_LIMIT_VALUE),
      tokensPerMinute: c.int(o.tokens_per_minute, `${at}.tokens_per_minute`, 0, 0, MAX_LIMIT_VALUE),
      tokensPerDay: c.int(o.tokens_per_day, `${at}.tokens_per_day`, 0, 0, MAX_LIMIT_VALUE),
      concurrent: c.int(o.concurrent, `${at}.concurrent`, 0, 0, 1_000_000),
    };
    if (values.requestsPerMinute + values.tokensPerMinute + values.tokensPerDay + values.concurrent === 0) {
      c.fail(at, "sets no limit (requests_per_minute, tokens_per_minute, tokens_per_day or concurrent)");
    }
    const mode = c.str(o.mode, `${at}.mode`, "enforce");
    if (mode !== "enforce" && mode !== "shadow") c.fail(`${at}.mode`, "must be enforce or shadow");
    const down = c.str(o.on_store_down, `${at}.on_store_down`, "local");
    if (down !== "local" && down !== "closed") c.fail(`${at}.on_store_down`, "must be local (limit ÷ replicas in each process) or closed (refuse); never open");
    const clampMaxTokens = c.bool(o.clamp_max_tokens, `${at}.clamp_max_tokens`, false);
    if (clampMaxTokens && values.tokensPerMinute + values.tokensPerDay === 0) c.fail(`${at}.clamp_max_tokens`, "needs tokens_per_minute or tokens_per_day");
    if (values.concurrent > 0 && leaseTtlMs === 0) c.fail("limits.lease_ttl", "must be set when a policy limits concurrent requests");
    policies.push({
      name,
      subject: subject as LimitSubject,
      domains: new Set(c.list(m.domains, `${at}.match.domains`)),
      models: new Set(c.list(m.models, `${at}.match.models`)),
      operations: new Set(operations),
      ...values,
      mode: mode === "shadow" ? "shadow" : "enforce",
      onStoreDown: down === "closed" ? "closed" : "local",
      clampMaxTokens,
    });
  });
  const limits: LimitSettings = {
    policies,
    replicas: c.int(l.replicas, "limits.replicas", 1, 1, 10_000),
    defaultMaxTokens: c.int(l.default_max_tokens, "limits.default_max_tokens", 4096, 1, 10_000_000),
    leaseTtlMs,
    redisUrl: redisUrl === "" ? null : redisUrl,
  };

  const u = c.obj(rawUsage, "usage", ["enabled", "flush_interval", "hourly_retention", "daily_retention", "max_series"]);
  const usage: UsageSettings = {
    enabled: c.bool(u.enabled, "usage.enabled", true),
    flushIntervalMs: c.duration(u.flush_interval, "usage.flush_interval", "5s"),
    hourlyRetentionMs: c.duration(u.hourly_retention, "usage.hourly_retention", "7d"),
    dailyRetentionMs: c.duration(u.daily_retention, "usage.daily_retention", "400d"),
    maxSeries: c.int(u.max_series, "usage.max_series", 10_000, 1, 10_000_000),
  };
  if (usage.flushIntervalMs < 1000 || usage.flushIntervalMs > 60_000) c.fail("usage.flush_interval", "must be from 1s to 1m (it is how much a crash can lose)");
  if (usage.hourlyRetentionMs < 3_600_000) c.fail("usage.hourly_retention", "must be at least 1h");
  if (usage.dailyRetentionMs < 86_400_000) c.fail("usage.daily_retention", "must be at least 1d");
  return { limits, usage };
}
