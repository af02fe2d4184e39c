/**
 * The `/pats` resource (SPEC §5, the reference system's layout). A user acts on
 * their own PATs; an operator on any user's, naming the user with `?user_id=`.
 * Another user's PAT answers exactly like an unknown id. Every edit is a
 * compare-and-set on the record's version, re-applied on conflict.
 */
import { formatScope, sameScope, scopeId, type Scope } from "../scopes/scope.ts";
import type { PatRecord } from "../store/types.ts";
import { newPat, rotatedPat } from "../tokens/issue.ts";
import { formatDuration, parseDuration } from "../util/duration.ts";
import { param, type AdminDeps, type Call, type Endpoint, type Handler } from "./call.ts";
import { queryInt, queryParam } from "./http.ts";
import { created, deny, noContent, ok, type Denial, type Reply, type Result } from "./reply.ts";
import { BodyFields, MAX_SCOPES, description, patName, scopeList, stringList, userId } from "./validate.ts";
import { PAT_STATUSES, iso, patScopeView, patStatus, patView, scopeView, type PatStatus } from "./views.ts";
import { patLimitsField, patLimitsView } from "./pat-limits.ts";

// Attempts at a compare-and-set edit before answering edit_conflict; between
// attempts a short random pause, so contenders (in any process) spread out.
const EDIT_ATTEMPTS = 16;
const EDIT_BACKOFF_MS = 4;
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
const PAT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// One body for "unknown" and "someone else's": nothing tells them apart.
const NOT_FOUND = deny("pat_not_found");

const any = (run: Handler["run"]): Handler => ({ access: "any", run });

const USER = ["user_id"];

export const PAT_ENDPOINTS: readonly Endpoint[] = [
  { method: "POST", path: "/pats", handler: any(create), query: USER },
  { method: "GET", path: "/pats", handler: any(list), query: ["user_id", "offset", "limit", "name", "status"] },
  { method: "DELETE", path: "/pats", handler: any(removeAll), query: USER },
  { method: "GET", path: "/pats/{id}", handler: any(show), query: USER },
  { method: "PATCH", path: "/pats/{id}/name", handler: any(rename), query: USER },
  { method: "PATCH", path: "/pats/{id}/description", handler: any(setDescription), query: USER },
  { method: "DELETE", path: "/pats/{id}", handler: any(remove), query: USER },
  { method: "PATCH", path: "/pats/{id}/secret/reset", handler: any(rotate), query: USER },
  { method: "PATCH", path: "/pats/{id}/secret/revoke", handler: any(revoke), query: USER },
  { method: "GET", path: "/pats/{id}/scope", handler: any(listScopes), query: USER },
  { method: "PATCH", path: "/pats/{id}/scope/add", handler: any(addScopes), query: USER },
  { method: "PATCH", path: "/pats/{id}/scope/remove", handler: any(removeScopes), query: USER },
  { method: "DELETE", path: "/pats/{id}/scope", handler: any(clearScopes), query: USER },
];

// ---- whose PATs ---------------------------------------------------------------

/** The user whose PATs the call acts on; null: an operator who named nobody (any PAT by id). */
function subject(c: Call): Result<string | null> {
  const q = queryParam(c.query, "user_id");
  if (!q.ok) return q;
  if (c.caller.kind === "user") {
    if (q.value !== undefined && q.value !== c.caller.userId) return deny("operator_only", "Only operators may act on another user's PATs (user_id).", "user_id");
    return { ok: true, value: c.caller.userId };
  }
  return q.value === undefined ? { ok: true, value: null } : userId(q.value, "user_id");
}

/** As subject(), but operators must name the user (create, list, delete all). */
function namedSubject(c: Call): Result<string> {
  const who = subject(c);
  if (!who.ok) return who;
  if (who.value === null) return deny("invalid_field", "Operators name the user whose PATs these are: add ?user_id=<user>.", "user_id");
  return { ok: true, value: who.value };
}

/** The PAT if the caller may see it; otherwise the one not-found answer. */
async function find(d: AdminDeps, c: Call): Promise<Result<PatRecord>> {
  const who = subject(c);
  if (!who.ok) return who;
  const id = param(c, "id");
  if (!PAT_ID.test(id)) return NOT_FOUND;
  const rec = await d.store.getPat(id);
  if (rec === null || (who.value !== null && rec.userId !== who.value)) return NOT_FOUND;
  return { ok: true, value: rec };
}

/** An edit as committed: the record it replaced and the one now stored (the same when nothing changed). */
interface Edited {
  readonly before: PatRecord;
  readonly after: PatRecord;
}

/**
 * Applies `change` to the PAT with compare-and-set, re-reading and re-applying
 * on a concurrent write, so no edit is lost. `change` returning the same record
 * means "nothing to do".
 */
async function edit(d: AdminDeps, c: Call, change: (rec: PatRecord, now: number) => Result<PatRecord>): Promise<Result<Edited>> {
  for (let attempt = 0; attempt < EDIT_ATTEMPTS; attempt++) {
    const found = await find(d, c);
    if (!found.ok) return found;
    const cur = found.value;
    const now = d.now();
    const next = change(cur, now);
    if (!next.ok) return next;
    if (next.value === cur) return { ok: true, value: { before: cur, after: cur } };
    const rec: PatRecord = { ...next.value, updatedAt: now };
    const r = await d.store.replacePat(rec, cur.version);
    if (r === "ok") return { ok: true, value: { before: cur, after: { ...rec, version: cur.version + 1 } } };
    if (r === "not_found") return NOT_FOUND;
    if (r === "name_taken") return nameTaken(rec.name);
    await sleep(Math.random() * EDIT_BACKOFF_MS * (attempt + 1));
  }
  return deny("edit_conflict");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function nameTaken(name: string): Denial {
  return deny("name_taken", `There is already a PAT named "${name}" for this user; choose another name.`, "name");
}

// ---- audit -----------------------------------------------------------------------
// What audit events say about a PAT: picked field by field, never the record
// itself, so no secret hash can reach a log line or the audit stream.

const scopesOf = (p: PatRecord): unknown[] => p.scopes.map(scopeView);

/** Until when the previous secret still works after a rotation; null when there is none. */
function graceUntil(p: PatRecord): string | null {
  return p.prevSecretHash !== null && p.prevSecretExpiresAt !== null ? iso(p.prevSecretExpiresAt) : null;
}

/** Everything a PAT grants and is called, for create and delete events. */
function patSummary(p: PatRecord): Record<string, unknown> {
  return { name: p.name, description: p.description, scopes: scopesOf(p), expires_at: iso(p.expiresAt), revoked: p.revoked, ...(p.limits === undefined ? {} : { limits: patLimitsView(p.limits) }) };
}

/** The target of a PAT event. */
function target(p: PatRecord): { pat_id: string; user_id: string } {
  return { pat_id: p.id, user_id: p.userId };
}

// ---- durations and scopes -------------------------------------------------------

/** A validity period people type (`30d`, `720h`, `1y`, `90m`), within the operator's maximum. */
function lifetime(d: AdminDeps, f: BodyFields, field: string, opts: { required: boolean }): number | undefined {
  const max = d.settings.security.maxTokenLifetimeMs;
  const limit = `${formatDuration(max)} (security.max_token_lifetime)`;
  const v = f.raw(field);
  if (v === undefined) {
    if (opts.required) f.fail(deny("invalid_duration", `The field "${field}" is required: how long the token is valid, e.g. 30d; at most ${limit}.`, field));
    return undefined;
  }
  if (typeof v !== "string") {
    f.fail(deny("invalid_duration", `The field "${field}" must be a string such as "30d", "720h" or "1y"; at most ${limit}.`, field));
    return undefined;
  }
  const r = parseDuration(v);
  if (!r.ok) {
    f.fail(deny("invalid_duration", `${capitalise(r.error)}. The maximum is ${limit}.`, field));
    return undefined;
  }
  if (r.ms > max) {
    f.fail(deny("invalid_duration", `The ${field} ${JSON.stringify(v)} is longer than the maximum token lifetime of ${limit}.`, field));
    return undefined;
  }
  return r.ms;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * May the caller put these scopes on `owner`'s PAT? A user only what they hold:
 * the scope's operation through their roles in the scope's domain. Operators
 * are exempt, but the domain must exist.
 */
async function mayGrant(d: AdminDeps, c: Call, scopes: readonly Scope[], field: string): Promise<Denial | null> {
  for (let i = 0; i < scopes.length; i++) {
    const s = scopes[i] as Scope;
    const at = `${field}[${i}]`;
    if (c.caller.kind === "operator") {
      if ((await d.store.getDomain(s.domainId)) === null) return deny("unknown_domain", `${at}: there is no domain "${s.domainId}".`, `${at}.domain_id`);
      continue;
    }
    const held = await d.rights.rightsIn(s.domainId, c.caller.userId);
    if (held === null || !held.has(s.operation)) {
      return deny("scope_not_held", `You cannot grant "${s.domainId}:${formatScope(s)}" (DOMAIN:TYPE:ID:OP): you do not hold "${s.operation}" in domain "${s.domainId}".`, at);
    }
  }
  return null;
}

/**
 * Scopes that cannot grant anything now, since the effective right is `scope ∧
 * the user's roles`: the user is not a member of the scope's domain, or no role
 * of theirs holds its operation. Said, not refused: an operator may set up the
 * PAT before the membership (users cannot get here: they only grant what they hold).
 */
async function uselessScopes(d: AdminDeps, userId: string, scopes: readonly Scope[]): Promise<string[]> {
  const out: string[] = [];
  for (const s of scopes) {
    const held = await d.rights.rightsIn(s.domainId, userId);
    const scope = `${s.domainId}:${formatScope(s)}`;
    if (held === null) out.push(`"${scope}" grants nothing yet: ${userId} is not a member of domain "${s.domainId}" (patgate member add ${s.domainId} ${userId} --role R).`);
    else if (!held.has(s.operation)) out.push(`"${scope}" grants nothing yet: no role of ${userId} in domain "${s.domainId}" holds "${s.operation}".`);
  }
  return out;
}

// ---- handlers ---------------------------------------------------------------------

async function create(d: AdminDeps, c: Call): Promise<Reply> {
  const who = namedSubject(c);
  if (!who.ok) return who;
  const f = new BodyFields(c.body, ["name", "description", "duration", "scopes", "limits"]);
  const rawName = f.string("name");
  const name = rawName == null ? undefined : f.take(patName(rawName));
  const rawDesc = f.string("description", { optional: true });
  const desc = rawDesc == null ? "" : f.take(description(rawDesc));
  const ms = lifetime(d, f, "duration", { required: true });
  const scopes = f.has("scopes") ? f.take(scopeList(f.raw("scopes"), d.settings.catalog, { param: "scopes", min: 1 })) : undefined;
  if (!f.has("scopes")) f.fail(deny("invalid_field", 'The field "scopes" is required: at least one {"domain_id","entity_type","entity_id","operation"}.', "scopes"));
  const limits = f.take(patLimitsField(f.raw("limits"), d.settings.limits));
  if (f.problem !== null) return f.problem;
  if (name === undefined || desc === undefined || ms === undefined || scopes === undefined) throw new Error("validated fields missing");
  const refused = await mayGrant(d, c, scopes, "scopes");
  if (refused !== null) return refused;

  const warnings = await uselessScopes(d, who.value, scopes);
  // A fresh UUID colliding is all but impossible; one retry covers it anyway.
  for (let attempt = 0; attempt < 2; attempt++) {
    const made = newPat(d.pepper, { userId: who.value, name, description: desc, scopes, lifetimeMs: ms, now: d.now() });
    const record = limits === undefined ? made.record : { ...made.record, limits };
    const token = made.token;
    const r = await d.store.insertPat(record);
    if (r === "name_taken") return nameTaken(name);
    if (r === "ok") {
      c.audit("pat.create", { ...target(record), scopes: scopes.map(scopeView), before: null, after: patSummary(record) });
      return created({ ...patView(record, d.now()), token, warnings }, `/pats/${record.id}`);
    }
  }
  throw new Error("could not insert a new PAT: id taken twice");
}

async function list(d: AdminDeps, c: Call): Promise<Reply> {
  const who = namedSubject(c);
  if (!who.ok) return who;
  const offset = queryInt(c.query, "offset", 0, 0, 1_000_000_000);
  if (!offset.ok) return offset;
  const limit = queryInt(c.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT);
  if (!limit.ok) return limit;
  const name = queryParam(c.query, "name");
  if (!name.ok) return name;
  const status = queryParam(c.query, "status");
  if (!status.ok) return status;
  if (status.value !== undefined && !(PAT_STATUSES as readonly string[]).includes(status.value)) {
    return deny("invalid_field", `The query parameter "status" must be one of ${PAT_STATUSES.join(", ")}.`, "status");
  }
  const now = d.now();
  const needle = name.value?.toLowerCase();
  const all = (await d.store.listPatsByUser(who.value))
    .filter((p) => needle === undefined || p.name.toLowerCase().includes(needle))
    .filter((p) => status.value === undefined || patStatus(p, now) === (status.value as PatStatus))
    .sort((a, b) => a.issuedAt - b.issuedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const page = all.slice(offset.value, offset.value + limit.value);
  return ok({ total: all.length, offset: offset.value, limit: limit.value, pats: page.map((p) => patView(p, now)) });
}

async function removeAll(d: AdminDeps, c: Call): Promise<Reply> {
  const who = namedSubject(c);
  if (!who.ok) return who;
  const f = new BodyFields(c.body, []);
  if (f.problem !== null) return f.problem;
  const gone: { pat_id: string; name: string }[] = [];
  for (const p of await d.store.listPatsByUser(who.value)) {
    if (await d.store.deletePat(p.id)) gone.push({ pat_id: p.id, name: p.name });
  }
  const deleted = gone.length;
  c.audit("pat.delete_all", { user_id: who.value, deleted, before: { pats: gone }, after: { pats: [] } });
  return ok({ deleted });
}

async function show(d: AdminDeps, c: Call): Promise<Reply> {
  const found = await find(d, c);
  return found.ok ? ok(patView(found.value, d.now())) : found;
}

async function rename(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["name"]);
  const raw = f.string("name");
  const name = raw == null ? undefined : f.take(patName(raw));
  if (f.problem !== null || name === undefined) return f.problem ?? deny("invalid_field");
  const r = await edit(d, c, (rec) => ({ ok: true, value: rec.name === name ? rec : { ...rec, name } }));
  if (!r.ok) return r;
  const { before, after } = r.value;
  c.audit("pat.rename", { ...target(after), before: { name: before.name }, after: { name: after.name } });
  return ok(patView(after, d.now()));
}

async function setDescription(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["description"]);
  const raw = f.string("description");
  const text = raw == null ? undefined : f.take(description(raw));
  if (f.problem !== null || text === undefined) return f.problem ?? deny("invalid_field");
  const r = await edit(d, c, (rec) => ({ ok: true, value: rec.description === text ? rec : { ...rec, description: text } }));
  if (!r.ok) return r;
  const { before, after } = r.value;
  c.audit("pat.describe", { ...target(after), before: { description: before.description }, after: { description: after.description } });
  return ok(patView(after, d.now()));
}

async function remove(d: AdminDeps, c: Call): Promise<Reply> {
  const found = await find(d, c);
  if (!found.ok) return found;
  // The owner of a PAT never changes, so the check above still holds for the delete.
  if (!(await d.store.deletePat(found.value.id))) return NOT_FOUND;
  c.audit("pat.delete", { ...target(found.value), before: patSummary(found.value), after: null });
  return noContent();
}

async function rotate(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["duration", "grace_period", "limits"]);
  const ms = lifetime(d, f, "duration", { required: true });
  const grace = lifetime(d, f, "grace_period", { required: false }) ?? 0;
  // Absent: the PAT keeps its limits; null or {}: it has none of its own from now on.
  const newLimits = f.has("limits") || c.body["limits"] === null ? { set: f.take(patLimitsField(f.raw("limits"), d.settings.limits)) } : null;
  if (f.problem !== null || ms === undefined) return f.problem ?? deny("invalid_duration");
  let token = "";
  const r = await edit(d, c, (rec, now) => {
    if (rec.revoked) return deny("pat_revoked");
    const next = rotatedPat(d.pepper, rec, ms, grace, now);
    token = next.token;
    if (newLimits === null) return { ok: true, value: next.record };
    const { limits: _old, ...rest } = next.record;
    return { ok: true, value: newLimits.set === undefined ? rest : { ...rest, limits: newLimits.set } };
  });
  if (!r.ok) return r;
  const { before, after } = r.value;
  c.audit("pat.rotate", {
    ...target(after),
    grace_ms: grace,
    before: { expires_at: iso(before.expiresAt), previous_secret_expires_at: graceUntil(before) },
    after: { expires_at: iso(after.expiresAt), previous_secret_expires_at: graceUntil(after) },
    ...(newLimits === null ? {} : { limits: { before: patLimitsView(before.limits), after: patLimitsView(after.limits) } }),
  });
  return ok({ ...patView(after, d.now()), token });
}

const MAX_REASON_LENGTH = 500;

async function revoke(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["reason"]);
  // Why, in words, for the audit trail (an operator revoking someone else's PAT says so).
  const rawReason = f.string("reason", { optional: true });
  const reason = rawReason == null ? null : f.take(description(rawReason.trim(), "reason"));
  if (reason !== undefined && reason !== null && reason.length > MAX_REASON_LENGTH) f.fail(deny("invalid_field", `The field "reason" is longer than ${MAX_REASON_LENGTH} characters.`, "reason"));
  if (f.problem !== null) return f.problem;
  const r = await edit(d, c, (rec, now) => ({ ok: true, value: rec.revoked ? rec : { ...rec, revoked: true, revokedAt: now } }));
  if (!r.ok) return r;
  const { before, after } = r.value;
  const state = (p: PatRecord): Record<string, unknown> => ({ revoked: p.revoked, revoked_at: p.revokedAt === null ? null : iso(p.revokedAt) });
  c.audit("pat.revoke", { ...target(after), reason: reason === undefined || reason === "" ? null : reason, before: state(before), after: state(after) });
  return ok(patView(after, d.now()));
}

async function listScopes(d: AdminDeps, c: Call): Promise<Reply> {
  const found = await find(d, c);
  if (!found.ok) return found;
  const pat = found.value;
  return ok({ total: pat.scopes.length, scopes: pat.scopes.map((s) => patScopeView(pat.id, s)) });
}

async function addScopes(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["scopes"]);
  const scopes = f.take(scopeList(f.raw("scopes"), d.settings.catalog, { param: "scopes", min: 1 }));
  if (f.problem !== null || scopes === undefined) return f.problem ?? deny("invalid_field");
  // Before the PAT is even looked up, so a refusal says nothing about whether it exists.
  const refused = await mayGrant(d, c, scopes, "scopes");
  if (refused !== null) return refused;
  const r = await edit(d, c, (rec) => {
    const added = scopes.filter((s) => !rec.scopes.some((t) => sameScope(s, t)));
    if (added.length === 0) return { ok: true, value: rec };
    if (rec.scopes.length + added.length > MAX_SCOPES) return deny("invalid_field", `A PAT holds at most ${MAX_SCOPES} scopes.`, "scopes");
    return { ok: true, value: { ...rec, scopes: [...rec.scopes, ...added] } };
  });
  if (!r.ok) return r;
  const { before, after } = r.value;
  c.audit("pat.scope_add", { ...target(after), scopes: scopes.map(scopeView), before: { scopes: scopesOf(before) }, after: { scopes: scopesOf(after) } });
  return ok(patView(after, d.now()));
}

async function removeScopes(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["scopes", "scopes_id"]);
  // The scopes themselves, or (the reference system's form) their ids as GET /pats/{id}/scope shows them.
  const byId = f.has("scopes_id");
  if (byId === f.has("scopes")) return deny("invalid_field", 'Send exactly one of "scopes" (the scopes to remove) and "scopes_id" (their ids, from GET /pats/{id}/scope).', byId ? "scopes_id" : "scopes");
  // Shape only: a scope the catalog no longer knows must still be removable.
  const scopes = byId ? [] : f.take(scopeList(f.raw("scopes"), null, { param: "scopes", min: 1 }));
  const ids = byId ? f.take(stringList(f.raw("scopes_id"), "scopes_id", { min: 1, max: MAX_SCOPES })) : [];
  if (f.problem !== null || scopes === undefined || ids === undefined) return f.problem ?? deny("invalid_field");
  const removes = (rec: PatRecord, t: Scope): boolean => (byId ? ids.includes(scopeId(rec.id, t)) : scopes.some((s) => sameScope(s, t)));
  const r = await edit(d, c, (rec) => {
    const kept = rec.scopes.filter((t) => !removes(rec, t));
    return { ok: true, value: kept.length === rec.scopes.length ? rec : { ...rec, scopes: kept } };
  });
  if (!r.ok) return r;
  const { before, after } = r.value;
  const removed = byId ? before.scopes.filter((t) => removes(before, t)) : scopes;
  c.audit("pat.scope_remove", { ...target(after), scopes: removed.map(scopeView), before: { scopes: scopesOf(before) }, after: { scopes: scopesOf(after) } });
  return ok(patView(after, d.now()));
}

async function clearScopes(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, []);
  if (f.problem !== null) return f.problem;
  const r = await edit(d, c, (rec) => ({ ok: true, value: rec.scopes.length === 0 ? rec : { ...rec, scopes: [] } }));
  if (!r.ok) return r;
  const { before, after } = r.value;
  c.audit("pat.scope_clear", { ...target(after), before: { scopes: scopesOf(before) }, after: { scopes: scopesOf(after) } });
  return noContent();
}
