/**
 * `patgate usage` (GET /usage) and `patgate limits` (GET /me/limits): token
 * and request usage per bucket, and how much of each limit is used now.
 * `--json` prints the API's answer, `--csv` one row per bucket and group.
 */
import type { Command, Ctx } from "./command.ts";
import { UsageError } from "./command.ts";
import { table } from "./format.ts";
import { parseDuration } from "../util/duration.ts";

interface UsageResult {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly input_cached_tokens: number;
  readonly num_model_requests: number;
  readonly estimated_requests: number;
  readonly estimated_input_tokens: number;
  readonly estimated_output_tokens: number;
  readonly api_key_id: string | null;
  readonly user_id: string | null;
  readonly model: string | null;
  readonly operation: string | null;
  readonly domain_id: string | null;
}

interface UsagePage {
  readonly object: "page";
  readonly data: readonly { readonly start_time: number; readonly end_time: number; readonly results: readonly UsageResult[] }[];
  readonly has_more: boolean;
  readonly next_page: string | null;
}

/** Every page of the range, as one page (`--json` prints it so: the whole range, has_more false). */
async function allPages(c: Ctx, query: Record<string, string | undefined>): Promise<UsagePage> {
  const data: UsagePage["data"][number][] = [];
  let page: string | undefined;
  for (;;) {
    // The most buckets the API gives per page (168 hourly, 31 daily): fewest round trips.
    const r = await c.api.call<UsagePage>("GET", "/usage", { query: { ...query, limit: query.bucket_width === "1h" ? "168" : "31", page } });
    data.push(...r.data);
    if (!r.has_more || r.next_page === null) return { object: "page", data, has_more: false, next_page: null };
    page = r.next_page;
  }
}

interface LimitUse {
  readonly user_id: string;
  readonly limits: readonly { policy: string; subject: string; pat_id: string | null; mode: string; dimensions: readonly { dimension: string; limit: number; used: number; remaining: number; resets_at: string | null }[] }[];
}

const GROUPS = ["api_key_id", "user_id", "model", "operation", "domain_id"] as const;
const CSV_HEAD = ["start_time", "end_time", ...GROUPS, "num_model_requests", "input_tokens", "output_tokens", "input_cached_tokens", "estimated_requests", "estimated_input_tokens", "estimated_output_tokens"];

/** `7d` (ago), an ISO time or Unix seconds → Unix seconds. */
function time(c: Ctx, name: string, v: string): string {
  if (/^\d{1,11}$/.test(v)) return v;
  const d = parseDuration(v);
  if (d.ok) return String(Math.floor((c.io.now() - d.ms) / 1000));
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--${name} "${v}" is not a duration ago (7d), an ISO time or Unix seconds`);
  return String(Math.floor(t / 1000));
}

function csvCell(v: string | number | null): string {
  const s = v === null ? "" : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const USAGE_COMMANDS: readonly Command[] = [
  {
    name: "usage",
    summary: "Token and request usage per hour or day (yours, or everyone's for an operator).",
    usage: "[--from T] [--to T] [--width 1h|1d] [--group-by G,…] [--user U] [--pat ID] [--csv]",
    api: true,
    options: {
      from: { type: "string", arg: "T", help: "start: a duration ago (7d), an ISO time or Unix seconds (default 7d)" },
      to: { type: "string", arg: "T", help: "end, in the same forms (default now)" },
      width: { type: "string", arg: "W", help: "bucket width: 1h or 1d (default 1d)" },
      "group-by": { type: "string", arg: "G", help: `comma-separated: ${GROUPS.join(", ")} (api_key_id is the PAT)` },
      user: { type: "string", arg: "U", help: "operators: one user's usage" },
      pat: { type: "string", arg: "ID", help: "one PAT's usage" },
      csv: { type: "boolean", help: "print CSV (one row per bucket and group)" },
    },
    notes: `Totals include requests whose answer reported no usage: they are charged their
reservation and counted again in the estimated_* columns.

Example:
  patgate usage --from 30d --group-by api_key_id,model --csv > usage.csv`,
    async run(c) {
      const width = c.str("width") ?? "1d";
      if (width !== "1h" && width !== "1d") throw new UsageError("--width is 1h or 1d");
      const query = {
        start_time: time(c, "from", c.str("from") ?? "7d"),
        end_time: c.str("to") === undefined ? undefined : time(c, "to", c.str("to") ?? ""),
        bucket_width: width,
        group_by: c.str("group-by"),
        user_id: c.str("user"),
        api_key_id: c.str("pat"),
      };
      const page = await allPages(c, query);
      if (c.json) {
        c.printJson(page);
        return 0;
      }
      const rows = page.data.flatMap((b) => b.results.map((r) => ({ b, r })));
      if (c.flag("csv")) {
        const lines = [CSV_HEAD.join(",")];
        for (const { b, r } of rows) {
          lines.push([b.start_time, b.end_time, ...GROUPS.map((g) => r[g]), r.num_model_requests, r.input_tokens, r.output_tokens, r.input_cached_tokens, r.estimated_requests, r.estimated_input_tokens, r.estimated_output_tokens].map(csvCell).join(","));
        }
        c.io.out(lines.join("\n") + "\n");
        return 0;
      }
      const groups = GROUPS.filter((g) => rows.some(({ r }) => r[g] !== null));
      const body = rows.map(({ b, r }) => [
        new Date(b.start_time * 1000).toISOString().slice(0, width === "1h" ? 16 : 10),
        ...groups.map((g) => r[g] ?? ""),
        String(r.num_model_requests), String(r.input_tokens), String(r.output_tokens), String(r.input_cached_tokens),
        r.estimated_requests === 0 ? "" : `${r.estimated_requests} req, ${r.estimated_input_tokens + r.estimated_output_tokens} tok`,
      ]);
      c.io.out(rows.length === 0 ? "No usage in this range.\n" : table(["bucket", ...groups, "requests", "input", "output", "cached", "estimated"], body));
      return 0;
    },
  },
  {
    name: "limits",
    summary: "How much of each limit your PATs use now (--user U for an operator).",
    usage: "[--user U]",
    api: true,
    options: { user: { type: "string", arg: "U", help: "operators: whose limits (required with an admin key)" } },
    async run(c) {
      const r = await c.api.call<LimitUse>("GET", "/me/limits", { query: { user_id: c.str("user") } });
      if (c.json) {
        c.printJson(r);
        return 0;
      }
      const rows = r.limits.flatMap((l) => l.dimensions.map((d) => [l.policy, l.pat_id ?? `user ${r.user_id}`, l.mode, d.dimension, `${d.used} / ${d.limit}`, d.resets_at ?? ""]));
      c.io.out(rows.length === 0 ? `No limits apply to ${r.user_id}'s PATs.\n` : table(["policy", "counts", "mode", "limit", "used", "oldest leaves"], rows));
      return 0;
    },
  },
];
