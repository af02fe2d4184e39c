import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type { Catalog } from "./catalog.ts";
import { parseDuration } from "../util/duration.ts";
import { parseSize } from "../util/size.ts";
import { adminKeyEntryHash } from "../admin/keys.ts";
import { parseUi, type UiSettings } from "./ui.ts";
import { parseOperatorClaim, type OperatorClaim } from "./operators.ts";
import { parseServerTls, parseUpstreamTls, type ServerTlsSettings, type UpstreamTlsSettings } from "./tls.ts";
import { parseLimitSettings, type LimitSettings, type UsageSettings } from "./limits.ts";

/** One upstream target: where requests go, and the path prefix put before the route path. */
export interface Target {
  readonly origin: string;
  readonly basePath: string;
}

export interface UpstreamSettings {
  readonly id: string;
  readonly targets: readonly Target[];
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly connections: number;
  /** Certificate checks on https targets; turning them off needs security.allow_insecure_upstream_tls. */
  readonly tlsVerify: boolean;
  /** Injected on every forwarded request, so clients never hold the provider key. */
  readonly credential: { readonly header: string; readonly value: string } | null;
  /** Extra trust, client certificate and SNI for https targets (src/config/tls.ts). */
  readonly tls: UpstreamTlsSettings;
}

/** Users of the management API: OIDC-issued JWTs, verified against the issuer's JWKS. */
export interface OidcSettings {
  readonly issuer: string;
  /** The token's `aud` must contain one of these. */
  readonly audiences: readonly string[];
  readonly jwksUrl: string;
  /** Asymmetric JWS algorithms only; never `none`, never HMAC. */
  readonly algorithms: readonly string[];
  /** The claim that holds the user id (`sub` by default). */
  readonly userClaim: string;
  readonly clockToleranceSec: number;
  /** Who is an operator by a claim (src/config/operators.ts); null: operators use admin keys only. */
  readonly operator: OperatorClaim | null;
}

/** Who may call the management API. */
export interface AuthSettings {
  /** SHA-256 (hex) of every configured admin key. Empty: the stored first-start key applies. */
  readonly adminKeyHashes: readonly string[];
  /** null: no JWT users (admin keys only). */
  readonly oidc: OidcSettings | null;
}

/** How Redis is reached: one server (redis_url), a Cluster (seed nodes) or a Sentinel-managed master. */
export type RedisMode = "single" | "cluster" | "sentinel";

export interface StoreSettings {
  readonly redisMode: RedisMode;
  /** single: the server; cluster / sentinel: only its credentials, TLS (rediss) and, for sentinel, db. */
  readonly redisUrl: string | null;
  /** cluster: seed nodes; sentinel: the sentinels. Empty for single. */
  readonly redisNodes: readonly { readonly host: string; readonly port: number }[];
  /** sentinel: the master group name. */
  readonly sentinelName: string | null;
  readonly embeddedPath: string;
  readonly keyPrefix: string;
}

/** True when the store is Redis (any mode); false: the embedded file. */
export function usesRedis(store: StoreSettings): boolean {
  return store.redisMode !== "single" || store.redisUrl !== null;
}

/** Validated, frozen settings. Built once at start by loadSettings. */
export interface Settings {
  readonly configFile: string;
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly drainTimeoutMs: number;
    readonly bodyTimeoutMs: number;
    /** Longest pause within any request body, buffered or streamed. */
    readonly bodyIdleTimeoutMs: number;
    /** Longest a streamed (not buffered) request body may take. */
    readonly streamedBodyTimeoutMs: number;
    /** Budget for all buffered bodies together: bytes, or a percentage of the memory limit. */
    readonly bodyMemory: { readonly bytes: number } | { readonly percent: number };
    /** The process's memory limit in bytes; 0: the cgroup's, else the machine's. */
    readonly memoryLimit: number;
    /** HTTPS on server.port (and an optional plain port beside it); null: plain HTTP. */
    readonly tls: ServerTlsSettings | null;
  };
  /** The operations listener: /metrics, /healthz, /readyz. */
  readonly ops: { readonly host: string; readonly port: number };
  readonly audit: { readonly redisStream: string | null; readonly streamMaxLen: number; readonly includeDecisions: boolean };
  readonly store: StoreSettings;
  readonly security: {
    readonly pepper: Buffer | null;
    readonly maxTokenLifetimeMs: number;
    readonly stripRequestHeaders: readonly string[];
    readonly allowInsecureUpstreamTls: boolean;
    readonly allowPlaintextCredentials: boolean;
    /** `set`: the gateway writes X-Forwarded-For/-Proto/-Host and Forwarded itself; `none`: it writes none (client copies are always dropped). */
    readonly forwardedHeaders: "set" | "none";
  };
  readonly routesFile: string;
  readonly cache: { readonly maxEntries: number; readonly negativeTtlMs: number; readonly maxAgeMs: number };
  readonly catalog: Catalog;
  /** role → operations; `*` in the list means every operation. */
  readonly roles: ReadonlyMap<string, readonly string[]>;
  readonly upstreams: ReadonlyMap<string, UpstreamSettings>;
  readonly defaultUpstream: string;
  readonly logging: { readonly level: string };
  readonly auth: AuthSettings;
  /** The web page at /ui/ (src/config/ui.ts). */
  readonly ui: UiSettings;
  /** Limit policies and usage metering (src/config/limits.ts, docs/limits.md). */
  readonly limits: LimitSettings;
  readonly usage: UsageSettings;
  /** Realtime sessions over WebSocket (docs/realtime.md). */
  readonly realtime: RealtimeSettings;
}

/** Bounds on every relayed Realtime (WebSocket) session. */
export interface RealtimeSettings {
  /** Largest message either side may send, in bytes; a larger one closes the session (1009). */
  readonly maxFrameBytes: number;
  /** Bytes queued towards one side before the other side is paused (backpressure). */
  readonly maxBufferedBytes: number;
  /** No frame either way for this long ends the session. */
  readonly idleTimeoutMs: number;
  /** The longest a session may run. */
  readonly maxSessionMs: number;
}

/** Thrown with every problem found, one per line, each naming the file and key. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Obj = Record<string, unknown>;

/** Reads, expands, validates and freezes the config file; throws ConfigError listing every problem. */
export function loadSettings(file: string, env: NodeJS.ProcessEnv = process.env): Settings {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${file}: cannot read config: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${file}: invalid YAML: ${(err as Error).message}`);
  }
  return parseSettings(expandEnv(raw, env), file);
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces ${VAR} and ${VAR:-default} in string values (never in keys), after YAML parsing so values cannot inject YAML. */
export function expandEnv(value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === "string") {
    // Shell semantics: `:-` takes the default when the variable is unset OR empty, so `PATGATE_HOST=` cannot mean "every interface".
    return value.replace(ENV_REF, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      return v === undefined || v === "" ? (def ?? "") : v;
    });
  }
  if (Array.isArray(value)) return value.map((v) => expandEnv(v, env));
  if (value !== null && typeof value === "object") {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, env);
    return out;
  }
  return value;
}

/** Collects config problems; section parsers in their own files (e.g. ui.ts) take one. */
export class Checker {
  readonly problems: string[] = [];
  readonly file: string;
  constructor(file: string) {
    this.file = file;
  }
  fail(at: string, msg: string): void {
    this.problems.push(`${this.file}: ${at}: ${msg}`);
  }
  obj(v: unknown, at: string, keys: readonly string[]): Obj {
    if (v === undefined || v === null) return {};
    if (typeof v !== "object" || Array.isArray(v)) {
      this.fail(at === "" ? "(top level)" : at, "must be a mapping");
      return {};
    }
    for (const k of Object.keys(v)) if (!keys.includes(k)) this.fail(at ? `${at}.${k}` : k, `unknown key (known: ${keys.join(", ")})`);
    return v as Obj;
  }
  str(v: unknown, at: string, def: string): string {
    if (v === undefined || v === null) return def;
    if (typeof v === "number") return String(v);
    if (typeof v !== "string") {
      this.fail(at, "must be a string");
      return def;
    }
    return v;
  }
  int(v: unknown, at: string, def: number, min: number, max: number): number {
    if (v === undefined || v === null || v === "") return def;
    const n = typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
      this.fail(at, `must be a whole number from ${min} to ${max}`);
      return def;
    }
    return n;
  }
  duration(v: unknown, at: string, def: string): number {
    const r = parseDuration(this.str(v, at, def));
    if (!r.ok) {
      this.fail(at, r.error);
      return 0;
    }
    return r.ms;
  }
  size(v: unknown, at: string, def: string): number {
    const r = parseSize(typeof v === "number" ? v : this.str(v, at, def));
    if (!r.ok) {
      this.fail(at, r.error);
      return 0;
    }
    return r.bytes;
  }
  bool(v: unknown, at: string, def: boolean): boolean {
    if (v === undefined || v === null || v === "") return def;
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "false") return v === "true";
    this.fail(at, "must be true or false");
    return def;
  }
  list(v: unknown, at: string): string[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      this.fail(at, "must be a list of strings");
      return [];
    }
    return v as string[];
  }
}

const NAME = /^[a-z][a-z0-9_]*$/;
const HEADER = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** Validates an already env-expanded config object. */
export function parseSettings(raw: unknown, file: string): Settings {
  const c = new Checker(file);
  const dir = path.dirname(path.resolve(file));
  const top = c.obj(raw, "", ["server", "ops", "store", "security", "routes_file", "cache", "catalog", "roles", "upstreams", "default_upstream", "logging", "audit", "auth", "ui", "limits", "usage", "realtime"]);

  const srv = c.obj(top.server, "server", ["host", "port", "drain_timeout", "body_timeout", "body_idle_timeout", "streamed_body_timeout", "body_memory", "memory_limit", "tls"]);
  const port = c.int(srv.port, "server.port", 8080, 0, 65535);
  const server = {
    host: c.str(srv.host, "server.host", "127.0.0.1"),
    port,
    drainTimeoutMs: c.duration(srv.drain_timeout, "server.drain_timeout", "30s"),
    bodyTimeoutMs: c.duration(srv.body_timeout, "server.body_timeout", "30s"),
    bodyIdleTimeoutMs: c.duration(srv.body_idle_timeout, "server.body_idle_timeout", "10s"),
    streamedBodyTimeoutMs: c.duration(srv.streamed_body_timeout, "server.streamed_body_timeout", "10m"),
    bodyMemory: bodyMemory(c, srv.body_memory),
    memoryLimit: srv.memory_limit === undefined || srv.memory_limit === null || srv.memory_limit === "" ? 0 : c.size(srv.memory_limit, "server.memory_limit", "0"),
    tls: parseServerTls(c, srv.tls, dir, port),
  };
  const op = c.obj(top.ops, "ops", ["host", "port"]);
  const opsHost = c.str(op.host, "ops.host", "").trim();
  const ops = { host: opsHost === "" ? server.host : opsHost, port: c.int(op.port, "ops.port", 9090, 0, 65535) };
  if (ops.port !== 0 && ops.port === server.port && ops.host === server.host) c.fail("ops.port", "must differ from server.port");
  // Node reads an empty host as "every interface": that must be said, not fallen into.
  if (server.host.trim() === "") c.fail("server.host", "must not be empty (write 0.0.0.0 or :: to listen on every interface)");

  const store = parseStore(c, top.store, dir);
  const redis = usesRedis(store);

  const sec = c.obj(top.security, "security", ["pepper", "max_token_lifetime", "strip_request_headers", "allow_insecure_upstream_tls", "allow_plaintext_credentials", "forwarded_headers"]);
  const pepperText = c.str(sec.pepper, "security.pepper", "").trim();
  let pepper: Buffer | null = null;
  if (pepperText !== "") {
    pepper = decodePepper(pepperText);
    if (pepper === null) c.fail("security.pepper", "must be at least 32 bytes, hex or base64 (e.g. `openssl rand -hex 32`)");
  }
  if (pepperText === "" && redis) {
    c.fail("security.pepper", "is required with Redis: every replica must share it (e.g. `openssl rand -hex 32` into PATGATE_PEPPER)");
  }
  const stripped = c.list(sec.strip_request_headers, "security.strip_request_headers").map((h) => h.toLowerCase());
  for (const h of stripped) if (!HEADER.test(h)) c.fail("security.strip_request_headers", `"${h}" is not a header name`);
  const security = {
    pepper,
    maxTokenLifetimeMs: c.duration(sec.max_token_lifetime, "security.max_token_lifetime", "1y"),
    stripRequestHeaders: Object.freeze([...new Set(["authorization", ...stripped])]),
    allowInsecureUpstreamTls: c.bool(sec.allow_insecure_upstream_tls, "security.allow_insecure_upstream_tls", false),
    allowPlaintextCredentials: c.bool(sec.allow_plaintext_credentials, "security.allow_plaintext_credentials", false),
    forwardedHeaders: forwardedMode(c, sec.forwarded_headers),
  };

  const ca = c.obj(top.cache, "cache", ["max_entries", "negative_ttl", "max_age"]);
  const cache = {
    maxEntries: c.int(ca.max_entries, "cache.max_entries", 100_000, 1, 10_000_000),
    negativeTtlMs: c.duration(ca.negative_ttl, "cache.negative_ttl", "5s"),
    maxAgeMs: c.duration(ca.max_age, "cache.max_age", "5m"),
  };

  const catalog = parseCatalog(c, top.catalog);
  const roles = parseRoles(c, top.roles, catalog);
  const upstreams = parseUpstreams(c, top.upstreams, dir);
  // Insecure settings refuse start unless the operator said, in a flag of its own, that they mean it.
  for (const u of upstreams.values()) {
    if (!u.tlsVerify && !security.allowInsecureUpstreamTls) {
      c.fail(`upstreams.${u.id}.tls_verify`, "false turns off certificate checks; set security.allow_insecure_upstream_tls: true as well if you really mean it");
    }
    const plain = u.targets.filter((t) => t.origin.startsWith("http:") && !isLoopback(t.origin));
    if (u.credential !== null && plain.length > 0 && !security.allowPlaintextCredentials) {
      c.fail(`upstreams.${u.id}.credential`, `would be sent in clear text to ${plain.map((t) => t.origin).join(", ")}; use https, or set security.allow_plaintext_credentials: true`);
    }
  }
  const defaultUpstream = c.str(top.default_upstream, "default_upstream", "default");
  if (!upstreams.has(defaultUpstream)) c.fail("default_upstream", `names no upstream ("${defaultUpstream}")`);

  const lg = c.obj(top.logging, "logging", ["level"]);
  const level = c.str(lg.level, "logging.level", "info");
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(level)) c.fail("logging.level", `unknown level "${level}"`);

  const auth = parseAuth(c, top.auth, dir);
  const ui = parseUi(c, top.ui, (top.auth as Obj | undefined)?.oidc, new Set(catalog.entityTypes.keys()));

  const au = c.obj(top.audit, "audit", ["redis_stream", "stream_max_len", "include_decisions"]);
  const stream = c.str(au.redis_stream, "audit.redis_stream", "").trim();
  const audit = {
    redisStream: stream === "" ? null : stream,
    streamMaxLen: c.int(au.stream_max_len, "audit.stream_max_len", 100_000, 1, 100_000_000),
    includeDecisions: c.bool(au.include_decisions, "audit.include_decisions", false),
  };
  if (audit.redisStream !== null && !redis) c.fail("audit.redis_stream", "needs a Redis store, store.redis_url or store.redis_mode (the stream lives in Redis)");

  const { limits, usage } = parseLimitSettings(c, top.limits, top.usage, catalog);

  const rt = c.obj(top.realtime, "realtime", ["max_frame", "max_buffered", "idle_timeout", "max_session"]);
  const realtime: RealtimeSettings = {
    maxFrameBytes: c.size(rt.max_frame, "realtime.max_frame", "16mb"),
    maxBufferedBytes: c.size(rt.max_buffered, "realtime.max_buffered", "4mb"),
    idleTimeoutMs: c.duration(rt.idle_timeout, "realtime.idle_timeout", "5m"),
    maxSessionMs: c.duration(rt.max_session, "realtime.max_session", "60m"),
  };
  if (realtime.maxFrameBytes < 1024) c.fail("realtime.max_frame", "must be at least 1kb");
  if (realtime.maxBufferedBytes < 1024) c.fail("realtime.max_buffered", "must be at least 1kb");
  if (realtime.idleTimeoutMs < 1000) c.fail("realtime.idle_timeout", "must be at least 1s");
  if (realtime.maxSessionMs < 1000) c.fail("realtime.max_session", "must be at least 1s");

  if (c.problems.length > 0) throw new ConfigError(c.problems.join("\n"));
  return deepFreeze({
    configFile: path.resolve(file),
    server,
    ops,
    audit,
    store,
    security,
    routesFile: path.resolve(dir, c.str(top.routes_file, "routes_file", "../routes.yaml")),
    cache,
    catalog,
    roles,
    upstreams,
    defaultUpstream,
    logging: { level },
    auth,
    ui,
    limits,
    usage,
    realtime,
  });
}

const REDIS_MODES: readonly RedisMode[] = ["single", "cluster", "sentinel"];
const DEFAULT_NODE_PORT: Readonly<Record<RedisMode, number>> = { single: 6379, cluster: 6379, sentinel: 26379 };

function parseStore(c: Checker, raw: unknown, dir: string): StoreSettings {
  const st = c.obj(raw, "store", ["redis_mode", "redis_url", "redis_nodes", "sentinel_name", "embedded_path", "key_prefix"]);
  const modeText = c.str(st.redis_mode, "store.redis_mode", "").trim();
  let redisMode: RedisMode = "single";
  if (modeText !== "") {
    if ((REDIS_MODES as readonly string[]).includes(modeText)) redisMode = modeText as RedisMode;
    else c.fail("store.redis_mode", `must be one of ${REDIS_MODES.join(", ")} (got "${modeText}")`);
  }
  const redisUrl = c.str(st.redis_url, "store.redis_url", "").trim();
  if (redisUrl !== "" && !/^rediss?:\/\//.test(redisUrl)) c.fail("store.redis_url", "must start with redis:// or rediss://");
  else if (redisUrl !== "" && !parsableUrl(redisUrl)) c.fail("store.redis_url", "is not a valid URL");
  const nodeList = stringList(c, st.redis_nodes, "store.redis_nodes");
  const redisNodes: { host: string; port: number }[] = [];
  for (const n of nodeList) {
    const node = parseHostPort(n, DEFAULT_NODE_PORT[redisMode]);
    if (node === null) c.fail("store.redis_nodes", `"${n}" is not host:port`);
    else redisNodes.push(node);
  }
  const sentinelName = c.str(st.sentinel_name, "store.sentinel_name", "").trim();
  if (redisMode === "single") {
    if (nodeList.length > 0) c.fail("store.redis_nodes", "is only for store.redis_mode cluster or sentinel (single uses store.redis_url)");
  } else if (nodeList.length === 0) {
    c.fail("store.redis_nodes", redisMode === "cluster" ? "must list at least one cluster node (host:port) with store.redis_mode cluster" : "must list at least one sentinel (host:port) with store.redis_mode sentinel");
  }
  if (redisMode === "sentinel" && sentinelName === "") c.fail("store.sentinel_name", "is required with store.redis_mode sentinel (the master group name, e.g. mymaster)");
  if (redisMode !== "sentinel" && sentinelName !== "") c.fail("store.sentinel_name", "is only for store.redis_mode sentinel");
  if (redisMode === "cluster" && redisUrl !== "" && parsableUrl(redisUrl) && !/^\/?(0\/?)?$/.test(new URL(redisUrl).pathname)) {
    c.fail("store.redis_url", "names a database, but Redis Cluster has only database 0");
  }
  return {
    redisMode,
    redisUrl: redisUrl === "" ? null : redisUrl,
    redisNodes,
    sentinelName: sentinelName === "" ? null : sentinelName,
    embeddedPath: path.resolve(dir, c.str(st.embedded_path, "store.embedded_path", "../data/patgate.db")),
    keyPrefix: c.str(st.key_prefix, "store.key_prefix", "patgate:"),
  };
}

/** `server.body_memory`: a size, or a percentage (1–90) of the memory limit. */
function bodyMemory(c: Checker, v: unknown): { bytes: number } | { percent: number } {
  const text = typeof v === "string" ? v.trim() : v;
  if (typeof text === "string" && text.endsWith("%")) {
    const n = Number(text.slice(0, -1));
    if (Number.isInteger(n) && n >= 1 && n <= 90) return { percent: n };
    c.fail("server.body_memory", "a percentage must be a whole number from 1% to 90%");
    return { percent: 25 };
  }
  if (text === undefined || text === null || text === "") return { percent: 25 };
  const bytes = c.size(text, "server.body_memory", "0");
  if (bytes > 0 && bytes < 1024 * 1024) c.fail("server.body_memory", "must be at least 1mb (no body could be read)");
  return { bytes };
}

function forwardedMode(c: Checker, v: unknown): "set" | "none" {
  const mode = c.str(v, "security.forwarded_headers", "set").trim();
  if (mode === "set" || mode === "none") return mode;
  c.fail("security.forwarded_headers", `must be set or none (got "${mode}")`);
  return "set";
}

function parsableUrl(text: string): boolean {
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}

/** `host:port`, `host` (the mode's default port) or `[v6]:port`. */
function parseHostPort(text: string, defaultPort: number): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(text);
  if (m === null) return null;
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2] ?? "", port };
}

/** Hex or strict base64 / base64url; anything else (a passphrase, odd-length hex) is refused rather than decoded loosely. */
function decodePepper(text: string): Buffer | null {
  let buf: Buffer;
  if (/^[0-9a-fA-F]+$/.test(text)) {
    if (text.length % 2 !== 0) return null;
    buf = Buffer.from(text, "hex");
  } else if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0) {
    buf = Buffer.from(text, "base64");
  } else if (/^[A-Za-z0-9_-]+$/.test(text)) {
    buf = Buffer.from(text, "base64url");
  } else {
    return null;
  }
  return buf.length >= 32 ? buf : null;
}

function parseCatalog(c: Checker, raw: unknown): Catalog {
  const cat = c.obj(raw, "catalog", ["operations", "entity_types"]);
  const ops = c.list(cat.operations, "catalog.operations");
  if (ops.length === 0) c.fail("catalog.operations", "must list at least one operation");
  for (const op of ops) if (!NAME.test(op)) c.fail("catalog.operations", `"${op}" is not snake_case`);
  const operations = new Set(ops);
  const types = new Map<string, ReadonlySet<string>>([["domains", operations]]);
  const et = c.obj(cat.entity_types, "catalog.entity_types", Object.keys((cat.entity_types ?? {})));
  for (const [type, list] of Object.entries(et)) {
    const at = `catalog.entity_types.${type}`;
    if (!NAME.test(type)) c.fail(at, "entity type names are snake_case");
    if (type === "domains") {
      c.fail(at, "`domains` is built in and accepts every operation");
      continue;
    }
    const typeOps = list === "*" ? ops : c.list(list, at);
    for (const op of typeOps) if (!operations.has(op)) c.fail(at, `unknown operation "${op}"`);
    types.set(type, new Set(typeOps));
  }
  return { operations, entityTypes: types };
}

function parseRoles(c: Checker, raw: unknown, catalog: Catalog): Map<string, readonly string[]> {
  const r = c.obj(raw, "roles", Object.keys((raw ?? {})));
  const roles = new Map<string, readonly string[]>();
  for (const [name, list] of Object.entries(r)) {
    const at = `roles.${name}`;
    if (!NAME.test(name)) c.fail(at, "role names are snake_case");
    const ops = c.list(list, at);
    for (const op of ops) if (op !== "*" && !catalog.operations.has(op)) c.fail(at, `unknown operation "${op}"`);
    roles.set(name, Object.freeze(ops));
  }
  return roles;
}

function parseUpstreams(c: Checker, raw: unknown, dir: string): Map<string, UpstreamSettings> {
  const ups = c.obj(raw, "upstreams", Object.keys((raw ?? {})));
  const out = new Map<string, UpstreamSettings>();
  if (Object.keys(ups).length === 0) c.fail("upstreams", "at least one upstream is required");
  for (const [id, value] of Object.entries(ups)) {
    const at = `upstreams.${id}`;
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(id)) c.fail(at, "upstream ids use [a-z0-9_.-]");
    const u = c.obj(value, at, ["targets", "connect_timeout", "headers_timeout", "body_timeout", "connections", "credential", "tls_verify", "tls"]);
    const targets: Target[] = [];
    const list = c.list(u.targets, `${at}.targets`);
    if (list.length === 0) c.fail(`${at}.targets`, "at least one target URL is required");
    for (const t of list) {
      const target = parseTarget(t);
      if (target === null) c.fail(`${at}.targets`, `"${t}" is not an http(s) URL without query or credentials`);
      else targets.push(target);
    }
    let credential: UpstreamSettings["credential"] = null;
    if (u.credential !== undefined && u.credential !== null) {
      const cr = c.obj(u.credential, `${at}.credential`, ["header", "value"]);
      const header = c.str(cr.header, `${at}.credential.header`, "authorization").toLowerCase();
      const val = c.str(cr.value, `${at}.credential.value`, "");
      if (!HEADER.test(header)) c.fail(`${at}.credential.header`, `"${header}" is not a header name`);
      if (val === "" || /[\r\n\0]/.test(val)) c.fail(`${at}.credential.value`, "is empty or has control characters (is its environment variable set?)");
      credential = { header, value: val };
    }
    const tlsVerify = c.bool(u.tls_verify, `${at}.tls_verify`, true);
    const tls = parseUpstreamTls(c, u.tls, at, dir, { https: targets.some((t) => t.origin.startsWith("https:")), verify: tlsVerify });
    out.set(id, {
      id,
      targets,
      connectTimeoutMs: c.duration(u.connect_timeout, `${at}.connect_timeout`, "5s"),
      headersTimeoutMs: c.duration(u.headers_timeout, `${at}.headers_timeout`, "5m"),
      bodyTimeoutMs: c.duration(u.body_timeout, `${at}.body_timeout`, "5m"),
      connections: c.int(u.connections, `${at}.connections`, 1024, 1, 100_000),
      tlsVerify,
      credential,
      tls,
    });
  }
  return out;
}

function isLoopback(origin: string): boolean {
  const host = new URL(origin).hostname;
  return host === "localhost" || host === "[::1]" || host.startsWith("127.");
}

function parseTarget(text: string): Target | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") return null;
  const basePath = url.pathname === "/" ? "" : url.pathname.replace(/\/+$/, "");
  return { origin: url.origin, basePath };
}

// JWS algorithms a JWKS can verify. `none` and the HMAC family are refused:
// an HMAC key in a public key set would let anyone who fetched it sign tokens.
const JWT_ALGORITHMS = new Set(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"]);

/** A list of strings, or one string split on commas and whitespace (what `${VAR}` gives). */
function stringList(c: Checker, v: unknown, at: string): string[] {
  if (typeof v === "string") return v.split(/[\s,]+/).filter((x) => x !== "");
  return c.list(v, at).map((x) => x.trim()).filter((x) => x !== "");
}

function parseAuth(c: Checker, raw: unknown, dir: string): AuthSettings {
  const au = c.obj(raw, "auth", ["admin_keys", "admin_keys_file", "oidc"]);
  const hashes: string[] = [];
  const addKey = (entry: string, at: string): void => {
    const r = adminKeyEntryHash(entry);
    if (r.ok) hashes.push(r.hash);
    else c.fail(at, r.error);
  };
  stringList(c, au.admin_keys, "auth.admin_keys").forEach((e, i) => addKey(e, `auth.admin_keys[${i}]`));
  const keyFile = c.str(au.admin_keys_file, "auth.admin_keys_file", "").trim();
  if (keyFile !== "") {
    const full = path.resolve(dir, keyFile);
    let text = "";
    try {
      text = readFileSync(full, "utf8");
    } catch (err) {
      c.fail("auth.admin_keys_file", `cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    text.split("\n").forEach((line, i) => {
      const entry = line.trim();
      if (entry !== "" && !entry.startsWith("#")) addKey(entry, `auth.admin_keys_file (${full} line ${i + 1})`);
    });
  }

  const o = c.obj(au.oidc, "auth.oidc", ["issuer", "audience", "jwks_url", "algorithms", "user_claim", "clock_tolerance", "client_id", "client_secret", "login_scopes", "operator_claim", "operator_value"]);
  const issuer = c.str(o.issuer, "auth.oidc.issuer", "").trim();
  const audiences = stringList(c, o.audience, "auth.oidc.audience");
  const jwksUrl = c.str(o.jwks_url, "auth.oidc.jwks_url", "").trim();
  const operator = parseOperatorClaim(c, o);
  if (issuer === "") {
    if (audiences.length > 0 || jwksUrl !== "") c.fail("auth.oidc.issuer", "is required when auth.oidc.audience or auth.oidc.jwks_url is set");
    if (operator !== null) c.fail("auth.oidc.operator_claim", "needs auth.oidc.issuer (the claim is read from its tokens)");
    return { adminKeyHashes: [...new Set(hashes)], oidc: null };
  }
  if (audiences.length === 0) c.fail("auth.oidc.audience", "is required with an issuer (the client id your tokens are issued for)");
  if (jwksUrl === "") c.fail("auth.oidc.jwks_url", "is required with an issuer (e.g. https://idp.example/.well-known/jwks.json)");
  else if (!secureUrl(jwksUrl)) c.fail("auth.oidc.jwks_url", "must be an https:// URL (http:// only for localhost)");
  const algorithms = stringList(c, o.algorithms ?? ["RS256", "ES256", "EdDSA"], "auth.oidc.algorithms");
  if (algorithms.length === 0) c.fail("auth.oidc.algorithms", "must list at least one algorithm");
  for (const a of algorithms) {
    if (!JWT_ALGORITHMS.has(a)) c.fail("auth.oidc.algorithms", `"${a}" is not allowed (allowed: ${[...JWT_ALGORITHMS].join(", ")})`);
  }
  const userClaim = c.str(o.user_claim, "auth.oidc.user_claim", "sub").trim();
  if (userClaim === "") c.fail("auth.oidc.user_claim", "must name a claim");
  return {
    adminKeyHashes: [...new Set(hashes)],
    oidc: {
      issuer,
      audiences,
      jwksUrl,
      algorithms,
      userClaim,
      clockToleranceSec: Math.floor(c.duration(o.clock_tolerance, "auth.oidc.clock_tolerance", "30s") / 1000),
      operator,
    },
  };
}

function secureUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value) && !Buffer.isBuffer(value)) {
    if (value instanceof Map || value instanceof Set) {
      for (const v of value.values()) deepFreeze(v);
    } else {
      for (const v of Object.values(value)) deepFreeze(v);
    }
    Object.freeze(value);
  }
  return value;
}
