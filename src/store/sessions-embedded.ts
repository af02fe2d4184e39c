/**
 * Web page sessions in the embedded store's database (table `ui_sessions`,
 * schema version 2): they survive a restart, and every process on the same
 * file (two gateways, a gateway and a maintenance command) sees the same ones,
 * since each use reads the row. Reads run on the store's connection (one
 * primary-key lookup); writes go through its writer thread like every other
 * change, so a commit's fsync never holds up the event loop.
 */
import type { EmbeddedStore } from "./embedded.ts";
import type { SessionStore } from "./sessions.ts";

// Expired rows are deleted this often (every lookup checks expiry itself, so this only bounds the table).
const SWEEP_MS = 60_000;

/** SessionStore on an EmbeddedStore's database. */
export class EmbeddedSessionStore implements SessionStore {
  readonly #store: EmbeddedStore;
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;

  constructor(store: EmbeddedStore, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
    this.#sweeper = setInterval(() => void this.sweep().catch(() => undefined), SWEEP_MS);
    this.#sweeper.unref();
  }

  async put(id: string, value: string, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) {
      await this.delete(id);
      return;
    }
    await this.#store.putSession(id, value, this.#now() + Math.ceil(ttlMs));
  }

  get(id: string): Promise<string | null> {
    return this.#store.getSession(id, this.#now());
  }

  take(id: string): Promise<string | null> {
    return this.#store.takeSession(id, this.#now());
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#store.takeSession(id, this.#now())) !== null;
  }

  /** Deletes the rows that have expired; how many (also run every minute by itself). */
  sweep(): Promise<number> {
    return this.#store.sweepSessions(this.#now());
  }

  /** The database belongs to the store, which closes it. */
  close(): Promise<void> {
    clearInterval(this.#sweeper);
    return Promise.resolve();
  }
}
