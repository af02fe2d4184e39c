/**
 * Moving an installation between stores: `patgate export` writes every
 * record as JSON lines, `patgate import` loads them into a store of either
 * kind. The format:
 *
 *   {"kind":"patgate-export","version":1,"exportedAt":…,"source":"embedded","pepperCheck":"…"}
 *   {"kind":"domain",…Domain}  {"kind":"member",…Membership}  {"kind":"role",…Role}
 *   {"kind":"admin_key",…AdminKeyRecord}  {"kind":"pat",…PatRecord, scopes included}
 *   {"kind":"end","counts":{"domains":…,"members":…,"roles":…,"adminKeys":…,"pats":…}}
 *
 * A PAT line holds the keyed hash of its secret, never the secret, and admin
 * keys only their SHA-256. The hashes are keyed with the pepper, so the
 * target must use the same one: `pepperCheck` (an HMAC of a fixed text under
 * the pepper, which tells nothing about it) lets import refuse a target whose
 * pepper differs. The trailer's counts catch a truncated file.
 */
import { createHmac } from "node:crypto";
import { EmbeddedStore } from "./embedded.ts";
import type { BulkRecords, NameConflict } from "./embedded-rows.ts";
import { Fields, decodeAdminKey, decodeDomain, decodeMembership, decodePat, decodeRole } from "./records.ts";
import type { AdminKeyRecord, Domain, Membership, PatRecord, Role, Store } from "./types.ts";

export const EXPORT_FORMAT = "patgate-export";
export const EXPORT_VERSION = 1;

export interface ExportHeader {
  readonly kind: typeof EXPORT_FORMAT;
  readonly version: typeof EXPORT_VERSION;
  readonly exportedAt: string;
  readonly source: Store["kind"];
  /** pepperCheck() of the source's pepper; null when the source had none. */
  readonly pepperCheck: string | null;
}

export interface ExportCounts {
  domains: number;
  members: number;
  roles: number;
  adminKeys: number;
  pats: number;
}

/** A fingerprint of the pepper for comparing two installations' (HMAC-SHA256 of a fixed text, 16 hex digits). */
export function pepperCheck(pepper: Buffer): string {
  return createHmac("sha256", pepper).update("patgate export: pepper check, v1").digest("hex").slice(0, 16);
}

/**
 * Every record of `store` as export lines (each without its newline), header
 * first and trailer last. With the embedded store every read comes from one
 * snapshot, so an export taken while a gateway writes is consistent.
 */
export async function* exportLines(store: Store, pepper: Buffer | null, counts: ExportCounts = zeroCounts()): AsyncGenerator<string> {
  const header: ExportHeader = {
    kind: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: new Date().toISOString(),
    source: store.kind,
    pepperCheck: pepper === null ? null : pepperCheck(pepper),
  };
  const snapshot = store instanceof EmbeddedStore ? store.beginSnapshot() : null;
  try {
    yield JSON.stringify(header);
    const domains = await store.listDomains();
    for (const d of domains) {
      counts.domains++;
      yield line("domain", { id: d.id, name: d.name, upstream: d.upstream, createdAt: d.createdAt });
    }
    for (const d of domains) {
      for (const m of await store.listMembers(d.id)) {
        counts.members++;
        yield line("member", { domainId: m.domainId, userId: m.userId, roles: m.roles });
      }
    }
    for (const r of await store.listRoles()) {
      counts.roles++;
      yield line("role", { name: r.name, operations: r.operations });
    }
    for (const k of await store.listAdminKeys()) {
      counts.adminKeys++;
      yield line("admin_key", { id: k.id, hash: k.hash, createdAt: k.createdAt });
    }
    for await (const page of store.allPats()) {
      for (const p of page) {
        counts.pats++;
        yield line("pat", patFields(p));
      }
    }
    yield JSON.stringify({ kind: "end", counts });
  } finally {
    snapshot?.end();
  }
}

function zeroCounts(): ExportCounts {
  return { domains: 0, members: 0, roles: 0, adminKeys: 0, pats: 0 };
}

function line(kind: string, fields: Record<string, unknown>): string {
  return JSON.stringify({ kind, ...fields });
}

// Field by field: nothing but the record's own fields reaches the file.
function patFields(p: PatRecord): Record<string, unknown> {
  return {
    id: p.id, userId: p.userId, name: p.name, description: p.description,
    scopes: p.scopes.map((s) => ({ domainId: s.domainId, entityType: s.entityType, entityId: s.entityId, operation: s.operation })),
    secretHash: p.secretHash, prevSecretHash: p.prevSecretHash, prevSecretExpiresAt: p.prevSecretExpiresAt,
    issuedAt: p.issuedAt, expiresAt: p.expiresAt, updatedAt: p.updatedAt, lastUsedAt: p.lastUsedAt,
    revoked: p.revoked, revokedAt: p.revokedAt, version: p.version,
  };
}

/** An export file that cannot be loaded: the message names the line. */
export class ExportFormatError extends Error {
  override readonly name = "ExportFormatError";
}

/** A whole export, validated: every line decoded, duplicates refused, the trailer's counts matched. */
export interface ParsedExport {
  readonly header: ExportHeader;
  readonly records: BulkRecords;
  readonly counts: ExportCounts;
}

/** Parses and checks an export file's text; throws ExportFormatError naming the first bad line. */
export function parseExport(text: string): ParsedExport {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  let header: ExportHeader | null = null;
  let trailer: ExportCounts | null = null;
  const domains: Domain[] = [];
  const memberships: Membership[] = [];
  const roles: Role[] = [];
  const adminKeys: AdminKeyRecord[] = [];
  const pats: PatRecord[] = [];
  const seen = new Set<string>();
  const once = (key: string, what: string): void => {
    if (seen.has(key)) throw new ExportFormatError(`a second ${what}`);
    seen.add(key);
  };
  lines.forEach((text, i) => {
    const at = `line ${i + 1}`;
    try {
      if (trailer !== null) throw new ExportFormatError("a line after the end line");
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        throw new ExportFormatError("not JSON");
      }
      const f = new Fields(v, "the record", ExportFormatError);
      const kind = f.str("kind");
      if (header === null) {
        if (kind !== EXPORT_FORMAT) throw new ExportFormatError(`not a patgate export (the first line must have kind "${EXPORT_FORMAT}")`);
        if (f.int("version") !== EXPORT_VERSION) throw new ExportFormatError(`export format version ${f.int("version")}, this patgate reads ${EXPORT_VERSION}`);
        const source = f.str("source");
        if (source !== "embedded" && source !== "redis") throw new ExportFormatError(`unknown source "${source}"`);
        header = { kind: EXPORT_FORMAT, version: EXPORT_VERSION, exportedAt: f.str("exportedAt"), source, pepperCheck: f.strOrNull("pepperCheck") };
        return;
      }
      switch (kind) {
        case "domain": {
          const d = decodeDomain(v, "the domain", ExportFormatError);
          once(`d\0${d.id}`, `domain "${d.id}"`);
          domains.push(d);
          break;
        }
        case "member": {
          const m = decodeMembership(v, "the member", ExportFormatError);
          once(`m\0${m.domainId}\0${m.userId}`, `membership of "${m.userId}" in "${m.domainId}"`);
          memberships.push(m);
          break;
        }
        case "role": {
          const r = decodeRole(v, "the role", ExportFormatError);
          once(`r\0${r.name}`, `role "${r.name}"`);
          roles.push(r);
          break;
        }
        case "admin_key": {
          const k = decodeAdminKey(v, "the admin key", ExportFormatError);
          once(`k\0${k.id}`, `admin key "${k.id}"`);
          adminKeys.push(k);
          break;
        }
        case "pat": {
          const p = decodePat(v, "the PAT", ExportFormatError);
          once(`p\0${p.id}`, `PAT "${p.id}"`);
          once(`n\0${p.userId}\0${p.name}`, `PAT named "${p.name}" for user "${p.userId}"`);
          pats.push(p);
          break;
        }
        case "end": {
          const c = new Fields(f.has("counts") ? (v as { counts: unknown }).counts : null, "counts", ExportFormatError);
          trailer = { domains: c.int("domains"), members: c.int("members"), roles: c.int("roles"), adminKeys: c.int("adminKeys"), pats: c.int("pats") };
          break;
        }
        default:
          throw new ExportFormatError(`unknown kind "${kind}"`);
      }
    } catch (err) {
      if (err instanceof ExportFormatError) throw new ExportFormatError(`${at}: ${err.message}`);
      throw err;
    }
  });
  if (header === null) throw new ExportFormatError("the file is empty");
  const counts: ExportCounts = { domains: domains.length, members: memberships.length, roles: roles.length, adminKeys: adminKeys.length, pats: pats.length };
  if (trailer === null) throw new ExportFormatError(`no end line after line ${lines.length}: the file is cut short`);
  const t: ExportCounts = trailer;
  for (const k of Object.keys(counts) as (keyof ExportCounts)[]) {
    if (t[k] !== counts[k]) throw new ExportFormatError(`the end line counts ${t[k]} ${k}, the file holds ${counts[k]}`);
  }
  return { header, records: { domains, memberships, roles, adminKeys, pats }, counts };
}

/** True when the store holds no domain, role, admin key or PAT (what import calls empty). */
export async function storeIsEmpty(store: Store): Promise<boolean> {
  if ((await store.listDomains()).length > 0 || (await store.listRoles()).length > 0 || (await store.listAdminKeys()).length > 0) return false;
  for await (const page of store.allPats(1)) if (page.length > 0) return false;
  return true;
}

/** What a load wrote, and which PATs it left out (their name or id is another user's or PAT's in the target). */
export interface LoadResult {
  readonly written: number;
  readonly conflicts: readonly NameConflict[];
}

// Writes in flight at once against Redis: enough to hide the round trips.
const CONCURRENCY = 64;

/**
 * Writes the records into `store`, existing ones of the same key overwritten.
 * The embedded store takes them in chunked transactions; Redis one write each,
 * CONCURRENCY at a time, each published to the gateways as any change is.
 */
export async function loadRecords(store: Store, r: BulkRecords): Promise<LoadResult> {
  if (store instanceof EmbeddedStore) return store.bulkLoad(r);
  const conflicts: NameConflict[] = [];
  let written = 0;
  const each = async <T>(items: readonly T[], write: (x: T) => Promise<boolean>): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const x = items[next++] as T;
        if (await write(x)) written++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  };
  await each(r.domains, async (d) => (await store.putDomain(d), true));
  await each(r.roles, async (x) => (await store.putRole(x), true));
  await each(r.memberships, async (m) => (await store.putMembership(m), true));
  await each(r.adminKeys, async (k) => (await store.addAdminKey(k), true));
  await each(r.pats, async (p) => {
    for (;;) {
      const res = await store.insertPat(p);
      if (res === "ok") return true;
      const cur = res === "id_taken" ? await store.getPat(p.id) : null;
      if (res === "name_taken" || (cur !== null && cur.userId !== p.userId)) {
        conflicts.push({ id: p.id, userId: p.userId, name: p.name });
        return false;
      }
      if (cur === null) continue; // deleted meanwhile: insert again
      const replaced = await store.replacePat(p, cur.version);
      if (replaced === "ok") return true;
      if (replaced === "name_taken") {
        conflicts.push({ id: p.id, userId: p.userId, name: p.name });
        return false;
      }
      // conflict or not_found: it changed meanwhile, go round again.
    }
  });
  return { written, conflicts };
}
