import { parseSize } from "../../src/util/size.ts";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, expandEnv, loadSettings, parseSettings, type Settings } from "../../src/config/config.ts";
import { TestCa, type IssuedCert } from "../helpers/certs.ts";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const SHIPPED = path.join(ROOT, "config", "patgate.yaml");
const FILE = "/etc/patgate/patgate.yaml";
const DAY = 24 * 3600 * 1000;

type Obj = Record<string, unknown>;

/** The smallest config parseSettings accepts; tests change one thing at a time. */
function base(): Obj {
  return {
    catalog: { operations: ["read", "llm_read", "llm_chat_completions"], entity_types: { models: ["llm_read", "llm_chat_completions"] } },
    roles: { viewer: ["read", "llm_read"] },
    upstreams: { default: { targets: ["http://127.0.0.1:11434"] } },
  };
}

/** base() with dotted key paths set (undefined deletes the key). */
function configWith(patch: Readonly<Record<string, unknown>>): Obj {
  const cfg = structuredClone(base());
  for (const [dotted, value] of Object.entries(patch)) {
    const keys = dotted.split(".");
    const last = keys.pop() ?? "";
    let cur = cfg;
    for (const k of keys) {
      const next = cur[k];
      if (next === null || typeof next !== "object") cur[k] = {};
      cur = cur[k] as Obj;
    }
    if (value === undefined) delete cur[last];
    else cur[last] = value;
  }
  return cfg;
}

function parse(patch: Readonly<Record<string, unknown>> = {}): Settings {
  return parseSettings(configWith(patch), FILE);
}

/** The problem lines parseSettings reports; fails the test if it accepts the config. */
function problemsOf(raw: unknown): string[] {
  try {
    parseSettings(raw, FILE);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const lines = err.message.split("\n");
    for (const line of lines) expect(line.startsWith(`${FILE}: `), `"${line}" names the file`).toBe(true);
    return lines;
  }
  throw new Error("expected parseSettings to refuse the config");
}

/** Asserts the config is refused with a line `<file>: <keyPath>: …fragment…`. */
function expectProblem(patch: Readonly<Record<string, unknown>>, keyPath: string, fragment: string): void {
  const lines = problemsOf(configWith(patch));
  const prefix = `${FILE}: ${keyPath}: `;
  const hit = lines.find((l) => l.startsWith(prefix));
  expect(hit, `expected a problem at ${keyPath}; got:\n${lines.join("\n")}`).toBeDefined();
  expect(hit).toContain(fragment);
}

describe("the shipped config/patgate.yaml", () => {
  it("loads with PATGATE_PEPPER unset: defaults, embedded store, pepper left to the store", () => {
    const s = loadSettings(SHIPPED, {});
    expect(s.configFile).toBe(SHIPPED);
    expect(s.server).toEqual({ host: "127.0.0.1", port: 8080, drainTimeoutMs: 30_000, bodyTimeoutMs: 30_000, bodyIdleTimeoutMs: 10_000, streamedBodyTimeoutMs: 600_000, bodyMemory: { percent: 25 }, memoryLimit: 0, tls: null });
    expect(s.ops).toEqual({ host: "127.0.0.1", port: 9090 });
    expect(s.audit).toEqual({ redisStream: null, streamMaxLen: 100_000, includeDecisions: false });
    expect(s.store).toEqual({ redisMode: "single", redisUrl: null, redisNodes: [], sentinelName: null, embeddedPath: path.join(ROOT, "data", "patgate.db"), keyPrefix: "patgate:" });
    expect(s.security.pepper).toBeNull();
    expect(s.security.maxTokenLifetimeMs).toBe(365 * DAY);
    expect(s.security.stripRequestHeaders).toEqual(["authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"]);
    expect(s.routesFile).toBe(path.join(ROOT, "routes.yaml"));
    expect(s.cache).toEqual({ maxEntries: 100_000, negativeTtlMs: 5000, maxAgeMs: 5 * 60_000 });
    expect(s.catalog.operations.size).toBe(26);
    expect(s.catalog.operations.has("llm_realtime")).toBe(true);
    expect([...s.catalog.entityTypes.keys()].sort()).toEqual(["datasets", "domains", "models"]);
    expect(s.catalog.entityTypes.get("domains")?.size).toBe(26);
    expect(s.realtime).toEqual({ maxFrameBytes: 16 * 1024 * 1024, maxBufferedBytes: 4 * 1024 * 1024, idleTimeoutMs: 5 * 60_000, maxSessionMs: 60 * 60_000 });
    expect(s.roles.get("admin")).toEqual(["*"]);
    expect(s.roles.get("viewer")).toEqual(["read", "llm_read"]);
    expect(s.defaultUpstream).toBe("default");
    const up = s.upstreams.get("default");
    expect(up).toEqual({
      id: "default",
      targets: [{ origin: "http://127.0.0.1:11434", basePath: "" }],
      connectTimeoutMs: 5000,
      headersTimeoutMs: 5 * 60_000,
      bodyTimeoutMs: 5 * 60_000,
      connections: 1024,
      tlsVerify: true,
      credential: null,
      tls: { caFile: null, clientCert: null, servername: null },
    });
    expect(s.logging.level).toBe("info");
  });

  it("loads with PATGATE_PEPPER and the other variables set", () => {
    const pepper = randomBytes(32);
    const s = loadSettings(SHIPPED, {
      PATGATE_PEPPER: pepper.toString("hex"),
      PATGATE_HOST: "0.0.0.0",
      PATGATE_PORT: "9091",
      PATGATE_DATA: "/var/lib/patgate",
      REDIS_URL: "redis://redis:6379/0",
      PATGATE_LOG_LEVEL: "debug",
    });
    expect(s.security.pepper?.equals(pepper)).toBe(true);
    expect(s.server.host).toBe("0.0.0.0");
    expect(s.server.port).toBe(9091);
    expect(s.store.embeddedPath).toBe("/var/lib/patgate/patgate.db");
    expect(s.store.redisUrl).toBe("redis://redis:6379/0");
    expect(s.logging.level).toBe("debug");
  });

  it("accepts a base64 pepper too", () => {
    const pepper = randomBytes(48);
    const s = loadSettings(SHIPPED, { PATGATE_PEPPER: pepper.toString("base64") });
    expect(s.security.pepper?.equals(pepper)).toBe(true);
  });

  it("refuses a short pepper from the environment, naming file and key", () => {
    expect(() => loadSettings(SHIPPED, { PATGATE_PEPPER: "ab".repeat(31) })).toThrow(`${SHIPPED}: security.pepper: must be at least 32 bytes`);
  });

  it("is deeply frozen", () => {
    const s = loadSettings(SHIPPED, {});
    const frozen: unknown[] = [
      s,
      s.server,
      s.store,
      s.security,
      s.security.stripRequestHeaders,
      s.cache,
      s.catalog,
      s.roles,
      s.roles.get("developer"),
      s.upstreams,
      s.upstreams.get("default"),
      s.upstreams.get("default")?.targets,
      s.upstreams.get("default")?.targets[0],
      s.logging,
    ];
    for (const v of frozen) expect(Object.isFrozen(v)).toBe(true);
    // ES modules are strict: writing to a frozen object throws.
    expect(() => {
      (s.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (s.security.stripRequestHeaders as string[]).push("x-extra");
    }).toThrow(TypeError);
    expect(() => {
      (s.roles.get("viewer") as string[]).push("delete");
    }).toThrow(TypeError);
  });
});

describe("loadSettings: reading the file", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "patgate-config-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const write = async (text: string): Promise<string> => {
    const file = path.join(dir, "patgate.yaml");
    await writeFile(file, text);
    return file;
  };
  const minimal = "catalog: { operations: [read] }\nupstreams: { default: { targets: ['http://127.0.0.1:1'] } }\n";

  it("a missing file is a ConfigError naming it", () => {
    const file = path.join(dir, "nope.yaml");
    expect(() => loadSettings(file, {})).toThrow(ConfigError);
    expect(() => loadSettings(file, {})).toThrow(`${file}: cannot read config`);
  });

  it("invalid YAML and duplicate keys are ConfigErrors naming the file", async () => {
    const bad = await write("server: [unclosed\n");
    expect(() => loadSettings(bad, {})).toThrow(`${bad}: invalid YAML`);
    const dup = await write(minimal + "logging: { level: info }\nlogging: { level: debug }\n");
    expect(() => loadSettings(dup, {})).toThrow(`${dup}: invalid YAML`);
  });

  it("resolves relative paths against the config file's directory, not the working directory", async () => {
    const file = await write(minimal + "store: { embedded_path: state/db.json }\nroutes_file: routes/r.yaml\n");
    const s = loadSettings(file, {});
    expect(s.store.embeddedPath).toBe(path.join(dir, "state", "db.json"));
    expect(s.routesFile).toBe(path.join(dir, "routes", "r.yaml"));
  });

  it("an environment value cannot inject YAML structure", async () => {
    const file = await write(minimal + "server: { host: '${EVIL}', port: 8080 }\nlogging: { level: '${LEVEL}' }\n");
    const evil = "127.0.0.1\nport: 1\nstore: { redis_url: 'redis://attacker' }";
    const s = loadSettings(file, { EVIL: evil, LEVEL: "warn" });
    expect(s.server.host).toBe(evil);
    expect(s.server.port).toBe(8080);
    expect(s.store.redisUrl).toBeNull();
    // A flow mapping in a variable stays text, so it is refused as a level rather than read as YAML.
    expect(() => loadSettings(file, { EVIL: "x", LEVEL: "{ level: debug }" })).toThrow(`${file}: logging.level: unknown level "{ level: debug }"`);
  });

  it("keys are never expanded: a ${VAR} key is an unknown key", async () => {
    const file = await write(minimal + "server: { '${KEY}': 1 }\n");
    expect(() => loadSettings(file, { KEY: "port" })).toThrow(`${file}: server.\${KEY}: unknown key`);
  });

  it("a whole value from the environment is text: numbers still parse, an empty number falls back to its default", async () => {
    const file = await write(minimal + "server: { port: '${PORT}' }\ncache: { max_entries: '${MAX:-}' }\n");
    expect(loadSettings(file, { PORT: "8443", MAX: "7" }).server.port).toBe(8443);
    const d = loadSettings(file, {});
    expect(d.server.port).toBe(8080);
    expect(d.cache.maxEntries).toBe(100_000);
    expect(() => loadSettings(file, { PORT: "80a" })).toThrow(`${file}: server.port: must be a whole number from 0 to 65535`);
  });
});

describe("expandEnv", () => {
  const env = { A: "alpha", B: "beta", EMPTY: "" };

  it("${A} is the variable's value, and empty when unset", () => {
    expect(expandEnv("${A}", env)).toBe("alpha");
    expect(expandEnv("x-${A}-${B}-y", env)).toBe("x-alpha-beta-y");
    expect(expandEnv("[${UNSET}]", env)).toBe("[]");
  });

  it("${A:-x} is the value when set, else the default", () => {
    expect(expandEnv("${A:-fallback}", env)).toBe("alpha");
    expect(expandEnv("${UNSET:-fallback}", env)).toBe("fallback");
    expect(expandEnv("${UNSET:-}", env)).toBe("");
    // As in the shell: set but empty also takes the default.
    expect(expandEnv("${EMPTY:-fallback}", { ...env, EMPTY: "" })).toBe("fallback");
    expect(expandEnv("${UNSET:-http://h:1/p?q=1}", env)).toBe("http://h:1/p?q=1");
    expect(expandEnv("${UNSET:-../data}/patgate.json", env)).toBe("../data/patgate.json");
  });

  it("leaves anything that is not a reference alone", () => {
    for (const s of ["$A", "${1A}", "${A-x}", "${A", "$${", "{A}", "${}"]) expect(expandEnv(s, env)).toBe(s);
  });

  it("is one pass: a value that looks like a reference is not expanded again", () => {
    expect(expandEnv("${R}", { R: "${A}", A: "alpha" })).toBe("${A}");
  });

  it("expands string values at any depth, never keys, and leaves other values as they are", () => {
    const raw = { "${A}": "${A}", list: ["${B}", 1, true, null, { deep: "${A}" }], n: 5, f: false, z: null };
    expect(expandEnv(raw, env)).toEqual({ "${A}": "alpha", list: ["beta", 1, true, null, { deep: "alpha" }], n: 5, f: false, z: null });
  });

  it("inserts values verbatim: newlines and YAML syntax stay inside the one string", () => {
    const v = "a\nkey: value\n- item\n{x: 1}";
    expect(expandEnv({ k: "${V}" }, { V: v })).toEqual({ k: v });
  });

  it("does not change its input", () => {
    const raw = { a: ["${A}"] };
    expandEnv(raw, env);
    expect(raw).toEqual({ a: ["${A}"] });
  });
});

describe("parseSettings: validation", () => {
  it("accepts the minimal config with every default", () => {
    const s = parse();
    expect(s.server).toEqual({ host: "127.0.0.1", port: 8080, drainTimeoutMs: 30_000, bodyTimeoutMs: 30_000, bodyIdleTimeoutMs: 10_000, streamedBodyTimeoutMs: 600_000, bodyMemory: { percent: 25 }, memoryLimit: 0, tls: null });
    expect(s.ops).toEqual({ host: "127.0.0.1", port: 9090 });
    expect(s.audit).toEqual({ redisStream: null, streamMaxLen: 100_000, includeDecisions: false });
    expect(s.store.redisUrl).toBeNull();
    expect(s.store.embeddedPath).toBe(path.resolve("/etc/patgate/../data/patgate.db"));
    expect(s.routesFile).toBe("/etc/routes.yaml");
    expect(s.security.stripRequestHeaders).toEqual(["authorization"]);
    expect(s.logging.level).toBe("info");
  });

  it.each([
    [{ sever: {} }, "sever"],
    [{ "server.hots": "x" }, "server.hots"],
    [{ "store.redis": "x" }, "store.redis"],
    [{ "security.peper": "x" }, "security.peper"],
    [{ "cache.ttl": "5s" }, "cache.ttl"],
    [{ "catalog.types": {} }, "catalog.types"],
    [{ "upstreams.default.target": ["http://h"] }, "upstreams.default.target"],
    [{ "upstreams.default.credential": { header: "x-key", value: "v", valu: "w" } }, "upstreams.default.credential.valu"],
    [{ "logging.lvl": "info" }, "logging.lvl"],
  ])("unknown key %o is refused at %s, listing the known keys", (patch, keyPath) => {
    expectProblem(patch, keyPath, "unknown key (known: ");
  });

  it("a section that is not a mapping is refused", () => {
    expectProblem({ server: "localhost:8080" }, "server", "must be a mapping");
    expectProblem({ "upstreams.default": ["http://h"] }, "upstreams.default", "must be a mapping");
  });

  it.each([70000, -1, 1.5, "80a", "0x50", true])("port %o is refused", (port) => {
    expectProblem({ "server.port": port }, "server.port", "must be a whole number from 0 to 65535");
  });

  it("port accepts 0, 65535 and digit strings", () => {
    expect(parse({ "server.port": 0 }).server.port).toBe(0);
    expect(parse({ "server.port": 65535 }).server.port).toBe(65535);
    expect(parse({ "server.port": " 8443 " }).server.port).toBe(8443);
  });

  it.each([
    ["cache.negative_ttl", "5"],
    ["cache.max_age", "1.5d"],
    ["cache.max_age", "0s"],
    ["security.max_token_lifetime", "-30d"],
    ["security.max_token_lifetime", "thirty days"],
    ["upstreams.default.connect_timeout", "5 s"],
    ["upstreams.default.headers_timeout", "5x"],
    ["upstreams.default.body_timeout", ""],
  ])("duration %s = %o is refused", (keyPath, value) => {
    expectProblem({ [keyPath]: value }, keyPath, "");
  });

  it("durations people type are accepted", () => {
    const s = parse({ "security.max_token_lifetime": "30d", "cache.negative_ttl": "1h30m", "upstreams.default.connect_timeout": "90s" });
    expect(s.security.maxTokenLifetimeMs).toBe(30 * DAY);
    expect(s.cache.negativeTtlMs).toBe(90 * 60_000);
    expect(s.upstreams.get("default")?.connectTimeoutMs).toBe(90_000);
  });

  it.each(["10 megabytes", "1.5mb", "-1", -1, 1.5, "mb"])("size %o is refused", (value) => {
    expect(parseSize(value).ok).toBe(false);
  });

  it("sizes accept units in any case and plain byte counts", () => {
    expect(parseSize("512KB")).toEqual({ ok: true, bytes: 512 * 1024 });
    expect(parseSize(1000)).toEqual({ ok: true, bytes: 1000 });
  });

  it("an empty server.host is refused, not read as every interface", () => {
    expectProblem({ "server.host": "" }, "server.host", "must not be empty");
  });

  it("odd-length hex and passphrases are not taken as peppers", () => {
    expectProblem({ "security.pepper": "a".repeat(65) }, "security.pepper", "at least 32 bytes");
    expectProblem({ "security.pepper": "correct horse battery staple correct horse battery" }, "security.pepper", "at least 32 bytes");
  });

  it("a pepper shorter than 32 bytes is refused, hex or base64", () => {
    expectProblem({ "security.pepper": "ab".repeat(31) }, "security.pepper", "at least 32 bytes");
    expectProblem({ "security.pepper": randomBytes(16).toString("base64") }, "security.pepper", "at least 32 bytes");
    expect(parse({ "security.pepper": "ab".repeat(32) }).security.pepper?.length).toBe(32);
    // An empty or blank pepper means "none": the embedded store makes one.
    expect(parse({ "security.pepper": "  " }).security.pepper).toBeNull();
  });

  it.each(["localhost:6379", "http://redis:6379", "redis:6379", " tcp://r"])("redis_url %o without a redis scheme is refused", (url) => {
    expectProblem({ "store.redis_url": url }, "store.redis_url", "must start with redis:// or rediss://");
  });

  it("redis_url accepts redis:// and rediss://; blank means the embedded store", () => {
    expect(parse({ "store.redis_url": "rediss://u:p@r:6380/1", "security.pepper": "ab".repeat(32) }).store.redisUrl).toBe("rediss://u:p@r:6380/1");
    expect(parse({ "store.redis_url": " " }).store.redisUrl).toBeNull();
  });

  it("an unknown operation in a role is refused", () => {
    expectProblem({ "roles.viewer": ["read", "llm_raed"] }, "roles.viewer", 'unknown operation "llm_raed"');
  });

  it("`*` in a role means every operation", () => {
    expect(parse({ "roles.admin": ["*"] }).roles.get("admin")).toEqual(["*"]);
  });

  it("an unknown operation in an entity type is refused", () => {
    expectProblem({ "catalog.entity_types.models": ["llm_read", "llm_fly"] }, "catalog.entity_types.models", 'unknown operation "llm_fly"');
  });

  it("an entity type given as `*` takes every operation", () => {
    expect(parse({ "catalog.entity_types.models": "*" }).catalog.entityTypes.get("models")).toEqual(new Set(["read", "llm_read", "llm_chat_completions"]));
  });

  it("`domains` cannot be declared as an entity type", () => {
    expectProblem({ "catalog.entity_types.domains": ["read"] }, "catalog.entity_types.domains", "built in");
  });

  it("names must be snake_case and operations are required", () => {
    expectProblem({ "catalog.operations": ["read", "LLM-Read"] }, "catalog.operations", '"LLM-Read" is not snake_case');
    expectProblem({ "catalog.operations": [] }, "catalog.operations", "at least one operation");
    expectProblem({ "catalog.operations": "read" }, "catalog.operations", "must be a list of strings");
    expectProblem({ "catalog.entity_types.Models": ["read"] }, "catalog.entity_types.Models", "snake_case");
    expectProblem({ "roles.Power-User": ["read"] }, "roles.Power-User", "snake_case");
  });

  it("default_upstream must name an upstream", () => {
    expectProblem({ default_upstream: "openai" }, "default_upstream", 'names no upstream ("openai")');
    // The default name "default" must exist when default_upstream is left out.
    expectProblem({ upstreams: { openai: { targets: ["https://api.openai.com"] } } }, "default_upstream", 'names no upstream ("default")');
    expect(parse({ upstreams: { openai: { targets: ["https://api.openai.com"] } }, default_upstream: "openai" }).defaultUpstream).toBe("openai");
  });

  it("at least one upstream with at least one target is required; ids are restricted", () => {
    expectProblem({ upstreams: {} }, "upstreams", "at least one upstream is required");
    expectProblem({ "upstreams.default.targets": [] }, "upstreams.default.targets", "at least one target");
    expectProblem({ "upstreams.Big Box": { targets: ["http://h"] } }, "upstreams.Big Box", "[a-z0-9_.-]");
  });

  it.each([
    "http://h:8000/v1?key=abc",
    "http://user:pass@h:8000",
    "https://user@h",
    "ftp://h/models",
    "file:///etc/passwd",
    "http://h/#frag",
    "h:8000",
    "not a url",
  ])("target %o is refused", (url) => {
    expectProblem({ "upstreams.default.targets": [url] }, "upstreams.default.targets", `"${url}" is not an http(s) URL without query or credentials`);
  });

  it("a target keeps its path as a prefix, without the trailing slash", () => {
    const up = parse({ "upstreams.default.targets": ["https://h.example:8443/openai/", "http://h2"] }).upstreams.get("default");
    expect(up?.targets).toEqual([
      { origin: "https://h.example:8443", basePath: "/openai" },
      { origin: "http://h2", basePath: "" },
    ]);
  });

  it.each(["", "Bearer abc\r\nX-Injected: 1", "Bearer abc\n", "abc\0"])("credential value %o is refused", (value) => {
    expectProblem({ "upstreams.default.credential": { value } }, "upstreams.default.credential.value", "is empty or has control characters");
  });

  it("a missing credential value is refused; the header defaults to authorization and is lowercased", () => {
    expectProblem({ "upstreams.default.credential": { header: "x-api-key" } }, "upstreams.default.credential.value", "is empty");
    expect(parse({ "upstreams.default.credential": { value: "Bearer k" } }).upstreams.get("default")?.credential).toEqual({ header: "authorization", value: "Bearer k" });
    expect(parse({ "upstreams.default.credential": { header: "X-Api-Key", value: "k" } }).upstreams.get("default")?.credential).toEqual({ header: "x-api-key", value: "k" });
    expectProblem({ "upstreams.default.credential": { header: "x api key", value: "k" } }, "upstreams.default.credential.header", "is not a header name");
  });

  it("strip_request_headers are lowercased and deduplicated, with authorization always first", () => {
    const s = parse({ "security.strip_request_headers": ["Cookie", "X-Api-Key", "cookie", "Authorization"] });
    expect(s.security.stripRequestHeaders).toEqual(["authorization", "cookie", "x-api-key"]);
    expectProblem({ "security.strip_request_headers": ["x api key"] }, "security.strip_request_headers", '"x api key" is not a header name');
  });

  it.each(["loud", "INFO", "warning", ""])("log level %o is refused", (level) => {
    expectProblem({ "logging.level": level }, "logging.level", `unknown level "${level}"`);
  });

  it("reports every problem at once, one per line", () => {
    const lines = problemsOf(
      configWith({
        "server.port": 99999,
        "server.hots": "x",
        "store.redis_url": "localhost",
        "security.pepper": "abcd",
        "cache.max_age": "5",
        "roles.viewer": ["nope"],
        "upstreams.default.targets": ["ftp://h"],
        default_upstream: "missing",
        "logging.level": "loud",
      }),
    );
    const paths = lines.map((l) => l.slice(FILE.length + 2, l.indexOf(": ", FILE.length + 2)));
    expect(paths.sort()).toEqual(
      ["cache.max_age", "default_upstream", "logging.level", "roles.viewer", "security.pepper", "server.hots", "server.port", "store.redis_url", "upstreams.default.targets"].sort(),
    );
  });

  it("the result is frozen", () => {
    const s = parse({ "upstreams.default.credential": { value: "k" } });
    for (const v of [s, s.server, s.store, s.security, s.cache, s.logging, s.upstreams.get("default"), s.upstreams.get("default")?.credential]) {
      expect(Object.isFrozen(v)).toBe(true);
    }
  });
});

describe("body settings (server.body_memory, memory_limit, body deadlines)", () => {
  const base = (server: Record<string, unknown>): unknown => ({ server, upstreams: { default: { targets: ["http://127.0.0.1:1"] } }, catalog: { operations: ["llm_read"] } });
  it("reads a percentage, a size and the deadlines; refuses nonsense", () => {
    expect(parseSettings(base({ body_memory: "40%", memory_limit: "1gb", body_idle_timeout: "5s", streamed_body_timeout: "1h" }), "c.yaml").server).toMatchObject({ bodyMemory: { percent: 40 }, memoryLimit: 1024 ** 3, bodyIdleTimeoutMs: 5000, streamedBodyTimeoutMs: 3_600_000 });
    expect(parseSettings(base({ body_memory: "256mb" }), "c.yaml").server.bodyMemory).toEqual({ bytes: 256 * 1024 ** 2 });
    expect(() => parseSettings(base({ body_memory: "95%" }), "c.yaml")).toThrow(/server.body_memory/);
    expect(() => parseSettings(base({ body_memory: "1kb" }), "c.yaml")).toThrow(/at least 1mb/);
    expect(() => parseSettings(base({ memory_limit: "lots" }), "c.yaml")).toThrow(/server.memory_limit/);
  });
  it("security.forwarded_headers is set or none", () => {
    expect(parseSettings(base({}), "c.yaml").security.forwardedHeaders).toBe("set");
    expect(parseSettings({ ...(base({}) as object), security: { forwarded_headers: "none" } }, "c.yaml").security.forwardedHeaders).toBe("none");
    expect(() => parseSettings({ ...(base({}) as object), security: { forwarded_headers: "trust" } }, "c.yaml")).toThrow(/forwarded_headers/);
  });
});

describe("parseSettings: operators by claim, login scopes, the sign-in limit, trusted proxies", () => {
  const OIDC = { "auth.oidc.issuer": "https://idp.example", "auth.oidc.audience": "gw", "auth.oidc.jwks_url": "https://idp.example/jwks" };

  it("reads the operator claim rule, with a dotted path into nested claims", () => {
    const s = parse({ ...OIDC, "auth.oidc.operator_claim": "realm_access.roles", "auth.oidc.operator_value": "patgate-operator" });
    expect(s.auth.oidc?.operator).toEqual({ claim: "realm_access.roles", path: ["realm_access", "roles"], value: "patgate-operator", describe: "realm_access.roles=patgate-operator" });
    expect(parse(OIDC).auth.oidc?.operator).toBeNull();
  });

  it("refuses half a rule, a rule without an issuer, and an empty path segment", () => {
    expectProblem({ ...OIDC, "auth.oidc.operator_claim": "groups" }, "auth.oidc.operator_value", "anyone with the claim would be an operator");
    expectProblem({ ...OIDC, "auth.oidc.operator_value": "ops" }, "auth.oidc.operator_claim", "is required with auth.oidc.operator_value");
    expectProblem({ "auth.oidc.operator_claim": "groups", "auth.oidc.operator_value": "ops" }, "auth.oidc.operator_claim", "needs auth.oidc.issuer");
    expectProblem({ ...OIDC, "auth.oidc.operator_claim": "a..b", "auth.oidc.operator_value": "ops" }, "auth.oidc.operator_claim", "is not a claim name");
  });

  it("asks for openid profile email unless told otherwise, and insists on openid", () => {
    const login = { ...OIDC, "auth.oidc.client_id": "ui" };
    expect(parse(login).ui.login?.scopes).toBe("openid profile email");
    expect(parse({ ...login, "auth.oidc.login_scopes": "openid, profile groups" }).ui.login?.scopes).toBe("openid profile groups");
    expect(parse({ ...login, "auth.oidc.login_scopes": ["openid", "groups", "groups"] }).ui.login?.scopes).toBe("openid groups");
    expectProblem({ ...login, "auth.oidc.login_scopes": ["profile"] }, "auth.oidc.login_scopes", "must include openid");
    expectProblem({ ...login, "auth.oidc.login_scopes": ["openid", 'a"b'] }, "auth.oidc.login_scopes", "is not a scope name");
  });

  it("reads the sign-in limit (defaults 5 per address, 100 in all, over 5 minutes) and refuses nonsense", () => {
    expect(parse().ui.signInLimit).toEqual({ perAddress: 5, global: 100, windowMs: 300_000 });
    expect(parse({ "ui.sign_in_limit": { per_address: 3, global: 10, window: "1m" } }).ui.signInLimit).toEqual({ perAddress: 3, global: 10, windowMs: 60_000 });
    expectProblem({ "ui.sign_in_limit": { per_address: 0 } }, "ui.sign_in_limit.per_address", "whole number from 1");
    expectProblem({ "ui.sign_in_limit": { per_address: 10, global: 5 } }, "ui.sign_in_limit.global", "at least ui.sign_in_limit.per_address");
    expectProblem({ "ui.sign_in_limit": { window: "0s" } }, "ui.sign_in_limit.window", "at least 1s");
    expectProblem({ "ui.sign_in_limit": { burst: 5 } }, "ui.sign_in_limit.burst", "unknown key");
  });

  it("reads trusted proxies as addresses and CIDR blocks, from a list or one string", () => {
    expect(parse({ "ui.trusted_proxies": "10.0.0.0/8, fd00::/8 192.168.1.7" }).ui.trustedProxies).toEqual(["10.0.0.0/8", "fd00::/8", "192.168.1.7"]);
    expect(parse().ui.trustedProxies).toEqual([]);
    for (const bad of ["10.0.0.0/33", "fd00::/129", "ingress.local", "10.0.0.0/8/1", "10.0.0.0/"]) {
      expectProblem({ "ui.trusted_proxies": [bad] }, "ui.trusted_proxies", `"${bad}" is not an IP address or a CIDR block`);
    }
  });
});

describe("server.tls and upstreams.<id>.tls", () => {
  let ca: TestCa;
  let pair: IssuedCert;
  let other: IssuedCert;

  beforeAll(() => {
    ca = new TestCa("config");
    pair = ca.issue("localhost");
    other = ca.issue("localhost");
  });
  afterAll(() => ca?.remove());

  it("no cert_file: plain HTTP; a key or client CA alone is refused", () => {
    expect(parse({ "server.tls": { cert_file: "", key_file: "" } }).server.tls).toBeNull();
    expectProblem({ "server.tls": { key_file: pair.key } }, "server.tls.key_file", "server.tls.cert_file is not");
    expectProblem({ "server.tls": { client_ca_file: ca.cert } }, "server.tls.client_ca_file", "needs server.tls.cert_file");
    expectProblem({ "server.tls": { cert_file: pair.cert } }, "server.tls.key_file", "is required with server.tls.cert_file");
  });

  it("defaults: TLS 1.2 minimum, no client certificates, HTTP/1.1 only, no HSTS, no plain port; paths resolved against the config file", () => {
    const s = parse({ "server.tls": { cert_file: pair.cert, key_file: pair.key } }).server.tls;
    expect(s).toEqual({ certFile: pair.cert, keyFile: pair.key, caFile: null, minVersion: "TLSv1.2", clientAuth: "none", http2: false, hstsMaxAgeSec: 0, plainPort: null });
    const rel = parseSettings(configWith({ "server.tls": { cert_file: path.basename(pair.cert), key_file: path.basename(pair.key) } }), path.join(ca.dir, "patgate.yaml"));
    expect(rel.server.tls?.certFile).toBe(pair.cert);
  });

  it("every option, and the values it refuses", () => {
    const s = parse({ "server.tls": { cert_file: pair.cert, key_file: pair.key, min_version: "TLSv1.3", client_auth: "optional", client_ca_file: ca.cert, http2: "true", hsts_max_age: "1y", plain_port: "8081" } }).server.tls;
    expect(s).toMatchObject({ minVersion: "TLSv1.3", clientAuth: "optional", caFile: ca.cert, http2: true, hstsMaxAgeSec: 365 * 86400, plainPort: 8081 });
    const tls = { cert_file: pair.cert, key_file: pair.key };
    expectProblem({ "server.tls": { ...tls, min_version: "TLSv1.1" } }, "server.tls.min_version", "must be one of TLSv1.2, TLSv1.3");
    expectProblem({ "server.tls": { ...tls, client_auth: "yes" } }, "server.tls.client_auth", "must be one of none, optional, require");
    expectProblem({ "server.tls": { ...tls, client_auth: "require" } }, "server.tls.client_ca_file", "is required with server.tls.client_auth: require");
    expectProblem({ "server.tls": { ...tls, client_auth: "optional" } }, "server.tls.client_ca_file", "is required with server.tls.client_auth: optional");
    expectProblem({ "server.tls": { ...tls, client_ca_file: ca.cert } }, "server.tls.client_ca_file", "has no effect with server.tls.client_auth: none");
    expectProblem({ "server.tls": { ...tls, client_auth: "require", client_ca_file: pair.key } }, "server.tls", `${pair.key} holds no PEM certificate`);
    expectProblem({ "server.tls": { ...tls, plain_port: 8080 } }, "server.tls.plain_port", "must differ from server.port");
    expectProblem({ "server.tls": { ...tls, hsts_max_age: "forever" } }, "server.tls.hsts_max_age", "");
    expectProblem({ "server.tls": { ...tls, crt: "x" } }, "server.tls.crt", "unknown key");
  });

  it("the pair is checked at load: a key that is not the certificate's is refused naming both files", () => {
    expectProblem({ "server.tls": { cert_file: pair.cert, key_file: other.key } }, "server.tls", `${other.key} does not match the certificate in ${pair.cert}`);
  });

  it("upstream TLS: a CA file, a client certificate and an SNI name for https targets", () => {
    const u = parse({ "upstreams.default": { targets: ["https://10.0.0.5:8443"], tls: { ca_file: ca.cert, cert_file: pair.cert, key_file: pair.key, servername: "llm.internal" } } }).upstreams.get("default");
    expect(u?.tls).toEqual({ caFile: ca.cert, clientCert: { certFile: pair.cert, keyFile: pair.key }, servername: "llm.internal" });
    expect(parse().upstreams.get("default")?.tls).toEqual({ caFile: null, clientCert: null, servername: null });
    const https = { targets: ["https://llm.internal"] };
    expectProblem({ "upstreams.default": { targets: ["http://127.0.0.1:1"], tls: { ca_file: ca.cert } } }, "upstreams.default.tls", "applies to https:// targets only");
    expectProblem({ "upstreams.default": { ...https, tls: { cert_file: pair.cert } } }, "upstreams.default.tls", "cert_file and key_file go together");
    expectProblem({ "upstreams.default": { ...https, tls: { cert_file: pair.cert, key_file: other.key } } }, "upstreams.default.tls", "does not match the certificate");
    expectProblem({ "upstreams.default": { ...https, tls: { ca_file: "/nonexistent/ca.pem" } } }, "upstreams.default.tls.ca_file", "cannot read /nonexistent/ca.pem");
    expectProblem({ "upstreams.default": { ...https, tls: { servername: "not a host" } } }, "upstreams.default.tls.servername", "is not a host name");
    expectProblem({ "upstreams.default": { ...https, tls_verify: false, tls: { ca_file: ca.cert } }, "security.allow_insecure_upstream_tls": true }, "upstreams.default.tls.ca_file", "has no effect with tls_verify: false");
  });
});
