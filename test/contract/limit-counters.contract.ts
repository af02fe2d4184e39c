import { describe, expect, it } from "vitest";
import type { Counters, Take } from "../../src/limits/counters.ts";
import { DIM_CONCURRENT, DIM_REQUESTS, DIM_TPD, DIM_TPM } from "../../src/limits/counters.ts";

let n = 0;
/** A take with nothing limited unless `over` says; a fresh subject key per call unless given. */
export function take(over: Partial<Take> = {}): Take {
  return { key: `t${++n}|p:x`, requestsPerMinute: 0, tokensPerMinute: 0, tokensPerDay: 0, concurrent: 0, input: 0, output: 0, clamp: false, force: false, lease: "", ...over };
}

const v = <T,>(x: T | Promise<T>): Promise<T> => Promise.resolve(x);

/** The answers every Counters implementation gives (within one second: no window moves on). */
export function countersContract(name: string, make: () => Counters): void {
  describe(`limit counters contract: ${name}`, () => {
    it("admits exactly the limit of requests, then refuses with a wait within the window", async () => {
      const c = make();
      const t = take({ requestsPerMinute: 3 });
      const out = [];
      for (let i = 0; i < 5; i++) out.push(await v(c.take(t)));
      expect(out.map((r) => r.refused)).toEqual([0, 0, 0, DIM_REQUESTS, DIM_REQUESTS]);
      expect(out.map((r) => r.remaining[0])).toEqual([2, 1, 0, 0, 0]);
      const w = out[3]!.retryMs;
      expect(w).toBeGreaterThan(59_000);
      expect(w).toBeLessThanOrEqual(61_000);
      expect(out[0]!.resetMs[0]).toBeGreaterThan(59_000);
    });

    it("charges input + output against tokens per minute and per day, and refuses what would not fit", async () => {
      const c = make();
      const base = { tokensPerMinute: 100, tokensPerDay: 150 };
      const t = take({ ...base, input: 30, output: 40 });
      const a = await v(c.take(t));
      expect(a.refused).toBe(0);
      expect(a.remaining).toEqual([0, 30, 80]);
      const b = await v(c.take({ ...t }));
      expect(b.refused).toBe(DIM_TPM);
      const smaller = await v(c.take({ ...t, input: 10, output: 20 }));
      expect(smaller.refused).toBe(0);
      expect(smaller.remaining).toEqual([0, 0, 50]);
      const day = await v(c.take({ ...t, tokensPerMinute: 0, input: 10, output: 50 }));
      expect(day.refused).toBe(DIM_TPD);
      // A request larger than the limit itself waits a whole window (it never fits).
      const huge = await v(c.take({ ...t, key: `${t.key}-other`, input: 500, output: 0 }));
      expect(huge.refused).toBe(DIM_TPM);
    });

    it("settles a reservation: a refund makes room at once, usage beyond it is charged", async () => {
      const c = make();
      const t = take({ tokensPerMinute: 100, input: 10, output: 80 });
      const a = await v(c.take(t));
      expect(a.remaining[1]).toBe(10);
      await v(c.settle({ key: t.key, at: a.at, requests: 0, tokens: 25 - 90, tokensPerMinute: true, tokensPerDay: false, lease: "" }));
      const p = await v(c.peek(t));
      expect(p.remaining[1]).toBe(75);
      await v(c.settle({ key: t.key, at: a.at, requests: 0, tokens: 30, tokensPerMinute: true, tokensPerDay: false, lease: "" }));
      expect((await v(c.peek(t))).remaining[1]).toBe(45);
    });

    it("clamps the output reservation to what is left, and refuses when not one output token fits", async () => {
      const c = make();
      const t = take({ tokensPerDay: 100, input: 20, output: 1000, clamp: true });
      const a = await v(c.take(t));
      expect(a.refused).toBe(0);
      expect(a.output).toBe(80);
      expect(a.remaining[2]).toBe(0);
      const b = await v(c.take(t));
      expect(b.refused).toBe(DIM_TPD);
    });

    it("leases: the limit of concurrent requests, freed at once by settle", async () => {
      const c = make();
      const t = take({ concurrent: 2 });
      const a = await v(c.take({ ...t, lease: "a" }));
      const b = await v(c.take({ ...t, lease: "b" }));
      const x = await v(c.take({ ...t, lease: "x" }));
      expect([a.refused, b.refused, x.refused]).toEqual([0, 0, DIM_CONCURRENT]);
      expect(b.inUse).toBe(2);
      await v(c.settle({ key: t.key, at: a.at, requests: 0, tokens: 0, tokensPerMinute: false, tokensPerDay: false, lease: "a" }));
      expect((await v(c.peek(t))).inUse).toBe(1);
      expect((await v(c.take({ ...t, lease: "c" }))).refused).toBe(0);
    });

    it("forced (shadow) takes count past the limit; a rollback takes a request back", async () => {
      const c = make();
      const t = take({ requestsPerMinute: 1, force: true });
      expect((await v(c.take(t))).refused).toBe(0);
      const over = await v(c.take(t));
      expect(over.refused).toBe(DIM_REQUESTS);
      expect(over.remaining[0]).toBe(0);
      await v(c.settle({ key: t.key, at: over.at, requests: -1, tokens: 0, tokensPerMinute: false, tokensPerDay: false, lease: "" }));
      await v(c.settle({ key: t.key, at: over.at, requests: -1, tokens: 0, tokensPerMinute: false, tokensPerDay: false, lease: "" }));
      expect((await v(c.take({ ...t, force: false }))).refused).toBe(0);
    });

    it("peek counts nothing", async () => {
      const c = make();
      const t = take({ requestsPerMinute: 1, tokensPerMinute: 10, input: 5, output: 5 });
      for (let i = 0; i < 3; i++) expect((await v(c.peek(t))).remaining).toEqual([1, 10, 0]);
      expect((await v(c.take(t))).refused).toBe(0);
      expect((await v(c.peek(t))).remaining).toEqual([0, 0, 0]);
    });
  });
}
