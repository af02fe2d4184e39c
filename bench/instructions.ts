/**
 * `npm run bench:instructions [-- options]`: CPU instructions per request of
 * each proxy, counted by valgrind's callgrind. Unlike req/s on a shared
 * machine, an instruction count does not move when a neighbour takes the CPU,
 * so two runs of the same code agree to within a fraction of a percent and a
 * change of a few percent shows.
 *
 * Each proxy runs under `valgrind --tool=callgrind --instr-atstart=no`: it is
 * warmed up uninstrumented (V8 tiers its hot code up), then counting is
 * switched on and zeroed with `callgrind_control`, a fixed number of requests
 * is sent by a raw-socket client in this process, and the counters are dumped.
 *
 * Every proxy runs with `--no-memory-reducer`. Under valgrind everything runs
 * ~50x slower, so V8's memory reducer sees a process that allocates little
 * per second of wall time, takes it for idle and starts full collections
 * during the counted requests: 45-60k instructions per request in some runs
 * and none in others. A loaded proxy does not trigger it natively (native S1
 * runs with --trace-gc show no full collection).
 *
 * What it does not count: the kernel's side of system calls (socket reads and
 * writes, epoll), which is about the same per request for every proxy here
 * (one request read, one forwarded, one response read, one written back).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { chatBody, chatRequest, GATEWAY_PREFIX, type Target } from "./lib/context.ts";
import { LIMITS_MODES, makeGatewayFixture, type LimitsMode } from "./lib/gateway-setup.ts";
import { requestBytes, responseEnd } from "./lib/latency-client.ts";
import type { RequestSpec } from "./lib/jobs.ts";
import { NodeChild } from "./lib/proc.ts";
import { buildBase, buildGatewayHarness, imageNodeFlags } from "./lib/production.ts";
import { selfSignedCertificate } from "./lib/tls.ts";

const BENCH = import.meta.dirname;
// gateway-tls / gateway-h2: the gateway with server.tls.http2, over HTTPS/1.1 and over HTTP/2 (one session).
// gateway-base: the gateway built from --base's commit, with --base-limits.
const NAMES = ["skeleton", "http-proxy-3", "gateway", "gateway-tls", "gateway-h2", "gateway-base"] as const;
type Name = (typeof NAMES)[number];
const SCENARIOS: Record<string, { bytes: number; what: string }> = {
  S1: { bytes: 1024, what: "POST /v1/chat/completions, 1 KB body, ~1 KB response" },
  S5: { bytes: 65_536, what: "POST /v1/chat/completions, 64 KB body, ~1 KB response" },
  SSE: { bytes: 1024, what: "POST /v1/chat/completions with stream: true, 1 KB body, SSE frames paced 20 ms: instructions per forwarded frame and per stream set-up" },
};
/** The gateway harness without its bench-only monitors (bench/gateway-main.ts), like the other proxies' harnesses. */
const BARE = ["--bare"];
/** Frames per counted stream in SSE (the upstream's --sse-chunks); set-up is what a 1-frame stream costs beyond one frame. */
const SSE_FRAMES = 64;

const USAGE = `usage: npm run bench:instructions -- [options]
  --targets a,b        which proxies (default: skeleton,http-proxy-3,gateway; also gateway-tls, gateway-h2:
                       the gateway serving HTTPS, over HTTP/1.1 and over HTTP/2)
  --scenarios S1,S5    which request shapes (default: S1,S5; also SSE: streams of ${SSE_FRAMES} frames and of 1 frame,
                       reported as instructions per forwarded frame and per stream set-up)
  --streams <n>        counted streams per SSE measurement (default 40), --stream-concurrency at once (default 4:
                       under callgrind a proxy is ~50x slower, and more would make paced frames coalesce)
  --requests <n>       counted requests per proxy and scenario (default 3000)
  --warmup <n>         uncounted requests first, over the connections then counted (default 20000: V8 has
                       tiered the hot code up by then)
  --warmup-seconds <s> and the warm-up lasts at least this long after the proxy is up (default 90: what first runs
                       after a minute, such as a limit window's first bucket to expire, is optimised again uncounted)
  --concurrency <n>    connections sending at once (default 1: each request then takes the same path
                       through the event loop, and two runs agree to within about half a percent)
  --rounds <n>         repeat everything, to show the counts repeat (default 1)
  --out <file>         JSON output (default bench/results/instructions.json)
  --keep               keep callgrind's dumps (for callgrind_annotate) and print where they are
  --node-flags=<f>     extra node flags for the measured proxies (e.g. --node-flags=--perf-basic-prof names JIT code)
  --limits <m>         the gateway's limits and usage metering: on (two policies counting every request, metering on),
                       off (no policies, metering off) or none (default: the config keys left out, the build's defaults)
  --base <ref>         also count the gateway built from another commit (target gateway-base, added to --targets
                       when missing), in a worktree beside the project, right after the working tree's gateway
  --base-limits <m>    --limits for gateway-base (default none: for a build that predates limits)`;

const { values: a } = parseArgs({
  options: {
    targets: { type: "string", default: "skeleton,http-proxy-3,gateway" },
    scenarios: { type: "string", default: "S1,S5" },
    requests: { type: "string", default: "3000" },
    warmup: { type: "string", default: "20000" },
    "warmup-seconds": { type: "string", default: "90" },
    concurrency: { type: "string", default: "1" },
    rounds: { type: "string", default: "1" },
    out: { type: "string", default: path.join(BENCH, "results", "instructions.json") },
    keep: { type: "boolean", default: false },
    "node-flags": { type: "string", default: "" },
    limits: { type: "string", default: "none" },
    base: { type: "string" },
    "base-limits": { type: "string", default: "none" },
    streams: { type: "string", default: "40" },
    "stream-concurrency": { type: "string", default: "4" },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (a.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
function whole(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} must be a whole number >= 1\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}
const targets = a.targets.split(",").map((s) => s.trim()) as Name[];
for (const t of targets) if (!NAMES.includes(t)) throw new Error(`unknown target ${t}`);
const scenarios = a.scenarios.split(",").map((s) => s.trim().toUpperCase());
for (const s of scenarios) if (SCENARIOS[s] === undefined) throw new Error(`unknown scenario ${s} (S1, S5 or SSE)`);
const requests = whole("requests", a.requests);
const warmup = whole("warmup", a.warmup);
const warmupMs = (() => {
  const s = Number(a["warmup-seconds"]);
  if (!Number.isFinite(s) || s < 0) {
    process.stderr.write(`--warmup-seconds must be a number >= 0\n${USAGE}\n`);
    process.exit(2);
  }
  return s * 1000;
})();
const concurrency = whole("concurrency", a.concurrency);
const rounds = whole("rounds", a.rounds);
const streams = whole("streams", a.streams);
const streamConcurrency = whole("stream-concurrency", a["stream-concurrency"]);
const limits = a.limits as LimitsMode;
const baseLimits = a["base-limits"] as LimitsMode;
if (!LIMITS_MODES.includes(limits) || !LIMITS_MODES.includes(baseLimits)) throw new Error(`--limits and --base-limits are ${LIMITS_MODES.join(", ")}`);
if (a.base !== undefined && !targets.includes("gateway-base")) targets.splice(targets.includes("gateway") ? targets.indexOf("gateway") + 1 : targets.length, 0, "gateway-base");
if (a.base === undefined && targets.includes("gateway-base")) throw new Error("gateway-base needs --base <ref>");

function which(bin: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
if (!which("valgrind") || !which("callgrind_control")) {
  process.stderr.write("valgrind is not installed (apt-get install valgrind)\n");
  process.exit(2);
}

/**
 * Where counting starts within one call of a Driver: once `uncounted`
 * responses came and the clock passed `notBefore` (ms since the epoch),
 * `start` is called (it switches callgrind on) and the statuses start afresh,
 * on the same connections, so opening them is not counted.
 */
interface CountFrom {
  readonly uncounted: number;
  readonly notBefore: number;
  readonly start: () => void;
}

/** How a target is spoken to: plain or TLS sockets carrying HTTP/1.1 bytes, or HTTP/2 streams. */
type Driver = (port: number, request: RequestSpec, total: number, at?: number, from?: CountFrom) => Promise<Record<string, number>>;

const plain: Driver = (port, request, total, at = concurrency, from) => drive(port, requestBytes(request), total, at, () => net.connect({ host: "127.0.0.1", port, noDelay: true }), "connect", from);
// The bench's certificate is self-signed: what is counted is the gateway, not trust.
const overTls: Driver = (port, request, total, at = concurrency, from) =>
  drive(port, requestBytes(request), total, at, () => tls.connect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }).setNoDelay(true), "secureConnect", from);

/**
 * Paces a driver and counts its responses; once `from` says so, lets the
 * requests in flight come back (holding every sender meanwhile), calls
 * `from.start` and counts afresh, so that every counted request is counted
 * whole. Done once `total` more came.
 */
class Tally {
  statuses: Record<string, number> = {};
  #sent = 0;
  #done = 0;
  /** Senders held while the warm-up's last requests come back; resumed when counting starts. */
  readonly #held: Array<() => void> = [];
  /** How many responses in all (the uncounted ones, then `total`); unknown while the warm-up waits for the clock. */
  #all: number;
  readonly #total: number;
  readonly #from: CountFrom | undefined;
  #draining = false;
  constructor(total: number, from: CountFrom | undefined) {
    this.#from = from;
    this.#total = total;
    this.#all = from === undefined ? total : Infinity;
  }

  get wanted(): number {
    return this.#all;
  }

  /**
   * Whether a sender may send one more request now ("send", counted as out),
   * must wait ("hold": `resume` is called when counting starts) or is done.
   */
  next(resume: () => void): "send" | "hold" | "done" {
    if (this.#draining) {
      this.#held.push(resume);
      return "hold";
    }
    if (this.#sent >= this.#all) return "done";
    this.#sent++;
    return "send";
  }

  /** Records one response; true when it was the last. */
  add(status: number): boolean {
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    this.#done++;
    if (this.#all === Infinity && this.#from !== undefined) {
      if (!this.#draining && this.#done >= this.#from.uncounted && Date.now() >= this.#from.notBefore) this.#draining = true;
      if (this.#draining && this.#sent === this.#done) {
        this.#draining = false;
        this.#from.start();
        this.statuses = {};
        this.#all = this.#done + this.#total;
        for (const resume of this.#held.splice(0)) resume();
      }
    }
    return this.#done === this.#all;
  }
}

/** `total` requests as HTTP/2 streams, `concurrency` at a time, on one session. */
const overH2: Driver = (port, request, total, at = concurrency, from) =>
  new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: "localhost" });
    session.on("error", reject);
    const body = Buffer.from(request.body);
    const headers: http2.OutgoingHttpHeaders = { ":method": request.method, ":path": request.path, "content-length": String(body.length), ...request.headers };
    const tally = new Tally(total, from);
    const next = (): void => {
      if (tally.next(next) !== "send") return;
      const req = session.request(headers);
      let status = 0;
      req.on("response", (h) => (status = Number(h[":status"])));
      req.resume();
      req.on("end", () => {
        if (tally.add(status)) {
          // Closed after the caller's dump (which runs before any immediate): the close is not counted.
          setImmediate(() => session.close());
          resolve(tally.statuses);
        } else next();
      });
      req.on("error", reject);
      req.end(body);
    };
    for (let i = 0; i < Math.min(at, tally.wanted); i++) next();
  });

/** Sends `total` copies of `bytes` over `at` keep-alive connections; resolves with the status counts. */
function drive(port: number, bytes: Buffer, total: number, at: number, dial: () => net.Socket, ready: "connect" | "secureConnect", from?: CountFrom): Promise<Record<string, number>> {
  const tally = new Tally(total, from);
  return new Promise((resolve, reject) => {
    const open = (): void => {
      const socket = dial();
      let buf: Buffer = Buffer.alloc(0);
      let status = 0;
      const next = (): void => {
        const go = tally.next(next);
        if (go === "hold") return;
        if (go === "done") {
          // Ended after the caller's dump (which runs before any immediate): the close is not counted.
          setImmediate(() => socket.end());
          return;
        }
        buf = Buffer.alloc(0);
        socket.write(bytes);
      };
      socket.on(ready, next);
      socket.on("data", (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        if (responseEnd(buf, (s) => (status = s)) === -1) return;
        if (tally.add(status)) resolve(tally.statuses);
        next();
      });
      socket.on("error", reject);
    };
    for (let i = 0; i < Math.min(at, tally.wanted); i++) open();
  });
}

function control(args: string[]): void {
  execFileSync("callgrind_control", args, { stdio: "ignore" });
}

interface Count {
  target: Name;
  scenario: string;
  round: number;
  requests: number;
  instructions: number;
  perRequest: number;
  statuses: Record<string, number>;
}

async function measure(name: Name, script: string, args: string[], prefix: string, token: string, outDir: string, round: number, flags: string[] = [], send: Driver = plain): Promise<Count[]> {
  const child = await NodeChild.start(name, script, {
    cpus: null,
    args,
    execArgv: ["--no-memory-reducer", ...flags, ...a["node-flags"].split(" ").filter((f) => f !== "")],
    wrap: ["valgrind", "--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${path.join(outDir, `${name}.%p.out`)}`],
    startTimeoutMs: 300_000,
  });
  const startedAt = Date.now();
  const counts: Count[] = [];
  try {
    const t: Target = { name: name === "gateway-tls" || name === "gateway-h2" || name === "gateway-base" ? "gateway" : name, port: child.port, prefix, pid: child.pid };
    for (const s of scenarios) {
      if (s === "SSE") {
        counts.push(...(await measureStreams(name, child.pid, t, token, outDir, round, send, startedAt)));
        continue;
      }
      const request = chatRequest(t, chatBody(SCENARIOS[s]!.bytes), token);
      const first = await send(child.port, request, 1);
      if (first["200"] !== 1) throw new Error(`${name} answered ${JSON.stringify(first)} instead of 200: nothing measured`);
      const statuses = await countAfterWarmUp(child.pid, child.port, request, send, startedAt);
      control(["--dump", String(child.pid)]);
      control(["--instr=off", String(child.pid)]);
      const instructions = await lastDumpTotal(outDir, name, child.pid);
      counts.push({ target: name, scenario: s, round, requests, instructions, perRequest: Math.round(instructions / requests), statuses });
      process.stdout.write(`  ${name} ${s} round ${round}: ${Math.round(instructions / requests).toLocaleString("en")} instructions/request (${JSON.stringify(statuses)})\n`);
    }
  } finally {
    await child.stop(10_000);
  }
  return counts;
}

/**
 * `requests` counted requests after the warm-up, all over the connections
 * that are then counted. A connection that opens or closes after V8
 * optimised the hot path deoptimises 30-70 node:stream, node:net and
 * node:http functions ("wrong map" in Readable.read, _storeHeader, _send,
 * ...), and V8 waits longer before optimising a function again after each
 * deoptimisation: with 5,000 warm-up requests on the counted connection
 * after 35,000 on another, TurboFan was still re-optimising them during the
 * count (--trace-opt), 32k instructions per request of a gateway count. And
 * the warm-up lasts `warmupMs` after the proxy is up, so what first runs
 * after a minute (a window's first bucket to expire, the sweep timers) is
 * deoptimised and optimised again before counting.
 * The connections close after the dump.
 */
async function countAfterWarmUp(pid: number, port: number, request: RequestSpec, send: Driver, startedAt: number): Promise<Record<string, number>> {
  const start = (): void => {
    control(["--instr=on", String(pid)]);
    control(["--zero", String(pid)]);
  };
  return send(port, request, requests, undefined, { uncounted: warmup, notBefore: startedAt + warmupMs, start });
}

/**
 * SSE: `streams` streams of SSE_FRAMES frames, then as many of 1 frame, each
 * counted on its own. Per frame = the difference over (SSE_FRAMES - 1) frames
 * a stream; set-up = a 1-frame stream less one frame (the request, the
 * decision, the upstream's headers, the end).
 */
async function measureStreams(name: Name, pid: number, t: Target, token: string, outDir: string, round: number, send: Driver, startedAt: number): Promise<Count[]> {
  const body = (frames: number): string => chatBody(SCENARIOS["SSE"]!.bytes, true).replace('"max_tokens":256', `"max_tokens":${frames}`);
  const long = chatRequest(t, body(SSE_FRAMES), token);
  const short = chatRequest(t, body(1), token);
  const first = await send(t.port, long, 1);
  if (first["200"] !== 1) throw new Error(`${name} answered ${JSON.stringify(first)} instead of 200: nothing measured`);
  // Each count warms up on its own connections first, as S1's does (countAfterWarmUp).
  const counted = async (request: RequestSpec, uncounted: number): Promise<{ instructions: number; statuses: Record<string, number> }> => {
    const start = (): void => {
      control(["--instr=on", String(pid)]);
      control(["--zero", String(pid)]);
    };
    const statuses = await send(t.port, request, streams, streamConcurrency, { uncounted, notBefore: startedAt + warmupMs, start });
    control(["--dump", String(pid)]);
    control(["--instr=off", String(pid)]);
    return { instructions: await lastDumpTotal(outDir, name, pid), statuses };
  };
  const l = await counted(long, Math.max(streams, Math.ceil(warmup / SSE_FRAMES)));
  const sh = await counted(short, Math.max(streams, Math.ceil(warmup / 4)));
  const perFrame = Math.round((l.instructions - sh.instructions) / (streams * (SSE_FRAMES - 1)));
  const setup = Math.round(sh.instructions / streams - perFrame);
  process.stdout.write(`  ${name} SSE round ${round}: ${perFrame.toLocaleString("en")} instructions/frame, ${setup.toLocaleString("en")} per stream set-up (${JSON.stringify(l.statuses)})\n`);
  return [
    { target: name, scenario: "SSE frame", round, requests: streams * SSE_FRAMES, instructions: l.instructions, perRequest: perFrame, statuses: l.statuses },
    { target: name, scenario: "SSE set-up", round, requests: streams, instructions: sh.instructions, perRequest: setup, statuses: sh.statuses },
  ];
}

/** The total of the newest dump callgrind wrote for `pid` (files `<name>.<pid>.out.<n>`). */
async function lastDumpTotal(dir: string, name: string, pid: number): Promise<number> {
  const base = `${name}.${pid}.out.`;
  const dumps = (await readdir(dir)).filter((f) => f.startsWith(base)).sort((x, y) => Number(x.slice(base.length)) - Number(y.slice(base.length)));
  const last = dumps.at(-1);
  if (last === undefined) throw new Error(`callgrind wrote no dump for ${name}`);
  const text = await readFile(path.join(dir, last), "utf8");
  const m = /^(?:summary|totals):\s*(\d+)/m.exec(text);
  if (m === null) throw new Error(`no total in ${last}`);
  return Number(m[1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : Math.round(((s[mid - 1] as number) + (s[mid] as number)) / 2);
}

async function main(): Promise<void> {
  const outDir = await mkdtemp(path.join(os.tmpdir(), "patgate-callgrind-"));
  const upstream = await NodeChild.start("upstream", path.join(BENCH, "servers", "upstream-main.ts"), { cpus: null, args: ["--response-bytes", "1024"] });
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const fx = await makeGatewayFixture({ upstreamUrl, cacheMaxEntries: null, distinct: 0, connections: null, limits });
  const connections = String(fx.connections);
  // The gateway as the image runs it: compiled, with the Dockerfile CMD's node flags.
  const gatewayScript = targets.some((t) => t.startsWith("gateway")) ? buildGatewayHarness() : "";
  const tfx = targets.includes("gateway-tls") || targets.includes("gateway-h2") ? await makeGatewayFixture({ upstreamUrl, cacheMaxEntries: null, distinct: 0, connections: null, tls: selfSignedCertificate(fx.dir) }) : null;
  const baseDir = path.join(outDir, "base");
  const baseScript = a.base === undefined ? "" : await buildBase(a.base, baseDir);
  const bfx = a.base === undefined ? null : await makeGatewayFixture({ upstreamUrl, cacheMaxEntries: null, distinct: 0, connections: null, limits: baseLimits, root: baseDir });
  const gatewayFlags = imageNodeFlags();
  // A base from before --bare would refuse it.
  const baseBare = a.base !== undefined && readFileSync(path.join(baseDir, "bench", "gateway-main.ts"), "utf8").includes("bare:") ? BARE : [];
  const counts: Count[] = [];
  process.stdout.write(`callgrind: ${requests} counted requests after ${warmup} warm-up, ${concurrency} connections, ${rounds} round(s)\n`);
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const name of targets) {
        if (name === "gateway") counts.push(...(await measure(name, gatewayScript, ["--config", fx.configFile, ...BARE], GATEWAY_PREFIX, fx.token, outDir, round, gatewayFlags)));
        else if (name === "gateway-base" && bfx !== null) counts.push(...(await measure(name, baseScript, ["--config", bfx.configFile, ...baseBare], GATEWAY_PREFIX, bfx.token, outDir, round, gatewayFlags)));
        else if ((name === "gateway-tls" || name === "gateway-h2") && tfx !== null) {
          counts.push(...(await measure(name, gatewayScript, ["--config", tfx.configFile, ...BARE], GATEWAY_PREFIX, tfx.token, outDir, round, gatewayFlags, name === "gateway-h2" ? overH2 : overTls)));
        }
        else {
          const script = path.join(BENCH, "servers", name === "skeleton" ? "skeleton-main.ts" : "http-proxy-main.ts");
          counts.push(...(await measure(name, script, ["--upstream", upstreamUrl, "--connections", connections], "", fx.token, outDir, round)));
        }
      }
    }
  } finally {
    await upstream.stop();
    if (bfx !== null) {
      execFileSync("git", ["worktree", "remove", "--force", baseDir], { cwd: path.join(BENCH, ".."), stdio: "ignore" });
      await rm(bfx.dir, { recursive: true, force: true });
    }
    if (a.keep) process.stdout.write(`callgrind dumps kept in ${outDir}\n`);
    else await rm(outDir, { recursive: true, force: true });
    await rm(fx.dir, { recursive: true, force: true });
    if (tfx !== null) await rm(tfx.dir, { recursive: true, force: true });
  }

  const rows: string[] = ["| scenario | target | instructions/request | skeleton's / this | rounds |", "| --- | --- | ---: | ---: | --- |"];
  const summary: Array<{ scenario: string; target: Name; perRequest: number; skeletonRatio: number | null }> = [];
  for (const s of scenarios.flatMap((x) => (x === "SSE" ? ["SSE frame", "SSE set-up"] : [x]))) {
    const per = (t: Name): number | null => {
      const xs = counts.filter((c) => c.scenario === s && c.target === t).map((c) => c.perRequest);
      return xs.length === 0 ? null : median(xs);
    };
    const skel = per("skeleton");
    for (const t of targets) {
      const v = per(t);
      if (v === null) continue;
      const ratio = skel === null ? null : Math.round((skel / v) * 1000) / 1000;
      summary.push({ scenario: s, target: t, perRequest: v, skeletonRatio: ratio });
      const all = counts.filter((c) => c.scenario === s && c.target === t).map((c) => c.perRequest.toLocaleString("en"));
      rows.push(`| ${s} | ${t} | ${v.toLocaleString("en")} | ${ratio ?? "-"} | ${all.join(", ")} |`);
    }
  }
  const node = process.version;
  const commit = (() => {
    try {
      return execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { encoding: "utf8" }).trim();
    } catch {
      return "";
    }
  })();
  const base = a.base === undefined ? "" : `; gateway-base: ${execFileSync("git", ["rev-parse", "--short=12", a.base], { encoding: "utf8" }).trim()} with limits ${baseLimits}`;
  const header = `callgrind instructions per request (user space, all threads), median of ${rounds} round(s); ${requests} counted requests after ${warmup} warm-up, ${concurrency} connections; Node ${node}, commit ${commit}, gateway limits ${limits}${base}.`;
  process.stdout.write(`\n${header}\n\n${rows.join("\n")}\n`);
  await mkdir(path.dirname(a.out), { recursive: true });
  await writeFile(a.out, `${JSON.stringify({ at: new Date().toISOString(), node, commit, limits, base: a.base ?? null, baseLimits, requests, warmup, concurrency, rounds, scenarios: Object.fromEntries(scenarios.map((s) => [s, SCENARIOS[s]!.what])), summary, counts }, null, 2)}\n`);
  process.stdout.write(`\nraw counts: ${a.out}\n`);
}

await main();
