/**
 * The gateway's bench config and data: a config derived from the shipped
 * config/patgate.yaml (as the tests derive theirs), and an embedded store
 * file holding the bench domain, its members and their PATs.
 *
 * The data is written as a JSON store file of the kind earlier versions
 * kept (`data/patgate.json`), which both kinds of build read: a build with
 * the SQLite store migrates it into `data/patgate.db` in one transaction at
 * start, an older one (bench:ab's base) reads it as its store. The gateway
 * validates the file when it reads it, so a format change fails loudly at
 * start, never silently.
 */
import { existsSync } from "node:fs";
import { mkdtemp, mkdir, readFile, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { parse, stringify } from "yaml";
import { newPat } from "../../src/tokens/issue.ts";
import { generateToken } from "../../src/tokens/format.ts";
import type { Domain, Membership, PatRecord } from "../../src/store/types.ts";

export const ROOT = path.resolve(import.meta.dirname, "..", "..");
export const DOMAIN = "bench";
export const MODEL = "bench-model";
const USER = "bench-user";

export interface GatewayFixture {
  readonly dir: string;
  readonly configFile: string;
  /** A valid token for S1–S3, S5, S6 and S4's cached run. */
  readonly token: string;
  /** Valid tokens, each of its own user, for S4's cache-miss run. */
  readonly missTokens: readonly string[];
  /** Well-formed tokens (valid checksum) whose ids are in no store. */
  readonly unknownTokens: readonly string[];
  /** Tokens with a wrong checksum: rejected before any lookup. */
  readonly malformedTokens: readonly string[];
}

export interface FixtureOptions {
  readonly upstreamUrl: string;
  /** `cache.max_entries` (null: the shipped value); S4 keeps it well below `distinct` so its miss run really misses. */
  readonly cacheMaxEntries: number | null;
  /** How many miss / unknown / malformed tokens to make (0 for a gateway that only needs the one token). */
  readonly distinct: number;
  /** `upstreams.default.connections`; null keeps the shipped value. */
  readonly connections: number | null;
  /** HTTPS with HTTP/2 offered by ALPN (server.tls, http2: true) from these files; absent: plain HTTP. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /**
   * Limits and usage metering (docs/limits.md): "on" adds BENCH_LIMITS and meters usage, "off" turns
   * both off, "none" (default) leaves the `limits:`/`usage:` keys out, for a build that has none (bench:ab's base).
   */
  readonly limits?: LimitsMode;
  /** The checkout whose config/patgate.yaml and routes.yaml the fixture starts from (another build's, for a side-by-side run); default: this one. */
  readonly root?: string;
}

/** The store file a checkout's gateway reads: the SQLite database, or the JSON file for a build from before it. */
function storeFileOf(root: string): "db" | "json" {
  return existsSync(path.join(root, "src", "store", "schema.ts")) ? "db" : "json";
}

export type LimitsMode = "none" | "off" | "on";
export const LIMITS_MODES: readonly LimitsMode[] = ["none", "off", "on"];

/**
 * Policies as a production config might have them, none of them ever reached
 * by the bench (a long bench:ab run sends under a million requests of a few hundred
 * tokens): every request is counted against both. Generous, and below 2^31
 * like any real limit: a count past 31 bits is formatted by V8's
 * double-to-string conversion (several hundred instructions a value), which a
 * limit of 10^12 would charge every response.
 */
const BENCH_LIMITS = [
  { name: "per-pat", subject: "pat", requests_per_minute: 10_000_000, tokens_per_day: 2_000_000_000, concurrent: 10_000 },
  { name: "per-model", subject: "domain_model", tokens_per_minute: 1_000_000_000 },
];

type Tree = Record<string, unknown>;

/** Writes config + store file into a fresh temp dir; returns the tokens the load generator sends. */
export async function makeGatewayFixture(opts: FixtureOptions): Promise<GatewayFixture & { connections: number; cacheMaxEntries: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-bench-"));
  const pepperHex = randomBytes(32).toString("hex");
  const pepper = Buffer.from(pepperHex, "hex");
  const root = opts.root ?? ROOT;
  const cfg = parse(await readFile(path.join(root, "config", "patgate.yaml"), "utf8")) as Tree;
  const dataFile = path.join(dir, "data", "patgate.json");
  // The SQLite database, or the JSON file itself for a build from before it.
  const storePath = storeFileOf(root) === "json" ? dataFile : path.join(dir, "data", "patgate.db");

  cfg["server"] = { ...(cfg["server"] as Tree), host: "127.0.0.1", port: 0 };
  if (opts.tls !== undefined) (cfg["server"] as Tree)["tls"] = { cert_file: opts.tls.certFile, key_file: opts.tls.keyFile, http2: true };
  cfg["store"] = { redis_url: "", embedded_path: storePath, key_prefix: "patgate:" };
  cfg["security"] = { ...(cfg["security"] as Tree), pepper: pepperHex };
  cfg["routes_file"] = path.join(root, "routes.yaml");
  if (opts.cacheMaxEntries !== null) cfg["cache"] = { ...(cfg["cache"] as Tree), max_entries: opts.cacheMaxEntries };
  const cacheMaxEntries = (cfg["cache"] as Tree)["max_entries"];
  const upstreams = cfg["upstreams"] as Record<string, Tree>;
  const shipped = upstreams["default"] ?? {};
  const connections = opts.connections ?? (typeof shipped["connections"] === "number" ? shipped["connections"] : 128);
  cfg["upstreams"] = { default: { ...shipped, targets: [opts.upstreamUrl], connections } };
  cfg["default_upstream"] = "default";
  cfg["logging"] = { level: "info" };
  const limits = opts.limits ?? "none";
  if (limits === "none") {
    delete cfg["limits"];
    delete cfg["usage"];
  } else {
    cfg["limits"] = { policies: limits === "on" ? BENCH_LIMITS : [] };
    cfg["usage"] = { enabled: limits === "on" };
  }
  // A configured admin key, so the first start neither creates nor prints one.
  if (typeof cfg["auth"] === "object" && cfg["auth"] !== null) {
    cfg["auth"] = { ...(cfg["auth"] as Tree), admin_keys: `pgadm_bench_${randomBytes(24).toString("hex")}`, admin_keys_file: "", oidc: { issuer: "" } };
  }
  const configFile = path.join(dir, "patgate.yaml");
  await writeFile(configFile, stringify(cfg));

  const now = Date.now();
  const scopes = ["llm_chat_completions", "llm_completions", "llm_embeddings"].map((operation) => ({ domainId: DOMAIN, entityType: "models", entityId: MODEL, operation }));
  const pats: PatRecord[] = [];
  const memberships: Membership[] = [{ domainId: DOMAIN, userId: USER, roles: ["developer"] }];
  const issue = (userId: string, name: string): string => {
    const { record, token } = newPat(pepper, { userId, name, scopes, lifetimeMs: 7 * 86_400_000, now });
    pats.push(record);
    return token;
  };
  const token = issue(USER, "bench");
  const missTokens: string[] = [];
  for (let i = 0; i < opts.distinct; i++) {
    const userId = `bench-user-${i}`;
    memberships.push({ domainId: DOMAIN, userId, roles: ["developer"] });
    missTokens.push(issue(userId, "bench"));
  }
  const unknownTokens: string[] = [];
  const malformedTokens: string[] = [];
  for (let i = 0; i < opts.distinct; i++) {
    const t = generateToken().token;
    unknownTokens.push(t);
    // Last checksum character changed: a typo the checksum catches with no I/O.
    malformedTokens.push(t.slice(0, -1) + (t.endsWith("A") ? "B" : "A"));
  }
  const domains: Domain[] = [{ id: DOMAIN, name: DOMAIN, upstream: null, createdAt: now }];
  await mkdir(path.dirname(dataFile), { recursive: true, mode: 0o700 });
  await writeFile(
    dataFile,
    JSON.stringify({ format: "patgate-embedded-store", version: 1, pats, domains, memberships, roles: [], adminKeys: [] }),
    { mode: 0o600 },
  );
  return { dir, configFile, token, missTokens, unknownTokens, malformedTokens, connections, cacheMaxEntries: typeof cacheMaxEntries === "number" ? cacheMaxEntries : 100_000 };
}
