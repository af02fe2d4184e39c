/**
 * The embedded store's statements and its row ↔ record mapping (schema in
 * schema.ts). Every statement is prepared once, when the store opens.
 */
import type { Scope } from "../scopes/scope.ts";
import type { BucketWidth, UsageRow } from "../usage/buckets.ts";
import { checkedPat, decodeAdminKey, decodeDomain, decodeMembership, decodeRole } from "./records.ts";
import type { DatabaseSync, SQLInputValue, StatementSync } from "./sqlite.ts";
import { StoreUnavailableError } from "./types.ts";
import type { AdminKeyRecord, Domain, Membership, PatLimits, PatRecord, Role } from "./types.ts";

// The usage totals' columns, in the order of TOTAL_FIELDS (src/usage/buckets.ts).
const USAGE_TOTALS = ["requests", "input_tokens", "output_tokens", "cached_tokens", "estimated_requests", "estimated_input_tokens", "estimated_output_tokens"] as const;
const USAGE_COLUMNS = `width, start, pat_id, user_id, domain_id, model, operation, ${USAGE_TOTALS.join(", ")}`;
const USAGE_READ = `start, pat_id, user_id, domain_id, model, operation, ${USAGE_TOTALS.join(", ")}`;

const PAT_COLUMNS =
  "id, user_id, name, description, scopes, secret_hash, prev_secret_hash, prev_secret_expires_at, issued_at, expires_at, updated_at, last_used_at, revoked, revoked_at, version, limits";

/** The prepared statements, by what they do. */
export class Statements {
  readonly getPat: StatementSync;
  readonly patMeta: StatementSync;
  readonly patsOfUser: StatementSync;
  readonly patPage: StatementSync;
  readonly nameHolder: StatementSync;
  readonly insertPat: StatementSync;
  readonly updatePat: StatementSync;
  readonly deletePat: StatementSync;
  readonly touchPat: StatementSync;
  readonly countPats: StatementSync;

  readonly getDomain: StatementSync;
  readonly listDomains: StatementSync;
  readonly putDomain: StatementSync;
  readonly deleteDomain: StatementSync;

  readonly getMember: StatementSync;
  readonly membersOf: StatementSync;
  readonly membershipsOf: StatementSync;
  readonly putMember: StatementSync;
  readonly deleteMember: StatementSync;
  readonly deleteMembersOf: StatementSync;

  readonly getRole: StatementSync;
  readonly listRoles: StatementSync;
  readonly putRole: StatementSync;
  readonly deleteRole: StatementSync;

  readonly listAdminKeys: StatementSync;
  readonly countAdminKeys: StatementSync;
  readonly putAdminKey: StatementSync;
  readonly deleteAdminKey: StatementSync;

  readonly getSession: StatementSync;
  readonly putSession: StatementSync;
  readonly takeSession: StatementSync;
  readonly sweepSessions: StatementSync;

  readonly addUsage: StatementSync;
  readonly pruneUsage: StatementSync;
  readonly usageRange: StatementSync;
  readonly usageOfUser: StatementSync;

  readonly addChange: StatementSync;
  readonly changesAfter: StatementSync;
  readonly lastChange: StatementSync;
  readonly lastChangeBefore: StatementSync;
  readonly pruneChanges: StatementSync;
  readonly getMeta: StatementSync;
  readonly putMeta: StatementSync;
  readonly dataVersion: StatementSync;

  constructor(db: DatabaseSync) {
    this.getPat = db.prepare(`SELECT ${PAT_COLUMNS} FROM pats WHERE id = ?`);
    this.patMeta = db.prepare("SELECT user_id, name, version, last_used_at FROM pats WHERE id = ?");
    this.patsOfUser = db.prepare(`SELECT ${PAT_COLUMNS} FROM pats WHERE user_id = ? ORDER BY id`);
    this.patPage = db.prepare(`SELECT ${PAT_COLUMNS} FROM pats WHERE id > ? ORDER BY id LIMIT ?`);
    this.nameHolder = db.prepare("SELECT id FROM pats WHERE user_id = ? AND name = ?");
    this.insertPat = db.prepare(`INSERT INTO pats (${PAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.updatePat = db.prepare(
      `UPDATE pats SET name = ?, description = ?, scopes = ?, secret_hash = ?, prev_secret_hash = ?, prev_secret_expires_at = ?,
         issued_at = ?, expires_at = ?, updated_at = ?, last_used_at = ?, revoked = ?, revoked_at = ?, version = ?, limits = ? WHERE id = ?`,
    );
    this.deletePat = db.prepare("DELETE FROM pats WHERE id = ?");
    this.touchPat = db.prepare("UPDATE pats SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)");
    this.countPats = db.prepare("SELECT count(*) AS n FROM pats");

    this.getDomain = db.prepare("SELECT id, name, upstream, created_at FROM domains WHERE id = ?");
    this.listDomains = db.prepare("SELECT id, name, upstream, created_at FROM domains ORDER BY id");
    this.putDomain = db.prepare(
      "INSERT INTO domains (id, name, upstream, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, upstream = excluded.upstream, created_at = excluded.created_at",
    );
    this.deleteDomain = db.prepare("DELETE FROM domains WHERE id = ?");

    this.getMember = db.prepare("SELECT domain_id, user_id, roles FROM memberships WHERE domain_id = ? AND user_id = ?");
    this.membersOf = db.prepare("SELECT domain_id, user_id, roles FROM memberships WHERE domain_id = ? ORDER BY user_id");
    this.membershipsOf = db.prepare("SELECT domain_id, user_id, roles FROM memberships WHERE user_id = ? ORDER BY domain_id");
    this.putMember = db.prepare(
      "INSERT INTO memberships (domain_id, user_id, roles) VALUES (?, ?, ?) ON CONFLICT (domain_id, user_id) DO UPDATE SET roles = excluded.roles",
    );
    this.deleteMember = db.prepare("DELETE FROM memberships WHERE domain_id = ? AND user_id = ?");
    this.deleteMembersOf = db.prepare("DELETE FROM memberships WHERE domain_id = ? RETURNING user_id");

    this.getRole = db.prepare("SELECT name, operations FROM roles WHERE name = ?");
    this.listRoles = db.prepare("SELECT name, operations FROM roles ORDER BY name");
    this.putRole = db.prepare("INSERT INTO roles (name, operations) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET operations = excluded.operations");
    this.deleteRole = db.prepare("DELETE FROM roles WHERE name = ?");

    this.listAdminKeys = db.prepare("SELECT id, hash, created_at FROM admin_keys ORDER BY id");
    this.countAdminKeys = db.prepare("SELECT count(*) AS n FROM admin_keys");
    this.putAdminKey = db.prepare(
      "INSERT INTO admin_keys (id, hash, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at",
    );
    this.deleteAdminKey = db.prepare("DELETE FROM admin_keys WHERE id = ?");

    this.getSession = db.prepare("SELECT value FROM ui_sessions WHERE id = ? AND expires_at > ?");
    this.putSession = db.prepare(
      "INSERT INTO ui_sessions (id, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    );
    this.takeSession = db.prepare("DELETE FROM ui_sessions WHERE id = ? RETURNING value, expires_at");
    this.sweepSessions = db.prepare("DELETE FROM ui_sessions WHERE expires_at <= ?");

    this.addUsage = db.prepare(
      `INSERT INTO usage_buckets (${USAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (width, start, pat_id, user_id, domain_id, model, operation) DO UPDATE SET ${USAGE_TOTALS.map((c) => `${c} = ${c} + excluded.${c}`).join(", ")}`,
    );
    this.pruneUsage = db.prepare("DELETE FROM usage_buckets WHERE width = ? AND start < ?");
    this.usageRange = db.prepare(`SELECT ${USAGE_READ} FROM usage_buckets WHERE width = ? AND start >= ? AND start < ?`);
    // Named: without statistics (no ANALYZE) the planner rates the primary key's time range as good, but one user is a small part of it.
    this.usageOfUser = db.prepare(`SELECT ${USAGE_READ} FROM usage_buckets INDEXED BY usage_by_user WHERE width = ? AND user_id = ? AND start >= ? AND start < ?`);

    this.addChange = db.prepare("INSERT INTO changes (origin, at, event) VALUES (?, ?, ?)");
    this.changesAfter = db.prepare("SELECT seq, origin, at, event FROM changes WHERE seq > ? ORDER BY seq LIMIT ?");
    this.lastChange = db.prepare("SELECT coalesce(max(seq), 0) AS seq FROM changes");
    this.lastChangeBefore = db.prepare("SELECT coalesce(max(seq), 0) AS seq FROM changes WHERE at < ?");
    this.pruneChanges = db.prepare("DELETE FROM changes WHERE seq <= ?");
    this.getMeta = db.prepare("SELECT value FROM meta WHERE key = ?");
    this.putMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    this.dataVersion = db.prepare("PRAGMA data_version");
  }
}

type Row = Record<string, unknown>;

/** One usage row's column values in USAGE_COLUMNS order. */
export function usageValues(width: BucketWidth, r: UsageRow): SQLInputValue[] {
  const t = r.totals;
  return [width, r.start, r.patId, r.userId, r.domainId, r.model, r.operation, t.requests, t.inputTokens, t.outputTokens, t.cachedTokens, t.estimatedRequests, t.estimatedInputTokens, t.estimatedOutputTokens];
}

export function usageFromRow(r: Row): UsageRow {
  return {
    start: r.start as number,
    patId: r.pat_id as string,
    userId: r.user_id as string,
    domainId: r.domain_id as string,
    model: r.model as string,
    operation: r.operation as string,
    totals: {
      requests: r.requests as number,
      inputTokens: r.input_tokens as number,
      outputTokens: r.output_tokens as number,
      cachedTokens: r.cached_tokens as number,
      estimatedRequests: r.estimated_requests as number,
      estimatedInputTokens: r.estimated_input_tokens as number,
      estimatedOutputTokens: r.estimated_output_tokens as number,
    },
  };
}

/** A PAT's column values in PAT_COLUMNS order. */
export function patValues(p: PatRecord): SQLInputValue[] {
  return [
    p.id, p.userId, p.name, p.description, scopesJson(p.scopes), p.secretHash, p.prevSecretHash, p.prevSecretExpiresAt,
    p.issuedAt, p.expiresAt, p.updatedAt, p.lastUsedAt, p.revoked ? 1 : 0, p.revokedAt, p.version, limitsJson(p),
  ];
}

/** The values of updatePat's SET list, then the id. */
export function patUpdateValues(p: PatRecord, lastUsedAt: number | null, version: number): SQLInputValue[] {
  return [
    p.name, p.description, scopesJson(p.scopes), p.secretHash, p.prevSecretHash, p.prevSecretExpiresAt,
    p.issuedAt, p.expiresAt, p.updatedAt, lastUsedAt, p.revoked ? 1 : 0, p.revokedAt, version, limitsJson(p), p.id,
  ];
}

/** A PAT's own limits as JSON text, NULL when it has none. */
function limitsJson(p: PatRecord): string | null {
  return p.limits === undefined ? null : JSON.stringify(p.limits);
}

function scopesJson(scopes: readonly Scope[]): string {
  return JSON.stringify(scopes.map((s) => [s.domainId, s.entityType, s.entityId, s.operation]));
}

export function patFromRow(r: Row): PatRecord {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    name: r.name as string,
    description: r.description as string,
    scopes: parseJson<string[][]>(r.scopes).map(([domainId = "", entityType = "", entityId = "", operation = ""]) => ({ domainId, entityType, entityId, operation })),
    secretHash: r.secret_hash as string,
    prevSecretHash: r.prev_secret_hash as string | null,
    prevSecretExpiresAt: r.prev_secret_expires_at as number | null,
    issuedAt: r.issued_at as number,
    expiresAt: r.expires_at as number,
    updatedAt: r.updated_at as number,
    lastUsedAt: r.last_used_at as number | null,
    revoked: r.revoked === 1,
    revokedAt: r.revoked_at as number | null,
    version: r.version as number,
    ...(r.limits === null || r.limits === undefined ? {} : { limits: parseJson<PatLimits>(r.limits) }),
  };
}

export function domainFromRow(r: Row): Domain {
  return { id: r.id as string, name: r.name as string, upstream: r.upstream as string | null, createdAt: r.created_at as number };
}

export function memberFromRow(r: Row): Membership {
  return { domainId: r.domain_id as string, userId: r.user_id as string, roles: parseJson<string[]>(r.roles) };
}

export function roleFromRow(r: Row): Role {
  return { name: r.name as string, operations: parseJson<string[]>(r.operations) };
}

export function adminKeyFromRow(r: Row): AdminKeyRecord {
  return { id: r.id as string, hash: r.hash as string, createdAt: r.created_at as number };
}

// Only this store writes these columns, so a parse failure means a damaged database.
function parseJson<T>(v: unknown): T {
  try {
    return JSON.parse(v as string) as T;
  } catch (err) {
    throw new StoreUnavailableError("embedded store holds a damaged record", { cause: err });
  }
}

/** Everything a bulk load (an import, the old JSON file's migration) writes. */
export interface BulkRecords {
  readonly domains: readonly Domain[];
  readonly memberships: readonly Membership[];
  readonly roles: readonly Role[];
  readonly pats: readonly PatRecord[];
  readonly adminKeys: readonly AdminKeyRecord[];
}

/** A PAT a bulk load left out: another PAT of its user holds its name, or its id belongs to another user's PAT. */
export interface NameConflict {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
}

/** The records, each rebuilt and checked as a single write would be (TypeError naming the record). */
export function checkedRecords(r: BulkRecords): BulkRecords {
  return {
    domains: r.domains.map((d, i) => decodeDomain({ ...d }, `domains[${i}]`, TypeError)),
    memberships: r.memberships.map((m, i) => decodeMembership({ ...m, roles: [...m.roles] }, `memberships[${i}]`, TypeError)),
    roles: r.roles.map((x, i) => decodeRole({ ...x, operations: [...x.operations] }, `roles[${i}]`, TypeError)),
    pats: r.pats.map((p) => checkedPat(p, p.version)),
    adminKeys: r.adminKeys.map((k, i) => decodeAdminKey({ ...k }, `adminKeys[${i}]`, TypeError)),
  };
}

/**
 * One writer per record, to run inside write transactions (as many per
 * transaction as the caller likes). Existing records are overwritten; a PAT
 * whose name another PAT of its user holds is skipped into `conflicts`.
 */
export function rowWriters(q: Statements, r: BulkRecords, conflicts: NameConflict[]): (() => void)[] {
  const rows: (() => void)[] = [];
  for (const d of r.domains) rows.push(() => q.putDomain.run(d.id, d.name, d.upstream, d.createdAt));
  for (const x of r.roles) rows.push(() => q.putRole.run(x.name, JSON.stringify(x.operations)));
  for (const m of r.memberships) rows.push(() => q.putMember.run(m.domainId, m.userId, JSON.stringify(m.roles)));
  for (const k of r.adminKeys) rows.push(() => q.putAdminKey.run(k.id, k.hash, k.createdAt));
  for (const p of r.pats) {
    rows.push(() => {
      const holder = q.nameHolder.get(p.userId, p.name) as { id: string } | undefined;
      const cur = q.patMeta.get(p.id) as { user_id: string } | undefined;
      if ((holder !== undefined && holder.id !== p.id) || (cur !== undefined && cur.user_id !== p.userId)) {
        conflicts.push({ id: p.id, userId: p.userId, name: p.name });
        return;
      }
      if (cur === undefined) q.insertPat.run(...patValues(p));
      else q.updatePat.run(...patUpdateValues(p, p.lastUsedAt, p.version));
    });
  }
  return rows;
}
