// The answers every UsageBuckets implementation gives (src/usage/buckets.ts):
// SqliteBuckets and RedisBuckets are held to the same ones by
// usage-buckets.test.ts. Bucket times are real (Redis expires keys on its own
// clock), placed a few days back and well inside the retention unless a case
// is about the retention.
import { describe, expect, it } from "vitest";
import { WIDTH_MS, bucketStart, zeroTotals, type BucketWidth, type UsageBuckets, type UsageRow, type UsageTotals } from "../../src/usage/buckets.ts";

const HOUR = WIDTH_MS["1h"];
const DAY = WIDTH_MS["1d"];

/** The retention the cases run with, unless they pass their own. */
export const RETENTION: Readonly<Record<BucketWidth, number>> = { "1h": 7 * DAY, "1d": 400 * DAY };

/** One place buckets are kept (a database file, a Redis key prefix), empty when made. */
export interface BucketSpace {
  /** One more instance on this place, as another process would open it. */
  open(retention?: Readonly<Record<BucketWidth, number>>): Promise<UsageBuckets>;
}

/** How an implementation makes empty places; the test file closes what they open. */
export type MakeSpace = () => Promise<BucketSpace>;

let rowCount = 0;

/** A row of one hour's series: a PAT of `userId` unless `over` says otherwise; totals distinct per call unless given. */
function row(start: number, over: Partial<Omit<UsageRow, "totals">> & { totals?: Partial<UsageTotals> } = {}): UsageRow {
  const n = ++rowCount;
  const { totals, ...key } = over;
  return {
    start, patId: "p1", userId: "alice", domainId: "d1", model: "m", operation: "llm_chat_completions", ...key,
    totals: { ...zeroTotals(), requests: 1, inputTokens: n, outputTokens: 2 * n, ...totals },
  };
}

/** Rows as comparable text, sorted: bucket offset from `base`, series, the seven totals. */
function view(rows: readonly UsageRow[], base: number): string[] {
  return rows.map((r) => `${(r.start - base) / HOUR}h ${r.patId}/${r.userId}/${r.domainId}/${r.model}/${r.operation} ${Object.values(r.totals).join(",")}`).sort();
}

function sum(rows: readonly UsageRow[]): UsageTotals {
  const t = zeroTotals();
  for (const r of rows) for (const k of Object.keys(t) as (keyof UsageTotals)[]) t[k] += r.totals[k];
  return t;
}

/** Three days back, at the start of that UTC day: inside the hourly retention. */
function aDayBack(): number {
  return bucketStart(Date.now(), "1d") - 3 * DAY;
}

export function usageBucketsContract(name: string, makeSpace: MakeSpace): void {
  describe(`usage buckets contract: ${name}`, () => {
    it("adds accumulate: the same series in the same hour sums every total, across adds and within one add", async () => {
      const b = await (await makeSpace()).open();
      const day = aDayBack();
      const t1 = { requests: 2, inputTokens: 10, outputTokens: 20, cachedTokens: 3, estimatedRequests: 1, estimatedInputTokens: 4, estimatedOutputTokens: 5 };
      const t2 = { requests: 1, inputTokens: 7, outputTokens: 1, cachedTokens: 0, estimatedRequests: 0, estimatedInputTokens: 0, estimatedOutputTokens: 0 };
      await b.add([row(day, { totals: t1 }), row(day, { totals: t2 })]);
      await b.add([row(day, { totals: t1 })]);
      const got = await b.read("1h", day, day + HOUR, null);
      expect(got).toHaveLength(1);
      expect(got[0]).toEqual({ start: day, patId: "p1", userId: "alice", domainId: "d1", model: "m", operation: "llm_chat_completions", totals: { requests: 5, inputTokens: 27, outputTokens: 41, cachedTokens: 6, estimatedRequests: 2, estimatedInputTokens: 8, estimatedOutputTokens: 10 } });
    });

    it("keeps every part of the series apart (PAT, user, domain, model, operation), odd characters included", async () => {
      const b = await (await makeSpace()).open();
      const day = aDayBack();
      const rows = [
        row(day), row(day, { patId: "p2" }), row(day, { domainId: "d2" }), row(day, { model: "" }), row(day, { model: "Llama 3 / 8B:q4 ✓" }),
        row(day, { operation: "llm_embeddings" }), row(day, { patId: "(other)", userId: "bob", domainId: "(other)", model: "(other)", operation: "(other)" }),
      ];
      await b.add(rows);
      expect(view(await b.read("1h", day, day + HOUR, null), day)).toEqual(view(rows, day));
    });

    it("rolls hours up into days: each hour its own 1h bucket, each UTC day one 1d bucket summing its hours", async () => {
      const b = await (await makeSpace()).open();
      const day = aDayBack();
      const rows = [row(day), row(day + HOUR), row(day + 23 * HOUR), row(day + DAY), row(day + DAY + 5 * HOUR, { patId: "p2" })];
      await b.add(rows);
      const hourly = await b.read("1h", day, day + 2 * DAY, null);
      expect(view(hourly, day)).toEqual(view(rows, day));
      const daily = await b.read("1d", day, day + 2 * DAY, null);
      const first = daily.filter((r) => r.start === day);
      const second = daily.filter((r) => r.start === day + DAY);
      expect(first).toHaveLength(1);
      expect(first[0]!.totals).toEqual(sum(rows.slice(0, 3)));
      expect(view(second, day)).toEqual(view([{ ...rows[3]!, start: day + DAY }, { ...rows[4]!, start: day + DAY }], day));
    });

    it("reads the buckets starting in [from, to): from included, to excluded, a bucket that began before from left out", async () => {
      const b = await (await makeSpace()).open();
      const day = aDayBack();
      await b.add([0, 1, 2, 3].map((h) => row(day + h * HOUR, { totals: { requests: h + 1 } })));
      const starts = async (width: BucketWidth, from: number, to: number): Promise<number[]> =>
        [...new Set((await b.read(width, from, to, null)).map((r) => (r.start - day) / HOUR))].sort((x, y) => x - y);
      expect(await starts("1h", day + HOUR, day + 3 * HOUR)).toEqual([1, 2]);
      expect(await starts("1h", day + HOUR + 1, day + 3 * HOUR + 1)).toEqual([2, 3]);
      expect(await starts("1h", day, day + HOUR)).toEqual([0]);
      expect(await starts("1h", day + 4 * HOUR, day + 5 * HOUR)).toEqual([]);
      expect(await starts("1d", day, day + DAY)).toEqual([0]);
      expect(await starts("1d", day + 1, day + DAY)).toEqual([]);
      expect(await starts("1d", day - DAY, day)).toEqual([]);
    });

    it("filters by user: only that user's rows (all their PATs), none for a user without usage", async () => {
      const b = await (await makeSpace()).open();
      const day = aDayBack();
      const alice = [row(day), row(day, { patId: "p3" }), row(day + HOUR)];
      const bob = [row(day, { patId: "p2", userId: "bob" })];
      await b.add([...alice, ...bob]);
      expect(view(await b.read("1h", day, day + DAY, "alice"), day)).toEqual(view(alice, day));
      expect(view(await b.read("1h", day, day + DAY, "bob"), day)).toEqual(view(bob, day));
      expect(await b.read("1h", day, day + DAY, "carol")).toEqual([]);
      expect(await b.read("1h", day, day + DAY, null)).toHaveLength(4);
      const daily = await b.read("1d", day, day + DAY, "alice");
      expect(daily.map((r) => r.patId).sort()).toEqual(["p1", "p3"]);
      expect(sum(daily)).toEqual(sum(alice));
    });

    it("keeps each width for its own retention, counted from the bucket's end", async () => {
      const retention = { "1h": 2 * DAY, "1d": 10 * DAY };
      const b = await (await makeSpace()).open(retention);
      const now = Date.now();
      // Ended more than the hourly retention ago (by at least 10 minutes), and an hour that ended well within it.
      const goneHour = bucketStart(now - retention["1h"] - HOUR - 10 * 60_000, "1h");
      const keptHour = goneHour + 2 * HOUR;
      // A day that ended more than the daily retention ago.
      const goneDay = bucketStart(now - retention["1d"] - DAY - 10 * 60_000, "1d");
      await b.add([row(goneHour, { patId: "old-hour" }), row(keptHour, { patId: "kept-hour" }), row(goneDay, { patId: "old-day" })]);
      const hourly = await b.read("1h", goneDay - DAY, now + HOUR, null);
      expect(hourly.map((r) => r.patId)).toEqual(["kept-hour"]);
      const daily = await b.read("1d", goneDay - DAY, now + DAY, null);
      // The hour past its hourly retention still counts in its day.
      expect(daily.map((r) => r.patId).sort()).toEqual(["kept-hour", "old-hour"]);
      expect(daily.some((r) => r.patId === "old-day")).toBe(false);
    });

    it("sums exactly what two instances on one place add at the same time", async () => {
      const space = await makeSpace();
      const [a, b] = [await space.open(), await space.open()];
      const day = aDayBack();
      const adds: Promise<void>[] = [];
      const expected = zeroTotals();
      for (let i = 0; i < 40; i++) {
        const rows = [row(day + (i % 3) * HOUR, { totals: { requests: 1, inputTokens: i, outputTokens: 1000 + i, cachedTokens: i % 5 } }), row(day + 2 * HOUR, { userId: "bob", patId: "p2" })];
        for (const r of rows) for (const k of Object.keys(expected) as (keyof UsageTotals)[]) expected[k] += r.totals[k];
        adds.push((i % 2 === 0 ? a : b).add(rows));
      }
      await Promise.all(adds);
      // Either instance reads the same sums: hourly, and rolled up into the day.
      for (const reader of [a, b]) {
        expect(sum(await reader.read("1h", day, day + DAY, null))).toEqual(expected);
        const daily = await reader.read("1d", day, day + DAY, null);
        expect(daily).toHaveLength(2);
        expect(sum(daily)).toEqual(expected);
      }
      expect((await a.read("1h", day + 2 * HOUR, day + 3 * HOUR, "bob"))[0]!.totals.requests).toBe(40);
    });
  });
}
