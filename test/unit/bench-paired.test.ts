// The bench's paired estimator (bench/lib/stats.ts): the ratios and
// "added" latencies are taken per round, then the median over rounds.
import { describe, expect, it } from "vitest";
import { paired, pairedNote, perRound } from "../../bench/lib/stats.ts";

interface Run {
  round: number;
  rps: number;
  quiet?: boolean;
}
const ratio = (x: Run, y: Run): number => x.rps / y.rps;

describe("paired", () => {
  it("takes the median of per-round ratios, not the ratio of medians", () => {
    // A machine that speeds up over three rounds: y runs first in each round, x just after it.
    const y: Run[] = [{ round: 0, rps: 2567 }, { round: 1, rps: 4799 }, { round: 2, rps: 5530 }];
    const x: Run[] = [{ round: 0, rps: 2545 }, { round: 1, rps: 3003 }, { round: 2, rps: 4317 }];
    expect(paired(x, y, ratio)).toBeCloseTo(4317 / 5530, 6);
    // What the medians alone give: x's round-1 run against y's round-1 run only by accident.
    expect(3003 / 4799).toBeLessThan(paired(x, y, ratio) as number);
  });

  it("pairs by round, whatever the order the runs are listed in", () => {
    const y: Run[] = [{ round: 2, rps: 100 }, { round: 0, rps: 10 }, { round: 1, rps: 1000 }];
    const x: Run[] = [{ round: 0, rps: 5 }, { round: 1, rps: 500 }, { round: 2, rps: 50 }];
    expect(paired(x, y, ratio)).toBe(0.5);
    expect(perRound(x, y, ratio)).toEqual([0.5, 0.5, 0.5]);
  });

  it("leaves out rounds either side missed, and says which", () => {
    const y: Run[] = [{ round: 0, rps: 10 }, { round: 2, rps: 10 }];
    const x: Run[] = [{ round: 0, rps: 8 }, { round: 1, rps: 1 }, { round: 2, rps: 9 }];
    expect(paired(x, y, ratio)).toBeCloseTo(0.85, 10);
    expect(perRound(x, y, ratio)).toEqual([0.8, null, 0.9]);
    expect(paired([], y, ratio)).toBeNull();
    expect(paired(x, [{ round: 7, rps: 1 }], ratio)).toBeNull();
  });

  it("uses only rounds where both runs were clean, when there are some", () => {
    const y: Run[] = [{ round: 0, rps: 10, quiet: true }, { round: 1, rps: 10, quiet: false }, { round: 2, rps: 10, quiet: true }];
    const x: Run[] = [{ round: 0, rps: 7, quiet: true }, { round: 1, rps: 1, quiet: true }, { round: 2, rps: 9, quiet: true }];
    const clean = (r: Run): boolean => r.quiet === true;
    expect(paired(x, y, ratio, clean)).toBeCloseTo(0.8, 10);
    // No clean pair at all: every pair counts.
    expect(paired(x, y.map((r) => ({ ...r, quiet: false })), ratio, clean)).toBeCloseTo(0.7, 10);
  });

  it("ignores values that are not finite, and differences work as ratios do", () => {
    const y: Run[] = [{ round: 0, rps: 0 }, { round: 1, rps: 100 }, { round: 2, rps: 200 }];
    const x: Run[] = [{ round: 0, rps: 50 }, { round: 1, rps: 130 }, { round: 2, rps: 260 }];
    expect(paired(x, y, (a, b) => (b.rps > 0 ? a.rps / b.rps : Number.NaN))).toBeCloseTo(1.3, 10);
    expect(paired(x, y, (a, b) => a.rps - b.rps)).toBe(50);
  });

  it("notes the per-round values and the ratio of the medians", () => {
    expect(pairedNote([0.99, null, 0.7812], 0.626, "")).toBe("median of per-round values (0.99, -, 0.781); from the medians instead: 0.626");
    expect(pairedNote([12.345], Number.NaN, " us", 0)).toBe("median of per-round values (12 us); from the medians instead: -");
    expect(pairedNote([null, Number.NaN], 1)).toBeUndefined();
  });
});
