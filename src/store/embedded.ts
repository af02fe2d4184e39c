import { randomUUID } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { mkdir, open as openFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { BucketWidth, UsageRow } from "../usage/buckets.ts";
import { Statements, adminKeyFromRow, checkedRecords, domainFromRow, memberFromRow, patFromRow, roleFromRow, usageFromRow, type BulkRecords, type NameConflict } from "./embedded-rows.ts";
import { WriterClient, type WriteError } from "./embedded-writer.ts";
import { transaction, type UsageBucketRow, type WriteOp } from "./embedded-writes.ts";
import { parseEvent } from "./events.ts";
import { migrateLegacyFile, type LegacyMigration } from "./legacy-json.ts";
import { checkedPat, decodeAdminKey, decodeDomain, decodeMembership, decodeRole } from "./records.ts";
import { migrate } from "./schema.ts";
import { DatabaseSync, isBusy, sqliteCode } from "./sqlite.ts";
import { StoreUnavailableError } from "./types.ts";
import type {
  AdminKeyRecord,
  ChangeEvent,
  Domain,
  InsertResult,
  Membership,
  PatRecord,
  ReplaceResult,
  Role,
  Store,
} from "./types.ts";

/*
 * The embedded store: one SQLite database file (node:sqlite, built into Node),
 * one row per record, every change one transaction. Nothing is held in memory
 * beyond SQLite's page cache, so start-up does not grow with the data.
 *
 * - WAL journal: readers never wait for the writer, and a backup or export
 *   running in another process does not hold up the gateway.
 * - synchronous = FULL: in WAL mode that fsyncs the log on every commit, so a
 *   change is durable when its promise resolves, across a power cut as well as
 *   a crash. NORMAL would survive a killed process but could lose the last
 *   commits on power loss, and a revocation that comes undone is a token that
 *   works again. A commit costs about half a millisecond on an SSD; changes
 *   come at human speed and last-used times are batched.
 * - node:sqlite is synchronous, so nothing here may hold the event loop for
 *   long. Writes go to a writer thread with its own connection
 *   (embedded-writer.ts): the fsync of each commit, SQLite's checkpoints and
 *   waits for another process's lock happen there. Reads stay here: one
 *   indexed query each, a few microseconds (in WAL mode a reader never waits
 *   for the writer). Large jobs (a last-used flush, an import) are sent in
 *   chunks, one transaction each.
 * - Several processes may share the file (a gateway and `patgate` maintenance
 *   commands, or two gateways on one machine). Each change also writes its
 *   event to the `changes` table in the same transaction; every process polls
 *   `PRAGMA data_version` (a few microseconds) and, when another connection
 *   has committed, reads the new rows and hands them to its subscribers, as
 *   Redis pub/sub does between replicas.
 */

/** Tunables; the defaults are what the gateway uses. */
export interface EmbeddedStoreOptions {
  /** How often to look for other processes' changes (default 20 ms: well inside the 100 ms bound). */
  readonly pollIntervalMs?: number;
  /** How long a write waits for another process's write lock before it fails (default 5 s). */
  readonly lockTimeoutMs?: number;
}

const DEFAULT_POLL_MS = 20;
const DEFAULT_LOCK_TIMEOUT_MS = 5000;
// This connection's own wait on a lock (reads, rarely; the open): synchronous, so kept tiny; longer waits are async.
const BUSY_TIMEOUT_MS = 5;
// Rows per transaction for last-used flushes and bulk loads.
const TOUCH_CHUNK = 500;
const LOAD_CHUNK = 1000;
// Change rows a poll reads at once; more are read on the next poll.
const POLL_ROWS = 500;

type Listener = (event: ChangeEvent, committedAt?: number) => void;

/** What a bulk load did; `conflicts` are PATs left out because another PAT of the user holds the name. */
export interface BulkResult {
  readonly written: number;
  readonly conflicts: readonly NameConflict[];
}

/** The default store when no Redis is configured: a local SQLite database file. */
export class EmbeddedStore implements Store {
  readonly kind = "embedded";
  /** The database file (absolute). */
  readonly file: string;
  /** Set when this open migrated a JSON store file of an earlier version (for the start-up log). */
  readonly migration: LegacyMigration | null;
  readonly #db: DatabaseSync;
  readonly #q: Statements;
  readonly #lockTimeoutMs: number;
  // Marks this instance's rows in `changes`, so its own events are not delivered twice.
  readonly #origin: string;
  readonly #writer: WriterClient;
  readonly #listeners = new Set<Listener>();
  #closed = false;
  #inSnapshot = false;
  #closing: Promise<void> | null = null;
  // The change feed from other processes.
  readonly #pollTimer: NodeJS.Timeout;
  #cursor: number;
  #dataVersion: number;
  #feedOk = true;
  #backlog = false;

  private constructor(file: string, db: DatabaseSync, opts: EmbeddedStoreOptions, migration: LegacyMigration | null) {
    this.file = file;
    this.migration = migration;
    this.#db = db;
    this.#q = new Statements(db);
    this.#lockTimeoutMs = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.#origin = randomUUID();
    this.#writer = new WriterClient({ file, origin: this.#origin, lockTimeoutMs: this.#lockTimeoutMs });
    this.#cursor = Number((this.#q.lastChange.get() as { seq: number }).seq);
    this.#dataVersion = this.#readDataVersion();
    this.#pollTimer = setInterval(() => this.#poll(), opts.pollIntervalMs ?? DEFAULT_POLL_MS);
    this.#pollTimer.unref();
  }

  /**
   * Opens (or creates) the database: WAL, schema migrations, and, on a first
   * open beside a JSON store file of an earlier version, its one-time
   * migration (see legacy-json.ts). Throws with the file named if it is not a
   * usable database.
   */
  static async open(path: string, opts: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    const file = resolve(path);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await createPrivate(file);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(file);
    } catch (err) {
      throw openError(file, err);
    }
    try {
      const deadline = performance.now() + (opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Switching to WAL needs a moment alone with the file; already WAL is a no-op.
      const mode = await untilUnlocked(deadline, () => (db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string }).journal_mode);
      if (mode !== "wal") throw new Error(`embedded store ${file}: SQLite would not use its WAL journal (journal_mode ${mode}); is the file on a network filesystem?`);
      db.exec("PRAGMA synchronous = FULL");
      const migrated = await untilUnlocked(deadline, () => transaction(db, () => {
        migrate(db, file);
        return migrateLegacyFile(db, file);
      }));
      await migrated.finish();
      return new EmbeddedStore(file, db, opts, migrated.migration);
    } catch (err) {
      db.close();
      throw openError(file, err);
    }
  }

  // ---- plumbing -------------------------------------------------------------

  #read<T>(fn: (q: Statements) => T): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(fn(this.#q));
    } catch (err) {
      if (!isBusy(err)) return Promise.reject(this.#failure(err));
      // Reads wait only while another connection recovers or checkpoints the log: rare and short.
      return untilUnlocked(performance.now() + this.#lockTimeoutMs, () => fn(this.#q)).catch((e: unknown) => Promise.reject(this.#failure(e)));
    }
  }

  /**
   * Sends one change to the writer thread (in order with the others); once it
   * is committed and durable, delivers its events here and resolves with its
   * answer. `build` checks the caller's records first: a TypeError rejects
   * before anything is sent.
   */
  #write<T>(build: () => WriteOp): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    let write: WriteOp;
    try {
      write = build();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.#writer.call(write).then(
      (c) => {
        for (const e of c.events) this.#deliver(e, c.at);
        return c.result as T;
      },
      (err: WriteError) => {
        if (err.kind === "type") throw new TypeError(err.message);
        if (err.kind === "busy") throw new StoreUnavailableError(`embedded store ${this.file} stayed locked by another process for ${this.#lockTimeoutMs} ms`, { cause: err });
        throw new StoreUnavailableError(`embedded store ${this.file} failed${err.code === null ? "" : ` (SQLite code ${err.code})`}: ${err.message}`, { cause: err });
      },
    );
  }

  #deliver(event: ChangeEvent, committedAt?: number): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event, committedAt);
      } catch {
        // One faulty listener must neither fail a committed change nor silence the others.
      }
    }
  }

  #failure(err: unknown): Error {
    if (err instanceof StoreUnavailableError) return err;
    const code = sqliteCode(err);
    const message = err instanceof Error ? err.message : String(err);
    return new StoreUnavailableError(`embedded store ${this.file} failed${code === null ? "" : ` (SQLite code ${code})`}: ${message}`, { cause: err });
  }

  // ---- the change feed from other processes -------------------------------------

  #readDataVersion(): number {
    return Number((this.#q.dataVersion.get() as { data_version: number }).data_version);
  }

  /** One poll: if another connection committed since the last one, deliver its new change rows. */
  #poll(): void {
    if (this.#closed) return;
    try {
      const version = this.#readDataVersion();
      if (version === this.#dataVersion && this.#feedOk && !this.#backlog) return;
      this.#dataVersion = version;
      if (!this.#feedOk) this.#deliver({ kind: "reset" });
      const pruned = Number((this.#q.getMeta.get("pruned_through") as { value: string } | undefined)?.value ?? 0);
      if (this.#cursor < pruned) {
        // Rows this process never read are gone (it was paused for minutes): caches must start over.
        this.#cursor = pruned;
        this.#deliver({ kind: "reset" });
      }
      const rows = this.#q.changesAfter.all(this.#cursor, POLL_ROWS) as { seq: number; origin: string; at: number; event: string }[];
      for (const r of rows) {
        this.#cursor = r.seq;
        if (r.origin === this.#origin) continue;
        const event = parseEvent(r.event);
        if (event !== null) this.#deliver(event, r.at);
      }
      this.#backlog = rows.length === POLL_ROWS;
      this.#feedOk = true;
    } catch {
      // Not live until a poll succeeds again; that poll delivers `reset` first.
      this.#feedOk = false;
    }
  }

  // ---- PATs -----------------------------------------------------------------

  getPat(id: string): Promise<PatRecord | null> {
    return this.#read((q) => {
      const row = q.getPat.get(id);
      return row === undefined ? null : patFromRow(row);
    });
  }

  listPatsByUser(userId: string): Promise<PatRecord[]> {
    return this.#read((q) => q.patsOfUser.all(userId).map(patFromRow));
  }

  insertPat(pat: PatRecord): Promise<InsertResult> {
    return this.#write(() => ({ op: "insertPat", pat: checkedPat(pat, pat.version) }));
  }

  replacePat(pat: PatRecord, expectedVersion: number): Promise<ReplaceResult> {
    return this.#write(() => ({ op: "replacePat", pat: checkedPat(pat, expectedVersion + 1), expectedVersion }));
  }

  deletePat(id: string): Promise<boolean> {
    return this.#write(() => ({ op: "deletePat", id }));
  }

  /** Written in chunks of TOUCH_CHUNK PATs, one transaction each, with the event loop served between them. */
  async touchPats(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    if (this.#closed) throw closedError();
    const entries: [string, number][] = [];
    for (const [id, t] of lastUsed) if (Number.isFinite(t)) entries.push([id, Math.floor(t)]);
    for (let i = 0; i < entries.length; i += TOUCH_CHUNK) {
      if (i > 0) await nextTurn();
      const chunk = entries.slice(i, i + TOUCH_CHUNK);
      await this.#write(() => ({ op: "touchPats", entries: chunk }));
    }
  }

  /** Every PAT, `pageSize` at a time, by id (keyset pages: each is one short query). */
  async *allPats(pageSize = 500): AsyncGenerator<PatRecord[]> {
    let after = "";
    for (;;) {
      const page = await this.#read((q) => q.patPage.all(after, pageSize).map(patFromRow));
      if (page.length > 0) yield page;
      if (page.length < pageSize) return;
      after = page[page.length - 1]?.id ?? after;
    }
  }

  // ---- domains --------------------------------------------------------------

  getDomain(id: string): Promise<Domain | null> {
    return this.#read((q) => {
      const row = q.getDomain.get(id);
      return row === undefined ? null : domainFromRow(row);
    });
  }

  listDomains(): Promise<Domain[]> {
    return this.#read((q) => q.listDomains.all().map(domainFromRow));
  }

  putDomain(domain: Domain): Promise<void> {
    return this.#write(() => ({ op: "putDomain", domain: decodeDomain({ ...domain }, "domain", TypeError) }));
  }

  insertDomain(domain: Domain): Promise<boolean> {
    return this.#write(() => ({ op: "insertDomain", domain: decodeDomain({ ...domain }, "domain", TypeError) }));
  }

  deleteDomain(id: string): Promise<boolean> {
    return this.#write(() => ({ op: "deleteDomain", id }));
  }

  // ---- memberships ----------------------------------------------------------

  getMembership(domainId: string, userId: string): Promise<Membership | null> {
    return this.#read((q) => {
      const row = q.getMember.get(domainId, userId);
      return row === undefined ? null : memberFromRow(row);
    });
  }

  listMembers(domainId: string): Promise<Membership[]> {
    return this.#read((q) => q.membersOf.all(domainId).map(memberFromRow));
  }

  listMembershipsOfUser(userId: string): Promise<Membership[]> {
    return this.#read((q) => q.membershipsOf.all(userId).map(memberFromRow));
  }

  putMembership(m: Membership): Promise<void> {
    return this.#write(() => ({ op: "putMembership", membership: decodeMembership({ ...m, roles: [...m.roles] }, "membership", TypeError) }));
  }

  deleteMembership(domainId: string, userId: string): Promise<boolean> {
    return this.#write(() => ({ op: "deleteMembership", domainId, userId }));
  }

  // ---- roles ----------------------------------------------------------------

  getRole(name: string): Promise<Role | null> {
    return this.#read((q) => {
      const row = q.getRole.get(name);
      return row === undefined ? null : roleFromRow(row);
    });
  }

  listRoles(): Promise<Role[]> {
    return this.#read((q) => q.listRoles.all().map(roleFromRow));
  }

  putRole(role: Role): Promise<void> {
    return this.#write(() => ({ op: "putRole", role: decodeRole({ ...role, operations: [...role.operations] }, "role", TypeError) }));
  }

  deleteRole(name: string): Promise<boolean> {
    return this.#write(() => ({ op: "deleteRole", name }));
  }

  // ---- admin keys -------------------------------------------------------------

  listAdminKeys(): Promise<AdminKeyRecord[]> {
    return this.#read((q) => q.listAdminKeys.all().map(adminKeyFromRow));
  }

  addFirstAdminKey(key: AdminKeyRecord): Promise<boolean> {
    return this.#write(() => ({ op: "addFirstAdminKey", key: decodeAdminKey({ ...key }, "admin key", TypeError) }));
  }

  addAdminKey(key: AdminKeyRecord): Promise<void> {
    return this.#write(() => ({ op: "addAdminKey", key: decodeAdminKey({ ...key }, "admin key", TypeError) }));
  }

  deleteAdminKey(id: string): Promise<boolean> {
    return this.#write(() => ({ op: "deleteAdminKey", id }));
  }

  // ---- web page sessions (sessions-embedded.ts) ------------------------------------

  /** The session row's value if it is live at `now` (epoch ms). */
  getSession(id: string, now: number): Promise<string | null> {
    return this.#read((q) => (q.getSession.get(id, now) as { value: string } | undefined)?.value ?? null);
  }

  /** Stores or replaces a session row, counting until `expiresAt` (epoch ms). */
  putSession(id: string, value: string, expiresAt: number): Promise<void> {
    return this.#write(() => ({ op: "putSession", id, value, expiresAt }));
  }

  /** Deletes the row in one statement and hands back its value if it was live at `now`: of two takers, one gets it. */
  takeSession(id: string, now: number): Promise<string | null> {
    return this.#write(() => ({ op: "takeSession", id, now }));
  }

  /** Deletes every row that expired by `now`; how many. */
  sweepSessions(now: number): Promise<number> {
    return this.#write(() => ({ op: "sweepSessions", now }));
  }

  // ---- usage buckets (src/usage/sqlite-buckets.ts) -----------------------------------

  /** Adds rows to their buckets and deletes the buckets that start before `keepFrom`, in one transaction. */
  addUsage(rows: readonly UsageBucketRow[], keepFrom: Readonly<Record<BucketWidth, number>>): Promise<void> {
    return this.#write(() => ({ op: "addUsage", rows, keepFrom }));
  }

  /** The rows of the buckets of `width` starting in [from, to); `userId` set: that user's only. */
  readUsage(width: BucketWidth, from: number, to: number, userId: string | null): Promise<UsageRow[]> {
    return this.#read((q) => (userId === null ? q.usageRange.all(width, from, to) : q.usageOfUser.all(width, userId, from, to)).map(usageFromRow));
  }

  // ---- bulk ---------------------------------------------------------------------

  /**
   * Writes many records (an import): LOAD_CHUNK rows per transaction, the
   * event loop served between chunks. A PAT whose id exists is overwritten; one
   * whose name another PAT of its user holds is left out and reported. Ends
   * with one `reset` event, so every process drops what it cached.
   */
  async bulkLoad(records: BulkRecords): Promise<BulkResult> {
    if (this.#closed) throw closedError();
    const checked = checkedRecords(records);
    const chunks = chunkRecords(checked, LOAD_CHUNK);
    const conflicts: NameConflict[] = [];
    for (const [i, chunk] of chunks.entries()) {
      if (i > 0) await nextTurn();
      conflicts.push(...(await this.#write<NameConflict[]>(() => ({ op: "load", records: chunk, reset: i === chunks.length - 1 }))));
    }
    const total = checked.domains.length + checked.roles.length + checked.memberships.length + checked.adminKeys.length + checked.pats.length;
    return { written: total - conflicts.length, conflicts };
  }

  /**
   * Writes a consistent copy of the whole database to `target` (VACUUM INTO:
   * one read transaction, so it neither waits for nor holds up writers, here
   * or in another process). `target` must not exist.
   */
  backupTo(target: string): Promise<void> {
    return this.#read(() => {
      this.#db.prepare("VACUUM INTO ?").run(target);
    });
  }

  /**
   * Makes every read through this instance see one snapshot of the database
   * until `end()`: a read transaction on the reading connection, so writers
   * (this instance's writer thread included) go on meanwhile. For export.
   */
  beginSnapshot(): { end(): void } {
    if (this.#closed) throw closedError();
    if (this.#inSnapshot) throw new Error("a snapshot is already open on this embedded store instance");
    this.#db.exec("BEGIN");
    // A deferred transaction starts its snapshot at its first read: now.
    this.#q.countPats.get();
    this.#inSnapshot = true;
    return {
      end: () => {
        if (!this.#inSnapshot) return;
        this.#inSnapshot = false;
        if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec("COMMIT");
      },
    };
  }

  /** SQLite's own check of the file (`PRAGMA integrity_check`): "ok" or the problems found. */
  integrityCheck(): Promise<string[]> {
    return this.#read(() => (this.#db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[]).map((r) => r.integrity_check));
  }

  // ---- events and lifecycle ---------------------------------------------------

  subscribe(listener: Listener): () => void {
    // Wrapped so the same function can be subscribed twice and unsubscribed independently.
    const entry: Listener = (e, at) => {
      listener(e, at);
    };
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Own changes are delivered right after commit; other processes' as long as polling the change table works. */
  eventsLive(): boolean {
    return !this.#closed && this.#feedOk;
  }

  ping(): Promise<void> {
    return this.#read((q) => {
      q.dataVersion.get();
    });
  }

  /** Lets the writes already sent finish, then closes both connections (SQLite checkpoints its log into the file). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      clearInterval(this.#pollTimer);
      try {
        await this.#writer.close();
      } finally {
        this.#listeners.clear();
        this.#db.close();
      }
    })();
    return this.#closing;
  }
}

// ---- helpers ----------------------------------------------------------------------

/** Retries `fn` while SQLite reports the file locked by another connection, asynchronously, until `deadline`. */
async function untilUnlocked<T>(deadline: number, fn: () => T): Promise<T> {
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || performance.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Creates the file empty with mode 0600 (SQLite gives its -wal and -shm files the same mode); leaves an existing one alone. */
async function createPrivate(file: string): Promise<void> {
  try {
    const fh = await openFile(file, "wx", 0o600);
    await fh.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot create embedded store file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

const SQLITE_NOTADB = 26;
const SQLITE_CORRUPT = 11;

function openError(file: string, err: unknown): Error {
  const code = sqliteCode(err);
  if (code === SQLITE_NOTADB && startsLikeJson(file)) {
    return new Error(
      `store.embedded_path names ${file}, a JSON store file of an earlier patgate. The embedded store is now a SQLite database: ` +
        `point store.embedded_path at ${legacyDbName(file)} instead (the JSON file beside it is migrated at start and kept as ${file}.migrated).`,
      { cause: err },
    );
  }
  if (code === SQLITE_NOTADB || code === SQLITE_CORRUPT) {
    return new Error(`embedded store file ${file} is not a SQLite database or is damaged (${(err as Error).message}). Refusing to start; restore it from a backup or move it away.`, { cause: err });
  }
  if (isBusy(err)) return new Error(`embedded store ${file} stayed locked by another process while opening; try again`, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

function startsLikeJson(file: string): boolean {
  try {
    const fd = openSync(file, "r");
    try {
      const head = Buffer.alloc(64);
      const n = readSync(fd, head, 0, head.length, 0);
      return head.subarray(0, n).toString("utf8").trimStart().startsWith("{");
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

function legacyDbName(jsonFile: string): string {
  return jsonFile.endsWith(".json") ? `${jsonFile.slice(0, -".json".length)}.db` : `${jsonFile}.db`;
}

function closedError(): StoreUnavailableError {
  return new StoreUnavailableError("embedded store is closed");
}

/** The records in order (domains, roles, memberships, admin keys, PATs), cut into parts of at most `size`. */
function chunkRecords(r: BulkRecords, size: number): BulkRecords[] {
  const items: [keyof BulkRecords, unknown][] = [];
  for (const k of ["domains", "roles", "memberships", "adminKeys", "pats"] as const) for (const x of r[k]) items.push([k, x]);
  const out: BulkRecords[] = [];
  for (let i = 0; i < items.length || out.length === 0; i += size) {
    const part = { domains: [] as unknown[], roles: [] as unknown[], memberships: [] as unknown[], adminKeys: [] as unknown[], pats: [] as unknown[] };
    for (const [k, x] of items.slice(i, i + size)) part[k].push(x);
    out.push(part as unknown as BulkRecords);
  }
  return out;
}
