/**
 * `GET /usage`: token and request totals from the usage buckets, shaped like
 * OpenAI's Usage API (`/organization/usage/completions`) so scripts written
 * for it can read it: a page of buckets, each with results grouped as asked.
 * Users see their own PATs' usage only; operators everyone's (or one user's
 * with `?user_id=`).
 *
 * Paged as OpenAI's is: `limit` buckets per page (default 7 daily or 24
 * hourly, at most 31 or 168), `has_more`, and `next_page`, an opaque cursor
 * the next request passes as `page` with the same parameters. A page reads
 * only its own buckets, so a long range costs one page at a time.
 */
import { WIDTH_MS, type BucketWidth, type UsageRow, addTotals, zeroTotals, type UsageTotals } from "../usage/buckets.ts";
import type { AdminDeps, Call, Endpoint } from "./call.ts";
import { queryInt, queryParam } from "./http.ts";
import { deny, ok, type Reply, type Result } from "./reply.ts";
import { userId as validUserId } from "./validate.ts";

/** Dimensions results can be grouped by; `api_key_id` is the PAT id, as OpenAI names API keys. */
export const GROUP_BY = ["api_key_id", "user_id", "model", "operation", "domain_id"] as const;
type Group = (typeof GROUP_BY)[number];

export const USAGE_ENDPOINTS: readonly Endpoint[] = [
  { method: "GET", path: "/usage", handler: { access: "any", run: usage }, query: ["start_time", "end_time", "bucket_width", "group_by", "user_id", "api_key_id", "limit", "page"] },
];

/** Buckets per page when `limit` is absent, and the most a page holds (OpenAI's numbers). */
export const PAGE_LIMITS: Readonly<Record<BucketWidth, { readonly def: number; readonly max: number }>> = { "1h": { def: 24, max: 168 }, "1d": { def: 7, max: 31 } };

/** One result of a bucket, in OpenAI's field names plus patgate's own (operation, domain, estimates). */
export interface UsageResult {
  readonly object: "organization.usage.completions.result";
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly input_cached_tokens: number;
  readonly num_model_requests: number;
  /** Of the totals: requests without reported usage, charged their reservation. */
  readonly estimated_requests: number;
  readonly estimated_input_tokens: number;
  readonly estimated_output_tokens: number;
  readonly api_key_id: string | null;
  readonly user_id: string | null;
  readonly model: string | null;
  readonly operation: string | null;
  readonly domain_id: string | null;
  readonly project_id: null;
  readonly batch: null;
}

async function usage(d: AdminDeps, c: Call): Promise<Reply> {
  if (d.usage === null) return deny("invalid_field", "Usage metering is off on this gateway (usage.enabled).");
  const q = parseQuery(c, d.now());
  if (!q.ok) return q;
  const { width, from, to, groups, user, pat } = q.value;
  const rows = await d.usage.read(width, from, to, user);
  const more = to < q.value.rangeEnd;
  const byStart = new Map<number, Map<string, { key: Record<Group, string | null>; totals: UsageTotals }>>();
  for (const r of rows) {
    if (pat !== undefined && r.patId !== pat) continue;
    let b = byStart.get(r.start);
    if (b === undefined) byStart.set(r.start, (b = new Map<string, { key: Record<Group, string | null>; totals: UsageTotals }>()));
    const key = groupKey(r, groups);
    const id = GROUP_BY.map((g) => key[g] ?? "").join("\x1f");
    let e = b.get(id);
    if (e === undefined) b.set(id, (e = { key, totals: zeroTotals() }));
    addTotals(e.totals, r.totals);
  }
  const data = [];
  for (let s = from; s < to; s += WIDTH_MS[width]) {
    const results = [...(byStart.get(s)?.values() ?? [])].map((e) => result(e.key, e.totals));
    data.push({ object: "bucket", start_time: s / 1000, end_time: (s + WIDTH_MS[width]) / 1000, results });
  }
  return ok({ object: "page", data, has_more: more, next_page: more ? cursor(width, to) : null });
}

function groupKey(r: UsageRow, groups: ReadonlySet<Group>): Record<Group, string | null> {
  return {
    api_key_id: groups.has("api_key_id") ? r.patId : null,
    user_id: groups.has("user_id") ? r.userId : null,
    model: groups.has("model") ? r.model : null,
    operation: groups.has("operation") ? r.operation : null,
    domain_id: groups.has("domain_id") ? r.domainId : null,
  };
}

function result(k: Record<Group, string | null>, t: UsageTotals): UsageResult {
  return {
    object: "organization.usage.completions.result",
    input_tokens: t.inputTokens,
    output_tokens: t.outputTokens,
    input_cached_tokens: t.cachedTokens,
    num_model_requests: t.requests,
    estimated_requests: t.estimatedRequests,
    estimated_input_tokens: t.estimatedInputTokens,
    estimated_output_tokens: t.estimatedOutputTokens,
    ...k,
    project_id: null,
    batch: null,
  };
}

interface UsageQuery {
  readonly width: BucketWidth;
  /** This page's buckets: those starting in [from, to). */
  readonly from: number;
  readonly to: number;
  /** Where the whole range ends: more pages follow while `to` is before it. */
  readonly rangeEnd: number;
  readonly groups: ReadonlySet<Group>;
  /** Whose rows: the caller's own for users; null: all (operators). */
  readonly user: string | null;
  readonly pat: string | undefined;
}

function parseQuery(c: Call, now: number): Result<UsageQuery> {
  const w = queryParam(c.query, "bucket_width");
  if (!w.ok) return w;
  const width = (w.value ?? "1d") as BucketWidth;
  if (width !== "1h" && width !== "1d") return deny("invalid_field", 'bucket_width must be "1h" or "1d".', "bucket_width");
  const start = unixSeconds(c, "start_time", null);
  if (!start.ok) return start;
  const end = unixSeconds(c, "end_time", Math.ceil(now / 1000));
  if (!end.ok) return end;
  const span = WIDTH_MS[width];
  // Buckets are whole hours / days (UTC): the range is widened to them.
  const from = Math.floor((start.value * 1000) / span) * span;
  const to = Math.ceil((end.value * 1000) / span) * span;
  if (to <= from) return deny("invalid_field", "end_time must be after start_time.", "end_time");
  const limit = queryInt(c.query, "limit", PAGE_LIMITS[width].def, 1, PAGE_LIMITS[width].max);
  if (!limit.ok) return limit;
  const page = pageStart(c, width, from, to);
  if (!page.ok) return page;
  const pageEnd = Math.min(to, page.value + limit.value * span);
  const g = queryParam(c.query, "group_by");
  if (!g.ok) return g;
  const groups = new Set<Group>();
  for (const part of (g.value ?? "").split(",").map((x) => x.trim()).filter((x) => x !== "")) {
    const name = part === "pat_id" ? "api_key_id" : part;
    if (!(GROUP_BY as readonly string[]).includes(name)) return deny("invalid_field", `group_by takes ${GROUP_BY.join(", ")} (comma-separated).`, "group_by");
    groups.add(name as Group);
  }
  const u = queryParam(c.query, "user_id");
  if (!u.ok) return u;
  let user: string | null = null;
  if (c.caller.kind === "user") {
    if (u.value !== undefined && u.value !== c.caller.userId) return deny("operator_only", "Only operators may read another user's usage (user_id).", "user_id");
    user = c.caller.userId;
  } else if (u.value !== undefined) {
    const v = validUserId(u.value, "user_id");
    if (!v.ok) return v;
    user = v.value;
  }
  const p = queryParam(c.query, "api_key_id");
  if (!p.ok) return p;
  return { ok: true, value: { width, from: page.value, to: pageEnd, rangeEnd: to, groups, user, pat: p.value } };
}

// A cursor is the width and start of the first bucket of the page it asks for, base64url'd: opaque to callers, checked against the query it comes back with.
const CURSOR = /^(1h|1d):(\d{1,15})$/;

function cursor(width: BucketWidth, start: number): string {
  return Buffer.from(`${width}:${start}`).toString("base64url");
}

/** Where this page starts: the range's start, or the `page` cursor's bucket, which must be one of this query's. */
function pageStart(c: Call, width: BucketWidth, from: number, to: number): Result<number> {
  const r = queryParam(c.query, "page");
  if (!r.ok) return r;
  if (r.value === undefined) return { ok: true, value: from };
  const m = /^[A-Za-z0-9_-]{1,40}$/.test(r.value) ? CURSOR.exec(Buffer.from(r.value, "base64url").toString("latin1")) : null;
  if (m === null) return deny("invalid_field", "page must be the next_page of an earlier answer.", "page");
  const start = Number(m[2]);
  if (m[1] !== width || start < from || start >= to || start % WIDTH_MS[width] !== 0) {
    return deny("invalid_field", "page belongs to another query: pass next_page with the same start_time, end_time and bucket_width.", "page");
  }
  return { ok: true, value: start };
}

function unixSeconds(c: Call, name: string, def: number | null): Result<number> {
  const r = queryParam(c.query, name);
  if (!r.ok) return r;
  if (r.value === undefined) {
    if (def === null) return deny("invalid_field", `${name} (Unix seconds) is required.`, name);
    return { ok: true, value: def };
  }
  const n = /^\d{1,11}$/.test(r.value) ? Number(r.value) : NaN;
  if (!Number.isSafeInteger(n)) return deny("invalid_field", `${name} must be Unix seconds (a whole number).`, name);
  return { ok: true, value: n };
}
