/** Small statistics helpers: percentiles of raw samples and medians across rounds. */

export interface Percentiles {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Nearest-rank percentiles of `samples` (sorted in place). */
export function percentiles(samples: Float64Array | number[]): Percentiles {
  const n = samples.length;
  if (n === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  const s = samples instanceof Float64Array ? samples.sort() : Float64Array.from(samples).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i] as number;
  const at = (p: number): number => s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] as number;
  return { count: n, mean: sum / n, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: s[n - 1] as number };
}

/** Median of a list (mean of the two middle values for even lengths); NaN when empty. */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * The median over rounds of `f(x's run, y's run)`, from the rounds where both
 * ran (only rounds where both runs were `clean`, when there are some). The two
 * runs of a round ran back to back, so a machine whose speed drifts from round
 * to round moves both sides of each pair alike; a ratio (or difference) of
 * medians would instead set one round's x against another round's y. Null
 * when no round has both runs (or no finite value).
 */
export function paired<R extends { round: number }>(xs: readonly R[], ys: readonly R[], f: (x: R, y: R) => number, clean: (r: R) => boolean = () => true): number | null {
  const pairs: Array<[R, R]> = [];
  for (const x of xs) {
    const y = ys.find((r) => r.round === x.round);
    if (y !== undefined) pairs.push([x, y]);
  }
  const quiet = pairs.filter(([x, y]) => clean(x) && clean(y));
  const values = (quiet.length > 0 ? quiet : pairs).map(([x, y]) => f(x, y)).filter((v) => Number.isFinite(v));
  return values.length === 0 ? null : median(values);
}

/** `f` for each of x's rounds that y also ran, in x's order; null for a round y did not run. */
export function perRound<R extends { round: number }>(xs: readonly R[], ys: readonly R[], f: (x: R, y: R) => number): Array<number | null> {
  return xs.map((x) => {
    const y = ys.find((r) => r.round === x.round);
    return y === undefined ? null : f(x, y);
  });
}

/**
 * A check's note: the per-round values behind a `paired` result (to `digits`
 * decimals), and what the medians alone would give; undefined when no round
 * has a value.
 */
export function pairedNote(values: ReadonlyArray<number | null>, ofMedians: number | null, unit = "", digits = 3): string | undefined {
  const has = (v: number | null): v is number => v !== null && Number.isFinite(v);
  if (!values.some(has)) return undefined;
  const show = (v: number | null): string => (has(v) ? `${round(v, digits)}${unit}` : "-");
  return `median of per-round values (${values.map(show).join(", ")}); from the medians instead: ${show(ofMedians)}`;
}

/** Rounds to `digits` decimals (keeps NaN). */
export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A growable Float64Array: samples without boxing. */
export class Samples {
  #buf = new Float64Array(4096);
  #n = 0;

  push(v: number): void {
    if (this.#n === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#n++] = v;
  }

  get length(): number {
    return this.#n;
  }

  values(): Float64Array {
    return this.#buf.subarray(0, this.#n);
  }
}
