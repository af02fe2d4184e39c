import { Redis } from "ioredis";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCounters, MINUTE_MS, DAY_MS } from "../../src/limits/counters.ts";
import { RedisCounters } from "../../src/limits/redis-counters.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";
import { countersContract, take } from "./limit-counters.contract.ts";

let redis: RedisHandle;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const o of opened) await o.close();
  await redis.stop();
});

let prefixes = 0;

countersContract("local", () => new LocalCounters());
countersContract("redis", () => {
  const c = new RedisCounters(new Redis(redis.url), `${redis.keyPrefix}${++prefixes}:`, 5000);
  opened.push(c);
  return c;
});

describe("the sliding window (property)", () => {
  it("never admits more than the limit in any window of its length, whatever the arrival times and costs", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.constantFrom(MINUTE_MS, DAY_MS),
        // Gaps in ten-thousandths of the window (so every scale is hit: within a bucket, near a whole window) or a few ms.
        fc.array(fc.record({ gap: fc.oneof(fc.integer({ min: 0, max: 50 }).map((g) => -g - 1), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 9_500, max: 10_100 }), fc.integer({ min: 0, max: 15_000 })), cost: fc.integer({ min: 0, max: 20 }), refund: fc.integer({ min: 0, max: 20 }) }), { minLength: 1, maxLength: 300 }),
        (limit, windowMs, events) => {
          let now = 1_700_000_000_000 + Math.floor(Math.random() * 1_000_000);
          const c = new LocalCounters(() => now);
          const tokens = windowMs === DAY_MS;
          const admitted: { at: number; cost: number }[] = [];
          for (const e of events) {
            now += e.gap < 0 ? -e.gap - 1 : Math.floor((e.gap * windowMs) / 10_000);
            const t = take({ key: "k", requestsPerMinute: tokens ? 0 : limit, tokensPerDay: tokens ? limit : 0, input: tokens ? e.cost : 0 });
            const r = c.take(t);
            if (r.refused !== 0) continue;
            const cost = tokens ? e.cost : 1;
            // Reconciliation gives back part of a reservation: what stays charged must still fit every window.
            const refund = tokens ? Math.min(e.refund, cost) : 0;
            if (refund > 0) c.settle({ key: "k", at: r.at, requests: 0, tokens: -refund, tokensPerMinute: false, tokensPerDay: true, lease: "" });
            admitted.push({ at: now, cost: cost - refund });
          }
          void c.close();
          // Every window [s, s + W) that starts at an admission (the worst windows start at one).
          for (let i = 0; i < admitted.length; i++) {
            let sum = 0;
            for (let j = i; j < admitted.length && admitted[j]!.at < admitted[i]!.at + windowMs; j++) sum += admitted[j]!.cost;
            if (sum > limit) return false;
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });

  it("admits up to the limit again once a window has passed (it is not a fixed quota)", () => {
    let now = 1_700_000_000_000;
    const c = new LocalCounters(() => now);
    const t = take({ key: "k", requestsPerMinute: 10 });
    let first = 0;
    for (let i = 0; i < 20; i++) if (c.take(t).refused === 0) first++;
    now += MINUTE_MS + MINUTE_MS / 60 + 1;
    let second = 0;
    for (let i = 0; i < 20; i++) if (c.take(t).refused === 0) second++;
    expect([first, second]).toEqual([10, 10]);
    void c.close();
  });
});
