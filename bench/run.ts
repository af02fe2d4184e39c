/**
 * `npm run bench [-- options]`: patgate against its baselines, same machine,
 * same run. Starts the fake upstream, the gateway and the baselines (each in
 * its own process, pinned with taskset), a load generator in another process,
 * runs the scenarios of issue 5 interleaved over rounds, prints tables and
 * writes bench/results/latest.json (+ latest.md).
 */
import { execFileSync } from "node:child_process";
import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { makeGatewayFixture, ROOT } from "./lib/gateway-setup.ts";
import { GATEWAY_PREFIX, TARGET_NAMES, chatBody, chatRequest, type Bench, type BenchOptions, type Target, type TargetName } from "./lib/context.ts";
import type { LatencyResult } from "./lib/jobs.ts";
import { findNginx, startNginx, type Nginx } from "./lib/nginx.ts";
import { NodeChild, pinProcess, taskset } from "./lib/proc.ts";
import { buildGatewayHarness, chartMemoryLimit, imageNodeFlags, memoryCgroup, removeCgroup } from "./lib/production.ts";
import { checksTable, renderMarkdown, renderText } from "./lib/report.ts";
import type { Check, ScenarioResult, Table } from "./lib/report-types.ts";
import { authPaths, latencyC1, soak, sseScenario, throughput } from "./scenarios.ts";
import { memoryPerStream } from "./memory.ts";
import { fairness } from "./fairness.ts";
import { h2Sse, h2Throughput } from "./h2.ts";
import { selfSignedCertificate } from "./lib/tls.ts";
import { renderProfile, summarizeProfile } from "./profile-summary.ts";

const BENCH = import.meta.dirname;
const RESULTS = path.join(BENCH, "results");
const ALL_SCENARIOS = ["S1", "S2", "S3", "S4", "S5", "S6", "S1H2", "S3H2", "S7", "S8"];

const USAGE = `usage: npm run bench -- [options]
  --quick                    ~3-minute smoke run: 1 round, 2 s runs, 15 s soak, S7 with 200 streams, S8 with 16 paced streams
  --scenarios S1,S3,...      which scenarios (default: all of ${ALL_SCENARIOS.join(",")}; S1H2/S3H2 are S1/S3
                             against an HTTPS gateway over HTTP/1.1 and HTTP/2, beside the plain gateway)
  --targets a,b,...          which targets (default: ${TARGET_NAMES.join(",")}; nginx only when installed)
  --rounds <n>               interleaved rounds per scenario (default 3; quick 1)
  --duration <s>             seconds per throughput run, S1/S4/S5 (default 6; quick 2)
  --soak <s>                 S6 length (default 120; quick 15)
  --connections <n>          autocannon connections for S1/S4/S5/S6 (default 50)
  --upstream-connections <n> pool size of every proxy to the upstream (default: the shipped config's)
  --upstream-cpu <cpus>      taskset CPU list for the fake upstream (default 0: shares the load generator's core)
  --sse-levels 128,256,...    S3's capacity levels, streams opened at once (default 128,256,512,1024; quick 256)
  --capacity-runs <n>        runs per capacity level, a level held when most of them have no stall (default 3; quick 1);
                             then one bisection step between the last level held and the first stalled (--no-bisect: none)
  --no-bisect                no bisection step
  --mem-streams <n>          S7's streams held open at once per target (default 1000; quick 200)
  --fair-streams <n>         S8's paced streams beside the burst (default 32; quick 16)
  --burst-mib <n>            S8: MiB of each burst response (default 32); bursts follow one another while the paced streams run
  --no-pin                   do not pin processes with taskset
  --nice <n>                 run every bench process at this nice value (e.g. -10, needs root): on a
                             shared machine the measured processes then win the CPU over neighbours
                             (who slow down meanwhile); default: unchanged
  --no-wait-quiet            start each run at once (default: wait up to 1 s, not in --quick, for other tenants' CPU load to pass)
  --cpu-prof                 run the gateway with --cpu-prof and summarise the profile (numbers then include profiler overhead)
  --gateway-log <file>       where the gateway's access log goes (default /dev/null; always fully serialised)
  --out <file>               JSON output (default bench/results/latest.json; Markdown next to it)
  --update-readme            put the results tables into bench/README.md
  --render <file.json>       print (and with --update-readme, publish) a saved run's tables; runs nothing
  --help`;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(2);
}

const { values: a } = (() => {
  try {
    return parseArgs({
      options: {
        quick: { type: "boolean", default: false },
        scenarios: { type: "string" },
        targets: { type: "string" },
        rounds: { type: "string" },
        duration: { type: "string" },
        soak: { type: "string" },
        connections: { type: "string" },
        "upstream-connections": { type: "string" },
        "upstream-cpu": { type: "string" },
        "sse-levels": { type: "string" },
        "capacity-runs": { type: "string" },
        "no-bisect": { type: "boolean", default: false },
        "mem-streams": { type: "string" },
        "fair-streams": { type: "string" },
        "burst-mib": { type: "string" },
        "no-pin": { type: "boolean", default: false },
        "no-wait-quiet": { type: "boolean", default: false },
        nice: { type: "string" },
        "cpu-prof": { type: "boolean", default: false },
        "gateway-log": { type: "string", default: "/dev/null" },
        out: { type: "string" },
        "update-readme": { type: "boolean", default: false },
        render: { type: "string" },
        help: { type: "boolean", default: false },
      },
      strict: true,
    });
  } catch (err) {
    fail((err as Error).message);
  }
})();
if (a.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

function intArg(name: string, v: string | undefined, def: number, min = 1): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be a whole number >= ${min}`);
  return n;
}

const quick = a.quick;
const scenarios = new Set((a.scenarios ?? ALL_SCENARIOS.join(",")).split(",").map((s) => s.trim().toUpperCase()).filter((s) => s !== ""));
for (const s of scenarios) if (!ALL_SCENARIOS.includes(s)) fail(`unknown scenario ${s}`);
const wanted = (a.targets ?? TARGET_NAMES.join(",")).split(",").map((s) => s.trim());
for (const t of wanted) if (!TARGET_NAMES.includes(t as TargetName)) fail(`unknown target ${t}`);
if (scenarios.has("S6") && !wanted.includes("gateway")) fail("S6 needs the gateway target");

const opts: BenchOptions = {
  quick,
  scenarios,
  rounds: intArg("rounds", a.rounds, quick ? 1 : 3),
  durationSec: intArg("duration", a.duration, quick ? 2 : 6),
  warmupSec: quick ? 1 : 2,
  latencySec: quick ? 2 : 4,
  sseSec: quick ? 2 : 5,
  sseWarmupSec: quick ? 1 : 15,
  sseConcurrency: quick ? 16 : 32,
  sseLevels: a["sse-levels"] === undefined ? (quick ? [256] : [128, 256, 512, 1024]) : a["sse-levels"].split(",").filter((v) => v !== "").map((v) => intArg("sse-levels", v, 0)),
  sseCapacityRuns: intArg("capacity-runs", a["capacity-runs"], quick ? 1 : 3),
  sseBisect: !a["no-bisect"],
  memStreams: intArg("mem-streams", a["mem-streams"], quick ? 200 : 1000),
  // Slower than S3's 20 ms: S7 measures streams held, not a proxy falling behind on frames.
  memPaceMs: 200,
  memStreamSec: quick ? 8 : 20,
  fairStreams: intArg("fair-streams", a["fair-streams"], quick ? 16 : 32),
  burstBytes: intArg("burst-mib", a["burst-mib"], 32) * 1024 * 1024,
  stallMs: 50,
  ttfbStallMs: 1000,
  soakSec: intArg("soak", a.soak, quick ? 15 : 120),
  soakSampleSec: quick ? 2 : 5,
  connections: intArg("connections", a.connections, 50),
  distinct: 10_000,
  sseChunks: 64,
  sseIntervalMs: 20,
  quietBusyPct: a["no-wait-quiet"] ? Number.POSITIVE_INFINITY : 25,
  quietWaitMs: quick ? 0 : 1000,
};
/** How much nicer than the other bench processes S8's burst reader runs. */
const BURST_NICE = 10;
/** S4's gateway: low enough that `distinct` tokens really miss. */
const S4_CACHE_MAX_ENTRIES = 1000;

// ---- CPU layout ----------------------------------------------------------------

const ncpu = os.availableParallelism();
const pin = !a["no-pin"] && ncpu >= 2 && taskset() !== null;
const layout = {
  pinned: pin,
  loadgen: pin ? "0" : null,
  proxy: pin ? "1" : null,
  upstream: pin ? (a["upstream-cpu"] ?? (ncpu >= 3 ? "2" : "0")) : null,
  orchestrator: pin ? "0" : null,
};
if (a["upstream-cpu"] === "any") layout.upstream = null;

/** Process name → pinned core, when each is pinned to exactly one core. */
function coreMap(): Map<string, number> | null {
  if (!pin) return null;
  const m = new Map<string, number>();
  // S8's burst reader runs beside the load generator.
  for (const [name, cpus] of [["loadgen", layout.loadgen], ["burst", layout.loadgen], ["upstream", layout.upstream], ["proxy", layout.proxy]] as const) {
    if (cpus !== null && /^\d+$/.test(cpus)) m.set(name, Number(cpus));
  }
  return m;
}

// ---- processes -------------------------------------------------------------------

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

interface Running {
  upstream?: NodeChild;
  loadgen?: NodeChild;
  /** S8's second load generator: it reads the burst, so the first one's paced timestamps never wait behind it. */
  burst?: NodeChild;
  gateway?: NodeChild;
  authGateway?: NodeChild;
  tlsGateway?: NodeChild;
  skeleton?: NodeChild;
  httpProxy?: NodeChild;
  nginx?: Nginx;
  fixtureDirs: string[];
  cgroups: string[];
}
const running: Running = { fixtureDirs: [], cgroups: [] };

async function stopAll(): Promise<void> {
  const stops: Array<Promise<void>> = [];
  for (const c of [running.gateway, running.authGateway, running.tlsGateway, running.skeleton, running.httpProxy, running.loadgen, running.burst]) if (c !== undefined) stops.push(c.stop());
  if (running.nginx !== undefined) stops.push(running.nginx.stop());
  await Promise.allSettled(stops);
  if (running.upstream !== undefined) await running.upstream.stop();
  for (const dir of running.fixtureDirs.splice(0)) await rm(dir, { recursive: true, force: true });
  for (const cg of running.cgroups.splice(0)) removeCgroup(cg);
}

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${sig}: stopping every bench process`);
    void stopAll().finally(() => process.exit(130));
  });
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "";
  }
}

interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotal: string;
  kernel: string;
  arch: string;
  loadavgAtStart: number[];
}

function machine(): MachineInfo {
  let model = "unknown";
  let memTotal = "";
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? model;
    memTotal = /^MemTotal:\s*(.+)$/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? "";
  } catch {
    // Not Linux: leave the defaults.
  }
  return { nproc: ncpu, cpuModel: model, memTotal, kernel: `${os.type()} ${os.release()}`, arch: os.arch(), loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100) };
}

async function main(): Promise<void> {
  const started = new Date();
  // Read now: the load average the run started under, not the one it leaves behind.
  const machineAtStart = machine();
  const nginxBin = wanted.includes("nginx") ? findNginx() : null;
  const notes: string[] = [];
  if (wanted.includes("nginx") && nginxBin === null) notes.push("nginx is not on the PATH: the nginx baseline was skipped (apt-get install nginx).");
  if (!pin) notes.push("processes were not pinned (taskset missing, fewer than 2 CPUs, or --no-pin).");
  if (a["cpu-prof"]) notes.push("the gateway ran with --cpu-prof: its numbers include profiler overhead.");
  const srcDirty = git(["status", "--porcelain", "--", "src", "routes.yaml", "config"]);
  if (srcDirty !== "") notes.push(`the working tree differs from the commit in src/, config/ or routes.yaml (${srcDirty.split("\n").length} paths): results are for the working tree.`);

  if (layout.orchestrator !== null) pinProcess(process.pid, layout.orchestrator);
  if (a.nice !== undefined) {
    const n = Number(a.nice);
    if (!Number.isInteger(n) || n < -20 || n > 19) fail("--nice must be a whole number from -20 to 19");
    try {
      // Children are forked from this thread and inherit its nice value, all their threads too.
      os.setPriority(n);
      notes.push(`every bench process ran at nice ${n} (--nice).`);
    } catch (err) {
      notes.push(`--nice ${n} failed (${(err as Error).message}): processes ran at the default priority.`);
    }
  }
  log(`patgate bench: ${quick ? "quick" : "full"} run, scenarios ${[...scenarios].join(",")}, ${ncpu} CPUs, layout ${JSON.stringify(layout)}`);

  running.upstream = await NodeChild.start("upstream", path.join(BENCH, "servers", "upstream-main.ts"), {
    cpus: layout.upstream,
    args: ["--sse-chunks", String(opts.sseChunks), "--sse-interval-ms", String(opts.sseIntervalMs), "--response-bytes", "1024"],
  });
  const upstreamUrl = `http://127.0.0.1:${running.upstream.port}`;

  const upstreamConnections = a["upstream-connections"] === undefined ? null : intArg("upstream-connections", a["upstream-connections"], 1);
  const fx = await makeGatewayFixture({ upstreamUrl, cacheMaxEntries: null, distinct: 0, connections: upstreamConnections });
  running.fixtureDirs.push(fx.dir);
  const connections = String(fx.connections);

  // The gateway runs as the image runs it: compiled, with the Dockerfile CMD's node flags.
  const gatewayFlags = imageNodeFlags();
  const gatewayScript = wanted.includes("gateway") || scenarios.has("S4") ? buildGatewayHarness() : "";
  // ...and inside the memory limit the Helm chart gives its pod, so V8 sizes its heap as it would there.
  const memLimit = chartMemoryLimit();
  const cgroup = memoryCgroup(memLimit, "gateway");
  const s4Cgroup = cgroup === null ? null : memoryCgroup(memLimit, "gateway-s4");
  for (const cg of [cgroup, s4Cgroup]) if (cg !== null) running.cgroups.push(cg.where);
  else notes.push(`no memory cgroup could be made (needs root and a memory controller): the gateway ran without the chart's ${memLimit / 2 ** 20} MiB limit, so V8 sized its heap from the machine's memory.`);
  const gatewayWrap = cgroup === null ? {} : { wrap: cgroup.wrap };
  const profDir = path.join(RESULTS, "profiles");
  if (a["cpu-prof"]) await mkdir(profDir, { recursive: true });
  const profStart = Date.now();
  const targets: Target[] = [];
  if (wanted.includes("direct")) targets.push({ name: "direct", port: running.upstream.port, prefix: "", pid: null });
  if (wanted.includes("skeleton")) {
    running.skeleton = await NodeChild.start("skeleton", path.join(BENCH, "servers", "skeleton-main.ts"), { cpus: layout.proxy, args: ["--upstream", upstreamUrl, "--connections", connections] });
    targets.push({ name: "skeleton", port: running.skeleton.port, prefix: "", pid: running.skeleton.pid });
  }
  if (wanted.includes("http-proxy-3")) {
    running.httpProxy = await NodeChild.start("http-proxy-3", path.join(BENCH, "servers", "http-proxy-main.ts"), { cpus: layout.proxy, args: ["--upstream", upstreamUrl, "--connections", connections] });
    targets.push({ name: "http-proxy-3", port: running.httpProxy.port, prefix: "", pid: running.httpProxy.pid });
  }
  if (nginxBin !== null) {
    running.nginx = await startNginx(nginxBin.bin, nginxBin.version, running.upstream.port, layout.proxy, fx.connections);
    targets.push({ name: "nginx", port: running.nginx.port, prefix: "", pid: running.nginx.pid });
  }
  if (wanted.includes("gateway")) {
    running.gateway = await NodeChild.start("gateway", gatewayScript, {
      ...gatewayWrap,
      cpus: layout.proxy,
      args: ["--config", fx.configFile, "--log", a["gateway-log"]],
      execArgv: [...gatewayFlags, ...(a["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [])],
    });
    targets.push({ name: "gateway", port: running.gateway.port, prefix: GATEWAY_PREFIX, pid: running.gateway.pid });
  }
  // S1h2 / S3h2: one HTTPS gateway (HTTP/2 and HTTP/1.1 by ALPN) reached three ways, next to the plain one.
  const tlsTargets: Target[] = [];
  let tlsToken = fx.token;
  if (scenarios.has("S1H2") || scenarios.has("S3H2")) {
    const tfx = await makeGatewayFixture({ upstreamUrl, cacheMaxEntries: null, distinct: 0, connections: upstreamConnections, tls: selfSignedCertificate(fx.dir) });
    running.fixtureDirs.push(tfx.dir);
    running.tlsGateway = await NodeChild.start("gateway-tls", gatewayScript || buildGatewayHarness(), { ...gatewayWrap, cpus: layout.proxy, execArgv: gatewayFlags, args: ["--config", tfx.configFile, "--log", a["gateway-log"]] });
    const at = { port: running.tlsGateway.port, prefix: GATEWAY_PREFIX, pid: running.tlsGateway.pid };
    // The plain gateway first, when it runs: the reference the TLS costs are read against.
    for (const t of targets) if (t.name === "gateway") tlsTargets.push(t);
    tlsTargets.push(
      { name: "gateway-tls-h1", ...at, transport: { tls: true, h2Sessions: null } },
      { name: "gateway-h2", ...at, transport: { tls: true, h2Sessions: opts.connections } },
      { name: "gateway-h2-mux", ...at, transport: { tls: true, h2Sessions: 1 } },
    );
    tlsToken = tfx.token;
  }
  running.loadgen = await NodeChild.start("loadgen", path.join(BENCH, "load-main.ts"), { cpus: layout.loadgen });
  // S8's burst reader shares the load generator's core: at nice +10 it gives way whenever the paced
  // streams' client or the upstream wakes, so what delays their frames is the proxy, not this reader.
  if (scenarios.has("S8")) running.burst = await NodeChild.start("burst", path.join(BENCH, "load-main.ts"), { cpus: layout.loadgen, wrap: ["nice", "-n", String(BURST_NICE)] });
  let auth: Bench["auth"] = null;
  if (scenarios.has("S4")) {
    const afx = await makeGatewayFixture({ upstreamUrl, cacheMaxEntries: S4_CACHE_MAX_ENTRIES, distinct: opts.distinct, connections: upstreamConnections });
    running.fixtureDirs.push(afx.dir);
    running.authGateway = await NodeChild.start("gateway-s4", gatewayScript, { ...(s4Cgroup === null ? {} : { wrap: s4Cgroup.wrap }), cpus: layout.proxy, execArgv: [...gatewayFlags, ...(a["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", path.join(profDir, "s4")] : [])], args: ["--config", afx.configFile, "--log", a["gateway-log"], "--store-calls", "count"] });
    auth = { child: running.authGateway, target: { name: "gateway", port: running.authGateway.port, prefix: GATEWAY_PREFIX, pid: running.authGateway.pid }, cacheMaxEntries: afx.cacheMaxEntries, token: afx.token };
    await running.loadgen.request({ cmd: "tokens", name: "cached", list: [afx.token] });
    await running.loadgen.request({ cmd: "tokens", name: "miss", list: afx.missTokens });
    await running.loadgen.request({ cmd: "tokens", name: "unknown", list: afx.unknownTokens });
    await running.loadgen.request({ cmd: "tokens", name: "malformed", list: afx.malformedTokens });
  }

  const children = new Map<TargetName, NodeChild>();
  for (const [name, child] of [["skeleton", running.skeleton], ["http-proxy-3", running.httpProxy], ["gateway", running.gateway]] as const) if (child !== undefined) children.set(name, child);
  const b: Bench = { opts, loadgen: running.loadgen, upstream: running.upstream, targets, token: fx.token, auth, upstreamConnections: fx.connections, children, coreOf: coreMap(), log };

  // Every target must answer 200 before anything is measured: a 401 flood is fast and would look great.
  for (const t of targets) {
    const r = await running.loadgen.request<LatencyResult>({ cmd: "latency", job: { request: chatRequest(t, chatBody(1024), fx.token), durationSec: 0.3 } });
    const bad = Object.entries(r.statuses).filter(([code]) => code !== "200");
    if (bad.length > 0 || r.us.count === 0) throw new Error(`sanity check: ${t.name} answered ${JSON.stringify(r.statuses)} (errors ${r.errors})`);
  }
  if (auth !== null) {
    const r = await running.loadgen.request<LatencyResult>({ cmd: "latency", job: { request: chatRequest(auth.target, chatBody(1024), auth.token), durationSec: 0.3 } });
    if (Object.keys(r.statuses).some((code) => code !== "200") || r.us.count === 0) throw new Error(`sanity check: the S4 gateway answered ${JSON.stringify(r.statuses)}`);
  }
  for (const t of tlsTargets) {
    if (t.transport === undefined) continue;
    const r = await running.loadgen.request<{ statuses: Record<string, number>; total: number }>({ cmd: "cannon", job: { request: chatRequest(t, chatBody(1024), tlsToken), connections: 2, durationSec: 1 } });
    if (Object.keys(r.statuses).some((code) => code !== "200") || r.total === 0) throw new Error(`sanity check: ${t.name} answered ${JSON.stringify(r.statuses)}`);
  }
  log(`targets: ${targets.map((t) => `${t.name}:${t.port}`).join(" ")}${auth === null ? "" : ` gateway-s4:${auth.target.port}`}${tlsTargets.length === 0 ? "" : ` gateway-tls:${running.tlsGateway?.port ?? 0}`}  (all answer 200)`);

  const results: ScenarioResult[] = [];
  let s1GatewayRps: number | null = null;
  if (scenarios.has("S1")) {
    const r = await throughput(b, "S1", 1024);
    results.push(r);
    const gw = r.summary["gateway"] as { rps: number } | undefined;
    s1GatewayRps = gw?.rps ?? null;
  }
  if (scenarios.has("S2")) results.push(await latencyC1(b));
  if (scenarios.has("S3")) results.push(await sseScenario(b));
  if (scenarios.has("S4")) results.push(await authPaths(b));
  if (scenarios.has("S5")) results.push(await throughput(b, "S5", 64 * 1024));
  // The TLS gateway has a store (and so a PAT) of its own.
  const tokenFor = (t: Target): string => (t.transport === undefined ? fx.token : tlsToken);
  if (scenarios.has("S1H2")) results.push(await h2Throughput(b, tlsTargets, tokenFor));
  if (scenarios.has("S3H2")) results.push(await h2Sse(b, tlsTargets, tokenFor));
  if (scenarios.has("S7")) results.push(await memoryPerStream(b));
  if (scenarios.has("S8") && running.burst !== undefined) results.push(await fairness(b, running.burst));
  if (scenarios.has("S6") && running.gateway !== undefined) {
    let rate = s1GatewayRps;
    if (rate === null) {
      const gw = targets.find((t) => t.name === "gateway") as Target;
      log("S6: S1 not run; measuring the gateway's S1 rate for 3 s first");
      const r = await b.loadgen.request<{ rps: number }>({ cmd: "cannon", job: { request: chatRequest(gw, chatBody(1024), fx.token), connections: opts.connections, durationSec: 3 } });
      rate = r.rps;
    }
    // A fresh gateway: what S3's 1,000 streams or S5's 64 KB bodies left in the heap is not the soak's doing.
    await running.gateway.stop();
    running.gateway = await NodeChild.start("gateway", gatewayScript, { ...gatewayWrap, cpus: layout.proxy, execArgv: gatewayFlags, args: ["--config", fx.configFile, "--log", a["gateway-log"]] });
    const target: Target = { name: "gateway", port: running.gateway.port, prefix: GATEWAY_PREFIX, pid: running.gateway.pid };
    results.push(await soak(b, rate / 2, { child: running.gateway, target }));
  }
  const loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  await stopAll();

  // ---- report ----
  const checks: Check[] = results.flatMap((r) => r.checks);
  const tables: Table[] = [...results.flatMap((r) => r.tables), checksTable(checks)];
  const meta = {
    date: started.toISOString(),
    wallSec: Math.round((Date.now() - started.getTime()) / 1000),
    mode: quick ? "quick" : "full",
    commit: git(["rev-parse", "HEAD"]),
    workingTreeDirty: srcDirty !== "",
    versions: { node: process.version, undici: pkgVersion("undici"), autocannon: pkgVersion("autocannon"), "http-proxy-3": pkgVersion("http-proxy-3"), pino: pkgVersion("pino"), nginx: nginxBin?.version ?? null },
    machine: { ...machineAtStart, loadavgAtEnd },
    layout: { ...layout, note: "loadgen and bench orchestrator on one core, the proxy under test alone on the other; the fake upstream shares the load generator's core unless --upstream-cpu says otherwise (S2 then runs once more with it moved onto the proxy's core)" },
    gateway: {
      store: "embedded (temp dir, seeded from a JSON store file migrated at start)",
      cacheMaxEntries: fx.cacheMaxEntries,
      s4: auth === null ? null : { store: "embedded", pats: opts.distinct + 1, cacheMaxEntries: auth.cacheMaxEntries },
      upstreamConnections: fx.connections,
      log: a["gateway-log"],
      run: `node ${[...gatewayFlags, "dist/bench/gateway-main.js"].join(" ")} (the build of src/, as the image runs it)${cgroup === null ? "" : `, in a ${memLimit / 2 ** 20} MiB memory cgroup (the chart's limit)`}`,
      metrics: "whatever buildApp wires (counted as part of the gateway)",
    },
    options: { ...opts, scenarios: [...opts.scenarios] },
    notes,
  };
  const out = a.out ?? path.join(RESULTS, "latest.json");
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify({ meta, checks, scenarios: Object.fromEntries(results.map((r) => [r.id, r])) }, null, 2) + "\n");
  await render(meta, tables, out);
  log(`\nraw results: ${path.relative(process.cwd(), out)}`);

  if (a["cpu-prof"]) {
    // The profile the gateway wrote when it exited: the newest one written during this run.
    let latest: { file: string; mtime: number } | null = null;
    for (const f of await readdir(profDir)) {
      if (!f.endsWith(".cpuprofile")) continue;
      const mtime = (await stat(path.join(profDir, f))).mtimeMs;
      if (mtime >= profStart && (latest === null || mtime > latest.mtime)) latest = { file: path.join(profDir, f), mtime };
    }
    if (latest === null) log("no CPU profile was written");
    else {
      const summary = summarizeProfile(latest.file);
      log(`\n${renderProfile(summary)}`);
      await writeFile(path.join(RESULTS, "profile-summary.json"), JSON.stringify(summary, null, 2) + "\n");
    }
  }
  const failed = checks.filter((c) => c.pass === false).length;
  log(`\n${checks.filter((c) => c.pass === true).length} targets pass, ${failed} fail, ${checks.filter((c) => c.pass === null).length} informational or not measured.`);
}

type Meta = {
  date: string;
  mode: string;
  wallSec: number;
  commit: string;
  workingTreeDirty: boolean;
  versions: Record<string, string | null>;
  machine: MachineInfo & { loadavgAtEnd: number[] };
  layout: { pinned: boolean; loadgen: string | null; proxy: string | null; upstream: string | null };
  gateway: { cacheMaxEntries: number; s4: { pats: number; cacheMaxEntries: number } | null; upstreamConnections: number; log: string; run?: string };
  notes: string[];
};

/** The lines above the tables: when, where, what versions, how the processes sat. */
function headerLines(m: Meta): string[] {
  const l = m.layout;
  const s4 = m.gateway.s4 === null ? "" : `; S4 uses a second gateway process with ${m.gateway.s4.pats} PATs and cache.max_entries ${m.gateway.s4.cacheMaxEntries}`;
  return [
    `Run ${m.date} (${m.mode}, ${m.wallSec} s) on ${m.machine.cpuModel}, ${m.machine.nproc} CPUs, ${m.machine.memTotal}; ${m.machine.kernel}; load average at start ${JSON.stringify(m.machine.loadavgAtStart)}.`,
    `Node ${m.versions["node"] ?? "?"}, undici ${m.versions["undici"] ?? "?"}, autocannon ${m.versions["autocannon"] ?? "?"}, http-proxy-3 ${m.versions["http-proxy-3"] ?? "?"}, ${m.versions["nginx"] ?? "no nginx"}; commit ${m.commit.slice(0, 12)}${m.workingTreeDirty ? " + uncommitted changes" : ""}.`,
    `Pinning: ${l.pinned ? `load generator on CPU ${l.loadgen ?? "any"}, proxy under test on CPU ${l.proxy ?? "any"}, fake upstream on CPU ${l.upstream ?? "any"}` : "none"}. Gateway: shipped config/patgate.yaml with embedded store (1 PAT${s4}), cache.max_entries ${m.gateway.cacheMaxEntries}, ${m.gateway.upstreamConnections} upstream connections, access log (pino destination, async) to ${m.gateway.log}${m.gateway.run === undefined ? "" : `; started as \`${m.gateway.run}\``}.`,
    ...m.notes.map((n) => `Note: ${n}`),
  ];
}

/** Each table note once: later tables drop notes an earlier one already carried. */
function dedupeNotes(tables: readonly Table[]): Table[] {
  const seen = new Set<string>();
  return tables.map((t) => {
    const notes = (t.notes ?? []).filter((n) => !seen.has(n));
    for (const n of notes) seen.add(n);
    return { ...t, notes };
  });
}

/** Prints the tables, writes the Markdown next to `out`, and fills the README block when asked. */
async function render(meta: Meta, all: readonly Table[], out: string): Promise<void> {
  const tables = dedupeNotes(all);
  const header = headerLines(meta);
  const md = [...header.map((h) => `${h}\n`), ...tables.map((t) => renderMarkdown(t) + "\n")].join("\n");
  await writeFile(out.replace(/\.json$/, "") + ".md", md);
  log("");
  for (const h of header) log(h);
  for (const t of tables) log(`\n${renderText(t)}`);
  if (a["update-readme"]) await updateReadme(md);
}

/** `--render <json>`: the tables of a saved run again, without running anything. */
async function renderSaved(file: string): Promise<void> {
  const saved = JSON.parse(await readFile(file, "utf8")) as { meta: Meta; checks: Check[]; scenarios: Record<string, ScenarioResult> };
  await render(saved.meta, [...Object.values(saved.scenarios).flatMap((r) => r.tables), checksTable(saved.checks)], file);
}

async function updateReadme(md: string): Promise<void> {
  const file = path.join(BENCH, "README.md");
  const text = await readFile(file, "utf8");
  const start = "<!-- results:start -->";
  const end = "<!-- results:end -->";
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i === -1 || j === -1 || j < i) {
    log(`bench/README.md has no ${start} … ${end} block: not updated`);
    return;
  }
  await writeFile(file, `${text.slice(0, i + start.length)}\n${md}\n${text.slice(j)}`);
  log("bench/README.md updated");
}

(a.render !== undefined ? renderSaved(a.render) : main()).catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await stopAll();
  process.exit(1);
});
