/** Web page sessions in Redis: one string key per session with its TTL, shared by every replica. */
import type { Cluster, Redis } from "ioredis";
import { StoreUnavailableError } from "./types.ts";
import type { SessionStore } from "./sessions.ts";

/** SessionStore on the store's Redis connection: SET PX, GET, GETDEL, DEL. */
export class RedisSessionStore implements SessionStore {
  readonly #client: Redis | Cluster;
  readonly #prefix: string;

  /** `prefix` is the store's key prefix; the hash tag keeps every key in one Cluster slot like the store's. */
  constructor(client: Redis | Cluster, prefix: string) {
    this.#client = client;
    this.#prefix = `${prefix}{pg}:ui-session:`;
  }

  async put(id: string, value: string, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) {
      await this.delete(id);
      return;
    }
    await this.#call(() => this.#client.set(this.#prefix + id, value, "PX", Math.ceil(ttlMs)));
  }

  get(id: string): Promise<string | null> {
    return this.#call(() => this.#client.get(this.#prefix + id));
  }

  take(id: string): Promise<string | null> {
    return this.#call(() => this.#client.getdel(this.#prefix + id));
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#call(() => this.#client.del(this.#prefix + id))) > 0;
  }

  /** The client belongs to the store, which closes it. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  async #call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw new StoreUnavailableError(`session store: ${(err as Error).message}`, { cause: err });
    }
  }
}
