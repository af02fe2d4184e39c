/**
 * Limit counters shared by every replica, in Redis: one atomic Lua script per
 * subject and request (ioredis defineCommand: EVALSHA, EVAL once after a
 * restart), the same sliding window as LocalCounters (src/limits/counters.ts).
 * A subject's four keys share one hash tag, so in a Cluster they sit in one
 * slot. The clock is Redis's own (TIME), so replicas with skewed clocks still
 * share one window.
 *
 * Concurrency leases are members of a sorted set scored by their expiry; this
 * process extends the ones it holds every lease_ttl / 3, so a replica that
 * dies without releasing them (SIGKILL) frees them within lease_ttl.
 */
import type { Cluster, Redis } from "ioredis";
import { BUCKETS, type Counters, type Settle, type Take, type Taken } from "./counters.ts";

// KEYS: requests/min, tokens/min, tokens/day (hashes bucket → count), leases (zset id → expiry ms)
// ARGV: rpm, tpm, tpd, concurrent, input, output, clamp, force, lease, lease_ttl_ms, peek
const TAKE = `
local N = ${BUCKETS}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lim = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])}
local W = {60000, 60000, 86400000}
local conc = tonumber(ARGV[4])
local input = tonumber(ARGV[5])
local output = tonumber(ARGV[6])
local clamp = ARGV[7] == '1'
local force = ARGV[8] == '1'
local lease = ARGV[9]
local ttl = tonumber(ARGV[10])
local peek = ARGV[11] == '1'
if peek then input = 0; output = 0 end
local sums = {0, 0, 0}
local curs = {0, 0, 0}
local bs = {{}, {}, {}}
for d = 1, 3 do
  if lim[d] > 0 then
    local g = W[d] / N
    local cur = math.floor(now / g)
    curs[d] = cur
    local raw = redis.call('HGETALL', KEYS[d])
    for i = 1, #raw, 2 do
      local b = tonumber(raw[i])
      local v = tonumber(raw[i + 1])
      if b < cur - N then
        if not peek then redis.call('HDEL', KEYS[d], raw[i]) end
      else
        sums[d] = sums[d] + v
        bs[d][#bs[d] + 1] = {b, v}
      end
    end
    table.sort(bs[d], function(x, y) return x[1] < y[1] end)
  end
end
if clamp and not peek then
  for d = 2, 3 do
    if lim[d] > 0 then output = math.min(output, lim[d] - sums[d] - input) end
  end
  if output < 0 then output = 0 end
  if output == 0 and tonumber(ARGV[6]) > 0 then output = 1 end
end
local cost = {1, input + output, input + output}
if peek then cost[1] = 0 end
local refused = 0
local retry = 0
for d = 1, 3 do
  if refused == 0 and lim[d] > 0 and sums[d] + cost[d] > lim[d] then
    refused = d
    local g = W[d] / N
    retry = (curs[d] + N + 1) * g - now
    local dropped = 0
    for _, e in ipairs(bs[d]) do
      dropped = dropped + e[2]
      if sums[d] - dropped + cost[d] <= lim[d] then
        retry = (e[1] + N + 1) * g - now
        break
      end
    end
  end
end
local inuse = 0
if conc > 0 then
  if not peek then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now) end
  inuse = redis.call('ZCOUNT', KEYS[4], now, '+inf')
  if refused == 0 and not peek and inuse >= conc then
    refused = 4
    retry = 1000
  end
end
if not peek and (refused == 0 or force) then
  for d = 1, 3 do
    if lim[d] > 0 then
      local g = W[d] / N
      if cost[d] > 0 then
        redis.call('HINCRBY', KEYS[d], curs[d], cost[d])
        redis.call('PEXPIRE', KEYS[d], W[d] + 2 * g)
        sums[d] = sums[d] + cost[d]
        if #bs[d] == 0 or bs[d][#bs[d]][1] ~= curs[d] then bs[d][#bs[d] + 1] = {curs[d], cost[d]} end
      end
    end
  end
  if conc > 0 and lease ~= '' then
    redis.call('ZADD', KEYS[4], now + ttl, lease)
    redis.call('PEXPIRE', KEYS[4], ttl * 2)
    inuse = inuse + 1
  end
end
local out = {refused, math.max(0, math.ceil(retry)), now, 0, 0, 0, 0, 0, 0, inuse, output}
for d = 1, 3 do
  if lim[d] > 0 then
    out[3 + d] = math.max(0, lim[d] - sums[d])
    if #bs[d] > 0 then out[6 + d] = (bs[d][1][1] + N + 1) * (W[d] / N) - now end
  end
end
return out
`;

// KEYS as TAKE. ARGV: at, requests delta, tokens delta, tpm on, tpd on, lease
const SETTLE = `
local N = ${BUCKETS}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = tonumber(ARGV[1])
local function adjust(key, W, delta)
  local g = W / N
  local cur = math.floor(now / g)
  local b = math.floor(at / g)
  if b < cur - N then
    if delta <= 0 then return end
    b = cur
  end
  local v = redis.call('HINCRBY', key, b, delta)
  if v <= 0 then redis.call('HDEL', key, b) end
  redis.call('PEXPIRE', key, W + 2 * g)
end
local req = tonumber(ARGV[2])
local tok = tonumber(ARGV[3])
if req ~= 0 and redis.call('EXISTS', KEYS[1]) == 1 then adjust(KEYS[1], 60000, req) end
if tok ~= 0 and ARGV[4] == '1' then adjust(KEYS[2], 60000, tok) end
if tok ~= 0 and ARGV[5] == '1' then adjust(KEYS[3], 86400000, tok) end
if ARGV[6] ~= '' then redis.call('ZREM', KEYS[4], ARGV[6]) end
return 1
`;

// KEYS[1]: leases. ARGV: ttl, ids…: extends the leases this process still holds.
const REFRESH = `
local t = redis.call('TIME')
local until_ = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`;

interface LimitCommands {
  patgateLimitTake(k1: string, k2: string, k3: string, k4: string, ...argv: (string | number)[]): Promise<number[]>;
  patgateLimitSettle(k1: string, k2: string, k3: string, k4: string, ...argv: (string | number)[]): Promise<number>;
  patgateLimitRefresh(k1: string, ...argv: (string | number)[]): Promise<number>;
}

type Client = (Redis | Cluster) & LimitCommands;

/** Counters in Redis, shared by every replica. Rejects when Redis cannot be reached (the caller falls back). */
export class RedisCounters implements Counters {
  readonly #client: Client;
  readonly #prefix: string;
  readonly #leaseTtlMs: number;
  /** key → lease ids this process holds there. */
  readonly #held = new Map<string, Set<string>>();
  readonly #refresher: NodeJS.Timeout | null;

  constructor(client: Redis | Cluster, prefix: string, leaseTtlMs: number) {
    client.defineCommand("patgateLimitTake", { numberOfKeys: 4, lua: TAKE });
    client.defineCommand("patgateLimitSettle", { numberOfKeys: 4, lua: SETTLE });
    client.defineCommand("patgateLimitRefresh", { numberOfKeys: 1, lua: REFRESH });
    this.#client = client as Client;
    this.#prefix = prefix;
    this.#leaseTtlMs = leaseTtlMs;
    this.#refresher = leaseTtlMs > 0 ? setInterval(() => this.#refresh(), Math.max(250, Math.floor(leaseTtlMs / 3))) : null;
    this.#refresher?.unref();
  }

  #keys(key: string): [string, string, string, string] {
    // The hash tag is the whole subject key: one slot per subject, all four keys together.
    const base = `${this.#prefix}lim:{${key}}:`;
    return [base + "r", base + "tm", base + "td", base + "c"];
  }

  take(t: Take): Promise<Taken> {
    return this.#run(t, false);
  }

  peek(t: Take): Promise<Taken> {
    return this.#run(t, true);
  }

  async #run(t: Take, peek: boolean): Promise<Taken> {
    const [k1, k2, k3, k4] = this.#keys(t.key);
    const r = await this.#client.patgateLimitTake(
      k1, k2, k3, k4,
      t.requestsPerMinute, t.tokensPerMinute, t.tokensPerDay, t.concurrent,
      t.input, t.output, t.clamp ? 1 : 0, t.force ? 1 : 0, peek ? "" : t.lease, this.#leaseTtlMs, peek ? 1 : 0,
    );
    const n = (i: number): number => Number(r[i] ?? 0);
    const taken: Taken = { refused: n(0), retryMs: n(1), at: n(2), remaining: [n(3), n(4), n(5)], resetMs: [n(6), n(7), n(8)], inUse: n(9), output: n(10) };
    if (!peek && t.lease !== "" && (taken.refused === 0 || t.force)) {
      let set = this.#held.get(t.key);
      if (set === undefined) this.#held.set(t.key, (set = new Set()));
      set.add(t.lease);
    }
    return taken;
  }

  async settle(s: Settle): Promise<void> {
    if (s.lease !== "") {
      const set = this.#held.get(s.key);
      set?.delete(s.lease);
      if (set?.size === 0) this.#held.delete(s.key);
    }
    const [k1, k2, k3, k4] = this.#keys(s.key);
    await this.#client.patgateLimitSettle(k1, k2, k3, k4, s.at, s.requests, s.tokens, s.tokensPerMinute ? 1 : 0, s.tokensPerDay ? 1 : 0, s.lease);
  }

  #refresh(): void {
    for (const [key, ids] of this.#held) {
      if (ids.size === 0) continue;
      // A failed refresh is retried on the next tick; the lease outlives lease_ttl / 3 missed ticks.
      this.#client.patgateLimitRefresh(this.#keys(key)[3], this.#leaseTtlMs, ...ids).catch(() => undefined);
    }
  }

  /** Leases this process holds (for tests). */
  get leasesHeld(): number {
    let n = 0;
    for (const s of this.#held.values()) n += s.size;
    return n;
  }

  close(): Promise<void> {
    if (this.#refresher !== null) clearInterval(this.#refresher);
    this.#client.disconnect();
    return Promise.resolve();
  }
}
