// GET /usage in pages, as OpenAI's Usage API pages: `limit` buckets per page
// (defaults 7 daily, 24 hourly; at most 31 and 168), `has_more` and an opaque
// `next_page` cursor passed back as `page`. Buckets are written straight into
// the gateway's embedded store (SqliteBuckets) over a range of days, so every
// page boundary is known; every answer is held to docs/openapi.yaml.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EmbeddedStore } from "../../src/store/embedded.ts";
import { WIDTH_MS, bucketStart, zeroTotals, type UsageRow } from "../../src/usage/buckets.ts";
import { SqliteBuckets } from "../../src/usage/sqlite-buckets.ts";
import { startAdminFixture, type AdminClient, type AdminFixture, type Res } from "../helpers/admin.ts";

const HOUR = WIDTH_MS["1h"];
const DAY = WIDTH_MS["1d"];

interface Page {
  object: "page";
  data: { start_time: number; end_time: number; results: { num_model_requests: number; input_tokens: number; user_id: string | null }[] }[];
  has_more: boolean;
  next_page: string | null;
}

describe("GET /usage paging", () => {
  let fx: AdminFixture;
  // Ten whole days ending yesterday, one request a day for alice (n requests on day n) and one an hour on the last day.
  const today = bucketStart(Date.now(), "1d");
  const first = today - 10 * DAY;
  const lastDay = today - DAY;
  const s = (ms: number): number => ms / 1000;

  beforeAll(async () => {
    fx = await startAdminFixture();
    const buckets = new SqliteBuckets(fx.gw.store as EmbeddedStore, { "1h": 30 * DAY, "1d": 400 * DAY });
    const row = (start: number, userId: string, requests: number): UsageRow => ({ start, patId: `p-${userId}`, userId, domainId: "d1", model: "m", operation: "llm_chat_completions", totals: { ...zeroTotals(), requests, inputTokens: 10 * requests } });
    const rows: UsageRow[] = [];
    for (let d = 0; d < 9; d++) rows.push(row(first + d * DAY + 5 * HOUR, "alice", d + 1));
    for (let h = 0; h < 24; h++) rows.push(row(lastDay + h * HOUR, "bob", 1));
    await buckets.add(rows);
  });
  afterAll(async () => {
    await fx?.close();
  });

  /** Every page of `query`, following next_page; fails on a page that is not what it should be. */
  const pages = async (client: AdminClient, query: string): Promise<Page[]> => {
    const out: Page[] = [];
    let page: string | null = null;
    do {
      const r: Res<Page> = await client.get<Page>(`/usage?${query}${page === null ? "" : `&page=${encodeURIComponent(page)}`}`);
      expect(r.status, r.text).toBe(200);
      out.push(r.body);
      expect(r.body.next_page === null).toBe(!r.body.has_more);
      page = r.body.next_page;
    } while (page !== null && out.length < 50);
    return out;
  };
  const starts = (p: Page): number[] => p.data.map((b) => b.start_time);
  const requests = (ps: Page[]): number => ps.flatMap((p) => p.data.flatMap((b) => b.results)).reduce((a, r) => a + r.num_model_requests, 0);

  it("defaults to 7 daily buckets a page, with a cursor to the next, until the range ends", async () => {
    const ps = await pages(fx.ops, `start_time=${s(first)}&end_time=${s(today)}`);
    expect(ps.map((p) => p.data.length)).toEqual([7, 3]);
    expect(ps.map((p) => p.has_more)).toEqual([true, false]);
    // Contiguous, in order, each bucket once: the ten days.
    expect(ps.flatMap(starts)).toEqual(Array.from({ length: 10 }, (_, i) => s(first + i * DAY)));
    expect(requests(ps)).toBe(45 + 24);
    expect(typeof ps[0]!.next_page).toBe("string");
    // Opaque: not a time a caller could be tempted to compute.
    expect(ps[0]!.next_page).not.toMatch(/^\d+$/);
  });

  it("defaults to 24 hourly buckets a page; limit sets the page size, up to 168 hourly and 31 daily", async () => {
    const hourly = await pages(fx.ops, `bucket_width=1h&start_time=${s(lastDay - 12 * HOUR)}&end_time=${s(today)}`);
    expect(hourly.map((p) => p.data.length)).toEqual([24, 12]);
    expect(requests(hourly)).toBe(24);
    const fives = await pages(fx.ops, `bucket_width=1h&limit=5&start_time=${s(lastDay)}&end_time=${s(lastDay + 12 * HOUR)}`);
    expect(fives.map((p) => p.data.length)).toEqual([5, 5, 2]);
    expect(fives.flatMap(starts)).toEqual(Array.from({ length: 12 }, (_, i) => s(lastDay + i * HOUR)));
    const whole = await pages(fx.ops, `bucket_width=1h&limit=168&start_time=${s(today - 7 * DAY)}&end_time=${s(today)}`);
    expect(whole.map((p) => p.data.length)).toEqual([168]);
    const month = await pages(fx.ops, `limit=31&start_time=${s(today - 40 * DAY)}&end_time=${s(today)}`);
    expect(month.map((p) => p.data.length)).toEqual([31, 9]);
    expect(requests(month)).toBe(45 + 24);
  });

  it("pages a user's own usage the same way", async () => {
    const alice = await fx.user("alice");
    const ps = await pages(alice, `limit=4&start_time=${s(first)}&end_time=${s(today)}&group_by=user_id`);
    expect(ps.map((p) => p.data.length)).toEqual([4, 4, 2]);
    expect(requests(ps)).toBe(45);
    expect(new Set(ps.flatMap((p) => p.data.flatMap((b) => b.results.map((r) => r.user_id))))).toEqual(new Set(["alice"]));
  });

  it("refuses a limit outside its width's bounds or not a whole number, naming limit", async () => {
    const range = `start_time=${s(first)}&end_time=${s(today)}`;
    for (const q of ["limit=0", "limit=32", "bucket_width=1h&limit=169", "limit=-1", "limit=7.5", "limit=abc", "limit=", "limit=3&limit=4"]) {
      const r = await fx.ops.get(`/usage?${range}&${q}`);
      expect(r.status, q).toBe(400);
      expect(r.error, q).toMatchObject({ code: "invalid_field", param: "limit" });
      expect(r.error.message, q).toMatch(/limit/);
    }
  });

  it("refuses a page that is not a cursor, or one of another query, naming page", async () => {
    const range = `start_time=${s(first)}&end_time=${s(today)}`;
    const next = (await fx.ops.get<Page>(`/usage?${range}`)).body.next_page ?? "";
    const forged = (text: string): string => Buffer.from(text).toString("base64url");
    const cases: [string, RegExp][] = [
      ["not a cursor!", /next_page of an earlier answer/],
      ["", /next_page of an earlier answer/],
      [forged("1d:abc"), /next_page of an earlier answer/],
      // Another width's cursor, one outside this range, one inside but not on a bucket's start.
      [next, /another query/],
      [forged(`1d:${today + DAY}`), /another query/],
      [forged(`1d:${first + 1}`), /another query/],
    ];
    for (const [i, [page, message]] of cases.entries()) {
      const q = i === 3 ? `bucket_width=1h&${range}` : range;
      const r = await fx.ops.get(`/usage?${q}&page=${encodeURIComponent(page)}`);
      expect(r.status, page).toBe(400);
      expect(r.error, page).toMatchObject({ code: "invalid_field", param: "page" });
      expect(r.error.message, page).toMatch(message);
    }
    // The same cursor with its own query is fine.
    expect((await fx.ops.get(`/usage?${range}&page=${encodeURIComponent(next)}`)).status).toBe(200);
  });
});
