import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { noteSecret, sinkLog } from "./log-sink.ts";
import { parse, stringify } from "yaml";
import { buildApp, type App } from "../../src/app.ts";
import { loadSettings } from "../../src/config/config.ts";
import type { Scope } from "../../src/scopes/scope.ts";
import { newPat } from "../../src/tokens/issue.ts";
import type { PatRecord, Store } from "../../src/store/types.ts";

export const ROOT = path.resolve(import.meta.dirname, "..", "..");
const SHIPPED_CONFIG = path.join(ROOT, "config", "patgate.yaml");

/** The config file as an editable tree (the shape of config/patgate.yaml). */
export interface TestConfig {
  server: Record<string, unknown>;
  store: Record<string, unknown>;
  security: Record<string, unknown>;
  upstreams: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

export interface GatewayOptions {
  upstreamUrl: string;
  /** Redis URL; embedded store in a temp dir when absent (and no redisMode is given). */
  redisUrl?: string;
  /** store.redis_mode; with cluster or sentinel, `redisNodes` (host:port) are the seeds or sentinels. */
  redisMode?: "single" | "cluster" | "sentinel";
  redisNodes?: readonly string[];
  sentinelName?: string;
  keyPrefix?: string;
  pepperHex?: string;
  /** Overrides merged into the shipped config (after the defaults below). */
  patch?: (cfg: TestConfig) => void;
  routesFile?: string;
  /** The operators' admin key (plaintext, configured); a fresh random one when absent; null: none configured (first-start key). */
  adminKey?: string | null;
  /** JWT sign-in for users (see test/helpers/jwks.ts). */
  oidc?: { issuer: string; audience: string; jwksUrl: string; algorithms?: string[]; userClaim?: string };
}

/** Writes a config derived from the shipped config/patgate.yaml into a temp dir. */
export async function writeConfig(opts: GatewayOptions): Promise<{ dir: string; file: string; pepper: Buffer; adminKey: string | null }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-test-"));
  const cfg = parse(await readFile(SHIPPED_CONFIG, "utf8")) as TestConfig;
  const pepperHex = opts.pepperHex ?? randomBytes(32).toString("hex");
  cfg.server = { ...cfg.server, host: "127.0.0.1", port: 0, drain_timeout: "5s" };
  cfg.ops = { port: 0 };
  cfg.store = { redis_url: opts.redisUrl ?? "", embedded_path: path.join(dir, "data", "patgate.db"), key_prefix: opts.keyPrefix ?? "patgate:" };
  if (opts.redisMode !== undefined) cfg.store.redis_mode = opts.redisMode;
  if (opts.redisNodes !== undefined) cfg.store.redis_nodes = [...opts.redisNodes];
  if (opts.sentinelName !== undefined) cfg.store.sentinel_name = opts.sentinelName;
  cfg.security = { ...cfg.security, pepper: pepperHex };
  cfg.routes_file = opts.routesFile ?? path.join(ROOT, "routes.yaml");
  cfg.upstreams = { default: { targets: [opts.upstreamUrl], connect_timeout: "2s", headers_timeout: "10s", body_timeout: "10s" } };
  cfg.logging = { level: "info" };
  const adminKey = opts.adminKey === undefined ? `pgadm_test_${randomBytes(24).toString("hex")}` : opts.adminKey;
  noteSecret(pepperHex, adminKey);
  const o = opts.oidc;
  cfg.auth = {
    admin_keys: adminKey === null ? [] : [adminKey],
    oidc: o === undefined ? {} : { issuer: o.issuer, audience: o.audience, jwks_url: o.jwksUrl, algorithms: o.algorithms ?? ["RS256", "ES256"], user_claim: o.userClaim ?? "sub" },
  };
  opts.patch?.(cfg);
  const file = path.join(dir, "patgate.yaml");
  await writeFile(file, stringify(cfg));
  return { dir, file, pepper: Buffer.from(pepperHex, "hex"), adminKey };
}

/** Every log line the gateway wrote, parsed. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    const text = chunk.toString("utf8");
    sinkLog(text);
    for (const line of text.split("\n")) if (line !== "") this.lines.push(line);
    cb();
  }
  records(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export interface TestGateway {
  app: App;
  url: string;
  port: number;
  pepper: Buffer;
  logs: LogCapture;
  configFile: string;
  store: Store;
  /** The configured admin key (null when the test asked for none). */
  adminKey: string | null;
  /** Admin keys the gateway created on its first start (what it would print to stderr). */
  printedAdminKeys: string[];
  /**
   * The catalogue code a refused response carries: in the OpenAI envelope's
   * body, or (Ollama routes answer `{"error": "<message>"}`) in its access line.
   * Reads the body; "ok" for a 2xx.
   */
  refusalCode(res: Response): Promise<string>;
  /** Creates domain + membership (role admin unless given) + a PAT; returns its token. */
  issue(spec: { userId?: string; domainId?: string; scopes: Array<Omit<Scope, "domainId"> & { domainId?: string }>; lifetimeMs?: number; role?: string; name?: string }): Promise<{ token: string; record: PatRecord }>;
  close(): Promise<void>;
}

/** Starts a gateway in this process on a free port. */
export async function startGateway(opts: GatewayOptions): Promise<TestGateway> {
  const { dir, file, pepper, adminKey } = await writeConfig(opts);
  const logs = new LogCapture();
  const printedAdminKeys: string[] = [];
  const app = await buildApp(loadSettings(file), {
    logger: pino({ level: "info" }, logs),
    touchIntervalMs: 200,
    printAdminKey: (key) => {
      noteSecret(key);
      printedAdminKeys.push(key);
    },
  });
  const port = await app.listen(0, "127.0.0.1");
  let n = 0;
  return {
    app,
    port,
    url: `http://127.0.0.1:${port}`,
    pepper,
    logs,
    configFile: file,
    store: app.store,
    adminKey,
    printedAdminKeys,
    async refusalCode(res) {
      const text = await res.text();
      if (res.ok) return "ok";
      const body = JSON.parse(text) as { error: { code?: string } | string };
      if (typeof body.error !== "string" && body.error.code !== undefined) return body.error.code;
      const id = res.headers.get("x-request-id");
      for (let i = 0; i < 100; i++) {
        const line = logs.records().find((r) => r.msg === "access" && r.req_id === id);
        if (line !== undefined) return String(line.reason);
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no access line for request ${id}`);
    },
    async issue(spec) {
      const userId = spec.userId ?? "alice";
      const domainId = spec.domainId ?? "d1";
      await ensureMember(app.store, domainId, userId, spec.role ?? "admin");
      const scopes = spec.scopes.map((s) => ({ domainId, ...s }));
      const { record, token } = mintPat(pepper, { userId, name: spec.name ?? `pat-${++n}-${Date.now()}`, scopes, lifetimeMs: spec.lifetimeMs ?? 3_600_000 });
      const r = await app.store.insertPat(record);
      if (r !== "ok") throw new Error(`insertPat: ${r}`);
      return { token, record };
    },
    async close() {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** newPat, with the token noted for the log-leak check (every PAT a test makes goes through here). */
export function mintPat(...args: Parameters<typeof newPat>): ReturnType<typeof newPat> {
  const r = newPat(...args);
  noteSecret(r.token);
  return r;
}

/** Puts the domain (if missing) and the user's membership with one role. */
export async function ensureMember(store: Store, domainId: string, userId: string, role: string): Promise<void> {
  if ((await store.getDomain(domainId)) === null) await store.putDomain({ id: domainId, name: domainId, upstream: null, createdAt: Date.now() });
  await store.putMembership({ domainId, userId, roles: [role] });
}

/** A gateway in a child process (`node src/main.ts <config>`), for cross-process tests. */
export async function spawnGateway(
  configFile: string,
  /** What node runs before the config argument: flags and the entry script (default: src/main.ts). */
  nodeArgs: readonly string[] = [path.join(ROOT, "src", "main.ts")],
  /** The child's environment (default: this process's). */
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; child: ChildProcess; stdout: () => string; stderr: () => string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [...nodeArgs, configFile], { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${err}`)), 15_000);
    child.stdout.on("data", (d: Buffer) => sinkLog(d.toString("utf8")));
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /"port":(\d+)[^\n]*"msg":"patgate listening"/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}: ${err}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    stdout: () => out,
    stderr: () => err,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once("exit", (code, signal) => {
          // A death by signal (no exit code) is noted where a failing test's message can show it.
          if (code === null) err += `\n[the gateway died on ${signal ?? "a signal"}]\n`;
          resolve(code);
        });
        child.kill("SIGTERM");
      }),
  };
}

/** Runs `node src/main.ts <config>` to its exit (killed after 15 s): for start-up refusals. */
export function runMain(configFile: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "src", "main.ts"), configFile], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}
