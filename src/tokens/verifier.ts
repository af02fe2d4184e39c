import { hash, randomBytes } from "node:crypto";
import type { PatRecord, Store } from "../store/types.ts";
import { CompiledScopes } from "../scopes/scope.ts";
import { FencedCache } from "../util/fenced-cache.ts";
import { parseToken, secretMatches } from "./format.ts";

/** A PAT as the data plane needs it: the record plus its scopes compiled for matching. */
export interface VerifiedPat {
  readonly record: PatRecord;
  readonly scopes: CompiledScopes;
}

export type DenyReason = "malformed" | "unknown" | "bad_secret" | "expired" | "revoked";

/** A denial is data; only store failures throw (StoreUnavailableError). */
export type VerifyResult =
  | {
      readonly ok: true;
      readonly pat: VerifiedPat;
      /** Until when (epoch ms) this decision holds if nothing about the PAT changes: its expiry, or the end of a rotation grace period it passed by. */
      readonly until: number;
    }
  | { readonly ok: false; readonly reason: DenyReason };

export interface VerifierOptions {
  readonly pepper: Buffer;
  readonly maxEntries: number;
  readonly negativeTtlMs: number;
  readonly maxAgeMs: number;
  /** How often coalesced last-used times are written to the store. */
  readonly touchIntervalMs: number;
  readonly now?: () => number;
}

/**
 * A cached PAT, plus a keyed digest of the last presented secret that matched
 * its current hash. A repeat of that secret is then recognised by one SHA-256
 * of (process key, secret) and a constant-time comparison, instead of the full
 * HMAC against the stored hash (several times the cost, with its key schedule
 * and object set-up). The digest's key is random per process and never leaves
 * it, so the digest is no more usable than the stored keyed hash; the
 * plaintext secret is never kept.
 */
class CachedPat implements VerifiedPat {
  readonly record: PatRecord;
  readonly scopes: CompiledScopes;
  matched: string | null = null;

  constructor(record: PatRecord) {
    this.record = record;
    this.scopes = new CompiledScopes(record.scopes);
  }
}

const MALFORMED: VerifyResult = { ok: false, reason: "malformed" };
const UNKNOWN: VerifyResult = { ok: false, reason: "unknown" };
const BAD_SECRET: VerifyResult = { ok: false, reason: "bad_secret" };
const REVOKED: VerifyResult = { ok: false, reason: "revoked" };
const EXPIRED: VerifyResult = { ok: false, reason: "expired" };

/**
 * Verifies PATs: format and checksum with no I/O, then the record from a
 * bounded cache in front of the store. The cache is kept exact by the store's
 * change events and bypassed whenever those events may be missed.
 */
export class Verifier {
  readonly #store: Store;
  readonly #opts: VerifierOptions;
  readonly #now: () => number;
  readonly #cache: FencedCache<CachedPat | null>;
  /**
   * The key of the matched-secret digests (see CachedPat): 72 random bits as 12
   * characters, so key and 43-character secret fill one SHA-256 block (55
   * bytes at most) and a check is one compression, not two. The secret itself
   * holds 256 bits; the key only makes the digest this process's own.
   */
  readonly #digestKey = randomBytes(9).toString("base64");
  readonly #lastUsed = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> | null = null;
  #changes = 0;
  /** Lookup outcomes since start, read by the metrics exporter. */
  readonly stats = { hits: 0, misses: 0, bypass: 0 };

  constructor(store: Store, opts: VerifierOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#cache = new FencedCache(opts.maxEntries, this.#now);
    this.#timer = setInterval(() => void this.flushUsage(), opts.touchIntervalMs);
    this.#timer.unref();
  }

  /**
   * Checks a presented token: a decision, synchronously on a cache hit (no
   * promise on the hot path), else a promise that rejects only when the store fails.
   */
  verify(token: string): VerifyResult | Promise<VerifyResult> {
    const parsed = parseToken(token);
    if (parsed === null) return MALFORMED;
    const found = this.lookup(parsed.id);
    if (found instanceof Promise) return found.then((pat) => this.#decide(pat, parsed.secret));
    return this.#decide(found, parsed.secret);
  }

  #decide(pat: CachedPat | null, secret: string): VerifyResult {
    if (pat === null) return UNKNOWN;
    const rec = pat.record;
    const now = this.#now();
    // A PAT just fetched has no digest yet: its first check is the full HMAC, and only a match is digested.
    let current = pat.matched !== null && sameDigest(pat.matched, this.#digest(secret));
    if (!current) {
      current = secretMatches(this.#opts.pepper, rec.id, secret, rec.secretHash);
      // Only the current secret: one still in its rotation grace period is checked in full, with its deadline.
      if (current) pat.matched = this.#digest(secret);
    }
    const previous =
      !current &&
      rec.prevSecretHash !== null &&
      rec.prevSecretExpiresAt !== null &&
      rec.prevSecretExpiresAt > now &&
      secretMatches(this.#opts.pepper, rec.id, secret, rec.prevSecretHash);
    if (!current && !previous) return BAD_SECRET;
    // Re-checked on every use, cached or not.
    if (rec.revoked) return REVOKED;
    if (rec.expiresAt <= now) return EXPIRED;
    this.#lastUsed.set(rec.id, now);
    return { ok: true, pat, until: current ? rec.expiresAt : Math.min(rec.expiresAt, rec.prevSecretExpiresAt as number) };
  }

  #digest(secret: string): string {
    return hash("sha256", this.#digestKey + secret, "base64");
  }

  /** The PAT by id through the cache (null when unknown). */
  lookup(id: string): Promise<CachedPat | null> | CachedPat | null {
    const live = this.#store.eventsLive();
    if (live) {
      const hit = this.#cache.peek(id);
      if (hit !== undefined) {
        this.stats.hits++;
        return hit;
      }
      this.stats.misses++;
    } else {
      this.stats.bypass++;
    }
    return this.#cache.load(id, () => this.#fetch(id), (v) => (v === null ? this.#opts.negativeTtlMs : this.#opts.maxAgeMs), live);
  }

  /** Drops a PAT from the cache (on its change event). */
  invalidate(id: string): void {
    this.#changes++;
    this.#cache.invalidate(id);
  }

  /** Drops every cached PAT (events may have been missed). */
  clear(): void {
    this.#changes++;
    this.#cache.clear();
  }

  /** Whether the cache is exact now: the store's change events are flowing (else every lookup reads the store). */
  get exact(): boolean {
    return this.#store.eventsLive();
  }

  /** Counts the PAT changes applied (invalidations and clears). */
  get changes(): number {
    return this.#changes;
  }

  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Writes coalesced last-used times; a failed write keeps them for the next try. */
  flushUsage(): Promise<void> {
    if (this.#flushing !== null || this.#lastUsed.size === 0) return this.#flushing ?? Promise.resolve();
    const batch = new Map(this.#lastUsed);
    this.#lastUsed.clear();
    this.#flushing = this.#store
      .touchPats(batch)
      .catch(() => {
        for (const [id, t] of batch) if ((this.#lastUsed.get(id) ?? 0) < t) this.#lastUsed.set(id, t);
      })
      .finally(() => {
        this.#flushing = null;
      });
    return this.#flushing;
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flushUsage();
  }

  async #fetch(id: string): Promise<CachedPat | null> {
    const record = await this.#store.getPat(id);
    return record === null ? null : new CachedPat(record);
  }
}

/** Equality of two digests in time that depends only on their length. */
function sameDigest(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
