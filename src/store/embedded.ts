import { mkdir, open, readFile, readdir, rename, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
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
import type { Scope } from "../scopes/scope.ts";

/*
 * The embedded store keeps everything in memory and rewrites ONE JSON file on
 * every committed change (temp file + fsync + rename, so a crash leaves either
 * the old or the new snapshot, never a torn one). Rewriting the whole file is
 * O(n) per change, which suits its purpose: one machine, thousands of records,
 * changes at human speed. Lookups by user scan all PATs for the same reason.
 *
 * State is copy-on-write: a mutation builds the next state, writes it, and only
 * then swaps it in. Readers therefore only ever see committed (durable) data,
 * and a failed write leaves nothing to roll back.
 */

const FORMAT = "patgate-embedded-store";
const FORMAT_VERSION = 1;
// last-used times are coalesced: written at most this often, and on close().
const TOUCH_FLUSH_DELAY_MS = 1000;

interface State {
  readonly pats: ReadonlyMap<string, PatRecord>;
  readonly domains: ReadonlyMap<string, Domain>;
  /** domainId → userId → membership. */
  readonly members: ReadonlyMap<string, ReadonlyMap<string, Membership>>;
  readonly roles: ReadonlyMap<string, Role>;
  readonly adminKeys: ReadonlyMap<string, AdminKeyRecord>;
}

/** What a mutation decided: the next state (null: nothing changed), its answer and its events. */
interface Change<T> {
  readonly next: State | null;
  readonly result: T;
  readonly events: readonly ChangeEvent[];
  /** PAT ids whose coalesced last-used times must be forgotten (the PAT is gone). */
  readonly forget?: readonly string[];
}

const EMPTY: State = { pats: new Map(), domains: new Map(), members: new Map(), roles: new Map(), adminKeys: new Map() };

function unchanged<T>(result: T): Change<T> {
  return { next: null, result, events: [] };
}

/** The default store when no Redis is configured: memory plus one local JSON file. */
export class EmbeddedStore implements Store {
  readonly kind = "embedded";
  readonly #file: string;
  readonly #lockFile: string;
  #state: State;
  readonly #listeners = new Set<(event: ChangeEvent, committedAt?: number) => void>();
  // Mutations (and touch flushes) run one at a time through this chain.
  #tail: Promise<void> = Promise.resolve();
  // Coalesced last-used times, newer than the records they belong to.
  readonly #lastUsed = new Map<string, number>();
  #touchSeq = 0;
  #savedTouchSeq = 0;
  #flushTimer: NodeJS.Timeout | null = null;
  #tmpCounter = 0;
  #closing = false;
  #closed: Promise<void> | null = null;

  private constructor(file: string, state: State) {
    this.#file = file;
    this.#lockFile = `${file}.lock`;
    this.#state = state;
  }

  /**
   * Opens (or creates) the store file, taking `<file>.lock` so no other process
   * shares it. Throws if the file is locked by a live process or is corrupt.
   */
  static async open(path: string): Promise<EmbeddedStore> {
    const file = resolve(path);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await acquireLock(`${file}.lock`, file);
    try {
      await removeStaleTemps(file);
      const text = await readFile(file, "utf8").catch((err: unknown) => {
        if (errCode(err) === "ENOENT") return null;
        throw err;
      });
      if (text === null) {
        const store = new EmbeddedStore(file, EMPTY);
        // Write the empty file now, so a bad path or permission fails at start, not at first change.
        await store.#save(EMPTY);
        return store;
      }
      return new EmbeddedStore(file, decodeSnapshot(text, file));
    } catch (err) {
      await releaseLock(`${file}.lock`);
      throw err;
    }
  }

  // ---- plumbing -------------------------------------------------------------

  #read<T>(fn: (s: State) => T): Promise<T> {
    if (this.#closing) return Promise.reject(closedError());
    try {
      return Promise.resolve(fn(this.#state));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(job);
    this.#tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  #mutate<T>(decide: (s: State) => Change<T>): Promise<T> {
    if (this.#closing) return Promise.reject(closedError());
    return this.#enqueue(async () => {
      // Decided against the latest committed state: the queue makes this a compare-and-set.
      const change = decide(this.#state);
      if (change.next === null) return change.result;
      await this.#save(change.next);
      this.#state = change.next;
      for (const id of change.forget ?? []) this.#lastUsed.delete(id);
      const committedAt = Date.now();
      for (const e of change.events) this.#deliver(e, committedAt);
      return change.result;
    });
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

  /** Writes `state` (plus coalesced last-used times) durably; only the queue calls this. */
  async #save(state: State): Promise<void> {
    const seq = this.#touchSeq;
    const text = encodeSnapshot(state, this.#lastUsed);
    await writeAtomic(this.#file, text, `${this.#file}.tmp-${process.pid}-${++this.#tmpCounter}`);
    this.#savedTouchSeq = seq;
  }

  #scheduleTouchFlush(): void {
    if (this.#flushTimer !== null) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      // A failed background flush stays pending: the next touch or close() retries it.
      this.#enqueue(() => this.#flushTouches()).catch(() => undefined);
    }, TOUCH_FLUSH_DELAY_MS);
    this.#flushTimer.unref();
  }

  async #flushTouches(): Promise<void> {
    if (this.#touchSeq !== this.#savedTouchSeq) await this.#save(this.#state);
  }

  /** The record with its coalesced last-used time applied. */
  #withTouch(pat: PatRecord): PatRecord {
    const t = this.#lastUsed.get(pat.id);
    if (t === undefined || (pat.lastUsedAt !== null && pat.lastUsedAt >= t)) return pat;
    return Object.freeze({ ...pat, lastUsedAt: t });
  }

  // ---- PATs -----------------------------------------------------------------

  getPat(id: string): Promise<PatRecord | null> {
    return this.#read((s) => {
      const p = s.pats.get(id);
      return p === undefined ? null : this.#withTouch(p);
    });
  }

  listPatsByUser(userId: string): Promise<PatRecord[]> {
    return this.#read((s) =>
      [...s.pats.values()]
        .filter((p) => p.userId === userId)
        .sort((a, b) => compare(a.id, b.id))
        .map((p) => this.#withTouch(p)),
    );
  }

  insertPat(pat: PatRecord): Promise<InsertResult> {
    return this.#mutate((s): Change<InsertResult> => {
      const rec = normalizePat(pat, pat.version);
      if (s.pats.has(rec.id)) return unchanged("id_taken");
      if (nameHolder(s, rec.userId, rec.name) !== undefined) return unchanged("name_taken");
      return { next: { ...s, pats: withEntry(s.pats, rec.id, rec) }, result: "ok", events: [{ kind: "pat", id: rec.id }] };
    });
  }

  replacePat(pat: PatRecord, expectedVersion: number): Promise<ReplaceResult> {
    return this.#mutate((s): Change<ReplaceResult> => {
      const rec = normalizePat(pat, expectedVersion + 1);
      const cur = s.pats.get(rec.id);
      if (cur === undefined) return unchanged("not_found");
      if (cur.version !== expectedVersion) return unchanged("conflict");
      if (cur.userId !== rec.userId) throw new TypeError(`replacePat cannot move PAT ${rec.id} to another user`);
      if (cur.name !== rec.name) {
        const holder = nameHolder(s, rec.userId, rec.name);
        if (holder !== undefined && holder !== rec.id) return unchanged("name_taken");
      }
      return { next: { ...s, pats: withEntry(s.pats, rec.id, rec) }, result: "ok", events: [{ kind: "pat", id: rec.id }] };
    });
  }

  deletePat(id: string): Promise<boolean> {
    return this.#mutate((s): Change<boolean> => {
      if (!s.pats.has(id)) return unchanged(false);
      return { next: { ...s, pats: withoutEntry(s.pats, id) }, result: true, events: [{ kind: "pat", id }], forget: [id] };
    });
  }

  touchPats(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    if (this.#closing) return Promise.reject(closedError());
    let changed = false;
    for (const [id, t] of lastUsed) {
      const pat = this.#state.pats.get(id);
      if (pat === undefined || !Number.isFinite(t)) continue;
      const cur = Math.max(pat.lastUsedAt ?? -Infinity, this.#lastUsed.get(id) ?? -Infinity);
      if (t > cur) {
        this.#lastUsed.set(id, t);
        changed = true;
      }
    }
    if (changed) {
      this.#touchSeq++;
      this.#scheduleTouchFlush();
    }
    return Promise.resolve();
  }

  // ---- domains --------------------------------------------------------------

  getDomain(id: string): Promise<Domain | null> {
    return this.#read((s) => s.domains.get(id) ?? null);
  }

  listDomains(): Promise<Domain[]> {
    return this.#read((s) => [...s.domains.values()].sort((a, b) => compare(a.id, b.id)));
  }

  putDomain(domain: Domain): Promise<void> {
    return this.#mutate((s): Change<undefined> => {
      const rec = normalizeDomain(domain);
      return { next: { ...s, domains: withEntry(s.domains, rec.id, rec) }, result: undefined, events: [{ kind: "domain", id: rec.id }] };
    });
  }

  insertDomain(domain: Domain): Promise<boolean> {
    return this.#mutate((s): Change<boolean> => {
      if (s.domains.has(domain.id)) return unchanged(false);
      const rec = normalizeDomain(domain);
      return { next: { ...s, domains: withEntry(s.domains, rec.id, rec) }, result: true, events: [{ kind: "domain", id: rec.id }] };
    });
  }

  deleteDomain(id: string): Promise<boolean> {
    return this.#mutate((s): Change<boolean> => {
      const existed = s.domains.has(id);
      const members = s.members.get(id);
      if (!existed && members === undefined) return unchanged(false);
      // Same order as the Redis store: one event per membership, then the domain's.
      const events: ChangeEvent[] = [...(members?.keys() ?? [])]
        .sort(compare)
        .map((userId) => ({ kind: "member", domainId: id, userId }));
      if (existed) events.push({ kind: "domain", id });
      return {
        next: { ...s, domains: withoutEntry(s.domains, id), members: withoutEntry(s.members, id) },
        result: existed,
        events,
      };
    });
  }

  // ---- memberships ----------------------------------------------------------

  getMembership(domainId: string, userId: string): Promise<Membership | null> {
    return this.#read((s) => s.members.get(domainId)?.get(userId) ?? null);
  }

  listMembers(domainId: string): Promise<Membership[]> {
    return this.#read((s) => [...(s.members.get(domainId)?.values() ?? [])].sort((a, b) => compare(a.userId, b.userId)));
  }

  listMembershipsOfUser(userId: string): Promise<Membership[]> {
    return this.#read((s) => {
      const out: Membership[] = [];
      for (const byUser of s.members.values()) {
        const m = byUser.get(userId);
        if (m !== undefined) out.push(m);
      }
      return out.sort((a, b) => compare(a.domainId, b.domainId));
    });
  }

  putMembership(m: Membership): Promise<void> {
    return this.#mutate((s): Change<undefined> => {
      const rec = normalizeMembership(m);
      const inner = withEntry(s.members.get(rec.domainId) ?? new Map<string, Membership>(), rec.userId, rec);
      return {
        next: { ...s, members: withEntry(s.members, rec.domainId, inner) },
        result: undefined,
        events: [{ kind: "member", domainId: rec.domainId, userId: rec.userId }],
      };
    });
  }

  deleteMembership(domainId: string, userId: string): Promise<boolean> {
    return this.#mutate((s): Change<boolean> => {
      const inner = s.members.get(domainId);
      if (inner?.has(userId) !== true) return unchanged(false);
      const rest = withoutEntry(inner, userId);
      return {
        next: { ...s, members: rest.size === 0 ? withoutEntry(s.members, domainId) : withEntry(s.members, domainId, rest) },
        result: true,
        events: [{ kind: "member", domainId, userId }],
      };
    });
  }

  // ---- roles ----------------------------------------------------------------

  getRole(name: string): Promise<Role | null> {
    return this.#read((s) => s.roles.get(name) ?? null);
  }

  listRoles(): Promise<Role[]> {
    return this.#read((s) => [...s.roles.values()].sort((a, b) => compare(a.name, b.name)));
  }

  putRole(role: Role): Promise<void> {
    return this.#mutate((s): Change<undefined> => {
      const rec = normalizeRole(role);
      return { next: { ...s, roles: withEntry(s.roles, rec.name, rec) }, result: undefined, events: [{ kind: "role", name: rec.name }] };
    });
  }

  deleteRole(name: string): Promise<boolean> {
    return this.#mutate((s): Change<boolean> => {
      if (!s.roles.has(name)) return unchanged(false);
      return { next: { ...s, roles: withoutEntry(s.roles, name) }, result: true, events: [{ kind: "role", name }] };
    });
  }

  // ---- admin keys -------------------------------------------------------------

  listAdminKeys(): Promise<AdminKeyRecord[]> {
    return this.#read((s) => [...s.adminKeys.values()].sort((a, b) => compare(a.id, b.id)));
  }

  addFirstAdminKey(key: AdminKeyRecord): Promise<boolean> {
    return this.#mutate((s): Change<boolean> => {
      if (s.adminKeys.size > 0) return unchanged(false);
      const rec = decodeAdminKey({ ...key }, "admin key", TypeError);
      return { next: { ...s, adminKeys: withEntry(s.adminKeys, rec.id, rec) }, result: true, events: [] };
    });
  }

  // ---- events and lifecycle ---------------------------------------------------

  subscribe(listener: (event: ChangeEvent, committedAt?: number) => void): () => void {
    // Wrapped so the same function can be subscribed twice and unsubscribed independently.
    const entry = (e: ChangeEvent, at?: number): void => {
      listener(e, at);
    };
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Events are delivered in-process right after each commit, so they are live until close(). */
  eventsLive(): boolean {
    return !this.#closing;
  }

  ping(): Promise<void> {
    return this.#read(() => undefined);
  }

  /**
   * Waits for pending mutations, persists coalesced last-used times and releases
   * the lock. Rejects only if that final write fails (the lock is released anyway).
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
      try {
        await this.#enqueue(() => this.#flushTouches());
      } finally {
        this.#listeners.clear();
        await releaseLock(this.#lockFile);
      }
    })();
    return this.#closed;
  }
}

// ---- copy-on-write helpers ----------------------------------------------------

function withEntry<K, V>(m: ReadonlyMap<K, V>, k: K, v: V): Map<K, V> {
  const next = new Map(m);
  next.set(k, v);
  return next;
}

function withoutEntry<K, V>(m: ReadonlyMap<K, V>, k: K): Map<K, V> {
  const next = new Map(m);
  next.delete(k);
  return next;
}

function nameHolder(s: State, userId: string, name: string): string | undefined {
  for (const p of s.pats.values()) if (p.userId === userId && p.name === name) return p.id;
  return undefined;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function closedError(): StoreUnavailableError {
  return new StoreUnavailableError("embedded store is closed");
}

// ---- records: normalized on the way in, validated on the way in and out ----------

/*
 * Records are rebuilt field by field (no foreign properties reach the file) and
 * frozen, so a caller can neither smuggle data in nor mutate committed state
 * through a returned object. They are also validated on the way in: a NaN
 * would be written as `null` and then make the file refuse to load.
 */

function normalizePat(p: PatRecord, version: number): PatRecord {
  return decodePat({ ...pick(p), scopes: p.scopes.map((s) => ({ ...s })), version }, "PAT", TypeError);
}

function pick(p: PatRecord): Record<string, unknown> {
  const { id, userId, name, description, secretHash, prevSecretHash, prevSecretExpiresAt, issuedAt, expiresAt, updatedAt, lastUsedAt, revoked, revokedAt } = p;
  return { id, userId, name, description, secretHash, prevSecretHash, prevSecretExpiresAt, issuedAt, expiresAt, updatedAt, lastUsedAt, revoked, revokedAt };
}

function normalizeDomain(d: Domain): Domain {
  return decodeDomain({ ...d }, "domain", TypeError);
}

function normalizeMembership(m: Membership): Membership {
  return decodeMembership({ ...m }, "membership", TypeError);
}

function normalizeRole(r: Role): Role {
  return decodeRole({ ...r }, "role", TypeError);
}

type ErrorCtor = new (message: string) => Error;

/** Reads typed fields out of an untrusted object, naming the offending path on failure. */
class Fields {
  readonly #o: Record<string, unknown>;
  readonly #where: string;
  readonly #Err: ErrorCtor;

  constructor(v: unknown, where: string, Err: ErrorCtor) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Err(`${where} is not an object`);
    this.#o = v as Record<string, unknown>;
    this.#where = where;
    this.#Err = Err;
  }

  #fail(k: string, what: string): never {
    throw new this.#Err(`${this.#where}.${k} is not ${what}`);
  }

  str(k: string): string {
    const v = this.#o[k];
    return typeof v === "string" ? v : this.#fail(k, "a string");
  }

  num(k: string): number {
    const v = this.#o[k];
    return typeof v === "number" && Number.isFinite(v) ? v : this.#fail(k, "a finite number");
  }

  bool(k: string): boolean {
    const v = this.#o[k];
    return typeof v === "boolean" ? v : this.#fail(k, "a boolean");
  }

  strOrNull(k: string): string | null {
    return this.#o[k] === null ? null : this.str(k);
  }

  numOrNull(k: string): number | null {
    return this.#o[k] === null ? null : this.num(k);
  }

  list(k: string): readonly unknown[] {
    const v = this.#o[k];
    return Array.isArray(v) ? (v as unknown[]) : this.#fail(k, "an array");
  }

  strs(k: string): readonly string[] {
    return Object.freeze(this.list(k).map((x, i) => (typeof x === "string" ? x : this.#fail(`${k}[${i}]`, "a string"))));
  }
}

function decodeScope(v: unknown, where: string, Err: ErrorCtor): Scope {
  const f = new Fields(v, where, Err);
  return Object.freeze({ domainId: f.str("domainId"), entityType: f.str("entityType"), entityId: f.str("entityId"), operation: f.str("operation") });
}

function decodePat(v: unknown, where: string, Err: ErrorCtor): PatRecord {
  const f = new Fields(v, where, Err);
  return Object.freeze({
    id: f.str("id"),
    userId: f.str("userId"),
    name: f.str("name"),
    description: f.str("description"),
    scopes: Object.freeze(f.list("scopes").map((s, i) => decodeScope(s, `${where}.scopes[${i}]`, Err))),
    secretHash: f.str("secretHash"),
    prevSecretHash: f.strOrNull("prevSecretHash"),
    prevSecretExpiresAt: f.numOrNull("prevSecretExpiresAt"),
    issuedAt: f.num("issuedAt"),
    expiresAt: f.num("expiresAt"),
    updatedAt: f.num("updatedAt"),
    lastUsedAt: f.numOrNull("lastUsedAt"),
    revoked: f.bool("revoked"),
    revokedAt: f.numOrNull("revokedAt"),
    version: f.num("version"),
  });
}

function decodeDomain(v: unknown, where: string, Err: ErrorCtor): Domain {
  const f = new Fields(v, where, Err);
  return Object.freeze({ id: f.str("id"), name: f.str("name"), upstream: f.strOrNull("upstream"), createdAt: f.num("createdAt") });
}

function decodeMembership(v: unknown, where: string, Err: ErrorCtor): Membership {
  const f = new Fields(v, where, Err);
  return Object.freeze({ domainId: f.str("domainId"), userId: f.str("userId"), roles: f.strs("roles") });
}

function decodeRole(v: unknown, where: string, Err: ErrorCtor): Role {
  const f = new Fields(v, where, Err);
  return Object.freeze({ name: f.str("name"), operations: f.strs("operations") });
}

function decodeAdminKey(v: unknown, where: string, Err: ErrorCtor): AdminKeyRecord {
  const f = new Fields(v, where, Err);
  return Object.freeze({ id: f.str("id"), hash: f.str("hash"), createdAt: f.num("createdAt") });
}

// ---- the file -------------------------------------------------------------------

function encodeSnapshot(s: State, lastUsed: ReadonlyMap<string, number>): string {
  const pats = [...s.pats.values()].map((p) => {
    const t = lastUsed.get(p.id);
    return t !== undefined && (p.lastUsedAt === null || t > p.lastUsedAt) ? { ...p, lastUsedAt: t } : p;
  });
  const memberships = [...s.members.values()].flatMap((inner) => [...inner.values()]);
  return JSON.stringify({
    format: FORMAT,
    version: FORMAT_VERSION,
    pats,
    domains: [...s.domains.values()],
    memberships,
    roles: [...s.roles.values()],
    adminKeys: [...s.adminKeys.values()],
  });
}

class CorruptFile extends Error {}

/** Parses and fully validates a snapshot; any problem is an error naming the file. */
function decodeSnapshot(text: string, file: string): State {
  try {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new CorruptFile(`not valid JSON (${errMessage(err)})`);
    }
    const top = new Fields(raw, "file", CorruptFile);
    if (top.str("format") !== FORMAT) throw new CorruptFile(`format is not "${FORMAT}"`);
    if (top.num("version") !== FORMAT_VERSION) throw new CorruptFile(`unsupported format version ${top.num("version")}`);

    const pats = new Map<string, PatRecord>();
    const names = new Set<string>();
    top.list("pats").forEach((v, i) => {
      const p = decodePat(v, `pats[${i}]`, CorruptFile);
      const nameKey = `${p.userId}\u0000${p.name}`;
      if (pats.has(p.id)) throw new CorruptFile(`duplicate PAT id ${p.id}`);
      if (names.has(nameKey)) throw new CorruptFile(`duplicate PAT name "${p.name}" for user ${p.userId}`);
      pats.set(p.id, p);
      names.add(nameKey);
    });
    const domains = new Map<string, Domain>();
    top.list("domains").forEach((v, i) => {
      const d = decodeDomain(v, `domains[${i}]`, CorruptFile);
      domains.set(d.id, d);
    });
    const members = new Map<string, Map<string, Membership>>();
    top.list("memberships").forEach((v, i) => {
      const m = decodeMembership(v, `memberships[${i}]`, CorruptFile);
      let inner = members.get(m.domainId);
      if (inner === undefined) members.set(m.domainId, (inner = new Map<string, Membership>()));
      inner.set(m.userId, m);
    });
    const roles = new Map<string, Role>();
    top.list("roles").forEach((v, i) => {
      const r = decodeRole(v, `roles[${i}]`, CorruptFile);
      roles.set(r.name, r);
    });
    const adminKeys = new Map<string, AdminKeyRecord>();
    // Absent in files written before admin keys existed.
    if ((raw as Record<string, unknown>)["adminKeys"] !== undefined) {
      top.list("adminKeys").forEach((v, i) => {
        const k = decodeAdminKey(v, `adminKeys[${i}]`, CorruptFile);
        adminKeys.set(k.id, k);
      });
    }
    return { pats, domains, members, roles, adminKeys };
  } catch (err) {
    if (!(err instanceof CorruptFile)) throw err;
    // Never start empty over a damaged file: that would silently drop every token.
    throw new Error(`embedded store file ${file} is corrupt: ${err.message}. Refusing to start; restore it from a backup or move it away.`, {
      cause: err,
    });
  }
}

/** temp file in the same directory → fsync → rename over the target → fsync the directory. */
async function writeAtomic(file: string, text: string, tmp: string): Promise<void> {
  let fh: FileHandle | null = null;
  try {
    fh = await open(tmp, "wx", 0o600);
    await fh.writeFile(text, "utf8");
    await fh.sync();
    await fh.close();
    fh = null;
    await rename(tmp, file);
    await syncDir(dirname(file));
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw new StoreUnavailableError(`could not write embedded store file ${file}: ${errMessage(err)}`, { cause: err });
  }
}

/** Makes the rename itself durable. Some platforms cannot fsync a directory: that is not an error there. */
async function syncDir(dir: string): Promise<void> {
  let dh: FileHandle | null = null;
  try {
    dh = await open(dir, "r");
    await dh.sync();
  } catch (err) {
    const code = errCode(err);
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "ENOTSUP" && code !== "EPERM") throw err;
  } finally {
    await dh?.close().catch(() => undefined);
  }
}

/** Left behind only by a crash mid-write; safe to delete once we hold the lock. */
async function removeStaleTemps(file: string): Promise<void> {
  const prefix = `${basename(file)}.tmp-`;
  const dir = dirname(file);
  for (const name of await readdir(dir)) {
    if (name.startsWith(prefix)) await unlink(join(dir, name)).catch(() => undefined);
  }
}

// ---- the lock -------------------------------------------------------------------

/** Lock files this process holds, so a second open in the same process is refused without reading the pid. */
const locksHeldHere = new Set<string>();

/**
 * `<file>.lock`, created with O_EXCL and holding our pid. A lock whose pid is
 * dead is taken over (its owner crashed). Two processes taking over the same
 * stale lock at the same instant could both succeed; re-reading the lock right
 * before unlinking it narrows that window to a few microseconds.
 */
async function acquireLock(lockFile: string, target: string): Promise<void> {
  if (locksHeldHere.has(lockFile)) {
    throw new Error(`embedded store ${target} is already open in this process (lock file ${lockFile}); two stores must not share one file`);
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lockFile, "wx", 0o600);
      try {
        await fh.writeFile(`${process.pid}\n`, "utf8");
        await fh.sync();
      } finally {
        await fh.close();
      }
      locksHeldHere.add(lockFile);
      return;
    } catch (err) {
      if (errCode(err) !== "EEXIST") throw new Error(`cannot create lock file ${lockFile}: ${errMessage(err)}`, { cause: err });
    }
    const content = await readFile(lockFile, "utf8").catch(() => null);
    if (content === null) continue; // released meanwhile: try again
    const pid = Number(content.trim());
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new Error(`embedded store ${target}: lock file ${lockFile} holds no pid; if no patgate process uses this store, delete the lock file`);
    }
    // Our own pid in a lock we do not hold is a crash's leftover: in a container the restarted process is pid 1 again.
    if (pid !== process.pid && pidAlive(pid)) {
      throw new Error(
        `embedded store ${target} is in use by process ${pid} (lock file ${lockFile}); two processes must not share one store file`,
      );
    }
    const again = await readFile(lockFile, "utf8").catch(() => null);
    if (again === content) await unlink(lockFile).catch(() => undefined);
  }
  throw new Error(`embedded store ${target}: could not take lock file ${lockFile}`);
}

async function releaseLock(lockFile: string): Promise<void> {
  locksHeldHere.delete(lockFile);
  // Only our own lock: if it was taken over meanwhile, it is not ours to delete.
  const content = await readFile(lockFile, "utf8").catch(() => null);
  if (content !== null && Number(content.trim()) === process.pid) await unlink(lockFile).catch(() => undefined);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return errCode(err) === "EPERM";
  }
}

function errCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String(err.code) : undefined;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
