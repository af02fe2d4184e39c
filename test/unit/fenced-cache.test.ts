import { beforeEach, describe, expect, it } from "vitest";
import { FencedCache } from "../../src/util/fenced-cache.ts";

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A loader whose calls are counted and whose results the test releases one by one. */
class ControlledLoader<T> {
  readonly pending: Deferred<T>[] = [];
  get calls(): number {
    return this.pending.length;
  }
  readonly load = (): Promise<T> => {
    const d = deferred<T>();
    this.pending.push(d);
    return d.promise;
  };
  /** Settles the n-th call (0-based). */
  call(n: number): Deferred<T> {
    const d = this.pending[n];
    if (d === undefined) throw new Error(`loader call ${n} never happened (${this.calls} calls)`);
    return d;
  }
}

const TTL = 1000;
const ttl = (): number => TTL;

let now: number;
let cache: FencedCache<string>;

beforeEach(() => {
  now = 1_000_000;
  cache = new FencedCache<string>(3, () => now);
});

/** Loads `value` for `key` right away. */
function put(key: string, value: string, ms = TTL): Promise<string> {
  return cache.load(key, () => Promise.resolve(value), () => ms);
}

describe("FencedCache: hit, miss, expiry", () => {
  it("misses, loads once, then hits", async () => {
    expect(cache.peek("a")).toBeUndefined();
    expect(await put("a", "A")).toBe("A");
    expect(cache.peek("a")).toBe("A");
    expect(cache.size).toBe(1);
    expect(cache.peek("b")).toBeUndefined();
  });

  it("expires entries by the injected clock, ttl chosen per value", async () => {
    await cache.load("short", () => Promise.resolve("s"), (v) => (v === "s" ? 10 : 5000));
    await cache.load("long", () => Promise.resolve("l"), (v) => (v === "s" ? 10 : 5000));
    now += 9;
    expect(cache.peek("short")).toBe("s");
    now += 1; // expiresAt is exclusive
    expect(cache.peek("short")).toBeUndefined();
    expect(cache.peek("long")).toBe("l");
    expect(cache.size).toBe(1);
    now += 5000;
    expect(cache.peek("long")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("a ttl of zero or less caches nothing", async () => {
    expect(await put("z", "Z", 0)).toBe("Z");
    expect(await put("n", "N", -5)).toBe("N");
    expect(cache.peek("z")).toBeUndefined();
    expect(cache.peek("n")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("load() always asks the loader when nothing is running (callers peek first)", async () => {
    await put("a", "A1");
    await put("a", "A2");
    expect(cache.peek("a")).toBe("A2");
    expect(cache.size).toBe(1);
  });

  it("invalidate drops a cached entry and leaves the others", async () => {
    await put("a", "A");
    await put("b", "B");
    cache.invalidate("a");
    cache.invalidate("never-loaded");
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.peek("b")).toBe("B");
  });
});

describe("FencedCache: LRU bound", () => {
  it("evicts the least recently inserted when nothing was read", async () => {
    await put("a", "A");
    await put("b", "B");
    await put("c", "C");
    await put("d", "D");
    expect(cache.size).toBe(3);
    expect(cache.peek("a")).toBeUndefined();
    expect(["b", "c", "d"].map((k) => cache.peek(k))).toEqual(["B", "C", "D"]);
  });

  it("evicts the least recently used: a read refreshes an entry", async () => {
    await put("a", "A");
    await put("b", "B");
    await put("c", "C");
    expect(cache.peek("a")).toBe("A"); // a is now the most recently used
    await put("d", "D");
    expect(cache.peek("b")).toBeUndefined();
    expect(cache.peek("a")).toBe("A");
    expect(cache.peek("c")).toBe("C");
    expect(cache.peek("d")).toBe("D");
  });

  it("reloading a key refreshes it and does not grow the cache", async () => {
    await put("a", "A");
    await put("b", "B");
    await put("c", "C");
    await put("a", "A2");
    expect(cache.size).toBe(3);
    await put("d", "D");
    expect(cache.peek("b")).toBeUndefined();
    expect(cache.peek("a")).toBe("A2");
  });

  it("never holds more than its bound", async () => {
    for (let i = 0; i < 50; i++) {
      await put(`k${i}`, String(i));
      expect(cache.size).toBeLessThanOrEqual(3);
    }
    expect(["k47", "k48", "k49"].map((k) => cache.peek(k))).toEqual(["47", "48", "49"]);
  });
});

describe("FencedCache: one load per key at a time", () => {
  it("concurrent loads of one key share the first load's promise", async () => {
    const first = new ControlledLoader<string>();
    const second = new ControlledLoader<string>();
    const p1 = cache.load("a", first.load, ttl);
    const p2 = cache.load("a", second.load, ttl);
    const p3 = cache.load("a", second.load, ttl);
    expect(p2).toBe(p1);
    expect(p3).toBe(p1);
    expect(first.calls).toBe(1);
    expect(second.calls).toBe(0);
    first.call(0).resolve("A");
    expect(await Promise.all([p1, p2, p3])).toEqual(["A", "A", "A"]);
    expect(cache.peek("a")).toBe("A");
  });

  it("different keys load independently", async () => {
    const loader = new ControlledLoader<string>();
    const pa = cache.load("a", loader.load, ttl);
    const pb = cache.load("b", loader.load, ttl);
    expect(loader.calls).toBe(2);
    loader.call(1).resolve("B");
    expect(await pb).toBe("B");
    expect(cache.peek("b")).toBe("B");
    expect(cache.peek("a")).toBeUndefined();
    loader.call(0).resolve("A");
    expect(await pa).toBe("A");
  });

  it("after a load settles, the next load runs the loader again", async () => {
    const loader = new ControlledLoader<string>();
    const p1 = cache.load("a", loader.load, () => 0);
    loader.call(0).resolve("A1");
    await p1;
    const p2 = cache.load("a", loader.load, () => 0);
    expect(loader.calls).toBe(2);
    loader.call(1).resolve("A2");
    expect(await p2).toBe("A2");
  });

  it("a rejected load caches nothing, rejects every sharer, and the next call reloads", async () => {
    const loader = new ControlledLoader<string>();
    const p1 = cache.load("a", loader.load, ttl);
    const p2 = cache.load("a", loader.load, ttl);
    loader.call(0).reject(new Error("store down"));
    await expect(p1).rejects.toThrow("store down");
    await expect(p2).rejects.toThrow("store down");
    expect(loader.calls).toBe(1);
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.size).toBe(0);

    const p3 = cache.load("a", loader.load, ttl);
    expect(loader.calls).toBe(2);
    loader.call(1).resolve("A");
    expect(await p3).toBe("A");
    expect(cache.peek("a")).toBe("A");
  });
});

describe("FencedCache: fencing", () => {
  it("invalidate during a load: the caller gets the result, the cache does not", async () => {
    const loader = new ControlledLoader<string>();
    const p = cache.load("a", loader.load, ttl);
    cache.invalidate("a");
    loader.call(0).resolve("stale");
    expect(await p).toBe("stale");
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("callers that joined the fenced load share its result; it is still not cached", async () => {
    const loader = new ControlledLoader<string>();
    const p1 = cache.load("a", loader.load, ttl);
    const p2 = cache.load("a", loader.load, ttl);
    cache.invalidate("a");
    loader.call(0).resolve("stale");
    expect(await p2).toBe("stale");
    expect(await p1).toBe("stale");
    expect(cache.peek("a")).toBeUndefined();
  });

  it("a load started after the invalidation runs anew and caches; the fenced one finishing later changes nothing", async () => {
    const loader = new ControlledLoader<string>();
    const old = cache.load("a", loader.load, ttl);
    cache.invalidate("a");
    const fresh = cache.load("a", loader.load, ttl);
    expect(fresh).not.toBe(old);
    expect(loader.calls).toBe(2);

    loader.call(1).resolve("new");
    expect(await fresh).toBe("new");
    expect(cache.peek("a")).toBe("new");

    loader.call(0).resolve("old");
    expect(await old).toBe("old");
    expect(cache.peek("a")).toBe("new");
  });

  it("the fenced load finishing first neither caches nor cancels the load that replaced it", async () => {
    const loader = new ControlledLoader<string>();
    const old = cache.load("a", loader.load, ttl);
    cache.invalidate("a");
    const fresh = cache.load("a", loader.load, ttl);

    loader.call(0).resolve("old");
    expect(await old).toBe("old");
    expect(cache.peek("a")).toBeUndefined();
    // The replacing load is still the one running: a new caller joins it, no third loader call.
    expect(cache.load("a", loader.load, ttl)).toBe(fresh);
    expect(loader.calls).toBe(2);

    loader.call(1).resolve("new");
    expect(await fresh).toBe("new");
    expect(cache.peek("a")).toBe("new");
  });

  it("a fenced load that fails does not disturb the load that replaced it", async () => {
    const loader = new ControlledLoader<string>();
    const old = cache.load("a", loader.load, ttl);
    cache.invalidate("a");
    const fresh = cache.load("a", loader.load, ttl);
    loader.call(0).reject(new Error("old failed"));
    await expect(old).rejects.toThrow("old failed");
    expect(cache.load("a", loader.load, ttl)).toBe(fresh);
    loader.call(1).resolve("new");
    expect(await fresh).toBe("new");
    expect(cache.peek("a")).toBe("new");
  });

  it("invalidating another key does not fence this one", async () => {
    const loader = new ControlledLoader<string>();
    const p = cache.load("a", loader.load, ttl);
    cache.invalidate("b");
    loader.call(0).resolve("A");
    await p;
    expect(cache.peek("a")).toBe("A");
  });

  it("clear() drops every entry and fences every running load", async () => {
    await put("cached", "C");
    const loader = new ControlledLoader<string>();
    const pa = cache.load("a", loader.load, ttl);
    const pb = cache.load("b", loader.load, ttl);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.peek("cached")).toBeUndefined();

    loader.call(0).resolve("A");
    loader.call(1).resolve("B");
    expect(await Promise.all([pa, pb])).toEqual(["A", "B"]);
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.peek("b")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("a load started after clear() caches", async () => {
    const loader = new ControlledLoader<string>();
    const old = cache.load("a", loader.load, ttl);
    cache.clear();
    const fresh = cache.load("a", loader.load, ttl);
    expect(loader.calls).toBe(2);
    loader.call(1).resolve("new");
    loader.call(0).resolve("old");
    expect(await Promise.all([old, fresh])).toEqual(["old", "new"]);
    expect(cache.peek("a")).toBe("new");
  });
});

describe("FencedCache: cacheable = false", () => {
  it("never caches and never shares: every call runs the loader", async () => {
    const loader = new ControlledLoader<string>();
    const p1 = cache.load("a", loader.load, ttl, false);
    const p2 = cache.load("a", loader.load, ttl, false);
    expect(p2).not.toBe(p1);
    expect(loader.calls).toBe(2);
    loader.call(0).resolve("A1");
    loader.call(1).resolve("A2");
    expect(await Promise.all([p1, p2])).toEqual(["A1", "A2"]);
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("does not join a cacheable load that is running", async () => {
    const loader = new ControlledLoader<string>();
    const cached = cache.load("a", loader.load, ttl);
    const uncached = cache.load("a", loader.load, ttl, false);
    expect(uncached).not.toBe(cached);
    expect(loader.calls).toBe(2);
    loader.call(1).resolve("fresh");
    expect(await uncached).toBe("fresh");
    expect(cache.peek("a")).toBeUndefined();
    loader.call(0).resolve("A");
    expect(await cached).toBe("A");
  });
});

describe("FencedCache: CLOCK eviction against a model", () => {
  // The policy, written out plainly: entries in insertion order; an eviction
  // takes the first one not read since it was last passed over, moving read
  // ones to the back with their flag cleared.
  class Model {
    readonly order: string[] = [];
    readonly used = new Map<string, boolean>();
    readonly max: number;
    constructor(max: number) {
      this.max = max;
    }
    peek(k: string): boolean {
      if (!this.used.has(k)) return false;
      this.used.set(k, true);
      return true;
    }
    put(k: string): void {
      this.remove(k);
      this.order.push(k);
      this.used.set(k, false);
      if (this.order.length > this.max) this.evict();
    }
    remove(k: string): void {
      const i = this.order.indexOf(k);
      if (i >= 0) this.order.splice(i, 1);
      this.used.delete(k);
    }
    clear(): void {
      this.order.length = 0;
      this.used.clear();
    }
    evict(): void {
      for (;;) {
        const k = this.order.shift() as string;
        if (this.used.get(k) !== true) {
          this.used.delete(k);
          return;
        }
        this.used.set(k, false);
        this.order.push(k);
      }
    }
  }

  it("keeps exactly the entries the plain policy keeps, over random reads, loads, invalidations and clears", async () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (const max of [1, 2, 3, 8, 50]) {
      const c = new FencedCache<string>(max);
      const m = new Model(max);
      const keys = Array.from({ length: max * 3 + 2 }, (_, i) => `k${i}`);
      for (let step = 0; step < 3000; step++) {
        const k = keys[rand(keys.length)] as string;
        const op = rand(100);
        if (op < 45) {
          expect(c.peek(k) !== undefined, `peek ${k} at step ${step} (max ${max})`).toBe(m.peek(k));
        } else if (op < 90) {
          await c.load(k, () => Promise.resolve(k), () => 60_000);
          m.put(k);
        } else if (op < 98) {
          c.invalidate(k);
          m.remove(k);
        } else {
          c.clear();
          m.clear();
        }
        expect(c.size).toBe(m.order.length);
      }
      // Membership agrees key by key (a peek sets the flag in both).
      for (const k of keys) expect(c.peek(k) !== undefined, k).toBe(m.peek(k));
    }
  });
});
