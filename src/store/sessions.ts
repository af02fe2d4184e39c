/**
 * Web page sessions: short-lived records behind an opaque cookie. Apart from
 * the Store (PATs, domains…) because they are not shared state anyone caches:
 * each is read by id on each page request and expires by itself.
 *
 * Implementations: RedisSessionStore (sessions-redis.ts: shared by replicas),
 * EmbeddedSessionStore (sessions-embedded.ts: a table in the embedded store's
 * database, shared by the processes on it) and MemorySessionStore below, the
 * in-process twin. All pass test/contract/sessions.test.ts.
 *
 * Ids arrive already hashed (src/ui/sessions.ts keys them with the pepper):
 * no implementation ever sees a cookie value.
 */

export interface SessionStore {
  /** Stores (or replaces) `value` under `id` for `ttlMs`. */
  put(id: string, value: string, ttlMs: number): Promise<void>;
  /** The live value, or null (never stored, deleted or expired). */
  get(id: string): Promise<string | null>;
  /** Reads and deletes at once: of two concurrent takes, only one gets the value. */
  take(id: string): Promise<string | null>;
  /** True when something was deleted. */
  delete(id: string): Promise<boolean>;
  close(): Promise<void>;
}

// Expired entries are swept at most this often (reads check expiry themselves).
const SWEEP_MS = 60_000;

/** Sessions in this process's memory (lost on restart): the in-process twin, for tests. */
export class MemorySessionStore implements SessionStore {
  readonly #items = new Map<string, { value: string; expiresAt: number }>();
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  put(id: string, value: string, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) this.#items.delete(id);
    else this.#items.set(id, { value, expiresAt: this.#now() + ttlMs });
    return Promise.resolve();
  }

  get(id: string): Promise<string | null> {
    const it = this.#items.get(id);
    if (it === undefined) return Promise.resolve(null);
    if (it.expiresAt <= this.#now()) {
      this.#items.delete(id);
      return Promise.resolve(null);
    }
    return Promise.resolve(it.value);
  }

  take(id: string): Promise<string | null> {
    // Read and delete in one synchronous step: no other call runs in between.
    const it = this.#items.get(id);
    this.#items.delete(id);
    return Promise.resolve(it !== undefined && it.expiresAt > this.#now() ? it.value : null);
  }

  delete(id: string): Promise<boolean> {
    const live = this.#items.has(id) && (this.#items.get(id)?.expiresAt ?? 0) > this.#now();
    this.#items.delete(id);
    return Promise.resolve(live);
  }

  close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#items.clear();
    return Promise.resolve();
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, it] of this.#items) if (it.expiresAt <= now) this.#items.delete(id);
  }
}
