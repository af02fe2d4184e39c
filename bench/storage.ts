/**
 * `npm run bench:storage [-- options]`: both stores at scale (issue 19).
 * 100,000 PATs over 10,000 users and 1,000 domains, on the embedded store and
 * on Redis, each with the gateway in its own process (bench/gateway-main.ts):
 *
 * - seeding: a bulk load into the embedded store, `patgate import`'s path
 *   (bounded concurrent writes) into Redis, and Redis' memory per PAT;
 * - start-up time and RSS of a gateway on the full store;
 * - create / revoke / list p50 and p99 through the management API, and
 *   listing a user's PATs (and by status) against how many that user has;
 * - listPatsByUser in the store itself: a 10-PAT user in a store of 1,000
 *   and of 100,000 PATs, and a 1,000-PAT user (proportional to the user's
 *   PATs, not to all of them);
 * - the longest event-loop stall in the gateway under S1's traffic (1 KB
 *   chat completions, c=50) alone, then under S1's traffic spread over every
 *   token (so each 10 s last-used flush writes tens of thousands of PATs)
 *   with bursts of 200 concurrent creates.
 *
 * Not part of `npm test`. Output: a table on stdout and bench/results/storage.json;
 * --update-readme puts the table into bench/README.md.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { parse, stringify } from "yaml";
import { EmbeddedStore } from "../src/store/embedded.ts";
import { RedisStore } from "../src/store/redis.ts";
import { loadRecords } from "../src/store/transfer.ts";
import type { BulkRecords } from "../src/store/embedded-rows.ts";
import type { Domain, Membership, PatRecord, Store } from "../src/store/types.ts";
import { newPat } from "../src/tokens/issue.ts";
import { chatBody, chatRequest, GATEWAY_PREFIX, type Target } from "./lib/context.ts";
import { DOMAIN, MODEL, ROOT } from "./lib/gateway-setup.ts";
import type { CannonResult } from "./lib/jobs.ts";
import { NodeChild, taskset } from "./lib/proc.ts";
import { startBenchRedis, type BenchRedis } from "./lib/redis-server.ts";
import { percentiles } from "./lib/stats.ts";
import type { GatewayStats } from "./scenarios.ts";

const USAGE = `usage: npm run bench:storage -- [options]
  --stores embedded,redis   which stores (default both)
  --pats <n>                PATs (default 100000)
  --users <n>               users (default 10000)
  --domains <n>             domains (default 1000)
  --samples <n>             create / revoke / list calls measured, each (default 300)
  --duration <s>            seconds of the S1 run over every token, with the create bursts (default 22: two last-used flushes)
  --connections <n>         autocannon connections (default 50)
  --nice <n>                run every bench process at this nice value (e.g. -10, needs root), as npm run bench does
  --out <file>              JSON output (default bench/results/storage.json)
  --update-readme           put the table into bench/README.md
  --help`;

const { values: a } = parseArgs({
  options: {
    stores: { type: "string", default: "embedded,redis" },
    pats: { type: "string", default: "100000" },
    users: { type: "string", default: "10000" },
    domains: { type: "string", default: "1000" },
    samples: { type: "string", default: "300" },
    duration: { type: "string", default: "22" },
    connections: { type: "string", default: "50" },
    nice: { type: "string" },
    out: { type: "string", default: path.join(ROOT, "bench", "results", "storage.json") },
    "update-readme": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (a.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const num = (v: string, name: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`${name} must be a positive integer\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
};
const PATS = num(a.pats, "--pats");
const USERS = num(a.users, "--users");
const DOMAINS = num(a.domains, "--domains");
const SAMPLES = num(a.samples, "--samples");
const DURATION = num(a.duration, "--duration");
const CONNECTIONS = num(a.connections, "--connections");
const STORES = a.stores.split(",").map((s) => s.trim()) as ("embedded" | "redis")[];
// One user holds this many of the PATs: listing stays proportional to a user's PATs, whatever the total.
const HEAVY = Math.min(1000, Math.floor(PATS / 10));
const BURST = 200;
const pin = taskset() !== null && os.cpus().length >= 2;
const CPU_LOAD = pin ? "0" : null;
const CPU_GATEWAY = pin ? "1" : null;

const log = (s: string): void => void process.stdout.write(`${s}\n`);
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const MB = 1024 * 1024;

/** The data set: every user a member of the bench domain and of one other; each PAT two scopes. */
function dataset(pepper: Buffer, pats: number, users: number, domains: number): { records: BulkRecords; tokens: string[]; heavyUser: string; lightUser: string } {
  const now = Date.now();
  const doms: Domain[] = [{ id: DOMAIN, name: DOMAIN, upstream: null, createdAt: now }];
  for (let d = 1; d < domains; d++) doms.push({ id: `dom${d}`, name: `Domain ${d}`, upstream: null, createdAt: now });
  const memberships: Membership[] = [];
  const other = (u: number): string => `dom${1 + (u % Math.max(1, domains - 1))}`;
  for (let u = 0; u < users; u++) {
    memberships.push({ domainId: DOMAIN, userId: `user${u}`, roles: ["developer"] });
    if (domains > 1) memberships.push({ domainId: other(u), userId: `user${u}`, roles: ["viewer"] });
  }
  memberships.push({ domainId: DOMAIN, userId: "heavy", roles: ["developer"] });
  const out: PatRecord[] = [];
  const tokens: string[] = [];
  for (let i = 0; i < pats; i++) {
    const heavy = i < HEAVY;
    const u = i % users;
    const userId = heavy ? "heavy" : `user${u}`;
    const scopes = [
      { domainId: DOMAIN, entityType: "models", entityId: MODEL, operation: "llm_chat_completions" },
      { domainId: heavy ? DOMAIN : other(u), entityType: "models", entityId: "*", operation: "llm_read" },
    ];
    const { record, token } = newPat(pepper, { userId, name: `pat ${i}`, scopes, lifetimeMs: 7 * 86_400_000, now });
    // A tenth revoked, so listing by status has something to leave out.
    out.push(i % 10 === 9 ? { ...record, revoked: true, revokedAt: now } : record);
    if (i % 10 !== 9) tokens.push(token);
  }
  return { records: { domains: doms, memberships, roles: [], adminKeys: [], pats: out }, tokens, heavyUser: "heavy", lightUser: "user1" };
}

async function writeGatewayConfig(dir: string, store: Record<string, unknown>, pepperHex: string, upstreamUrl: string, adminKey: string): Promise<string> {
  const cfg = parse(await readFile(path.join(ROOT, "config", "patgate.yaml"), "utf8")) as Record<string, unknown>;
  cfg["server"] = { ...(cfg["server"] as object), host: "127.0.0.1", port: 0 };
  cfg["ops"] = { port: 0 };
  cfg["store"] = store;
  cfg["security"] = { ...(cfg["security"] as object), pepper: pepperHex };
  cfg["routes_file"] = path.join(ROOT, "routes.yaml");
  const upstreams = cfg["upstreams"] as Record<string, Record<string, unknown>>;
  cfg["upstreams"] = { default: { ...upstreams["default"], targets: [upstreamUrl] } };
  cfg["logging"] = { level: "info" };
  cfg["auth"] = { ...(cfg["auth"] as object), admin_keys: adminKey, admin_keys_file: "", oidc: { issuer: "" } };
  const file = path.join(dir, "patgate.yaml");
  await writeFile(file, stringify(cfg));
  return file;
}

/** Sequential timings of `n` calls, in ms. */
async function timed(n: number, call: (i: number) => Promise<void>): Promise<ReturnType<typeof percentiles>> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call(i);
    ms.push(performance.now() - t);
  }
  return percentiles(ms);
}

/**
 * listPatsByUser in the store itself, µs per call: batches of `n` calls, the
 * cases interleaved batch by batch, the fastest batch of each kept (other
 * tenants only ever add time).
 */
async function listTimings(cases: readonly { name: string; store: Store; userId: string; n: number }[], batches = 7): Promise<Record<string, number>> {
  const best = new Map<string, number>();
  for (const c of cases) for (let i = 0; i < 10; i++) await c.store.listPatsByUser(c.userId);
  for (let b = 0; b < batches; b++) {
    for (const c of cases) {
      const t = performance.now();
      for (let i = 0; i < c.n; i++) await c.store.listPatsByUser(c.userId);
      const us = ((performance.now() - t) / c.n) * 1000;
      best.set(c.name, Math.min(best.get(c.name) ?? Infinity, us));
    }
  }
  return Object.fromEntries([...best].map(([k, v]) => [k, round(v, 0)]));
}

/** Reading every PAT once, in ms: what listing a user would cost without an index. */
async function scanAll(store: Store): Promise<number> {
  const t = performance.now();
  let n = 0;
  for await (const page of store.allPats(2000)) n += page.length;
  void n;
  return round(performance.now() - t, 0);
}

/** Event-loop figures of one run: wall-clock delay (what a request waits), and the part the gateway itself caused. */
interface Stall {
  readonly maxMs: number;
  readonly p99Ms: number;
  readonly rps: number;
  /** The longest block the gateway's own work caused (wall lateness while its thread was using CPU; see gateway-main.ts). */
  readonly ownMaxMs: number;
  /** The longest synchronous part of one store call, in CPU time. */
  readonly storeCallMaxCpuMs: number;
}

type Stats = GatewayStats & { ownStallMs: number; storeCallMaxCpuMs: number };

function stall(st: Stats, rps: number): Stall {
  return { maxMs: round(st.eldMs.max, 1), p99Ms: round(st.eldMs.p99, 1), rps: round(rps, 0), ownMaxMs: round(st.ownStallMs, 1), storeCallMaxCpuMs: round(st.storeCallMaxCpuMs, 2) };
}

interface StoreResult {
  readonly store: string;
  readonly seedSec: number;
  readonly redisBytesPerPat: number | null;
  readonly startup: { readonly spawnToReadyMs: number; readonly appToReadyMs: number; readonly rssAtReadyMB: number };
  readonly api: Record<string, { p50: number; p99: number; n: number }>;
  readonly listInStoreUs: Record<string, number>;
  /** Reading every PAT (what a list without the index would cost), ms. */
  readonly scanMs: number;
  readonly stall: {
    readonly s1OneToken: Stall;
    readonly s1AllTokensWithCreates: Stall & { readonly non2xx: number; readonly burstCreateP99Ms: number };
    readonly patsWithLastUsed: number;
  };
  readonly rssAfterMB: number;
}

async function benchStore(kind: "embedded" | "redis", children: { upstream: NodeChild; loadgen: NodeChild }): Promise<StoreResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `patgate-bench-storage-${kind}-`));
  const pepper = randomBytes(32);
  const adminKey = `pgadm_bench_${randomBytes(24).toString("hex")}`;
  let redis: BenchRedis | null = null;
  let gateway: NodeChild | null = null;
  try {
    log(`\n== ${kind}: generating ${PATS} PATs over ${USERS} users and ${DOMAINS} domains`);
    const data = dataset(pepper, PATS, USERS, DOMAINS);
    const small = dataset(pepper, 1000, 100, 10);
    let storeCfg: Record<string, unknown>;
    let open: () => Promise<Store>;
    let openSmall: () => Promise<Store>;
    let redisBytesPerPat: number | null = null;
    const t0 = performance.now();
    if (kind === "embedded") {
      const file = path.join(dir, "data", "patgate.db");
      await mkdir(path.dirname(file), { recursive: true });
      open = () => EmbeddedStore.open(file);
      openSmall = () => EmbeddedStore.open(path.join(dir, "small", "patgate.db"));
      storeCfg = { redis_url: "", embedded_path: file, key_prefix: "patgate:" };
      const s = await open();
      await loadRecords(s, data.records);
      await s.close();
    } else {
      redis = await startBenchRedis(CPU_LOAD);
      const url = redis.url;
      open = () => RedisStore.connect({ url, keyPrefix: "patgate:" });
      openSmall = () => RedisStore.connect({ url, keyPrefix: "small:" });
      storeCfg = { redis_url: url, key_prefix: "patgate:" };
      const s = await open();
      await loadRecords(s, { ...data.records, pats: [] });
      const before = await redis.usedMemory();
      await loadRecords(s, { domains: [], memberships: [], roles: [], adminKeys: [], pats: data.records.pats });
      redisBytesPerPat = round(((await redis.usedMemory()) - before) / PATS, 0);
      await s.close();
    }
    const seedSec = round((performance.now() - t0) / 1000, 1);
    log(`seeded in ${seedSec} s${redisBytesPerPat === null ? "" : `; Redis used_memory per PAT ${redisBytesPerPat} bytes`}`);

    // listPatsByUser in the store itself: a small store beside the full one.
    const smallStore = await openSmall();
    const big = await open();
    let listInStoreUs: Record<string, number>;
    let scanMs: number;
    try {
      await loadRecords(smallStore, small.records);
      listInStoreUs = await listTimings([
        { name: "10-PAT user, 1,000-PAT store", store: smallStore, userId: small.lightUser, n: 100 },
        { name: `10-PAT user, ${PATS.toLocaleString("en")}-PAT store`, store: big, userId: data.lightUser, n: 100 },
        { name: `${HEAVY.toLocaleString("en")}-PAT user, ${PATS.toLocaleString("en")}-PAT store`, store: big, userId: data.heavyUser, n: 5 },
      ]);
      scanMs = await scanAll(big);
    } finally {
      await smallStore.close();
      await big.close();
    }
    log(`listPatsByUser (µs): ${JSON.stringify(listInStoreUs)}`);

    const configFile = await writeGatewayConfig(dir, storeCfg, pepper.toString("hex"), `http://127.0.0.1:${children.upstream.port}`, adminKey);
    const spawnAt = performance.now();
    gateway = await NodeChild.start("gateway", path.join(ROOT, "bench", "gateway-main.ts"), { cpus: CPU_GATEWAY, args: ["--config", configFile, "--store-calls", "time", "--stall-monitor"], startTimeoutMs: 120_000 });
    const spawnToReadyMs = round(performance.now() - spawnAt, 0);
    const first = await gateway.request<GatewayStats & { startup: { appToReadyMs: number; rssAtReadyBytes: number } }>({ cmd: "stats" });
    const startup = { spawnToReadyMs, appToReadyMs: round(first.startup.appToReadyMs, 0), rssAtReadyMB: round(first.startup.rssAtReadyBytes / MB, 1) };
    log(`start-up: ${JSON.stringify(startup)}`);
    const target: Target = { name: "gateway", port: gateway.port, prefix: GATEWAY_PREFIX, pid: gateway.pid };
    const base = `http://127.0.0.1:${gateway.port}`;
    const admin = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
    const call = async (method: string, p: string, body?: unknown): Promise<Record<string, unknown>> => {
      const r = await fetch(base + p, { method, headers: admin, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      const text = await r.text();
      if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${text.slice(0, 200)}`);
      return JSON.parse(text) as Record<string, unknown>;
    };
    const chatScope = [{ domain_id: DOMAIN, entity_type: "models", entity_id: MODEL, operation: "llm_chat_completions" }];

    // Management API, one call at a time.
    const created: { id: string; user: string }[] = [];
    const api: StoreResult["api"] = {};
    const pick = (i: number): string => `user${(i * 7919) % USERS}`;
    const show = (name: string, p: ReturnType<typeof percentiles>): void => {
      api[name] = { p50: round(p.p50), p99: round(p.p99), n: p.count };
    };
    show("create", await timed(SAMPLES, async (i) => {
      const user = pick(i);
      const r = await call("POST", `/pats?user_id=${user}`, { name: `bench-create-${i}`, duration: "1d", scopes: chatScope });
      created.push({ id: String(r.id), user });
    }));
    show("revoke", await timed(SAMPLES, async (i) => {
      const c = created[i] as { id: string; user: string };
      await call("PATCH", `/pats/${c.id}/secret/revoke?user_id=${c.user}`);
    }));
    show("list (a user's ~10 PATs)", await timed(SAMPLES, async (i) => void (await call("GET", `/pats?user_id=${pick(i + 1)}`))));
    show("list, status=active (~10)", await timed(SAMPLES, async (i) => void (await call("GET", `/pats?user_id=${pick(i + 2)}&status=active`))));
    show(`list, status=revoked (${HEAVY.toLocaleString("en")})`, await timed(Math.max(10, SAMPLES / 10), async () => void (await call("GET", `/pats?user_id=${data.heavyUser}&status=revoked&limit=100`))));
    log(`management API (ms): ${JSON.stringify(api)}`);

    // S1 alone: one token, the stall baseline of the machine as it is now.
    const body = chatBody(1024);
    await children.loadgen.request({ cmd: "cannon", job: { request: chatRequest(target, body, data.tokens[0] ?? ""), connections: CONNECTIONS, durationSec: 2 } });
    await gateway.request({ cmd: "reset" });
    const one = await children.loadgen.request<CannonResult>({ cmd: "cannon", job: { request: chatRequest(target, body, data.tokens[0] ?? ""), connections: CONNECTIONS, durationSec: 8 } });
    const s1OneToken = stall(await gateway.request<Stats>({ cmd: "stats" }), one.rps);
    log(`S1, one token: ${JSON.stringify(s1OneToken)}`);

    // S1's traffic over every token (each flush: every PAT used in the last 10 s), with bursts of creates.
    await children.loadgen.request({ cmd: "tokens", name: "all", list: data.tokens });
    await gateway.request({ cmd: "reset" });
    const run = children.loadgen.request<CannonResult>({ cmd: "cannon", job: { request: chatRequest(target, body, ""), connections: CONNECTIONS, durationSec: DURATION, tokenSet: "all" } });
    const burstMs: number[] = [];
    const runStart = performance.now();
    for (const at of [4, 9, 15].filter((sec) => sec < DURATION - 1)) {
      await new Promise((r) => setTimeout(r, Math.max(0, runStart + at * 1000 - performance.now())));
      const burst = Array.from({ length: BURST }, (_, k) => {
        const t = performance.now();
        return call("POST", `/pats?user_id=${pick(k + at * 1000)}`, { name: `burst-${at}-${k}`, duration: "1d", scopes: chatScope }).then(() => performance.now() - t);
      });
      burstMs.push(...(await Promise.all(burst)));
    }
    const all = await run;
    const allStats = await gateway.request<Stats>({ cmd: "stats" });
    const non2xx = Object.entries(all.statuses).reduce((n, [code, c]) => (code === "200" ? n : n + c), all.errors);
    const s1All = { ...stall(allStats, all.rps), non2xx, burstCreateP99Ms: round(percentiles(burstMs).p99, 1) };
    log(`S1, every token, ${BURST}-create bursts: ${JSON.stringify(s1All)}`);
    const rssAfterMB = round(allStats.rssBytes / MB, 1);
    await gateway.stop(10_000);
    gateway = null;

    // The flushes happened: count the PATs with a last-used time.
    let patsWithLastUsed = 0;
    const s = await open();
    for await (const page of s.allPats(2000)) for (const p of page) if (p.lastUsedAt !== null) patsWithLastUsed++;
    await s.close();
    log(`PATs with last_used_at: ${patsWithLastUsed}`);
    return { store: kind, seedSec, redisBytesPerPat, startup, api, listInStoreUs, scanMs, stall: { s1OneToken, s1AllTokensWithCreates: s1All, patsWithLastUsed }, rssAfterMB };
  } finally {
    await gateway?.stop();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function table(results: readonly StoreResult[], meta: { loadavg: number[]; cpus: number; date: string; commit: string; nice: number | null }): string {
  const cols = results.map((r) => r.store);
  const row = (what: string, f: (r: StoreResult) => string | number | null): string => `| ${what} | ${results.map((r) => String(f(r) ?? "-")).join(" | ")} |`;
  const lines = [
    `${PATS.toLocaleString("en")} PATs (a tenth revoked; one user with ${HEAVY.toLocaleString("en")}), ${USERS.toLocaleString("en")} users, ${DOMAINS.toLocaleString("en")} domains, ${(USERS * 2).toLocaleString("en")} memberships. ${meta.date}, commit ${meta.commit.slice(0, 10)}, ${meta.cpus} CPUs, load average at the end ${meta.loadavg.join(" / ")} (a shared machine: other tenants' work shows up as event-loop delay)${meta.nice === null ? "" : `; every bench process at nice ${meta.nice}`}.`,
    "",
    `| | ${cols.join(" | ")} |`,
    `| --- | ${cols.map(() => "---").join(" | ")} |`,
    row("seed (bulk load / import), s", (r) => r.seedSec),
    row("Redis used_memory per PAT, bytes", (r) => r.redisBytesPerPat),
    row("gateway start-up: spawn → listening, ms", (r) => r.startup.spawnToReadyMs),
    row("… of which config + store + app → listening, ms", (r) => r.startup.appToReadyMs),
    row("RSS at start, MB", (r) => r.startup.rssAtReadyMB),
    row("RSS after the traffic, MB", (r) => r.rssAfterMB),
    ...Object.keys(results[0]?.api ?? {}).map((k) => row(`API ${k}: p50 / p99, ms`, (r) => `${r.api[k]?.p50} / ${r.api[k]?.p99}`)),
    ...Object.keys(results[0]?.listInStoreUs ?? {}).map((k) => row(`listPatsByUser in the store, ${k}, µs`, (r) => r.listInStoreUs[k] ?? null)),
    row(`for scale: reading all ${PATS.toLocaleString("en")} PATs once (a list without the index), ms`, (r) => r.scanMs),
    row("S1, one token: event-loop delay max / p99, ms (wall clock)", (r) => `${r.stall.s1OneToken.maxMs} / ${r.stall.s1OneToken.p99Ms} (${r.stall.s1OneToken.rps} req/s)`),
    row("… of it the gateway's own longest block, ms", (r) => r.stall.s1OneToken.ownMaxMs),
    row(`S1 over every token + last-used flushes + ${BURST}-create bursts: event-loop delay max / p99, ms (wall clock)`, (r) => `${r.stall.s1AllTokensWithCreates.maxMs} / ${r.stall.s1AllTokensWithCreates.p99Ms} (${r.stall.s1AllTokensWithCreates.rps} req/s, ${r.stall.s1AllTokensWithCreates.non2xx} non-200)`),
    row("… of it the gateway's own longest block, ms", (r) => `**${r.stall.s1AllTokensWithCreates.ownMaxMs}**`),
    row("… the longest store call on the event loop (CPU), ms", (r) => r.stall.s1AllTokensWithCreates.storeCallMaxCpuMs),
    row("… a burst's creates: p99, ms", (r) => r.stall.s1AllTokensWithCreates.burstCreateP99Ms),
    row("PATs with last_used_at after the run", (r) => r.stall.patsWithLastUsed),
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  const started = new Date();
  let niced: number | null = null;
  if (a.nice !== undefined) {
    const n = Number(a.nice);
    if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error("--nice must be a whole number from -20 to 19");
    // Children are forked from this thread and inherit its nice value.
    os.setPriority(n);
    niced = n;
  }
  const upstream = await NodeChild.start("upstream", path.join(ROOT, "bench", "servers", "upstream-main.ts"), { cpus: CPU_LOAD, args: ["--response-bytes", "1024"] });
  const loadgen = await NodeChild.start("loadgen", path.join(ROOT, "bench", "load-main.ts"), { cpus: CPU_LOAD });
  const results: StoreResult[] = [];
  try {
    for (const kind of STORES) results.push(await benchStore(kind, { upstream, loadgen }));
  } finally {
    await loadgen.stop();
    await upstream.stop();
  }
  const { execFileSync } = await import("node:child_process");
  const meta = {
    date: started.toISOString(),
    commit: execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim(),
    node: process.version,
    cpus: os.cpus().length,
    pinned: pin,
    nice: niced,
    loadavg: os.loadavg().map((x) => round(x, 2)),
    options: { pats: PATS, users: USERS, domains: DOMAINS, samples: SAMPLES, durationSec: DURATION, connections: CONNECTIONS, burst: BURST },
  };
  await mkdir(path.dirname(a.out), { recursive: true });
  await writeFile(a.out, JSON.stringify({ meta, results }, null, 2) + "\n");
  const md = table(results, meta);
  log(`\n${md}\n\nraw results: ${path.relative(process.cwd(), a.out)}`);
  if (a["update-readme"]) {
    const readme = path.join(ROOT, "bench", "README.md");
    const text = await readFile(readme, "utf8");
    const start = "<!-- storage-results:start -->";
    const end = "<!-- storage-results:end -->";
    const i = text.indexOf(start);
    const j = text.indexOf(end);
    if (i < 0 || j < i) throw new Error(`bench/README.md has no ${start} … ${end} block`);
    await writeFile(readme, `${text.slice(0, i + start.length)}\n${md}\n${text.slice(j)}`);
    log("bench/README.md updated");
  }
}

await main();
