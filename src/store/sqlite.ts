/**
 * `node:sqlite`, loaded without its start-up notice. Node 22 prints
 * "ExperimentalWarning: SQLite is an experimental feature" the first time the
 * module loads (Node 24 no longer does). That line on every `npm start` and
 * every CLI command would read as a problem to operators, so exactly that one
 * warning is dropped while the module loads; every other warning, then and
 * later, is printed as usual. The import is dynamic because a static one is
 * resolved before any code here could run.
 */
import type * as Sqlite from "node:sqlite";

const NOTICE = /^SQLite is an experimental feature/;

async function loadQuietly(): Promise<typeof Sqlite> {
  const original = Object.getOwnPropertyDescriptor(process, "emitWarning");
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  const quiet = (warning: string | Error, ...rest: unknown[]): void => {
    const type = typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: unknown } | undefined)?.type;
    const message = typeof warning === "string" ? warning : warning.message;
    if (type === "ExperimentalWarning" && NOTICE.test(message)) return;
    emit(warning, ...rest);
  };
  process.emitWarning = quiet;
  try {
    return await import("node:sqlite");
  } finally {
    if (original === undefined) delete (process as Partial<NodeJS.Process>).emitWarning;
    else Object.defineProperty(process, "emitWarning", original);
  }
}

const sqlite = await loadQuietly();

/** node:sqlite's synchronous database class. */
export const DatabaseSync = sqlite.DatabaseSync;
export type DatabaseSync = Sqlite.DatabaseSync;
export type StatementSync = Sqlite.StatementSync;
export type SQLInputValue = Sqlite.SQLInputValue;

/** SQLite's primary result codes we act on (the low byte of an extended code). */
export const SQLITE_BUSY = 5;
export const SQLITE_LOCKED = 6;

/** The primary SQLite result code of an error node:sqlite threw, or null for any other error. */
export function sqliteCode(err: unknown): number | null {
  if (typeof err !== "object" || err === null) return null;
  const e = err as { code?: unknown; errcode?: unknown };
  return e.code === "ERR_SQLITE_ERROR" && typeof e.errcode === "number" ? e.errcode & 0xff : null;
}

/** True for "another connection holds the lock": worth waiting for, not a failure of the store. */
export function isBusy(err: unknown): boolean {
  const c = sqliteCode(err);
  return c === SQLITE_BUSY || c === SQLITE_LOCKED;
}
