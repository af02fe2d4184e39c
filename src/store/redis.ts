import { Cluster, Redis } from "ioredis";
import { refastPrototype } from "../util/fast-prototype.ts";
import type { RedisOptions } from "ioredis";
import { parseEvent } from "./events.ts";
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

// ioredis subclasses String as it loads, which leaves String.prototype slow (see fast-prototype.ts).
refastPrototype(String.prototype);

/** How to reach Redis: exactly one of `url`, `cluster`, `sentinel` (a `url` may add credentials to the other two). */
export interface RedisStoreOptions {
  readonly url?: string;
  readonly cluster?: { readonly nodes: readonly { readonly host: string; readonly port: number }[] };
  readonly sentinel?: {
    readonly sentinels: readonly { readonly host: string; readonly port: number }[];
    readonly name: string;
  };
  /** Prepended to every key and to the change channel; default `patgate:`. Must not contain `{` or `}`. */
  readonly keyPrefix?: string;
  readonly connectTimeoutMs?: number;
  /** A call that gets no answer within this time rejects with StoreUnavailableError; default 1000. */
  readonly commandTimeoutMs?: number;
  /**
   * Told once when the connection is lost (with the address and the cause) and
   * once when it is back: state changes, not one call per failed request or reconnect.
   */
  readonly onHealth?: (h: StoreHealth) => void;
}

/** A change of the store connection's state, for one log line each way. */
export type StoreHealth =
  | { readonly up: false; readonly address: string; readonly cause: string }
  | { readonly up: true; readonly address: string; readonly downMs: number };

const DEFAULT_PREFIX = "patgate:";
const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
// How often the subscriber connection proves it is alive: a half-open socket
// (no FIN, e.g. a network partition) would otherwise look live forever.
const FEED_PING_INTERVAL_MS = 200;
// The feed counts as live only while it was heard from (a pong or a message)
// this recently, so a silent socket stops being trusted within this bound
// rather than after a command timeout. Pongs come after any message published
// before them, so nothing is lost by trusting the feed again once one arrives.
const FEED_STALE_MS = 600;
// touchPats sends at most this many keys per script call, so one call never blocks Redis for long.
const TOUCH_BATCH = 500;

/** Reconnect quickly: the gateway fails closed while Redis is away, so every second counts. */
function backoff(times: number): number {
  return Math.min(50 * 2 ** Math.max(0, times - 1), 1000) + Math.floor(Math.random() * 100);
}

/*
 * Key layout. Every key carries the same hash tag `{pg}`, so all patgate data
 * lives in ONE Redis Cluster slot and every multi-key Lua script below is legal
 * on Cluster. The trade-off: the data cannot be spread over shards. That is
 * fine here: the data is small (tokens, domains, memberships, roles) and the
 * gateway serves reads from its own cache; Cluster is for availability, not size.
 *
 * Each key kind starts with a fixed word and ends with the one variable part,
 * so ids containing ':' cannot make two kinds collide.
 */
class Keys {
  readonly pat: (id: string) => string;
  readonly patsOf: (userId: string) => string;
  readonly namesOf: (userId: string) => string;
  readonly domains: string;
  readonly membersOf: (domainId: string) => string;
  readonly domainsOf: (userId: string) => string;
  readonly roles: string;
  readonly adminKeys: string;
  /** A SCAN pattern matching every PAT key and nothing else. */
  readonly patPattern: string;
  /** Channels are not keys: no hash tag needed, PUBLISH reaches the whole cluster. */
  readonly channel: string;

  constructor(prefix: string) {
    const base = `${prefix}{pg}:`;
    this.pat = (id) => `${base}pat:${id}`; // hash: rec (JSON), v, u, n, lu
    this.patsOf = (userId) => `${base}user-pats:${userId}`; // set of PAT ids
    this.namesOf = (userId) => `${base}user-names:${userId}`; // hash name → PAT id
    this.domains = `${base}domains`; // hash id → Domain JSON
    this.membersOf = (domainId) => `${base}domain-members:${domainId}`; // hash userId → Membership JSON
    this.domainsOf = (userId) => `${base}user-domains:${userId}`; // hash domainId → Membership JSON
    this.roles = `${base}roles`; // hash name → Role JSON
    this.adminKeys = `${base}admin-keys`; // hash id → AdminKeyRecord JSON
    this.patPattern = `${base.replace(/[*?[\]\\]/g, "\\$&")}pat:*`;
    this.channel = `${prefix}changes`;
  }
}

/*
 * Every write is one Lua script that also PUBLISHes its change event, so a
 * committed change is never left unannounced (a crash between a MULTI and a
 * separate PUBLISH could do that). Event payloads are built in TypeScript and
 * passed in ARGV; Lua only decides whether the change happens.
 */
const SCRIPTS = {
  // KEYS: pat, patsOf, namesOf. ARGV: id, userId, name, version, json, channel, event.
  pgInsertPat: {
    numberOfKeys: 3,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'id_taken' end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return 'name_taken' end
redis.call('HSET', KEYS[1], 'rec', ARGV[5], 'v', ARGV[4], 'u', ARGV[2], 'n', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 'ok'`,
  },
  // KEYS: pat, namesOf. ARGV: expectedVersion, userId, name, id, json, newVersion, channel, event.
  pgReplacePat: {
    numberOfKeys: 2,
    lua: `
local cur = redis.call('HMGET', KEYS[1], 'v', 'u', 'n')
if not cur[1] then return 'not_found' end
if tonumber(cur[1]) ~= tonumber(ARGV[1]) then return 'conflict' end
if cur[2] ~= ARGV[2] then return 'user_changed' end
if cur[3] ~= ARGV[3] then
  local holder = redis.call('HGET', KEYS[2], ARGV[3])
  if holder and holder ~= ARGV[4] then return 'name_taken' end
  if redis.call('HGET', KEYS[2], cur[3]) == ARGV[4] then redis.call('HDEL', KEYS[2], cur[3]) end
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
redis.call('HSET', KEYS[1], 'rec', ARGV[5], 'v', ARGV[6], 'n', ARGV[3])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 'ok'`,
  },
  // KEYS: pat, patsOf, namesOf. ARGV: id, userId, channel, event.
  // Returns -1 when the PAT's user is not the one whose keys were passed (caller re-reads and retries).
  pgDeletePat: {
    numberOfKeys: 3,
    lua: `
local cur = redis.call('HMGET', KEYS[1], 'u', 'n')
if not cur[1] then return 0 end
if cur[1] ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], cur[2]) == ARGV[1] then redis.call('HDEL', KEYS[3], cur[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`,
  },
  // KEYS: pat keys. ARGV: last-used times, same order. Never creates a PAT, never bumps v, never publishes.
  pgTouchPats: {
    lua: `
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    local cur = redis.call('HGET', k, 'lu')
    if not cur or tonumber(cur) < tonumber(ARGV[i]) then redis.call('HSET', k, 'lu', ARGV[i]) end
  end
end
return 0`,
  },
  // KEYS: hash. ARGV: field, json, channel, event.
  pgHashPut: {
    numberOfKeys: 1,
    lua: `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`,
  },
  // KEYS: hash. ARGV: field, json, channel, event. Only when the field is absent (an atomic create); 0 when it exists.
  pgHashInsert: {
    numberOfKeys: 1,
    lua: `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`,
  },
  // KEYS: hash. ARGV: field, channel, event. Publishes only when something was deleted.
  pgHashDel: {
    numberOfKeys: 1,
    lua: `
local n = redis.call('HDEL', KEYS[1], ARGV[1])
if n == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n`,
  },
  // KEYS: membersOf(d), domainsOf(u). ARGV: domainId, userId, json, channel, event.
  pgPutMember: {
    numberOfKeys: 2,
    lua: `
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`,
  },
  // KEYS: membersOf(d), domainsOf(u). ARGV: domainId, userId, channel, event.
  pgDelMember: {
    numberOfKeys: 2,
    lua: `
local n = redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
if n == 1 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return n`,
  },
  // KEYS: adminKeys. ARGV: id, json. Only into an empty hash; admin keys are not cached, so nothing is published.
  pgAddFirstAdminKey: {
    numberOfKeys: 1,
    lua: `
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`,
  },
  // KEYS: domains, membersOf(d), domainsOf(u1..un). ARGV: domainId, channel, domainEvent, u1..un, memberEvent1..n.
  // The member list is read first so every key is declared; -1 means it changed meanwhile (caller retries).
  pgDeleteDomain: {
    lua: `
local n = #KEYS - 2
if redis.call('HLEN', KEYS[2]) ~= n then return -1 end
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2], ARGV[3 + i]) == 0 then return -1 end
end
for i = 1, n do redis.call('HDEL', KEYS[2 + i], ARGV[1]) end
redis.call('DEL', KEYS[2])
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
for i = 1, n do redis.call('PUBLISH', ARGV[2], ARGV[3 + n + i]) end
if existed == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return existed`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;
type Client = Redis | Cluster;
// ioredis declares replyMapping as `?: T | undefined` in RedisOptions but `?: T` in its
// constructors, which exactOptionalPropertyTypes rejects; we never set it anyway.
type NodeOptions = Omit<RedisOptions, "replyMapping">;

// Retries for the "changed meanwhile" answers of pgDeletePat / pgDeleteDomain.
const MAX_RACE_RETRIES = 10;

/** The Redis store shared by every gateway replica; see the key layout comment above. */
export class RedisStore implements Store {
  readonly kind = "redis";
  readonly #client: Client;
  readonly #keys: Keys;
  readonly #feed: ChangeFeed;
  readonly #listeners = new Set<(event: ChangeEvent, committedAt?: number) => void>();
  // Woken on every connection state change, so connect() can wait for "ready or failed".
  readonly #watchers = new Set<() => void>();
  #closed = false;
  // Set by the first connection error; only used to end connect()'s initial wait early.
  #sawError = false;
  /** Where the store is, for people: host:port, the Sentinel master, or the Cluster seeds (never credentials). */
  readonly #address: string;
  /** Why the connection is down, from the last connection error; null while it is up. */
  #cause: string | null = null;
  /** null until the first connection settles; then whether it is up, for onHealth's once-per-change lines. */
  #up: boolean | null = null;
  #downSince = 0;
  readonly #onHealth: ((h: StoreHealth) => void) | undefined;

  private constructor(client: Client, keys: Keys, makeFeedConn: () => Redis, address: string, onHealth: ((h: StoreHealth) => void) | undefined) {
    this.#client = client;
    this.#keys = keys;
    this.#address = address;
    this.#onHealth = onHealth;
    // ioredis emits 'error' on every failed (re)connect; without a listener that is
    // an unhandled 'error' event. The state is what matters: calls fail fast meanwhile.
    client.on("error", (err: Error) => {
      this.#sawError = true;
      this.#down(connectionCause(err));
      this.#wake();
    });
    client.on("ready", () => {
      this.#cause = null;
      if (this.#up === false) this.#onHealth?.({ up: true, address: this.#address, downMs: Math.round(performance.now() - this.#downSince) });
      this.#up = true;
      this.#wake();
    });
    client.on("close", () => {
      if (!this.#closed) this.#down(this.#cause ?? "the connection closed");
      this.#wake();
    });
    client.on("end", () => this.#wake());
    this.#feed = new ChangeFeed(makeFeedConn, keys.channel, {
      event: (e, at) => {
        this.#deliver(e, at);
      },
      status: () => {
        this.#wake();
      },
    });
  }

  /**
   * Connects (single node, Cluster or Sentinel) and waits briefly for the first
   * connection; never throws because Redis is down: calls reject until it is back.
   */
  static async connect(opts: RedisStoreOptions): Promise<RedisStore> {
    const prefix = opts.keyPrefix ?? DEFAULT_PREFIX;
    if (/[{}]/.test(prefix)) throw new Error(`keyPrefix must not contain '{' or '}' (it would change the hash tag): ${prefix}`);
    const plan = clientPlan(opts);
    const keys = new Keys(prefix);

    let store: RedisStore;
    const address = describeAddress(opts);
    if (plan.mode === "cluster") {
      const cluster = new Cluster(plan.seeds, { ...plan.options, scripts: SCRIPTS });
      store = new RedisStore(cluster, keys, clusterFeedConnections(cluster, plan.seeds, plan.node), address, opts.onHealth);
    } else {
      const client = plan.mode === "sentinel" ? new Redis({ ...plan.options, scripts: SCRIPTS }) : new Redis(plan.url, { ...plan.options, scripts: SCRIPTS });
      // The subscriber follows the same server (or the same Sentinel-resolved master).
      store = new RedisStore(client, keys, () => client.duplicate({ autoResubscribe: false, scripts: {} }), address, opts.onHealth);
    }
    store.#feed.start();
    await store.#settle(plan.connectTimeoutMs);
    return store;
  }

  /** Resolves once both connections are up, or at the first connection failure, or after timeoutMs. */
  #settle(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        const up = this.#client.status === "ready" && this.#feed.live;
        if (up || this.#sawError || this.#feed.failedOnce || this.#client.status === "end") finish();
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.#watchers.delete(check);
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.#watchers.add(check);
      check();
    });
  }

  /** The connection is down: say so once (until it is back), with the cause. */
  #down(cause: string): void {
    this.#cause = cause;
    if (this.#up === false || this.#closed) return;
    this.#up = false;
    this.#downSince = performance.now();
    this.#onHealth?.({ up: false, address: this.#address, cause });
  }

  #wake(): void {
    for (const w of [...this.#watchers]) w();
  }

  #deliver(event: ChangeEvent, committedAt?: number): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event, committedAt);
      } catch {
        // One faulty listener must not keep the others from hearing about a change.
      }
    }
  }

  async #call<T>(op: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailableError("Redis store is closed");
    try {
      return await op();
    } catch (err) {
      // A caller's mistake (TypeError) is not an outage: let it through as is.
      if (err instanceof StoreUnavailableError || err instanceof TypeError) throw err;
      // ioredis' own text ("Stream isn't writeable…") says neither where nor why: the connection's last error does.
      const why = this.#cause ?? callCause(err, this.#client.status);
      throw new StoreUnavailableError(`Redis at ${this.#address} is unavailable: ${why}`, { cause: err });
    }
  }

  #run(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    // ioredis adds one method per entry of `scripts`; TypeScript cannot see them.
    const fn = (this.#client as unknown as Record<ScriptName, ScriptFn>)[name];
    return fn.apply(this.#client, args);
  }

  getPat(id: string): Promise<PatRecord | null> {
    return this.#call(async () => {
      const [rec, lu] = await this.#client.hmget(this.#keys.pat(id), "rec", "lu");
      return rec == null ? null : decodePat(rec, lu ?? null);
    });
  }

  listPatsByUser(userId: string): Promise<PatRecord[]> {
    return this.#call(async () => {
      const ids = await this.#client.smembers(this.#keys.patsOf(userId));
      if (ids.length === 0) return [];
      // All keys share one slot, so this pipeline goes to one node even on Cluster.
      const pipe = this.#client.pipeline();
      for (const id of ids) pipe.hmget(this.#keys.pat(id), "rec", "lu");
      const results = (await pipe.exec()) ?? [];
      const out: PatRecord[] = [];
      for (const [err, value] of results) {
        if (err) throw err;
        const [rec, lu] = value as (string | null)[];
        // A PAT deleted between the two round trips is simply gone.
        if (rec != null) out.push(decodePat(rec, lu ?? null));
      }
      return out.sort((a, b) => compare(a.id, b.id));
    });
  }

  insertPat(pat: PatRecord): Promise<InsertResult> {
    return this.#call(async () => {
      const k = this.#keys;
      const r = await this.#run("pgInsertPat", k.pat(pat.id), k.patsOf(pat.userId), k.namesOf(pat.userId),
        pat.id, pat.userId, pat.name, pat.version, encodePat(pat, pat.version), k.channel, eventJson({ kind: "pat", id: pat.id }));
      if (r === "ok" || r === "name_taken" || r === "id_taken") return r;
      throw new Error(`unexpected script answer: ${String(r)}`);
    });
  }

  replacePat(pat: PatRecord, expectedVersion: number): Promise<ReplaceResult> {
    return this.#call(async () => {
      const k = this.#keys;
      const next = expectedVersion + 1;
      const r = await this.#run("pgReplacePat", k.pat(pat.id), k.namesOf(pat.userId),
        expectedVersion, pat.userId, pat.name, pat.id, encodePat(pat, next), next, k.channel, eventJson({ kind: "pat", id: pat.id }));
      if (r === "ok" || r === "conflict" || r === "name_taken" || r === "not_found") return r;
      if (r === "user_changed") throw new TypeError(`replacePat cannot move PAT ${pat.id} to another user`);
      throw new Error(`unexpected script answer: ${String(r)}`);
    });
  }

  deletePat(id: string): Promise<boolean> {
    return this.#call(async () => {
      const k = this.#keys;
      for (let i = 0; i < MAX_RACE_RETRIES; i++) {
        // The owner decides which index keys the script must declare.
        const userId = await this.#client.hget(k.pat(id), "u");
        if (userId === null) return false;
        const r = await this.#run("pgDeletePat", k.pat(id), k.patsOf(userId), k.namesOf(userId),
          id, userId, k.channel, eventJson({ kind: "pat", id }));
        if (r !== -1) return r === 1;
      }
      throw new Error(`PAT ${id} kept changing owner during delete`);
    });
  }

  /**
   * SCANs for PAT keys (on Cluster, on every master: only the one serving the
   * hash tag's slot has any), then reads each page in one pipeline. SCAN may
   * repeat a key; repeats are dropped.
   */
  async *allPats(pageSize = 500): AsyncGenerator<PatRecord[]> {
    if (this.#closed) throw new StoreUnavailableError("Redis store is closed");
    const client = this.#client;
    const nodes = client instanceof Cluster ? client.nodes("master") : [client];
    const seen = new Set<string>();
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, keys] = await this.#call(() => node.scan(cursor, "MATCH", this.#keys.patPattern, "COUNT", pageSize));
        cursor = next;
        const fresh = keys.filter((k) => !seen.has(k));
        for (const k of fresh) seen.add(k);
        if (fresh.length === 0) continue;
        const page = await this.#call(async () => {
          const pipe = client.pipeline();
          for (const k of fresh) pipe.hmget(k, "rec", "lu");
          const out: PatRecord[] = [];
          for (const [err, value] of (await pipe.exec()) ?? []) {
            if (err) throw err;
            const [rec, lu] = value as (string | null)[];
            if (rec != null) out.push(decodePat(rec, lu ?? null));
          }
          return out;
        });
        if (page.length > 0) yield page;
      } while (cursor !== "0");
    }
  }

  touchPats(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    return this.#call(async () => {
      const entries = [...lastUsed];
      for (let i = 0; i < entries.length; i += TOUCH_BATCH) {
        const batch = entries.slice(i, i + TOUCH_BATCH);
        await this.#run("pgTouchPats", batch.length, ...batch.map(([id]) => this.#keys.pat(id)), ...batch.map(([, t]) => Math.floor(t)));
      }
    });
  }

  getDomain(id: string): Promise<Domain | null> {
    return this.#call(async () => parseOrNull<Domain>(await this.#client.hget(this.#keys.domains, id)));
  }

  listDomains(): Promise<Domain[]> {
    return this.#call(async () => {
      const all = (await this.#client.hvals(this.#keys.domains)).map((v) => parse<Domain>(v));
      return all.sort((a, b) => compare(a.id, b.id));
    });
  }

  putDomain(domain: Domain): Promise<void> {
    return this.#call(async () => {
      const k = this.#keys;
      const json = JSON.stringify({ id: domain.id, name: domain.name, upstream: domain.upstream, createdAt: domain.createdAt });
      await this.#run("pgHashPut", k.domains, domain.id, json, k.channel, eventJson({ kind: "domain", id: domain.id }));
    });
  }

  insertDomain(domain: Domain): Promise<boolean> {
    return this.#call(async () => {
      const k = this.#keys;
      const json = JSON.stringify({ id: domain.id, name: domain.name, upstream: domain.upstream, createdAt: domain.createdAt });
      return (await this.#run("pgHashInsert", k.domains, domain.id, json, k.channel, eventJson({ kind: "domain", id: domain.id }))) === 1;
    });
  }

  deleteDomain(id: string): Promise<boolean> {
    return this.#call(async () => {
      const k = this.#keys;
      for (let i = 0; i < MAX_RACE_RETRIES; i++) {
        const users = (await this.#client.hkeys(k.membersOf(id))).sort(compare);
        const r = await this.#run("pgDeleteDomain", 2 + users.length, k.domains, k.membersOf(id), ...users.map((u) => k.domainsOf(u)),
          id, k.channel, eventJson({ kind: "domain", id }), ...users,
          ...users.map((u) => eventJson({ kind: "member", domainId: id, userId: u })));
        if (r !== -1) return r === 1;
      }
      throw new Error(`members of domain ${id} kept changing during delete`);
    });
  }

  getMembership(domainId: string, userId: string): Promise<Membership | null> {
    return this.#call(async () => parseOrNull<Membership>(await this.#client.hget(this.#keys.membersOf(domainId), userId)));
  }

  listMembers(domainId: string): Promise<Membership[]> {
    return this.#call(async () => {
      const all = (await this.#client.hvals(this.#keys.membersOf(domainId))).map((v) => parse<Membership>(v));
      return all.sort((a, b) => compare(a.userId, b.userId));
    });
  }

  listMembershipsOfUser(userId: string): Promise<Membership[]> {
    return this.#call(async () => {
      const all = (await this.#client.hvals(this.#keys.domainsOf(userId))).map((v) => parse<Membership>(v));
      return all.sort((a, b) => compare(a.domainId, b.domainId));
    });
  }

  putMembership(m: Membership): Promise<void> {
    return this.#call(async () => {
      const k = this.#keys;
      const json = JSON.stringify({ domainId: m.domainId, userId: m.userId, roles: [...m.roles] });
      await this.#run("pgPutMember", k.membersOf(m.domainId), k.domainsOf(m.userId), m.domainId, m.userId, json,
        k.channel, eventJson({ kind: "member", domainId: m.domainId, userId: m.userId }));
    });
  }

  deleteMembership(domainId: string, userId: string): Promise<boolean> {
    return this.#call(async () => {
      const k = this.#keys;
      const r = await this.#run("pgDelMember", k.membersOf(domainId), k.domainsOf(userId), domainId, userId,
        k.channel, eventJson({ kind: "member", domainId, userId }));
      return r === 1;
    });
  }

  getRole(name: string): Promise<Role | null> {
    return this.#call(async () => parseOrNull<Role>(await this.#client.hget(this.#keys.roles, name)));
  }

  listRoles(): Promise<Role[]> {
    return this.#call(async () => {
      const all = (await this.#client.hvals(this.#keys.roles)).map((v) => parse<Role>(v));
      return all.sort((a, b) => compare(a.name, b.name));
    });
  }

  putRole(role: Role): Promise<void> {
    return this.#call(async () => {
      const k = this.#keys;
      const json = JSON.stringify({ name: role.name, operations: [...role.operations] });
      await this.#run("pgHashPut", k.roles, role.name, json, k.channel, eventJson({ kind: "role", name: role.name }));
    });
  }

  deleteRole(name: string): Promise<boolean> {
    return this.#call(async () => {
      const k = this.#keys;
      return (await this.#run("pgHashDel", k.roles, name, k.channel, eventJson({ kind: "role", name }))) === 1;
    });
  }

  listAdminKeys(): Promise<AdminKeyRecord[]> {
    return this.#call(async () => {
      const all = (await this.#client.hvals(this.#keys.adminKeys)).map((v) => parse<AdminKeyRecord>(v));
      return all.sort((a, b) => compare(a.id, b.id));
    });
  }

  addFirstAdminKey(key: AdminKeyRecord): Promise<boolean> {
    return this.#call(async () => {
      const json = JSON.stringify({ id: key.id, hash: key.hash, createdAt: key.createdAt });
      return (await this.#run("pgAddFirstAdminKey", this.#keys.adminKeys, key.id, json)) === 1;
    });
  }

  addAdminKey(key: AdminKeyRecord): Promise<void> {
    return this.#call(async () => {
      await this.#client.hset(this.#keys.adminKeys, key.id, JSON.stringify({ id: key.id, hash: key.hash, createdAt: key.createdAt }));
    });
  }

  deleteAdminKey(id: string): Promise<boolean> {
    return this.#call(async () => (await this.#client.hdel(this.#keys.adminKeys, id)) === 1);
  }

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

  /** The store's connection, reused by the web page's sessions (sessions-redis.ts: keys of their own). */
  get redis(): Client {
    return this.#client;
  }

  eventsLive(): boolean {
    return !this.#closed && this.#feed.live;
  }

  ping(): Promise<void> {
    return this.#call(async () => {
      await this.#client.ping();
    });
  }

  /** Closes both connections; never throws. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await Promise.all([this.#feed.stop(), quietQuit(this.#client)]);
  }
}

/**
 * The subscriber side: one dedicated connection SUBSCRIBEd to the change channel.
 * `live` is true only while a subscription is confirmed on the current connection;
 * each new confirmation first delivers `reset`, since events may have been missed.
 */
class ChangeFeed {
  readonly #makeConn: () => Redis;
  readonly #channel: string;
  readonly #hooks: { event(e: ChangeEvent, at?: number): void; status(): void };
  #conn: Redis | null = null;
  #live = false;
  #lastHeard = 0;
  #stopped = false;
  #failedOnce = false;
  #pingTimer: NodeJS.Timeout | null = null;
  #replaceTimer: NodeJS.Timeout | null = null;
  #replacements = 0;

  constructor(makeConn: () => Redis, channel: string, hooks: { event(e: ChangeEvent, at?: number): void; status(): void }) {
    this.#makeConn = makeConn;
    this.#channel = channel;
    this.#hooks = hooks;
  }

  get live(): boolean {
    return this.#live && performance.now() - this.#lastHeard < FEED_STALE_MS;
  }

  /** True once any connection attempt has failed (used only to end connect()'s wait early). */
  get failedOnce(): boolean {
    return this.#failedOnce;
  }

  start(): void {
    this.#attach(this.#makeConn());
    this.#pingTimer = setInterval(() => {
      this.#healthCheck();
    }, FEED_PING_INTERVAL_MS);
    this.#pingTimer.unref();
  }

  #attach(conn: Redis): void {
    this.#conn = conn;
    conn.on("error", () => {
      this.#failedOnce = true;
      this.#hooks.status();
    });
    conn.on("ready", () => {
      void this.#subscribe(conn);
    });
    conn.on("close", () => {
      if (conn === this.#conn) this.#setLive(false);
    });
    // 'end' means this connection gave up reconnecting (Cluster feeds do, to try another node).
    conn.on("end", () => {
      if (conn !== this.#conn || this.#stopped) return;
      this.#setLive(false);
      this.#replaceTimer = setTimeout(() => {
        this.#replaceTimer = null;
        if (!this.#stopped) this.#attach(this.#makeConn());
      }, backoff(++this.#replacements));
      this.#replaceTimer.unref();
    });
    conn.on("message", (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      this.#lastHeard = performance.now();
      const event = parseEvent(message);
      if (event !== null) this.#hooks.event(event, committedAt(message));
    });
  }

  async #subscribe(conn: Redis): Promise<void> {
    try {
      await conn.subscribe(this.#channel);
    } catch {
      // Could not subscribe on this connection: drop it and let reconnection try again.
      if (conn === this.#conn && !this.#stopped) conn.disconnect(true);
      return;
    }
    if (conn !== this.#conn || this.#stopped || conn.status !== "ready") return;
    this.#replacements = 0;
    // Reset goes out before `live` flips, so a cache never trusts entries from before the gap.
    this.#hooks.event({ kind: "reset" });
    this.#lastHeard = performance.now();
    this.#setLive(true);
  }

  #healthCheck(): void {
    const conn = this.#conn;
    if (conn === null || !this.#live) return;
    conn.ping().then(
      () => {
        if (conn === this.#conn) this.#lastHeard = performance.now();
      },
      () => {
        if (conn !== this.#conn || this.#stopped) return;
        this.#setLive(false);
        conn.disconnect(true);
      },
    );
  }

  #setLive(live: boolean): void {
    if (this.#live === live) return;
    this.#live = live;
    this.#hooks.status();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#live = false;
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    if (this.#replaceTimer !== null) clearTimeout(this.#replaceTimer);
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null) await quietQuit(conn);
  }
}

/** The Cluster options we set (a narrow type: ioredis' own ClusterOptions trips exactOptionalPropertyTypes). */
export interface ClusterPlanOptions {
  readonly enableOfflineQueue: false;
  readonly clusterRetryStrategy: (times: number) => number;
  readonly redisOptions: Omit<NodeOptions, "retryStrategy" | "enableOfflineQueue">;
}

/** The ioredis settings RedisStore.connect builds its clients from (scripts are added there). */
export type ClientPlan =
  | { readonly mode: "single"; readonly url: string; readonly options: NodeOptions; readonly connectTimeoutMs: number }
  | { readonly mode: "sentinel"; readonly options: NodeOptions; readonly connectTimeoutMs: number }
  | {
      readonly mode: "cluster";
      readonly seeds: { host: string; port: number }[];
      readonly options: ClusterPlanOptions;
      /** For plain connections to one node (the change feed). */
      readonly node: NodeOptions;
      readonly connectTimeoutMs: number;
    };

/** Translates RedisStoreOptions into ioredis options for one of the three modes; pure, so tests can read it. */
export function clientPlan(opts: RedisStoreOptions): ClientPlan {
  if (opts.cluster !== undefined && opts.sentinel !== undefined) throw new Error("RedisStore: cluster and sentinel exclude each other");
  const connectTimeout = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const commandTimeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const { db, ...credentials } = credentialsFrom(opts.url);
  // Fail fast instead of queueing: a request that cannot be verified must get
  // its 503 now, not after Redis returns. No retries or resends either: a
  // replayed insert or CAS would report id_taken / conflict for its own write.
  const node: NodeOptions = {
    connectTimeout,
    commandTimeout,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableOfflineQueue: false,
    retryStrategy: backoff,
    ...credentials,
  };
  if (opts.cluster !== undefined) {
    if (opts.cluster.nodes.length === 0) throw new Error("RedisStore: cluster needs at least one node");
    // Cluster has only database 0; silently writing elsewhere than configured would be worse than refusing.
    if (db !== undefined && db !== 0) throw new Error(`RedisStore: Redis Cluster has only database 0 (the URL names ${db})`);
    const seeds = opts.cluster.nodes.map((n) => ({ host: n.host, port: n.port }));
    const { retryStrategy: _r, enableOfflineQueue: _q, ...perNode } = node;
    return {
      mode: "cluster",
      seeds,
      options: { enableOfflineQueue: false, clusterRetryStrategy: backoff, redisOptions: perNode },
      node,
      connectTimeoutMs: connectTimeout,
    };
  }
  if (opts.sentinel !== undefined) {
    if (opts.sentinel.sentinels.length === 0) throw new Error("RedisStore: sentinel needs at least one sentinel");
    const tls = credentials.tls !== undefined;
    return {
      mode: "sentinel",
      options: {
        ...node,
        sentinels: opts.sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: opts.sentinel.name,
        // The sentinels take the same credentials and TLS as the data nodes (one URL configures both).
        ...(credentials.username === undefined ? {} : { sentinelUsername: credentials.username }),
        ...(credentials.password === undefined ? {} : { sentinelPassword: credentials.password }),
        // Without enableTLSForSentinelMode ioredis would reach the resolved master in clear text despite `tls`.
        ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
        sentinelCommandTimeout: commandTimeout,
        ...(db === undefined ? {} : { db }),
      },
      connectTimeoutMs: connectTimeout,
    };
  }
  if (opts.url === undefined) throw new Error("RedisStore: one of url, cluster, sentinel is required");
  return { mode: "single", url: opts.url, options: node, connectTimeoutMs: connectTimeout };
}

/**
 * A plain client (no scripts, no change feed) in the same mode and with the
 * same fail-fast settings as the store: for side channels such as the audit stream.
 */
export function createRedisClient(opts: RedisStoreOptions): Redis | Cluster {
  const plan = clientPlan(opts);
  if (plan.mode === "cluster") return new Cluster(plan.seeds, plan.options);
  return plan.mode === "sentinel" ? new Redis(plan.options) : new Redis(plan.url, plan.options);
}

/**
 * Waits for a client of createRedisClient() to be ready: true once it is; false
 * at its first connection error, when it gives up, or after the connect timeout
 * of `opts` (it goes on reconnecting in the background either way). Such a
 * client has no offline queue, so a command sent before this fails at once.
 */
export function untilReady(client: Redis | Cluster, opts: RedisStoreOptions): Promise<boolean> {
  if (client.status === "ready") return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      client.off("ready", onReady);
      client.off("error", onFail);
      client.off("end", onFail);
      resolve(ok);
    };
    const onReady = (): void => done(true);
    const onFail = (): void => done(false);
    const timer = setTimeout(onFail, opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    client.on("ready", onReady);
    client.on("error", onFail);
    client.on("end", onFail);
  });
}

/**
 * Cluster: PUBLISH is broadcast to every node, so subscribing to any one node
 * hears everything. Each feed connection targets one node and gives up after a
 * few failed reconnects; the feed then moves to the next known node.
 */
function clusterFeedConnections(cluster: Cluster, seeds: readonly { host: string; port: number }[], node: NodeOptions): () => Redis {
  let next = 0;
  return () => {
    const known = cluster.nodes("all").map((n) => ({ host: n.options.host ?? "", port: n.options.port ?? 0 }));
    const candidates = known.length > 0 ? known : seeds;
    const target = candidates[next++ % candidates.length] ?? { host: "127.0.0.1", port: 6379 };
    return new Redis({
      ...node,
      host: target.host,
      port: target.port,
      autoResubscribe: false,
      retryStrategy: (times) => (times > 3 ? null : backoff(times)),
    });
  };
}

/** Username, password, TLS and db from a redis:// or rediss:// URL, for Cluster and Sentinel modes (its host is not used there). */
function credentialsFrom(url: string | undefined): { username?: string; password?: string; tls?: object; db?: number } {
  if (url === undefined) return {};
  const u = new URL(url);
  const out: { username?: string; password?: string; tls?: object; db?: number } = {};
  if (u.username !== "") out.username = decodeURIComponent(u.username);
  if (u.password !== "") out.password = decodeURIComponent(u.password);
  if (u.protocol === "rediss:") out.tls = {};
  const db = /^\/(\d+)\/?$/.exec(u.pathname)?.[1];
  if (db !== undefined) out.db = Number(db);
  return out;
}

async function quietQuit(client: Client): Promise<void> {
  try {
    await client.quit();
  } catch {
    // Not connected or no answer: drop the socket and stop reconnecting.
  }
  client.disconnect();
}

function encodePat(p: PatRecord, version: number): string {
  return JSON.stringify({
    id: p.id,
    userId: p.userId,
    name: p.name,
    description: p.description,
    scopes: p.scopes.map((s) => ({ domainId: s.domainId, entityType: s.entityType, entityId: s.entityId, operation: s.operation })),
    secretHash: p.secretHash,
    prevSecretHash: p.prevSecretHash,
    prevSecretExpiresAt: p.prevSecretExpiresAt,
    issuedAt: p.issuedAt,
    expiresAt: p.expiresAt,
    updatedAt: p.updatedAt,
    lastUsedAt: p.lastUsedAt,
    revoked: p.revoked,
    revokedAt: p.revokedAt,
    version,
    ...(p.limits === undefined ? {} : { limits: p.limits }),
  });
}

/** `lu` (written by touchPats) and the record's own lastUsedAt: the later one wins. */
function decodePat(rec: string, lu: string | null): PatRecord {
  const pat = parse<PatRecord>(rec);
  const touched = lu === null ? null : Number(lu);
  if (touched === null || (pat.lastUsedAt !== null && pat.lastUsedAt >= touched)) return pat;
  return { ...pat, lastUsedAt: touched };
}

// Only this module writes these values, so a parse failure means a damaged store.
function parse<T>(json: string): T {
  try {
    return JSON.parse(json) as T;
  } catch (err) {
    throw new StoreUnavailableError("Redis store holds a damaged record", { cause: err });
  }
}

function parseOrNull<T>(json: string | null): T | null {
  return json === null ? null : parse<T>(json);
}

/** The wire form also carries the commit time, so subscribers can measure propagation lag. */
function eventJson(e: ChangeEvent): string {
  return JSON.stringify({ ...e, at: Date.now() });
}

function committedAt(message: string): number | undefined {
  try {
    const at = (JSON.parse(message) as { at?: unknown }).at;
    return typeof at === "number" && Number.isFinite(at) ? at : undefined;
  } catch {
    return undefined;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Where the store is, without credentials: `redis://host:port/db`, the Sentinel master and sentinels, or the Cluster seeds. */
export function describeAddress(opts: RedisStoreOptions): string {
  const nodes = (list: readonly { host: string; port: number }[]): string => list.map((n) => `${n.host}:${n.port}`).join(",");
  if (opts.cluster !== undefined) return `cluster ${nodes(opts.cluster.nodes)}`;
  if (opts.sentinel !== undefined) return `sentinel master "${opts.sentinel.name}" via ${nodes(opts.sentinel.sentinels)}`;
  if (opts.url === undefined) return "(no address)";
  try {
    const u = new URL(opts.url);
    return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(an unparsable URL)";
  }
}

/** A connection error as people read it: what failed and the system's code (`connect ECONNREFUSED 127.0.0.1:6379`). */
function connectionCause(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const msg = err.message;
  if (code === "ECONNREFUSED") return `connection refused (${msg}): is redis-server running there?`;
  if (code === "ECONNRESET" || code === "EPIPE") return `the connection was reset (${msg})`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `the host name does not resolve (${msg})`;
  if (code === "ETIMEDOUT" || /timeout/i.test(msg)) return `no answer in time (${msg})`;
  if (/NOAUTH|WRONGPASS|invalid password|ACL/i.test(msg)) return `authentication failed (${msg}): check the password or ACL user in the URL`;
  return code === undefined || msg.includes(code) ? msg : `${msg} (${code})`;
}

/** A failed call as people read it, when no connection error says more. */
function callCause(err: unknown, status: string): string {
  const msg = errorMessage(err);
  // ioredis' texts for "no connection" (we run without an offline queue) and for a command timeout.
  if (msg.startsWith("Stream isn't writeable") || msg.startsWith("Connection is closed")) return `the connection is down (${status === "ready" ? "it just closed" : status})`;
  if (/timed out/i.test(msg)) return `no answer within the command timeout (${msg})`;
  return msg;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
