/**
 * `patgate backup FILE`: an online copy of the embedded store. VACUUM INTO
 * writes one consistent snapshot (a single read transaction: in WAL mode it
 * neither waits for the gateway's writes nor holds them up) into a temporary
 * file beside FILE; the copy is then opened on its own and checked (SQLite's
 * integrity check, the schema version, the record counts), made durable and
 * only then renamed to FILE, so FILE is either a whole, checked backup or
 * not there.
 *
 * The copy carries no web page sessions: restoring it must not bring back
 * sessions that were signed out after it was taken (the restored gateway
 * signs everyone out instead).
 *
 * SQLite's online backup API was the other candidate; it restarts whenever
 * another connection writes during the copy, which a gateway flushing
 * last-used times does every few seconds.
 */
import { chmod, open, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import type { EmbeddedStore } from "./embedded.ts";
import { SCHEMA_VERSION } from "./schema.ts";
import { DatabaseSync } from "./sqlite.ts";

/** What a database file holds, by table. */
export interface DatabaseSummary {
  readonly schemaVersion: number;
  readonly integrity: readonly string[];
  readonly counts: { readonly pats: number; readonly domains: number; readonly memberships: number; readonly roles: number; readonly adminKeys: number };
}

/** Opens a database file read-only and summarises it (for a backup just written, or one about to be restored). */
export function inspectDatabase(file: string): DatabaseSummary {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const count = (table: string): number => Number((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
    const schemaVersion = Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
    const integrity = (db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[]).map((r) => r.integrity_check);
    return {
      schemaVersion,
      integrity,
      counts: { pats: count("pats"), domains: count("domains"), memberships: count("memberships"), roles: count("roles"), adminKeys: count("admin_keys") },
    };
  } finally {
    db.close();
  }
}

/** Writes a checked backup of `store` to `target` (refusing an existing file unless `overwrite`); returns its summary. */
export async function backupEmbedded(store: EmbeddedStore, target: string, overwrite: boolean): Promise<DatabaseSummary> {
  const file = path.resolve(target);
  if (file === store.file) throw new Error(`the backup cannot be written over the store itself (${file})`);
  if (!overwrite && (await exists(file))) throw new Error(`${target} exists; pass --force to replace it`);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  await rm(tmp, { force: true });
  try {
    await store.backupTo(tmp);
    await chmod(tmp, 0o600);
    dropSessions(tmp);
    const summary = inspectDatabase(tmp);
    if (summary.integrity.length !== 1 || summary.integrity[0] !== "ok") throw new Error(`the copy failed SQLite's integrity check: ${summary.integrity.slice(0, 3).join("; ")}`);
    if (summary.schemaVersion !== SCHEMA_VERSION) throw new Error(`the copy has schema version ${summary.schemaVersion}, expected ${SCHEMA_VERSION}`);
    await fsync(tmp);
    await rename(tmp, file);
    await fsync(path.dirname(file));
    return summary;
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Deletes the copy's web sessions, overwriting their pages (secure_delete), in one transaction. */
function dropSessions(file: string): void {
  const db = new DatabaseSync(file);
  try {
    db.exec("PRAGMA secure_delete = ON");
    db.exec("DELETE FROM ui_sessions");
  } finally {
    db.close();
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** Makes a file's contents (or a directory's entries) durable; a platform that cannot sync a directory is not an error. */
async function fsync(p: string): Promise<void> {
  const fh = await open(p, "r");
  try {
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "ENOTSUP" && code !== "EPERM") throw err;
  } finally {
    await fh.close();
  }
}
