// LiveStreams' deadlines: every stream is cut at its own `until` (in deadline
// order, under one timer), a stream that ended is never cut, a re-check that
// moves a deadline moves the cut, and deadlines beyond setTimeout's range wait.
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RequestContext } from "../../src/http/context.ts";
import { LiveStreams } from "../../src/policy/streams.ts";

interface Fake {
  readonly ctx: RequestContext;
  readonly cuts: Array<{ code: string; at: number }>;
}

/** Only what LiveStreams touches of a request: its deadline, its response's state, its relay. */
function stream(until: number): Fake {
  const cuts: Array<{ code: string; at: number }> = [];
  const ctx = { until, cutReason: null, res: { destroyed: false, destroy: () => undefined }, relay: { cut: (code: string) => cuts.push({ code, at: Date.now() }) } };
  return { ctx: ctx as unknown as RequestContext, cuts };
}

describe("LiveStreams deadlines", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("cuts each stream at its own deadline, and never one that ended before it", () => {
    // Each stream: when it starts, its deadline, and when (if ever) it ends by itself; all interleaved in time.
    const spec = fc.tuple(fc.integer({ min: 0, max: 50_000 }), fc.integer({ min: 1, max: 50_000 }), fc.option(fc.integer({ min: 0, max: 60_000 })));
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 200 }), (specs) => {
        vi.setSystemTime(1_000_000);
        const live = new LiveStreams();
        const all = specs.map(([start, life, ends]) => ({ start, deadline: 1_000_000 + start + life, ends: ends === null ? null : 1_000_000 + start + ends, s: stream(0) }));
        for (const x of all) {
          setTimeout(() => {
            (x.s.ctx as { until: number }).until = x.deadline;
            live.add(x.s.ctx);
          }, x.start);
          if (x.ends !== null) setTimeout(() => live.remove(x.s.ctx), x.ends - 1_000_000);
        }
        vi.advanceTimersByTime(200_000);
        for (const x of all) {
          // An end at the deadline's own millisecond may come either side of the cut.
          if (x.ends !== null && x.ends < x.deadline) expect(x.s.cuts).toEqual([]);
          else if (x.ends === null || x.ends > x.deadline) expect(x.s.cuts).toEqual([{ code: "stream_expired", at: x.deadline }]);
        }
        live.close();
      }),
      { numRuns: 100 },
    );
  });

  it("a re-check that moves the deadline (a rotation's grace period) moves the cut", async () => {
    const live = new LiveStreams();
    const s = stream(Date.now() + 10_000);
    live.add(s.ctx);
    // The re-check after a rotation: still allowed, but only until the grace period ends.
    live.recheck(
      () => true,
      (ctx) => {
        ctx.until = Date.now() + 2_000;
        return Promise.resolve(true);
      },
    );
    await vi.advanceTimersByTimeAsync(1_999);
    expect(s.cuts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.cuts.map((c) => c.code)).toEqual(["stream_expired"]);
    live.close();
  });

  it("a re-check that says no cuts at once, a failing one cuts as store_unavailable", async () => {
    const live = new LiveStreams();
    const a = stream(Date.now() + 60_000);
    const b = stream(Date.now() + 60_000);
    live.add(a.ctx);
    live.add(b.ctx);
    live.recheck((ctx) => ctx === a.ctx, () => Promise.resolve(false));
    live.recheck((ctx) => ctx === b.ctx, () => Promise.reject(new Error("store down")));
    await vi.advanceTimersByTimeAsync(0);
    expect(a.cuts.map((c) => c.code)).toEqual(["stream_revoked"]);
    expect(b.cuts.map((c) => c.code)).toEqual(["store_unavailable"]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(a.cuts).toHaveLength(1);
    live.close();
  });

  it("a deadline beyond setTimeout's 24.8 days still comes", () => {
    const live = new LiveStreams();
    const far = 40 * 86_400_000;
    const s = stream(Date.now() + far);
    live.add(s.ctx);
    vi.advanceTimersByTime(far - 1);
    expect(s.cuts).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(s.cuts.map((c) => c.code)).toEqual(["stream_expired"]);
    live.close();
  });

  it("cutAll ends every stream with the code (the drain deadline)", () => {
    const live = new LiveStreams();
    const xs = [stream(Date.now() + 1000), stream(Date.now() + 2000)];
    for (const x of xs) live.add(x.ctx);
    live.cutAll("shutting_down");
    expect(xs.map((x) => x.cuts.map((c) => c.code))).toEqual([["shutting_down"], ["shutting_down"]]);
    vi.advanceTimersByTime(5000);
    expect(xs.every((x) => x.cuts.length === 1)).toBe(true);
    live.close();
  });
});
