import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../src/util/duration.ts";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
const W = 7 * D;
const Y = 365 * D;

describe("parseDuration accepts", () => {
  it.each([
    ["45s", 45 * S],
    ["90m", 90 * M],
    ["720h", 720 * H],
    ["30d", 30 * D],
    ["2w", 2 * W],
    ["1y", Y],
    ["100y", 100 * Y],
    ["36500d", 100 * Y],
    ["1s", S],
    ["1h30m", H + 30 * M],
    ["1y2w3d4h5m6s", Y + 2 * W + 3 * D + 4 * H + 5 * M + 6 * S],
    ["0h30m", 30 * M],
    ["007d", 7 * D],
    ["  30d\t\n", 30 * D],
    ["30D", 30 * D],
    ["1H30M", H + 30 * M],
    ["1Y", Y],
  ])("%j → %d ms", (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });
});

describe("parseDuration rejects", () => {
  it.each([
    ["", /empty/],
    ["   ", /empty/],
    ["0s", /zero/],
    ["0d", /zero/],
    ["0h0m", /zero/],
    ["-5d", /negative/],
    ["30", /no unit.*e\.g\. 30d/],
    ["1h30", /no unit/],
    ["5x", /unknown unit "x"/],
    ["5min", /unknown unit "min"/],
    ["5ms", /unknown unit "ms"/],
    ["1.5d", /fractional.*36h/],
    ["1,5d", /fractional.*36h/],
    ["0.5h", /fractional.*30m/],
    ["1.5y", /fractional.*13140h/],
    ["0.5s", /whole number of seconds/],
    ["banana", /not a duration/],
    ["d", /not a duration/],
    ["+5d", /not a duration/],
    ["5d!", /not a duration/],
    ["100y1s", /maximum of 100y/],
    ["101y", /maximum of 100y/],
    ["36501d", /maximum of 100y/],
    ["99999999999999999999999999999y", /maximum of 100y/],
    ["9".repeat(80) + "d", /characters long/],
    ["30m1h", /out of order or repeated/],
    ["1h1h", /out of order or repeated/],
    ["1d1w", /out of order or repeated/],
    ["1h 30m", /spaces/],
    ["30 d", /spaces/],
  ])("%j with a message matching %s", (text, message) => {
    const r = parseDuration(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });

  it("never throws, whatever the input", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.stringMatching(/^[0-9.,smhdwyx -]{0,20}$/)), (text) => {
        const r = parseDuration(text);
        if (r.ok) expect(Number.isSafeInteger(r.ms) && r.ms > 0 && r.ms <= 100 * Y).toBe(true);
        else expect(r.error.length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
    expect(parseDuration(undefined as unknown as string).ok).toBe(false);
  });
});

describe("formatDuration", () => {
  it.each([
    [30 * D, "30d"],
    [H + 30 * M, "1h30m"],
    [45 * S, "45s"],
    [Y, "1y"],
    [Y + 35 * D + S, "1y35d1s"],
    [2 * W, "14d"],
    [100 * Y, "100y"],
    [0, "0s"],
    [1999, "1s"],
  ])("%d ms → %j", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("throws on negative or non-finite input", () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => formatDuration(bad)).toThrow(RangeError);
  });

  it("round-trips through parseDuration for whole seconds up to 100 years", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 * 365 * 86_400 }), (seconds) => {
        const ms = seconds * S;
        expect(parseDuration(formatDuration(ms))).toEqual({ ok: true, ms });
      }),
      { numRuns: 5000 },
    );
  });
});
