/**
 * The embedded store's writes, as data: each WriteOp is one change, run in one
 * transaction by the writer thread (embedded-writer.ts), which also records
 * the change's events in the `changes` table inside that transaction.
 * Records arrive already checked (records.ts) by the store on the main thread.
 */
import type { BucketWidth, UsageRow } from "../usage/buckets.ts";
import { patUpdateValues, patValues, rowWriters, usageValues, type BulkRecords, type NameConflict, type Statements } from "./embedded-rows.ts";
import type { DatabaseSync } from "./sqlite.ts";
import type { AdminKeyRecord, ChangeEvent, Domain, Membership, PatRecord, Role } from "./types.ts";

export type WriteOp =
  | { readonly op: "insertPat"; readonly pat: PatRecord }
  | { readonly op: "replacePat"; readonly pat: PatRecord; readonly expectedVersion: number }
  | { readonly op: "deletePat"; readonly id: string }
  | { readonly op: "touchPats"; readonly entries: readonly (readonly [string, number])[] }
  | { readonly op: "putDomain"; readonly domain: Domain }
  | { readonly op: "insertDomain"; readonly domain: Domain }
  | { readonly op: "deleteDomain"; readonly id: string }
  | { readonly op: "putMembership"; readonly membership: Membership }
  | { readonly op: "deleteMembership"; readonly domainId: string; readonly userId: string }
  | { readonly op: "putRole"; readonly role: Role }
  | { readonly op: "deleteRole"; readonly name: string }
  | { readonly op: "addFirstAdminKey"; readonly key: AdminKeyRecord }
  | { readonly op: "addAdminKey"; readonly key: AdminKeyRecord }
  | { readonly op: "deleteAdminKey"; readonly id: string }
  /** The web page's sessions (sessions-embedded.ts): no events, they are never cached. */
  | { readonly op: "putSession"; readonly id: string; readonly value: string; readonly expiresAt: number }
  | { readonly op: "takeSession"; readonly id: string; readonly now: number }
  | { readonly op: "sweepSessions"; readonly now: number }
  /**
   * Usage buckets (src/usage/sqlite-buckets.ts): each row added to its bucket of `width`, then the buckets
   * that start before `keepFrom` deleted. No events: buckets are read from the table, never cached.
   */
  | { readonly op: "addUsage"; readonly rows: readonly UsageBucketRow[]; readonly keepFrom: Readonly<Record<BucketWidth, number>> }
  /** Part of a bulk load; `reset` on the last part tells every process to drop what it cached. */
  | { readonly op: "load"; readonly records: BulkRecords; readonly reset: boolean };

/** A usage row and the width of the bucket it goes to (`row.start` is that bucket's start). */
export interface UsageBucketRow {
  readonly width: BucketWidth;
  readonly row: UsageRow;
}

/** What a write decided: its answer and the events it commits. */
export interface Outcome {
  readonly result: unknown;
  readonly events: readonly ChangeEvent[];
}

const none = (result: unknown): Outcome => ({ result, events: [] });

/** Applies one write; call inside a write transaction. A TypeError is the caller's mistake (nothing is written). */
export function applyWrite(q: Statements, w: WriteOp): Outcome {
  switch (w.op) {
    case "insertPat": {
      const p = w.pat;
      if (q.patMeta.get(p.id) !== undefined) return none("id_taken");
      if (q.nameHolder.get(p.userId, p.name) !== undefined) return none("name_taken");
      q.insertPat.run(...patValues(p));
      return { result: "ok", events: [{ kind: "pat", id: p.id }] };
    }
    case "replacePat": {
      const p = w.pat;
      const cur = q.patMeta.get(p.id) as { user_id: string; name: string; version: number; last_used_at: number | null } | undefined;
      if (cur === undefined) return none("not_found");
      if (cur.version !== w.expectedVersion) return none("conflict");
      if (cur.user_id !== p.userId) throw new TypeError(`replacePat cannot move PAT ${p.id} to another user`);
      if (cur.name !== p.name) {
        const holder = q.nameHolder.get(p.userId, p.name) as { id: string } | undefined;
        if (holder !== undefined && holder.id !== p.id) return none("name_taken");
      }
      // Last-used times only move forward: a replace built from an older read must not undo a flush.
      const lastUsedAt = cur.last_used_at === null ? p.lastUsedAt : p.lastUsedAt === null ? cur.last_used_at : Math.max(cur.last_used_at, p.lastUsedAt);
      q.updatePat.run(...patUpdateValues(p, lastUsedAt, w.expectedVersion + 1));
      return { result: "ok", events: [{ kind: "pat", id: p.id }] };
    }
    case "deletePat": {
      const gone = Number(q.deletePat.run(w.id).changes) > 0;
      return { result: gone, events: gone ? [{ kind: "pat", id: w.id }] : [] };
    }
    case "touchPats":
      for (const [id, t] of w.entries) q.touchPat.run(id, t);
      return none(undefined);
    case "putDomain": {
      const d = w.domain;
      q.putDomain.run(d.id, d.name, d.upstream, d.createdAt);
      return { result: undefined, events: [{ kind: "domain", id: d.id }] };
    }
    case "insertDomain": {
      const d = w.domain;
      if (q.getDomain.get(d.id) !== undefined) return none(false);
      q.putDomain.run(d.id, d.name, d.upstream, d.createdAt);
      return { result: true, events: [{ kind: "domain", id: d.id }] };
    }
    case "deleteDomain": {
      const users = (q.deleteMembersOf.all(w.id) as { user_id: string }[]).map((r) => r.user_id);
      const existed = Number(q.deleteDomain.run(w.id).changes) > 0;
      const events: ChangeEvent[] = users.map((userId) => ({ kind: "member", domainId: w.id, userId }));
      if (existed) events.push({ kind: "domain", id: w.id });
      return { result: existed, events };
    }
    case "putMembership": {
      const m = w.membership;
      q.putMember.run(m.domainId, m.userId, JSON.stringify(m.roles));
      return { result: undefined, events: [{ kind: "member", domainId: m.domainId, userId: m.userId }] };
    }
    case "deleteMembership": {
      const gone = Number(q.deleteMember.run(w.domainId, w.userId).changes) > 0;
      return { result: gone, events: gone ? [{ kind: "member", domainId: w.domainId, userId: w.userId }] : [] };
    }
    case "putRole":
      q.putRole.run(w.role.name, JSON.stringify(w.role.operations));
      return { result: undefined, events: [{ kind: "role", name: w.role.name }] };
    case "deleteRole": {
      const gone = Number(q.deleteRole.run(w.name).changes) > 0;
      return { result: gone, events: gone ? [{ kind: "role", name: w.name }] : [] };
    }
    case "addFirstAdminKey":
      if (Number((q.countAdminKeys.get() as { n: number }).n) > 0) return none(false);
      q.putAdminKey.run(w.key.id, w.key.hash, w.key.createdAt);
      return none(true);
    case "addAdminKey":
      q.putAdminKey.run(w.key.id, w.key.hash, w.key.createdAt);
      return none(undefined);
    case "deleteAdminKey":
      return none(Number(q.deleteAdminKey.run(w.id).changes) > 0);
    case "putSession":
      q.putSession.run(w.id, w.value, w.expiresAt);
      return none(undefined);
    case "takeSession": {
      const row = q.takeSession.get(w.id) as { value: string; expires_at: number } | undefined;
      return none(row !== undefined && row.expires_at > w.now ? row.value : null);
    }
    case "sweepSessions":
      return none(Number(q.sweepSessions.run(w.now).changes));
    case "addUsage":
      for (const r of w.rows) q.addUsage.run(...usageValues(r.width, r.row));
      q.pruneUsage.run("1h", w.keepFrom["1h"]);
      q.pruneUsage.run("1d", w.keepFrom["1d"]);
      return none(undefined);
    case "load": {
      const conflicts: NameConflict[] = [];
      for (const write of rowWriters(q, w.records, conflicts)) write();
      return { result: conflicts, events: w.reset ? [{ kind: "reset" }] : [] };
    }
  }
}

/** Runs `body` in one write transaction (BEGIN IMMEDIATE takes the write lock up front); rolls back on any error. */
export function transaction<T>(db: DatabaseSync, body: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = body();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}
