/**
 * Usage buckets: token and request totals per hour and per day, per (PAT,
 * user, domain, model, operation). A small interface with two
 * implementations, both shared by every process on their store:
 * `SqliteBuckets` (src/usage/sqlite-buckets.ts, a table of the embedded
 * store's database) and `RedisBuckets` (src/usage/redis-buckets.ts).
 * test/contract/usage-buckets.contract.ts holds both to the same answers.
 */

/** Bucket widths kept. */
export type BucketWidth = "1h" | "1d";
export const WIDTH_MS: Readonly<Record<BucketWidth, number>> = { "1h": 3_600_000, "1d": 86_400_000 };

/** What one series holds. Fixed field order: it is also the wire order of RedisBuckets. */
export interface UsageTotals {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** Of the above: requests without reported usage, charged their reservation. */
  estimatedRequests: number;
  estimatedInputTokens: number;
  estimatedOutputTokens: number;
}

export const TOTAL_FIELDS = ["requests", "inputTokens", "outputTokens", "cachedTokens", "estimatedRequests", "estimatedInputTokens", "estimatedOutputTokens"] as const;

/** Who and what a series is about. */
export interface SeriesKey {
  readonly patId: string;
  readonly userId: string;
  readonly domainId: string;
  readonly model: string;
  readonly operation: string;
}

/** One series in one bucket. */
export interface UsageRow extends SeriesKey {
  /** Bucket start, epoch ms (UTC hour or day). */
  readonly start: number;
  readonly totals: UsageTotals;
}

/** Where buckets are kept. */
export interface UsageBuckets {
  /** Adds rows (each is one hour's series) to their hourly and daily buckets. */
  add(rows: readonly UsageRow[]): Promise<void>;
  /** Every row of the buckets of `width` starting in [from, to); `userId` set: that user's rows only. */
  read(width: BucketWidth, from: number, to: number, userId: string | null): Promise<UsageRow[]>;
  close(): Promise<void>;
}

/** Zeroed totals. */
export function zeroTotals(): UsageTotals {
  return { requests: 0, inputTokens: 0, outputTokens: 0, cachedTokens: 0, estimatedRequests: 0, estimatedInputTokens: 0, estimatedOutputTokens: 0 };
}

/** Adds `b` into `a`. */
export function addTotals(a: UsageTotals, b: UsageTotals): void {
  for (const f of TOTAL_FIELDS) a[f] += b[f];
}

/** The series' identity as one string (unit separator between parts: ids never hold it). */
export function seriesId(k: SeriesKey): string {
  return `${k.patId}\x1f${k.userId}\x1f${k.domainId}\x1f${k.model}\x1f${k.operation}`;
}

/** The inverse of seriesId. */
export function parseSeriesId(id: string): SeriesKey | null {
  const p = id.split("\x1f");
  if (p.length !== 5) return null;
  return { patId: p[0] as string, userId: p[1] as string, domainId: p[2] as string, model: p[3] as string, operation: p[4] as string };
}

/** The start of the bucket of `width` holding `t`. */
export function bucketStart(t: number, width: BucketWidth): number {
  return t - (t % WIDTH_MS[width]);
}
