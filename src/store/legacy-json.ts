/**
 * The one-time move from the JSON store file of earlier versions
 * (`data/patgate.json`: one snapshot rewritten on every change) into the
 * SQLite database beside it (`data/patgate.db`).
 *
 * On open, inside the transaction that creates the schema: if the database
 * is empty and `<name>.json` lies next to `<name>.db`, every record of it is
 * validated and written, all or nothing; once that has committed, the JSON
 * file is renamed `<name>.json.migrated` and kept as a backup. The rename
 * makes the migration happen once: deleting the database later never brings
 * back tokens from the old file. A crash between the commit and the rename is
 * finished on the next open (`meta.migrated_from` says it was done).
 */
import { existsSync, readFileSync, readdirSync, unlinkSync } from "node:fs";
import { rename } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { Statements, rowWriters, type BulkRecords, type NameConflict } from "./embedded-rows.ts";
import { Fields, decodeAdminKey, decodeDomain, decodeMembership, decodePat, decodeRole } from "./records.ts";
import type { DatabaseSync } from "./sqlite.ts";
import type { AdminKeyRecord, Domain, Membership, PatRecord, Role } from "./types.ts";

const FORMAT = "patgate-embedded-store";
const FORMAT_VERSION = 1;

/** What the migration did, for the start-up log. */
export interface LegacyMigration {
  readonly from: string;
  readonly keptAs: string;
  readonly pats: number;
  readonly domains: number;
}

/** Runs after the transaction committed: the rename (and the clean-up of the old lock and temp files). */
export interface LegacyStep {
  readonly migration: LegacyMigration | null;
  finish(): Promise<void>;
}

const NOTHING: LegacyStep = { migration: null, finish: () => Promise.resolve() };

/** The JSON file an earlier version kept where this database now is: same directory, same name, `.json`. */
export function legacyFileFor(dbFile: string): string {
  const base = basename(dbFile, extname(dbFile));
  return join(dirname(dbFile), `${base}.json`);
}

/** Inside the open transaction, after the schema migrations: migrates the old file if there is one to migrate. */
export function migrateLegacyFile(db: DatabaseSync, dbFile: string): LegacyStep {
  const json = legacyFileFor(dbFile);
  if (json === dbFile) return NOTHING;
  const keptAs = `${json}.migrated`;
  const q = new Statements(db);
  const done = q.getMeta.get("migrated_from") as { value: string } | undefined;
  if (done !== undefined) {
    // Committed before, renamed not yet (a crash in between): finish it now.
    return existsSync(json) && done.value === json ? { migration: null, finish: () => keepAsBackup(json, keptAs) } : NOTHING;
  }
  if (!existsSync(json)) return NOTHING;
  if (!isEmpty(db)) {
    throw new Error(
      `both ${dbFile} (the store, not empty) and ${json} (a store file of an earlier version) exist; ` +
        `patgate migrates the JSON file only into an empty database. Move one of them away.`,
    );
  }
  refuseIfLocked(json);
  const records = readSnapshot(json);
  // The snapshot was checked for duplicate ids and names and the database is empty: nothing can conflict.
  const conflicts: NameConflict[] = [];
  for (const write of rowWriters(q, records, conflicts)) write();
  q.putMeta.run("migrated_from", json);
  q.putMeta.run("migrated_at", new Date().toISOString());
  return {
    migration: { from: json, keptAs, pats: records.pats.length, domains: records.domains.length },
    finish: () => keepAsBackup(json, keptAs),
  };
}

function isEmpty(db: DatabaseSync): boolean {
  for (const table of ["pats", "domains", "memberships", "roles", "admin_keys"]) {
    if (db.prepare(`SELECT 1 FROM ${table} LIMIT 1`).get() !== undefined) return false;
  }
  return true;
}

async function keepAsBackup(json: string, keptAs: string): Promise<void> {
  let target = keptAs;
  for (let n = 2; existsSync(target); n++) target = `${keptAs}.${n}`;
  await rename(json, target);
  // What the old store left beside its file: its lock (its owner is gone, see refuseIfLocked) and crash leftovers.
  const dir = dirname(json);
  const name = basename(json);
  for (const f of readdirSync(dir)) {
    if (f === `${name}.lock` || f.startsWith(`${name}.tmp-`)) {
      try {
        unlinkSync(join(dir, f));
      } catch {
        // Someone else removed it first.
      }
    }
  }
}

/** An earlier version still running on the file would keep writing to it after we copied it. */
function refuseIfLocked(json: string): void {
  let content: string;
  try {
    content = readFileSync(`${json}.lock`, "utf8");
  } catch {
    return;
  }
  const pid = Number(content.trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return;
  }
  throw new Error(`${json} is in use by process ${pid} (a patgate of an earlier version?); stop it, then start this one to migrate the file`);
}

class CorruptFile extends Error {}

/** Parses and fully validates the old snapshot; any problem is an error naming the file, and nothing is written. */
export function readSnapshot(file: string): BulkRecords {
  const text = readFileSync(file, "utf8");
  try {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new CorruptFile(`not valid JSON (${(err as Error).message})`);
    }
    const top = new Fields(raw, "file", CorruptFile);
    if (top.str("format") !== FORMAT) throw new CorruptFile(`format is not "${FORMAT}"`);
    if (top.int("version") !== FORMAT_VERSION) throw new CorruptFile(`unsupported format version ${top.int("version")}`);
    const pats: PatRecord[] = [];
    const ids = new Set<string>();
    const names = new Set<string>();
    top.list("pats").forEach((v, i) => {
      const p = decodePat(v, `pats[${i}]`, CorruptFile);
      const nameKey = `${p.userId}\u0000${p.name}`;
      if (ids.has(p.id)) throw new CorruptFile(`duplicate PAT id ${p.id}`);
      if (names.has(nameKey)) throw new CorruptFile(`duplicate PAT name "${p.name}" for user ${p.userId}`);
      ids.add(p.id);
      names.add(nameKey);
      pats.push(p);
    });
    const domains: Domain[] = top.list("domains").map((v, i) => decodeDomain(v, `domains[${i}]`, CorruptFile));
    const memberships: Membership[] = top.list("memberships").map((v, i) => decodeMembership(v, `memberships[${i}]`, CorruptFile));
    const roles: Role[] = top.list("roles").map((v, i) => decodeRole(v, `roles[${i}]`, CorruptFile));
    // Absent in files written before admin keys existed.
    const adminKeys: AdminKeyRecord[] = top.has("adminKeys") ? top.list("adminKeys").map((v, i) => decodeAdminKey(v, `adminKeys[${i}]`, CorruptFile)) : [];
    return { pats, domains, memberships, roles, adminKeys };
  } catch (err) {
    if (!(err instanceof CorruptFile)) throw err;
    // Never start empty beside a damaged file: that would silently drop every token.
    throw new Error(`embedded store file ${file} (an earlier version's) is corrupt: ${err.message}. Refusing to migrate it; restore it from a backup or move it away.`, {
      cause: err,
    });
  }
}
