/**
 * `patgate pat …`: the PAT lifecycle over /pats. A new token (create, rotate)
 * goes to stdout alone on one line, so `TOKEN=$(patgate pat create …)` captures
 * exactly it; what people read about it goes to stderr.
 */
import type { Command, Ctx, Opt } from "./command.ts";
import { UsageError } from "./command.ts";
import { fields, relative, table, when } from "./format.ts";
import { formatScope, parseScope, type ScopeJson } from "./scope-arg.ts";

interface PatJson {
  readonly id: string;
  readonly user_id: string;
  readonly name: string;
  readonly description: string;
  readonly scopes: readonly ScopeJson[];
  readonly issued_at: string;
  readonly expires_at: string;
  readonly updated_at: string;
  readonly last_used_at: string | null;
  readonly revoked_at: string | null;
  readonly status: string;
  readonly previous_secret_expires_at: string | null;
  readonly limits?: Readonly<Record<string, number>> | null;
  readonly token?: string;
  /** On create: scopes that grant nothing now (the user's membership or roles lack them). */
  readonly warnings?: readonly string[];
}

interface PatList {
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly pats: readonly PatJson[];
}

const USER: Opt = { type: "string", arg: "U", help: "whose PATs (operators; required for create and list with an admin key)" };
const SCOPE: Opt = { type: "string", multiple: true, arg: "S", help: "DOMAIN:TYPE:ID:OP, or TYPE:ID:OP with --domain" };
const DOMAIN: Opt = { type: "string", arg: "D", help: "the domain of every --scope, which is then written TYPE:ID:OP" };

const SCOPE_NOTES = `Scopes are DOMAIN:TYPE:ID:OP: the domain is the first field, the entity type the
second, the operation the LAST, and the entity id everything in between, so ids
may contain ":" (demo:models:llama3:8b:llm_chat_completions). ID "*" means any
entity of the type (quote it in the shell); TYPE "domains" with the domain as ID
covers everything in the domain. With --domain D, write TYPE:ID:OP.`;

const LIMIT_OPTS: Record<string, Opt> = {
  rpm: { type: "string", arg: "N", help: "the PAT's own requests per minute (never looser than policy)" },
  tpm: { type: "string", arg: "N", help: "the PAT's own LLM tokens per minute" },
  tpd: { type: "string", arg: "N", help: "the PAT's own LLM tokens per day" },
  concurrent: { type: "string", arg: "N", help: "the PAT's own concurrent requests" },
};

/** The PAT's own limits from --rpm/--tpm/--tpd/--concurrent; undefined when none is given. */
function ownLimits(c: Ctx): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const [opt, field] of [["rpm", "requests_per_minute"], ["tpm", "tokens_per_minute"], ["tpd", "tokens_per_day"], ["concurrent", "concurrent"]] as const) {
    const v = c.str(opt);
    if (v === undefined) continue;
    if (!/^\d{1,13}$/.test(v) || Number(v) < 1) throw new UsageError(`--${opt} must be a whole number of at least 1`);
    out[field] = Number(v);
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

const path = (id: string, rest = ""): string => `/pats/${encodeURIComponent(id)}${rest}`;
const who = (c: Ctx): { user_id: string | undefined } => ({ user_id: c.str("user") });

function scopes(c: Ctx): ScopeJson[] {
  const list = c.list("scope");
  if (list.length === 0) throw new UsageError("missing --scope");
  return list.map((s) => parseScope(s, c.str("domain")));
}

/** The detail view of one PAT. */
function showPat(c: Ctx, p: PatJson): void {
  const now = c.io.now();
  const rows: [string, string][] = [
    ["id", p.id],
    ["name", p.name],
    ["user", p.user_id],
    ["status", p.status],
    ["description", p.description === "" ? "-" : p.description],
    ["scopes", p.scopes.length === 0 ? "(none: the PAT grants nothing)" : p.scopes.map(formatScope).join("\n")],
    ["issued", when(p.issued_at, now)],
    ["expires", when(p.expires_at, now)],
    ["updated", when(p.updated_at, now)],
    ["last used", when(p.last_used_at, now)],
  ];
  if (p.revoked_at !== null) rows.push(["revoked", when(p.revoked_at, now)]);
  if (p.previous_secret_expires_at !== null) rows.push(["old secret until", when(p.previous_secret_expires_at, now)]);
  if (p.limits != null) rows.push(["own limits", Object.entries(p.limits).map(([k, v]) => `${k} ${v}`).join(", ")]);
  c.io.out(fields(rows));
}

/** A new token: alone on stdout (or everything as JSON); the summary for people on stderr. */
function printNewToken(c: Ctx, p: PatJson, verb: string): number {
  if (c.json) {
    c.printJson(p);
    for (const w of p.warnings ?? []) c.io.err(`warning: ${w}\n`);
    return 0;
  }
  c.io.out(`${p.token ?? ""}\n`);
  const scopeText = p.scopes.length === 0 ? "none" : p.scopes.map(formatScope).join(", ");
  c.io.err(
    `${verb} PAT "${p.name}" (id ${p.id}) for ${p.user_id}, expires ${p.expires_at} (${relative(p.expires_at, c.io.now())}).\n` +
      `Scopes: ${scopeText}\n` +
      (p.previous_secret_expires_at === null ? "" : `The old secret keeps working until ${p.previous_secret_expires_at}.\n`) +
      (p.warnings ?? []).map((w) => `warning: ${w}\n`).join("") +
      "The token is printed on stdout only this once: store it now.\n",
  );
  return 0;
}

/** Prints the API's answer as JSON, or `text` for people. */
function done(c: Ctx, body: unknown, text: string): number {
  if (c.json) c.printJson(body);
  else c.io.out(text + "\n");
  return 0;
}

export const PAT_COMMANDS: readonly Command[] = [
  {
    name: "pat create",
    summary: "Create a PAT; prints its token once, alone on stdout (the summary goes to stderr).",
    usage: "--name N --duration D --scope S [--scope S]… [--description T] [--rpm N] [--tpm N] [--tpd N] [--concurrent N] [--user U]",
    api: true,
    options: {
      name: { type: "string", arg: "N", help: "a name unique among the user's PATs", required: true },
      duration: { type: "string", arg: "D", help: "how long it is valid: 90m, 720h, 30d, 1y", required: true },
      scope: SCOPE,
      domain: DOMAIN,
      description: { type: "string", arg: "T", help: "what it is for" },
      ...LIMIT_OPTS,
      user: USER,
    },
    notes: `${SCOPE_NOTES}\n\nExample:\n  TOKEN=$(patgate pat create --user alice --name laptop --duration 30d \\\n    --scope demo:models:llama3:llm_chat_completions)`,
    async run(c) {
      const limits = ownLimits(c);
      const body = { name: c.str("name"), duration: c.str("duration"), scopes: scopes(c), ...(c.str("description") === undefined ? {} : { description: c.str("description") }), ...(limits === undefined ? {} : { limits }) };
      const p = await c.api.call<PatJson>("POST", "/pats", { query: who(c), body });
      return printNewToken(c, p, "Created");
    },
  },
  {
    name: "pat list",
    summary: "List PATs (yours, or --user's for an operator).",
    usage: "[--status active|expired|revoked] [--name N] [--limit N] [--offset N] [--user U] [-q]",
    api: true,
    options: {
      status: { type: "string", arg: "S", help: "only active, expired or revoked PATs" },
      name: { type: "string", arg: "N", help: "only PATs whose name contains N (any case)" },
      limit: { type: "string", arg: "N", help: "at most N PATs (1–100, default 20)" },
      offset: { type: "string", arg: "N", help: "skip the first N (without --limit and --offset: every PAT, page by page)" },
      user: USER,
      quiet: { type: "boolean", short: "q", help: "print only the ids, one per line" },
    },
    async run(c) {
      const query = { ...who(c), status: c.str("status"), name: c.str("name"), limit: c.str("limit"), offset: c.str("offset") };
      // Without --limit/--offset, every page: a script reading `pat list -q` must see every PAT, not the first 20.
      const r = c.str("limit") === undefined && c.str("offset") === undefined ? await allPages(c, query) : await c.api.call<PatList>("GET", "/pats", { query });
      if (c.json) return done(c, r, "");
      if (c.flag("quiet")) {
        c.io.out(r.pats.map((p) => `${p.id}\n`).join(""));
        return 0;
      }
      if (r.pats.length === 0) {
        c.io.out(r.total === 0 ? "No PATs.\n" : `No PATs at offset ${r.offset} (${r.total} in all).\n`);
        return 0;
      }
      const now = c.io.now();
      const rows = r.pats.map((p) => [p.id, p.name, p.status, relative(p.expires_at, now), relative(p.last_used_at, now), scopeSummary(p.scopes)]);
      c.io.out(table(["ID", "NAME", "STATUS", "EXPIRES", "LAST USED", "SCOPES"], rows));
      if (r.total > r.offset + r.pats.length || r.offset > 0) c.io.err(`${r.offset + 1}–${r.offset + r.pats.length} of ${r.total}; see --offset and --limit\n`);
      return 0;
    },
  },
  {
    name: "pat show",
    summary: "Show one PAT (never its token).",
    usage: "ID [--user U]",
    args: ["ID"],
    api: true,
    options: { user: USER },
    async run(c) {
      const p = await c.api.call<PatJson>("GET", path(c.arg(0)), { query: who(c) });
      if (c.json) return done(c, p, "");
      showPat(c, p);
      return 0;
    },
  },
  {
    name: "pat rotate",
    summary: "Give a PAT a new secret and validity; prints the new token once, alone on stdout.",
    usage: "ID --duration D [--grace G] [--rpm N] [--tpm N] [--tpd N] [--concurrent N] [--no-limits] [--user U]",
    args: ["ID"],
    api: true,
    options: {
      duration: { type: "string", arg: "D", help: "the new validity: 90m, 720h, 30d, 1y", required: true },
      grace: { type: "string", arg: "G", help: "keep the old secret working this long (never past its old expiry)" },
      ...LIMIT_OPTS,
      "no-limits": { type: "boolean", help: "remove the PAT's own limits (policies still apply)" },
      user: USER,
    },
    async run(c) {
      const limits = ownLimits(c);
      if (limits !== undefined && c.flag("no-limits")) throw new UsageError("--no-limits and a limit option contradict each other");
      const body = { duration: c.str("duration"), ...(c.str("grace") === undefined ? {} : { grace_period: c.str("grace") }), ...(limits === undefined ? (c.flag("no-limits") ? { limits: null } : {}) : { limits }) };
      const p = await c.api.call<PatJson>("PATCH", path(c.arg(0), "/secret/reset"), { query: who(c), body });
      return printNewToken(c, p, "Rotated");
    },
  },
  {
    name: "pat revoke",
    summary: "Revoke a PAT: it stops working at once, everywhere. Final.",
    usage: "ID [--user U]",
    args: ["ID"],
    api: true,
    options: { user: USER },
    async run(c) {
      const p = await c.api.call<PatJson>("PATCH", path(c.arg(0), "/secret/revoke"), { query: who(c) });
      return done(c, p, `Revoked PAT "${p.name}" (${p.id}).`);
    },
  },
  {
    name: "pat delete",
    summary: "Delete a PAT, or with --all every PAT of the user.",
    usage: "(ID | --all) [--user U]",
    optionalArgs: ["ID"],
    api: true,
    options: { all: { type: "boolean", help: "delete every PAT of the user (yours, or --user's for an operator)" }, user: USER },
    async run(c) {
      if (c.flag("all")) {
        if (c.args.length > 0) throw new UsageError("give an ID or --all, not both");
        const r = await c.api.call<{ deleted: number }>("DELETE", "/pats", { query: who(c) });
        return done(c, r, `Deleted ${r.deleted} PAT${r.deleted === 1 ? "" : "s"}${c.str("user") === undefined ? "" : ` of ${c.str("user") ?? ""}`}.`);
      }
      if (c.args.length === 0) throw new UsageError("missing ID (or --all)");
      await c.api.call("DELETE", path(c.arg(0)), { query: who(c) });
      return done(c, { id: c.arg(0), deleted: true }, `Deleted PAT ${c.arg(0)}.`);
    },
  },
  {
    name: "pat rename",
    summary: "Rename a PAT.",
    usage: "ID NAME [--user U]",
    args: ["ID", "NAME"],
    api: true,
    options: { user: USER },
    async run(c) {
      const p = await c.api.call<PatJson>("PATCH", path(c.arg(0), "/name"), { query: who(c), body: { name: c.arg(1) } });
      return done(c, p, `Renamed PAT ${p.id} to "${p.name}".`);
    },
  },
  {
    name: "pat describe",
    summary: 'Set a PAT\'s description ("" clears it).',
    usage: "ID TEXT [--user U]",
    args: ["ID", "TEXT"],
    api: true,
    options: { user: USER },
    async run(c) {
      const p = await c.api.call<PatJson>("PATCH", path(c.arg(0), "/description"), { query: who(c), body: { description: c.arg(1) } });
      return done(c, p, `Updated the description of PAT ${p.id}.`);
    },
  },
  {
    name: "pat scope list",
    summary: "List a PAT's scopes, one per line.",
    usage: "ID [--ids] [--user U]",
    args: ["ID"],
    api: true,
    options: { ids: { type: "boolean", help: "print each scope's id first (for pat scope remove --id)" }, user: USER },
    async run(c) {
      const r = await c.api.call<{ total: number; scopes: Array<ScopeJson & { id: string }> }>("GET", path(c.arg(0), "/scope"), { query: who(c) });
      // One scope per line, as --scope takes it; with --ids, each after its id (what `pat scope remove --id` takes).
      const line = (s: ScopeJson & { id: string }): string => (c.flag("ids") ? `${s.id}  ${formatScope(s)}` : formatScope(s));
      return done(c, r, r.scopes.length === 0 ? "(none: the PAT grants nothing)" : r.scopes.map(line).join("\n"));
    },
  },
  scopeEdit("add", "Add scopes to a PAT (you can only grant what you hold)."),
  scopeEdit("remove", "Remove scopes from a PAT; takes effect at once, everywhere."),
  {
    name: "pat scope clear",
    summary: "Remove every scope from a PAT: it then grants nothing.",
    usage: "ID [--user U]",
    args: ["ID"],
    api: true,
    options: { user: USER },
    async run(c) {
      await c.api.call("DELETE", path(c.arg(0), "/scope"), { query: who(c) });
      return done(c, { id: c.arg(0), scopes: [] }, `Removed every scope from PAT ${c.arg(0)}; it grants nothing now.`);
    },
  },
];

function scopeEdit(verb: "add" | "remove", summary: string): Command {
  const byId = verb === "remove";
  return {
    name: `pat scope ${verb}`,
    summary,
    usage: byId ? "ID (--scope S [--scope S]… [--domain D] | --id SCOPE_ID…) [--user U]" : "ID --scope S [--scope S]… [--domain D] [--user U]",
    args: ["ID"],
    api: true,
    options: {
      scope: byId ? SCOPE : { ...SCOPE, required: true },
      domain: DOMAIN,
      ...(byId ? { id: { type: "string", multiple: true, arg: "SCOPE_ID", help: "a scope's id, as `pat scope list` shows it (instead of --scope)" } } : {}),
      user: USER,
    },
    notes: SCOPE_NOTES,
    async run(c) {
      const ids = byId ? c.list("id", true) : [];
      if (ids.length > 0 && c.list("scope").length > 0) throw new UsageError("give --scope or --id, not both");
      const body = ids.length > 0 ? { scopes_id: ids } : { scopes: scopes(c) };
      const p = await c.api.call<PatJson>("PATCH", path(c.arg(0), `/scope/${verb}`), { query: who(c), body });
      const list = p.scopes.length === 0 ? "  (none: the PAT grants nothing)" : p.scopes.map((s) => `  ${formatScope(s)}`).join("\n");
      return done(c, p, `PAT ${p.id} now has ${p.scopes.length} scope${p.scopes.length === 1 ? "" : "s"}:\n${list}`);
    },
  };
}

/** Every page of GET /pats, 100 at a time, as one list (stops at `total`, or at an empty page if PATs vanish meanwhile). */
async function allPages(c: Ctx, query: Record<string, string | undefined>): Promise<PatList> {
  const pats: PatJson[] = [];
  let page: PatList;
  do {
    page = await c.api.call<PatList>("GET", "/pats", { query: { ...query, limit: "100", offset: String(pats.length) } });
    pats.push(...page.pats);
  } while (page.pats.length > 0 && pats.length < page.total);
  return { total: page.total, offset: 0, limit: Math.max(pats.length, 1), pats };
}

function scopeSummary(list: readonly ScopeJson[]): string {
  if (list.length === 0) return "-";
  const shown = list.slice(0, 2).map(formatScope).join(", ");
  return list.length > 2 ? `${shown} +${list.length - 2}` : shown;
}
