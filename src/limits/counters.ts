/**
 * The counters behind limit policies, as one small interface with two
 * implementations: `LocalCounters` (this process: the embedded store, and the
 * fallback while Redis is down) and `RedisCounters` (shared by every replica,
 * src/limits/redis-counters.ts). test/contract/limit-counters.contract.ts
 * holds both to the same answers.
 *
 * Windows are sliding windows of 60 buckets (docs/limits.md says why): a
 * minute counts in 1 s buckets, a day in 24 min buckets. A request is admitted
 * when what the last 61 buckets hold plus its cost fits the limit, so any
 * window of the limit's length (which 61 buckets always cover) never holds
 * more than the limit. The price: a unit is counted for up to one bucket
 * longer than the window (at most 1/60 of it).
 */

/** Buckets per window; the window sums this many plus the current one. */
export const BUCKETS = 60;
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** Dimensions in the order the scripts use: 1 requests/min, 2 tokens/min, 3 tokens/day, 4 concurrent. */
export const DIM_REQUESTS = 1;
export const DIM_TPM = 2;
export const DIM_TPD = 3;
export const DIM_CONCURRENT = 4;
export const WINDOW_MS: readonly number[] = [0, MINUTE_MS, MINUTE_MS, DAY_MS];

/** One subject's limits and this request's cost against them. */
export interface Take {
  /** `<policy>|<subject>`: one Redis Cluster slot per key. */
  readonly key: string;
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
  readonly tokensPerDay: number;
  readonly concurrent: number;
  /** Estimated input tokens (always charged when a token limit applies). */
  readonly input: number;
  /** Output tokens to reserve (max_tokens or the default). */
  readonly output: number;
  /** Lower the output reservation to what is left instead of refusing (when at least one output token fits). */
  readonly clamp: boolean;
  /** Count even when over the limit (shadow mode). */
  readonly force: boolean;
  /** The concurrency lease's id (unique per request), or "" when no concurrency limit applies. */
  readonly lease: string;
}

/** What a take decided and what the windows hold afterwards. */
export interface Taken {
  /** 0 admitted, else the dimension that refused (DIM_*). */
  readonly refused: number;
  /** When refused: ms until the same request would fit. */
  readonly retryMs: number;
  /** The counters' clock at the take (ms): settle finds the reservation's bucket with it. */
  readonly at: number;
  /** Remaining after this request: requests/min, tokens/min, tokens/day (0 where not limited). */
  readonly remaining: readonly [number, number, number];
  /** Ms until the oldest counted unit of each window leaves it (0 when empty). */
  readonly resetMs: readonly [number, number, number];
  /** Concurrent requests in use after this one. */
  readonly inUse: number;
  /** The output tokens reserved (lower than asked when clamped). */
  readonly output: number;
}

/** What a finished request gives back or adds: the difference between its reservation and its real usage. */
export interface Settle {
  readonly key: string;
  readonly at: number;
  /** -1 to take back an admission that another policy refused; else 0. */
  readonly requests: number;
  /** Real usage minus the reservation (negative: returned), charged to the minute and the day windows that hold it. */
  readonly tokens: number;
  readonly tokensPerMinute: boolean;
  readonly tokensPerDay: boolean;
  readonly lease: string;
}

/** The shared or local counters. */
export interface Counters {
  /** Admits or refuses one subject's share of a request, atomically; counts it when admitted (or forced). */
  take(t: Take): Taken | Promise<Taken>;
  /** Reconciles a reservation and releases the lease. */
  settle(s: Settle): void | Promise<void>;
  /** What the windows hold now, without counting anything (GET /me/limits). */
  peek(t: Take): Taken | Promise<Taken>;
  close(): Promise<void>;
}

/**
 * One window's buckets: slot b % 61 holds bucket b, so the 61 counted buckets
 * never collide. The counted total is kept as buckets come and go, so a take
 * in the same bucket as the last one reads it without a scan.
 */
class Ring {
  readonly bucket = new Float64Array(BUCKETS + 1).fill(-1);
  readonly count = new Float64Array(BUCKETS + 1);
  readonly g: number;
  /** Sum of the buckets counted at bucket `at`. */
  #total = 0;
  #at = -Infinity;
  /** The oldest counted bucket holding anything (-1: none), so `reset` needs no scan. */
  #oldest = -1;
  constructor(windowMs: number) {
    this.g = windowMs / BUCKETS;
  }

  /** Moves the window to `cur`: buckets that left it are taken off the total. */
  #advance(cur: number): void {
    const at = this.#at;
    if (cur === at) return;
    if (cur < at || cur - at > BUCKETS) {
      // First use, a clock that went back, or a window that moved on entirely: count afresh.
      let t = 0;
      const from = cur - BUCKETS;
      for (let i = 0; i <= BUCKETS; i++) if ((this.bucket[i] as number) >= from) t += this.count[i] as number;
      this.#total = t;
      this.#oldest = this.#scanOldest(cur);
    } else {
      for (let b = at - BUCKETS; b < cur - BUCKETS; b++) {
        const slot = b % (BUCKETS + 1);
        if (this.bucket[slot] === b) this.#total -= this.count[slot] as number;
      }
      if (this.#oldest !== -1 && this.#oldest < cur - BUCKETS) this.#oldest = this.#scanOldest(cur);
    }
    this.#at = cur;
  }

  #scanOldest(cur: number): number {
    for (let b = cur - BUCKETS; b <= cur; b++) {
      const slot = b % (BUCKETS + 1);
      if (this.bucket[slot] === b && (this.count[slot] as number) > 0) return b;
    }
    return -1;
  }

  sum(cur: number): number {
    this.#advance(cur);
    return this.#total;
  }

  add(b: number, n: number, cur: number): void {
    this.#advance(cur);
    if (b < cur - BUCKETS || b > cur) return;
    const slot = b % (BUCKETS + 1);
    // A slot holding another bucket holds an expired one (61 slots, 61 counted buckets): already off the total.
    if (this.bucket[slot] !== b) {
      this.bucket[slot] = b;
      this.count[slot] = 0;
    }
    const before = this.count[slot] as number;
    const after = Math.max(0, before + n);
    this.count[slot] = after;
    this.#total += after - before;
    if (after > 0 && (this.#oldest === -1 || b < this.#oldest)) this.#oldest = b;
    else if (after === 0 && b === this.#oldest) this.#oldest = this.#scanOldest(cur);
  }

  /** Ms until sum - (oldest buckets) + cost fits the limit. */
  wait(cur: number, sum: number, cost: number, limit: number, now: number): number {
    let dropped = 0;
    for (let b = cur - BUCKETS; b <= cur; b++) {
      const slot = b % (BUCKETS + 1);
      if (this.bucket[slot] !== b) continue;
      dropped += this.count[slot] as number;
      if (sum - dropped + cost <= limit) return (b + BUCKETS + 1) * this.g - now;
    }
    return (cur + BUCKETS + 1) * this.g - now;
  }

  /** Ms until the oldest counted bucket leaves the window (0 when empty). */
  reset(cur: number, now: number): number {
    this.#advance(cur);
    return this.#oldest === -1 ? 0 : (this.#oldest + BUCKETS + 1) * this.g - now;
  }
}

interface LocalSubject {
  /** Requests per minute, tokens per minute, tokens per day; made when first limited. */
  readonly rings: [Ring | null, Ring | null, Ring | null];
  readonly leases: Set<string>;
  lastAt: number;
}

// Scratch for one synchronous take (no allocation per request).
const LIMITS = new Float64Array(3);
const CURS = new Float64Array(3);
const SUMS = new Float64Array(3);

const NO_REMAINING: readonly [number, number, number] = [0, 0, 0];

/**
 * Counters in this process. Exact for one process; with N replicas each
 * counting alone, the caller divides the limits by N. Subjects idle for a day
 * are dropped by `sweep`.
 */
export class LocalCounters implements Counters {
  readonly #subjects = new Map<string, LocalSubject>();
  readonly #now: () => number;
  #sweeper: NodeJS.Timeout | null = null;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#sweeper = setInterval(() => this.sweep(), MINUTE_MS);
    this.#sweeper.unref();
  }

  take(t: Take): Taken {
    return this.#decide(t, false);
  }

  peek(t: Take): Taken {
    return this.#decide(t, true);
  }

  #decide(t: Take, peek: boolean): Taken {
    const now = this.#now();
    let s = this.#subjects.get(t.key);
    if (s === undefined) {
      if (peek) return { refused: 0, retryMs: 0, at: now, remaining: [t.requestsPerMinute, t.tokensPerMinute, t.tokensPerDay], resetMs: [0, 0, 0], inUse: 0, output: 0 };
      s = { rings: [null, null, null], leases: new Set(), lastAt: now };
      this.#subjects.set(t.key, s);
    }
    s.lastAt = now;
    const rings = s.rings;
    LIMITS[0] = t.requestsPerMinute;
    LIMITS[1] = t.tokensPerMinute;
    LIMITS[2] = t.tokensPerDay;
    for (let d = 0; d < 3; d++) {
      if (LIMITS[d] === 0) continue;
      const r = (rings[d] ??= new Ring(d === 2 ? DAY_MS : MINUTE_MS));
      const cur = Math.floor(now / r.g);
      CURS[d] = cur;
      SUMS[d] = r.sum(cur);
    }
    let output = peek ? 0 : t.output;
    const input = peek ? 0 : t.input;
    if (t.clamp && !peek) {
      for (let d = 1; d < 3; d++) if ((LIMITS[d] as number) > 0) output = Math.min(output, (LIMITS[d] as number) - (SUMS[d] as number) - input);
      output = Math.max(output, 0);
      if (output === 0) output = t.output === 0 ? 0 : 1; // nothing left: refused below (a reply needs one token)
    }
    const tokens = input + output;
    let refused = 0;
    let retryMs = 0;
    for (let d = 0; d < 3 && refused === 0; d++) {
      const limit = LIMITS[d] as number;
      if (limit === 0) continue;
      const cost = d === 0 ? (peek ? 0 : 1) : tokens;
      if ((SUMS[d] as number) + cost > limit) {
        refused = d + 1;
        retryMs = (rings[d] as Ring).wait(CURS[d] as number, SUMS[d] as number, cost, limit, now);
      }
    }
    if (refused === 0 && !peek && t.concurrent > 0 && s.leases.size >= t.concurrent) {
      refused = DIM_CONCURRENT;
      retryMs = 1000;
    }
    const count = !peek && (refused === 0 || t.force);
    const remaining: [number, number, number] = [0, 0, 0];
    const resetMs: [number, number, number] = [0, 0, 0];
    for (let d = 0; d < 3; d++) {
      const limit = LIMITS[d] as number;
      if (limit === 0) continue;
      const r = rings[d] as Ring;
      const cur = CURS[d] as number;
      let sum = SUMS[d] as number;
      const cost = d === 0 ? 1 : tokens;
      if (count && cost > 0) {
        r.add(cur, cost, cur);
        sum += cost;
      }
      remaining[d] = Math.max(0, limit - sum);
      resetMs[d] = r.reset(cur, now);
    }
    if (count && t.concurrent > 0 && t.lease !== "") s.leases.add(t.lease);
    return { refused, retryMs: Math.max(0, Math.ceil(retryMs)), at: now, remaining, resetMs, inUse: s.leases.size, output };
  }

  settle(st: Settle): void {
    const s = this.#subjects.get(st.key);
    if (s === undefined) return;
    const now = this.#now();
    if (st.lease !== "") s.leases.delete(st.lease);
    const rpm = s.rings[0];
    if (st.requests !== 0 && rpm !== null) rpm.add(Math.floor(st.at / rpm.g), st.requests, Math.floor(now / rpm.g));
    if (st.tokens !== 0) {
      for (let d = 1; d < 3; d++) {
        const r = (d === 1 ? st.tokensPerMinute : st.tokensPerDay) ? s.rings[d] : null;
        if (r === null || r === undefined) continue;
        const cur = Math.floor(now / r.g);
        const b = Math.floor(st.at / r.g);
        // Usage beyond the reservation is charged now (where its bucket still counts); a refund goes back where it was reserved.
        r.add(st.tokens > 0 && b < cur - BUCKETS ? cur : b, st.tokens, cur);
      }
    }
  }

  /** Drops subjects that hold nothing any window still counts. */
  sweep(): void {
    const old = this.#now() - DAY_MS - DAY_MS / BUCKETS;
    for (const [k, s] of this.#subjects) if (s.lastAt < old && s.leases.size === 0) this.#subjects.delete(k);
  }

  /** Subjects held (for tests and the memory bound). */
  get size(): number {
    return this.#subjects.size;
  }

  close(): Promise<void> {
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    this.#sweeper = null;
    return Promise.resolve();
  }
}

export { NO_REMAINING };
