/**
 * `GET /admin/pats`: every user's PATs for operators, with the filters an
 * operator's review needs (user, domain, status, never used, expiring soon).
 *
 * The Store has no "all PATs" listing; users are found through the domains'
 * memberships (plus the `user_id` asked for), which reaches every PAT that can
 * still do anything: a user who belongs to no domain has no rights to use.
 */
import { parseDuration } from "../util/duration.ts";
import type { AdminDeps, Call, Endpoint } from "./call.ts";
import { queryInt, queryParam } from "./http.ts";
import { deny, ok, type Reply } from "./reply.ts";
import { userId } from "./validate.ts";
import { PAT_STATUSES, patStatus, patView } from "./views.ts";

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;

export const OPERATOR_PAT_ENDPOINTS: readonly Endpoint[] = [
  { method: "GET", path: "/admin/pats", handler: { access: "operator", run: listAll }, query: ["user_id", "domain", "status", "unused", "expiring_within", "name", "offset", "limit"] },
];

async function listAll(d: AdminDeps, c: Call): Promise<Reply> {
  const params: Record<string, string | undefined> = {};
  for (const k of ["user_id", "domain", "status", "unused", "expiring_within", "name"]) {
    const r = queryParam(c.query, k);
    if (!r.ok) return r;
    params[k] = r.value === "" ? undefined : r.value;
  }
  const offset = queryInt(c.query, "offset", 0, 0, 1_000_000_000);
  if (!offset.ok) return offset;
  const limit = queryInt(c.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT);
  if (!limit.ok) return limit;
  const { status, unused, domain, name } = params;
  const user = params.user_id;
  if (user !== undefined) {
    const u = userId(user, "user_id");
    if (!u.ok) return u;
  }
  if (status !== undefined && !(PAT_STATUSES as readonly string[]).includes(status)) {
    return deny("invalid_field", `The query parameter "status" must be one of ${PAT_STATUSES.join(", ")}.`, "status");
  }
  if (unused !== undefined && unused !== "true" && unused !== "false") return deny("invalid_field", 'The query parameter "unused" must be true or false.', "unused");
  let expiringMs: number | null = null;
  if (params.expiring_within !== undefined) {
    const r = parseDuration(params.expiring_within);
    if (!r.ok) return deny("invalid_field", `The query parameter "expiring_within" is not a duration (e.g. 7d): ${r.error}.`, "expiring_within");
    expiringMs = r.ms;
  }

  const users = new Set<string>();
  if (user !== undefined) users.add(user);
  else for (const dom of await d.store.listDomains()) for (const m of await d.store.listMembers(dom.id)) users.add(m.userId);
  const now = d.now();
  const needle = name?.toLowerCase();
  const all = [];
  for (const u of [...users].sort()) {
    for (const p of await d.store.listPatsByUser(u)) {
      if (status !== undefined && patStatus(p, now) !== status) continue;
      if (unused === "true" && p.lastUsedAt !== null) continue;
      if (unused === "false" && p.lastUsedAt === null) continue;
      if (expiringMs !== null && (patStatus(p, now) !== "active" || p.expiresAt - now > expiringMs)) continue;
      if (domain !== undefined && !p.scopes.some((s) => s.domainId === domain)) continue;
      if (needle !== undefined && !p.name.toLowerCase().includes(needle)) continue;
      all.push(p);
    }
  }
  all.sort((a, b) => b.issuedAt - a.issuedAt || (a.id < b.id ? -1 : 1));
  const page = all.slice(offset.value, offset.value + limit.value);
  return ok({ total: all.length, offset: offset.value, limit: limit.value, pats: page.map((p) => patView(p, now)) });
}
