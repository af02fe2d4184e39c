/**
 * The issue's scenarios S1–S6. Each interleaves its targets over the rounds
 * (rotating which goes first), reports medians, keeps every raw run, and
 * evaluates the issue's targets that belong to it. (bench/h2.ts's S1h2 and S3h2
 * use the helpers exported here.)
 */
import type { CannonResult, LatencyResult, SseJob, SseResult } from "./lib/jobs.ts";
import {
  cannon,
  chatBody,
  chatRequest,
  latency,
  rotate,
  sse,
  unexpected,
  type Bench,
  type Measured,
  type Target,
  type TargetName,
} from "./lib/context.ts";
import { pinProcess, type CpuUsage, type NodeChild } from "./lib/proc.ts";
import type { Check, ScenarioResult, Table } from "./lib/report-types.ts";
import { median, paired, pairedNote, perRound, round } from "./lib/stats.ts";
import { heldCell, majority, measureCapacity, type Capacity, type CapacityOptions } from "./lib/capacity.ts";

/** Gateway stats as gateway-main reports them. */
export interface GatewayStats {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
  readonly eldMs: { readonly mean: number; readonly p50: number; readonly p99: number; readonly max: number };
  readonly storeCalls: Record<string, number>;
  readonly verifierCacheSize: number;
}

const MB = 1024 * 1024;

export function ratio(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return round(a / b, 3);
}

/** A line recorded with no target. */
export function info(id: string, what: string, value: number | null, unit: string, note?: string): Check {
  return { id, what, value, unit, goal: "report", pass: null, ...(note === undefined ? {} : { note }) };
}

export function check(id: string, what: string, value: number | null, unit: string, goal: string, ok: (v: number) => boolean, note?: string): Check {
  return { id, what, value, unit, goal, pass: value === null ? null : ok(value), ...(note === undefined ? {} : { note }) };
}

/** Median CPU per process and per core over some runs. */
export function medianCpu(cpus: readonly CpuUsage[]): CpuUsage {
  const procs: Record<string, number> = {};
  const names = new Set(cpus.flatMap((c) => Object.keys(c.procs)));
  for (const n of names) procs[n] = round(median(cpus.map((c) => c.procs[n] ?? Number.NaN)), 0);
  const cores: number[] = [];
  const ncores = Math.max(0, ...cpus.map((c) => c.cores.length));
  for (let i = 0; i < ncores; i++) cores.push(round(median(cpus.map((c) => c.cores[i] ?? Number.NaN)), 0));
  return { procs, cores, other: round(median(cpus.map((c) => c.other)), 0), contention: round(median(cpus.map((c) => c.contention)), 0) };
}

export function cpuCells(c: CpuUsage): string[] {
  const p = (n: string): string => (c.procs[n] === undefined ? "-" : String(c.procs[n]));
  return [p("loadgen"), p("upstream"), p("proxy"), c.cores.join("/"), String(c.contention)];
}

/** Proxy CPU per request in microseconds: the cost of one request on the proxy's core, steadier than req/s under contention. */
export function cpuPerRequest(cpu: CpuUsage, rps: number): number | null {
  const p = cpu.procs["proxy"];
  return p === undefined || !(rps > 0) ? null : round(((p / 100) * 1e6) / rps, 0);
}

export const CPU_COLUMNS = ["cpu% loadgen", "cpu% upstream", "cpu% proxy", "core busy %", "contention %"];

/**
 * A run is contended when other tenants took more than this share of a core
 * our measured processes were pinned to. Medians use the uncontended runs of
 * a target when it has any.
 */
export const CONTENDED_PCT = 30;

export const CPU_NOTE =
  `cpu% = share of one core used by that process during the run (/proc/<pid>/stat); core busy % per core (/proc/stat); contention % = the share of the measured core (the proxy's; for direct, the load generator's and upstream's) that other tenants of the machine took during the run; proxy cpu us/req = the proxy's CPU time per request (its cost on a core of its own, steadier than req/s under contention). A loadgen near 100% would mean the client was the limit. Runs with contention above ${CONTENDED_PCT}% are left out of the medians when the target has cleaner runs ("runs used"); every run is in latest.json.`;

/** Runs per target: the uncontended ones when there are any, else all of them. */
export function byTarget<R extends { cpu: CpuUsage }>(runs: ReadonlyArray<{ target: TargetName } & R>, targets: readonly Target[]): Map<TargetName, R[]> {
  const m = new Map<TargetName, R[]>();
  for (const t of targets) m.set(t.name, usable(runs.filter((r) => r.target === t.name)));
  return m;
}

function usable<R extends { cpu: CpuUsage }>(rs: readonly R[]): R[] {
  const clean = rs.filter(uncontended);
  return clean.length > 0 ? clean : [...rs];
}

/** A note for a check whose inputs had no uncontended run, or undefined. */
export function contendedNote(runs: ReadonlyArray<{ target: TargetName; cpu: CpuUsage }>, names: readonly TargetName[]): string | undefined {
  const bad = names.filter((n) => {
    const rs = runs.filter((r) => r.target === n);
    return rs.length > 0 && !rs.some(uncontended);
  });
  return bad.length === 0 ? undefined : `every run of ${bad.join(", ")} was contended by other tenants: indicative only`;
}

export function joinNotes(...notes: Array<string | undefined>): string | undefined {
  const n = notes.filter((x): x is string => x !== undefined);
  return n.length === 0 ? undefined : n.join("; ");
}

/** A run measured without much interference from other tenants. */
export function uncontended(r: { cpu: CpuUsage }): boolean {
  return r.cpu.contention <= CONTENDED_PCT;
}

/** x's req/s over y's, paired by round (see `paired`), to 3 decimals. */
export function pairedRatio<R extends { round: number; rps: number; cpu: CpuUsage }>(xs: readonly R[], ys: readonly R[]): number | null {
  const v = paired(xs, ys, (x, y) => (y.rps > 0 ? x.rps / y.rps : Number.NaN), uncontended);
  return v === null ? null : round(v, 3);
}

/** "used/total" for a table cell. */
export function usedLabel<R extends { cpu: CpuUsage }>(rs: readonly R[]): string {
  const clean = rs.filter(uncontended).length;
  return clean > 0 ? `${clean}/${rs.length}` : `0/${rs.length}: all contended`;
}

// ---- S1 / S5: throughput ------------------------------------------------------

interface ThroughputRun {
  readonly round: number;
  readonly target: TargetName;
  readonly rps: number;
  readonly latencyMs: CannonResult["latencyMs"];
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  readonly cpu: CpuUsage;
  readonly quiet: Measured<unknown>["quiet"];
}

/** S1 (1 KB body) and S5 (64 KB body): POST chat completions at c = `connections`. */
export async function throughput(b: Bench, id: "S1" | "S5", bodyBytes: number): Promise<ScenarioResult> {
  const { opts } = b;
  const body = chatBody(bodyBytes);
  b.log(`${id}: POST chat ${bodyBytes} B body, c=${opts.connections}, ${opts.rounds} round(s) x ${opts.durationSec}s per target`);
  for (const t of b.targets) await cannon(b, t, { request: chatRequest(t, body, b.token), connections: opts.connections, durationSec: id === "S1" ? opts.warmupSec : 1 }, true);
  const runs: ThroughputRun[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of rotate(b.targets, r)) {
      const m = await cannon(b, t, { request: chatRequest(t, body, b.token), connections: opts.connections, durationSec: opts.durationSec });
      const x = m.result;
      runs.push({ round: r, target: t.name, rps: round(x.rps, 0), latencyMs: x.latencyMs, statuses: x.statuses, errors: x.errors, timeouts: x.timeouts, cpu: m.cpu, quiet: m.quiet });
      b.log(`  ${id} round ${r + 1} ${t.name.padEnd(12)} ${Math.round(x.rps).toString().padStart(7)} rps  p99 ${x.latencyMs.p99} ms  cpu ${JSON.stringify(m.cpu.procs)} other ${m.cpu.other}%`);
    }
  }
  const grouped = byTarget(runs, b.targets);
  const summary: Record<string, unknown> = {};
  const rps = new Map<TargetName, number>();
  for (const t of b.targets) rps.set(t.name, median((grouped.get(t.name) ?? []).map((r) => r.rps)));
  const runsOf = (n: TargetName): ThroughputRun[] => runs.filter((r) => r.target === n);
  const vs = (n: TargetName, base: TargetName): number | null => pairedRatio(runsOf(n), runsOf(base));
  const vsNote = (n: TargetName, base: TargetName): string | undefined => pairedNote(perRound(runsOf(n), runsOf(base), (x, y) => x.rps / y.rps), ratio(rps.get(n), rps.get(base)));
  const rows: Array<Array<string | number | null>> = [];
  for (const t of b.targets) {
    const rs = grouped.get(t.name) ?? [];
    const all = runsOf(t.name);
    const med = rps.get(t.name) ?? Number.NaN;
    const cpu = medianCpu(rs.map((r) => r.cpu));
    const bad = all.reduce((n, r) => n + unexpected(r.statuses, 200, r.errors + r.timeouts), 0);
    summary[t.name] = { runsUsed: usedLabel(all), rps: round(med, 0), vsSkeleton: vs(t.name, "skeleton"), proxyCpuUsPerRequest: median(rs.map((r) => cpuPerRequest(r.cpu, r.rps) ?? Number.NaN)), p50Ms: median(rs.map((r) => r.latencyMs.p50)), p99Ms: median(rs.map((r) => r.latencyMs.p99)), cpu, unexpected: bad, roundsRps: rs.map((r) => r.rps) };
    const usPerReq = median(rs.map((r) => cpuPerRequest(r.cpu, r.rps) ?? Number.NaN));
    rows.push([t.name, round(med, 0), vs(t.name, "skeleton"), median(rs.map((r) => r.latencyMs.p50)), median(rs.map((r) => r.latencyMs.p99)), ...cpuCells(cpu), Number.isNaN(usPerReq) ? "-" : usPerReq, usedLabel(all), bad]);
  }
  const cpuUs = (n: TargetName): number => median((grouped.get(n) ?? []).map((r) => cpuPerRequest(r.cpu, r.rps) ?? Number.NaN));
  const gwBad = (summary["gateway"] as { unexpected: number } | undefined)?.unexpected ?? 0;
  const badNote = gwBad > 0 ? `${gwBad} gateway responses were not 200: the ratio is not valid` : undefined;
  const checks: Check[] =
    id === "S1"
      ? [
          check("S1.gateway/skeleton", "S1 gateway throughput / skeleton", vs("gateway", "skeleton"), "x", ">= 0.85", (v) => v >= 0.85 && gwBad === 0, joinNotes(badNote, contendedNote(runs, ["gateway", "skeleton"]), vsNote("gateway", "skeleton"))),
          check("S1.gateway/http-proxy-3", "S1 gateway throughput / http-proxy-3", vs("gateway", "http-proxy-3"), "x", ">= 1.5", (v) => v >= 1.5 && gwBad === 0, joinNotes(badNote, contendedNote(runs, ["gateway", "http-proxy-3"]), vsNote("gateway", "http-proxy-3"))),
          info("S1.gateway/nginx", "S1 gateway throughput / nginx (recorded, no target)", vs("gateway", "nginx"), "x", vsNote("gateway", "nginx")),
          info("S1.cpu_per_request", "S1 gateway CPU per request / skeleton's (recorded, no target)", ratio(cpuUs("gateway"), cpuUs("skeleton")), "x"),
        ]
      : [check("S5.gateway/skeleton", "S5 (64 KB body) gateway throughput / skeleton", vs("gateway", "skeleton"), "x", ">= 0.8", (v) => v >= 0.8 && gwBad === 0, joinNotes(badNote, contendedNote(runs, ["gateway", "skeleton"]), vsNote("gateway", "skeleton")))];
  const table: Table = {
    title: `${id}: POST /v1/chat/completions, ${bodyBytes >= 1024 ? `${bodyBytes / 1024} KB` : `${bodyBytes} B`} body, ~1 KB response, c=${opts.connections}; median of ${opts.rounds} x ${opts.durationSec}s`,
    columns: ["target", "req/s", "x skeleton", "p50 ms", "p99 ms", ...CPU_COLUMNS, "proxy cpu us/req", "runs used", "non-200"],
    rows,
    notes: ["x skeleton = the median over rounds of the round's req/s over the skeleton's in the same round (each note of the checks below also gives the ratio of the medians).", "autocannon latencies have 1 ms resolution; S2 measures sub-millisecond latency.", CPU_NOTE],
  };
  return { id, config: { bodyBytes, connections: opts.connections, durationSec: opts.durationSec, rounds: opts.rounds }, runs, summary, tables: [table], checks };
}

// ---- S2: latency at c = 1 -------------------------------------------------------

interface LatencyRun {
  readonly round: number;
  readonly target: TargetName;
  readonly us: LatencyResult["us"];
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly cpu: CpuUsage;
  readonly quiet: Measured<unknown>["quiet"];
}

export async function latencyC1(b: Bench): Promise<ScenarioResult> {
  const { opts } = b;
  const body = chatBody(1024);
  b.log(`S2: c=1 latency, ${opts.rounds} round(s) x ${opts.latencySec}s per target`);
  const runs = await latencyRounds(b, body, "S2");
  const main = summariseC1(b, runs);
  const checks: Check[] = [
    check("S2.added_p50", "S2 gateway added p50 over direct (c=1)", main.added50.get("gateway") ?? null, "us", "<= 150 us", (v) => v <= 150, joinNotes(contendedNote(runs, ["gateway", "direct"]), main.addedNote("gateway", (r) => r.us.p50, main.p50))),
    check("S2.added_p99", "S2 gateway added p99 over direct (c=1)", main.added99.get("gateway") ?? null, "us", "<= 1000 us", (v) => v <= 1000, joinNotes(contendedNote(runs, ["gateway", "direct"]), main.addedNote("gateway", (r) => r.us.p99, main.p99))),
  ];
  const tables: Table[] = [
    {
      title: `S2: latency at c=1 (1 KB POST, raw keep-alive socket, us); median of ${opts.rounds} x ${opts.latencySec}s`,
      columns: C1_COLUMNS,
      rows: main.rows,
      notes: ["added = target percentile - direct percentile of the same round, median over rounds.", CPU_NOTE],
    },
  ];
  const result = { id: "S2", config: { durationSec: opts.latencySec, rounds: opts.rounds }, runs, summary: main.summary, tables, checks };

  // With two cores, "added" depends on where the endpoints sit. Above, the
  // client and the upstream share a core, so direct's round trip never crosses
  // cores while a proxy on the other core adds four crossings; on three
  // machines a proxy adds two. Measured again with the upstream on the proxy's
  // core, direct crosses twice and a proxy adds none: the two placements
  // bracket the real cost from above and below. Recorded, not checked.
  const proxyCore = b.coreOf?.get("proxy");
  const upstreamCore = b.coreOf?.get("upstream");
  // Only the bench's two-core layout (upstream beside the load generator) is what the note below describes.
  if (b.coreOf === null || proxyCore === undefined || upstreamCore === undefined || proxyCore === upstreamCore || upstreamCore !== b.coreOf.get("loadgen")) return result;
  const apart: Bench = { ...b, coreOf: new Map(b.coreOf).set("upstream", proxyCore) };
  pinProcess(b.upstream.pid, String(proxyCore));
  let apartRuns: LatencyRun[];
  try {
    b.log(`S2, again with the fake upstream on the proxy's core (CPU ${proxyCore})`);
    apartRuns = await latencyRounds(apart, body, "S2 apart");
  } finally {
    pinProcess(b.upstream.pid, String(upstreamCore));
  }
  const other = summariseC1(apart, apartRuns);
  return {
    ...result,
    runs: [...runs.map((r) => ({ ...r, placement: "bench" })), ...apartRuns.map((r) => ({ ...r, placement: "upstream on the proxy's core" }))],
    summary: { ...main.summary, upstreamOnProxyCore: other.summary },
    tables: [
      ...tables,
      {
        title: `S2, placed apart: the same with the fake upstream on the proxy's core (CPU ${proxyCore}), so that direct's client and upstream are on different cores; median of ${opts.rounds} x ${opts.latencySec}s`,
        columns: C1_COLUMNS,
        rows: other.rows,
        notes: [
          "Above, the client and the upstream share a core: direct never crosses cores and a proxy on the other core adds four crossings (three machines would add two). Here direct crosses twice and a proxy adds none. The real added latency lies between the two tables' figures.",
        ],
      },
    ],
    checks: [
      ...checks,
      info("S2.added_p50_apart", "S2 gateway added p50, upstream on the proxy's core (recorded, no target)", other.added50.get("gateway") ?? null, "us", joinNotes(other.addedNote("gateway", (r) => r.us.p50, other.p50), `skeleton ${String(other.added50.get("skeleton") ?? "-")} us, nginx ${String(other.added50.get("nginx") ?? "-")} us`)),
    ],
  };
}

const C1_COLUMNS = ["target", "p50 us", "p99 us", "p99.9 us", "added p50", "added p99", "requests/run", "contention %", "runs used", "non-200"];

/** S2's interleaved c=1 rounds over every target, after a short warm-up of each. */
async function latencyRounds(b: Bench, body: string, tag: string): Promise<LatencyRun[]> {
  const { opts } = b;
  for (const t of b.targets) await latency(b, t, { request: chatRequest(t, body, b.token), durationSec: 1 }, true);
  const runs: LatencyRun[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of rotate(b.targets, r)) {
      const m = await latency(b, t, { request: chatRequest(t, body, b.token), durationSec: opts.latencySec });
      runs.push({ round: r, target: t.name, us: m.result.us, statuses: m.result.statuses, errors: m.result.errors, cpu: m.cpu, quiet: m.quiet });
      b.log(`  ${tag} round ${r + 1} ${t.name.padEnd(12)} p50 ${m.result.us.p50.toFixed(0)} us  p99 ${m.result.us.p99.toFixed(0)} us  n=${m.result.us.count}  other ${m.cpu.other}%`);
    }
  }
  return runs;
}

/** Per-target medians and added latencies over direct (paired by round) of one set of S2 rounds. */
function summariseC1(b: Bench, runs: readonly LatencyRun[]) {
  const grouped = byTarget(runs, b.targets);
  const p50 = new Map<TargetName, number>();
  const p99 = new Map<TargetName, number>();
  for (const t of b.targets) {
    const rs = grouped.get(t.name) ?? [];
    p50.set(t.name, median(rs.map((r) => r.us.p50)));
    p99.set(t.name, median(rs.map((r) => r.us.p99)));
  }
  const runsOf = (n: TargetName): LatencyRun[] => runs.filter((r) => r.target === n);
  const added = (n: TargetName, pick: (r: LatencyRun) => number): number | null => {
    const v = paired(runsOf(n), runsOf("direct"), (x, y) => pick(x) - pick(y), uncontended);
    return v === null ? null : round(v, 0);
  };
  /** The per-round added values and the difference of the medians (`ofMedians`: p50 or p99 by target). */
  const addedNote = (n: TargetName, pick: (r: LatencyRun) => number, ofMedians: Map<TargetName, number>): string | undefined =>
    pairedNote(perRound(runsOf(n), runsOf("direct"), (x, y) => pick(x) - pick(y)), (ofMedians.get(n) ?? Number.NaN) - (ofMedians.get("direct") ?? Number.NaN), " us", 0);
  const summary: Record<string, unknown> = {};
  const rows: Array<Array<string | number | null>> = [];
  const added50 = new Map<TargetName, number | null>();
  const added99 = new Map<TargetName, number | null>();
  for (const t of b.targets) {
    const rs = grouped.get(t.name) ?? [];
    const all = runsOf(t.name);
    const a50 = added(t.name, (r) => r.us.p50);
    const a99 = added(t.name, (r) => r.us.p99);
    added50.set(t.name, a50);
    added99.set(t.name, a99);
    const bad = all.reduce((n, r) => n + unexpected(r.statuses, 200, r.errors), 0);
    const p999 = median(rs.map((r) => r.us.p999));
    summary[t.name] = { runsUsed: usedLabel(all), p50Us: round(p50.get(t.name) ?? Number.NaN, 0), p99Us: round(p99.get(t.name) ?? Number.NaN, 0), p999Us: round(p999, 0), addedP50Us: a50, addedP99Us: a99, unexpected: bad };
    rows.push([t.name, round(p50.get(t.name) ?? Number.NaN, 0), round(p99.get(t.name) ?? Number.NaN, 0), round(p999, 0), t.name === "direct" ? "-" : a50, t.name === "direct" ? "-" : a99, median(rs.map((r) => r.us.count)), round(median(rs.map((r) => r.cpu.contention)), 0), usedLabel(all), bad]);
  }
  return { summary, rows, addedNote, p50, p99, added50, added99 };
}

// ---- S3: SSE --------------------------------------------------------------------

interface SseRun {
  readonly round: number;
  readonly target: TargetName;
  readonly concurrency: number;
  readonly result: SseResult;
  readonly cpu: CpuUsage;
  readonly quiet: Measured<unknown>["quiet"];
}

export function sseJob(b: Bench, t: Target, mode: "loop" | "once", concurrency: number): SseJob {
  const { opts } = b;
  return {
    request: chatRequest(t, chatBody(256, true), b.token),
    mode,
    concurrency,
    durationSec: opts.sseSec,
    expectFrames: opts.sseChunks + 1,
    paceMs: opts.sseIntervalMs,
    stallMs: opts.stallMs,
    ttfbStallMs: opts.ttfbStallMs,
    timeoutMs: 30_000 + opts.sseChunks * opts.sseIntervalMs * 4,
  };
}

/** The capacity ladder as the options set it (S3 and S3h2). */
export function capacityOptions(b: Bench, tag: string, pad: number): CapacityOptions {
  return { levels: b.opts.sseLevels, runsPerLevel: b.opts.sseCapacityRuns, bisect: b.opts.sseBisect, tag, pad };
}

/** How "streams held" was decided, for the S3 and S3h2 tables. */
export function capacityTableNote(b: Bench): string {
  const { sseCapacityRuns: n, sseBisect } = b.opts;
  const per = n === 1 ? "one run per level" : `each level decided by ${majority(n)} of ${n} runs with no stall (a target's remaining runs of a level are skipped once that majority is reached either way)`;
  return `streams held = the most streams opened at once that the target held with no stall ('+': no stall at any level tried); ${per}${sseBisect ? ", then one bisection step between the last level held and the first that stalled (256 and 512: 384)" : ""}; every capacity run and its contention is in latest.json.`;
}

/** The gateway's capacity for the check's note. */
function capacityNote(b: Bench, c: Capacity | undefined): string | undefined {
  if (c === undefined) return undefined;
  const runs = `${b.opts.sseCapacityRuns} run(s) per level`;
  if (c.stalledAt === null) return `${runs}; no level tried stalled, so no bisection`;
  return `${runs}${b.opts.sseBisect ? ", one bisection step" : ""}; lowest level that stalled: ${c.stalledAt}`;
}

export async function sseScenario(b: Bench): Promise<ScenarioResult> {
  const { opts } = b;
  b.log(`S3: SSE ${opts.sseChunks} chunks every ${opts.sseIntervalMs} ms; ${opts.sseConcurrency} streams in a loop for ${opts.sseSec}s x ${opts.rounds} round(s) after ${opts.sseWarmupSec}s of warm-up; then ${opts.sseLevels.join("/")} streams at once`);
  // A Node proxy keeps compiling for many seconds after its first streams; on
  // its one pinned core V8's compiler threads then take turns with the event
  // loop and show up as multi-ms first-byte tails (bench/README.md, S3).
  for (const t of b.targets) await sse(b, t, { ...sseJob(b, t, "loop", opts.sseConcurrency), durationSec: opts.sseWarmupSec }, true);
  const runs: SseRun[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of rotate(b.targets, r)) {
      const m: Measured<SseResult> = await sse(b, t, sseJob(b, t, "loop", opts.sseConcurrency));
      const x = m.result;
      runs.push({ round: r, target: t.name, concurrency: opts.sseConcurrency, result: x, cpu: m.cpu, quiet: m.quiet });
      b.log(`  S3 round ${r + 1} ${t.name.padEnd(12)} streams ${x.streams} ttfb p99 ${x.ttfbMs.p99.toFixed(2)} ms  gap p99 ${x.gapMs.p99.toFixed(2)} ms  stalled ${x.stalled} failed ${x.failed}  other ${m.cpu.other}%`);
    }
  }
  // Capacity: open N streams at once, raise N until something stalls (bench/lib/capacity.ts).
  const { capacity: cap, runs: capacity } = await measureCapacity(b, b.targets, (t, level) => sseJob(b, t, "once", level), capacityOptions(b, "S3", 12));

  const grouped = byTarget(runs, b.targets);
  const med = (name: TargetName, f: (r: SseResult) => number): number => median((grouped.get(name) ?? []).map((r) => f(r.result)));
  const dT = med("direct", (r) => r.ttfbMs.p99);
  const dG = med("direct", (r) => r.gapMs.p99);
  const runsOf = (n: TargetName): SseRun[] => runs.filter((r) => r.target === n);
  const added = (n: TargetName, pick: (r: SseResult) => number): number => paired(runsOf(n), runsOf("direct"), (x, y) => pick(x.result) - pick(y.result), uncontended) ?? Number.NaN;
  const addedNote = (n: TargetName, pick: (r: SseResult) => number, direct: number): string | undefined =>
    pairedNote(perRound(runsOf(n), runsOf("direct"), (x, y) => pick(x.result) - pick(y.result)), med(n, pick) - direct, " ms", 2);
  const summary: Record<string, unknown> = {};
  const rows: Array<Array<string | number | null>> = [];
  for (const t of b.targets) {
    const ttfb50 = med(t.name, (r) => r.ttfbMs.p50);
    const ttfb99 = med(t.name, (r) => r.ttfbMs.p99);
    const gap50 = med(t.name, (r) => r.gapMs.p50);
    const gap99 = med(t.name, (r) => r.gapMs.p99);
    const gapMax = Math.max(...(grouped.get(t.name) ?? []).map((r) => r.result.gapMs.max));
    const stalled = (grouped.get(t.name) ?? []).reduce((n, r) => n + r.result.stalled + r.result.failed, 0);
    const all = runs.filter((r) => r.target === t.name);
    const addT = round(added(t.name, (r) => r.ttfbMs.p99), 2);
    const addG = round(added(t.name, (r) => r.gapMs.p99), 2);
    const c = cap.get(t.name);
    const levels = capacity.filter((x) => x.target === t.name).map((x) => ({ level: x.level, run: x.run + 1, held: x.held, bisect: x.bisect }));
    summary[t.name] = { runsUsed: usedLabel(all), ttfbP50Ms: round(ttfb50, 2), ttfbP99Ms: round(ttfb99, 2), gapP50Ms: round(gap50, 2), gapP99Ms: round(gap99, 2), gapMaxMs: round(gapMax, 1), addedTtfbP99Ms: addT, addedGapP99Ms: addG, stalledOrFailed: stalled, streamsHeld: c?.held ?? 0, firstStallAt: c?.stalledAt ?? null, capacityRuns: levels };
    rows.push([t.name, round(ttfb50, 2), round(ttfb99, 2), t.name === "direct" ? "-" : addT, round(gap99, 2), t.name === "direct" ? "-" : addG, round(gapMax, 1), stalled, round(median((grouped.get(t.name) ?? []).map((r) => r.cpu.contention)), 0), usedLabel(all), heldCell(c)]);
  }
  const gw = summary["gateway"] as { addedTtfbP99Ms: number; addedGapP99Ms: number; streamsHeld: number } | undefined;
  const directFail = cap.get("direct")?.stalledAt ?? undefined;
  const gwFail = cap.get("gateway")?.stalledAt ?? undefined;
  const capNote = joinNotes(
    directFail !== undefined ? `direct itself stalled at ${directFail} streams: levels from there on measure this machine's client/upstream, not the proxy` : undefined,
    gwFail !== undefined && gwFail > b.upstreamConnections ? `the gateway has ${b.upstreamConnections} upstream connections: streams beyond that wait for one (--upstream-connections)` : undefined,
  );
  const checks: Check[] = [
    check("S3.added_ttfb_p99", "S3 gateway added time-to-first-byte p99", gw?.addedTtfbP99Ms ?? null, "ms", "<= 1 ms", (v) => v <= 1, joinNotes(contendedNote(runs, ["gateway", "direct"]), addedNote("gateway", (r) => r.ttfbMs.p99, dT))),
    check("S3.added_gap_p99", "S3 gateway added inter-chunk gap p99", gw?.addedGapP99Ms ?? null, "ms", "<= 1 ms", (v) => v <= 1, joinNotes(contendedNote(runs, ["gateway", "direct"]), addedNote("gateway", (r) => r.gapMs.p99, dG))),
    check("S3.streams_held", "S3 concurrent streams the gateway held with no stall", gw?.streamsHeld ?? null, "streams", ">= 256", (v) => v >= 256, joinNotes(capNote, capacityNote(b, cap.get("gateway")))),
  ];
  const table: Table = {
    title: `S3: SSE, ${opts.sseChunks} chunks paced ${opts.sseIntervalMs} ms; ${opts.sseConcurrency} concurrent streams looped ${opts.sseSec}s, median of ${opts.rounds}; capacity ${opts.sseLevels.join("/")} at once, ${opts.sseCapacityRuns} run(s) per level${opts.sseBisect ? " + one bisection step" : ""}`,
    columns: ["target", "ttfb p50 ms", "ttfb p99 ms", "added ttfb p99", "gap p99 ms", "added gap p99", "gap max ms", "stalled/failed", "contention %", "runs used", "streams held"],
    rows,
    notes: [
      `ttfb = request sent -> first body byte (the first SSE frame); gap = time between consecutive frames of one stream. A stream stalls when any frame comes more than ${opts.stallMs} ms after its pace, its first byte takes over ${opts.ttfbStallMs} ms (queued), or it does not complete.`,
      capacityTableNote(b),
      CPU_NOTE,
    ],
  };
  return { id: "S3", config: { chunks: opts.sseChunks, intervalMs: opts.sseIntervalMs, concurrency: opts.sseConcurrency, durationSec: opts.sseSec, levels: opts.sseLevels, capacityRunsPerLevel: opts.sseCapacityRuns, bisect: opts.sseBisect, stallMs: opts.stallMs, ttfbStallMs: opts.ttfbStallMs }, runs: [...runs, ...capacity.map((c) => ({ ...c, round: 0, concurrency: c.level, capacity: true }))], summary, tables: [table], checks };
}

// ---- S4: auth paths ---------------------------------------------------------------

type AuthVariant = "cached" | "miss" | "malformed" | "unknown";

interface AuthRun {
  readonly round: number;
  readonly variant: AuthVariant;
  readonly rps: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly storeCalls: Record<string, number>;
  readonly total: number;
  readonly cpu: CpuUsage;
  readonly quiet: Measured<unknown>["quiet"];
}

const VARIANTS: ReadonlyArray<{ name: AuthVariant; expect: number; label: string }> = [
  { name: "cached", expect: 200, label: "100% cached valid token" },
  { name: "miss", expect: 200, label: "distinct valid tokens (cache misses)" },
  { name: "malformed", expect: 401, label: "100% malformed (bad checksum)" },
  { name: "unknown", expect: 401, label: "100% well-formed unknown ids" },
];

export async function authPaths(b: Bench): Promise<ScenarioResult> {
  const { opts } = b;
  if (b.auth === null) throw new Error("S4 needs its gateway");
  const { target: gw, child: gateway, cacheMaxEntries } = b.auth;
  const body = chatBody(1024);
  b.log(`S4: auth paths on the gateway, c=${opts.connections}, ${opts.rounds} round(s) x ${opts.durationSec}s per variant, ${opts.distinct} distinct tokens`);
  const job = (v: AuthVariant, durationSec: number): Parameters<typeof cannon>[2] => ({ request: chatRequest(gw, body, "unused"), connections: opts.connections, durationSec, tokenSet: v });
  for (const v of VARIANTS) await cannon(b, gw, job(v.name, 1), true);
  const runs: AuthRun[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const v of rotate(VARIANTS, r)) {
      await gateway.request({ cmd: "reset" });
      const m = await cannon(b, gw, job(v.name, opts.durationSec));
      const stats = await gateway.request<GatewayStats>({ cmd: "stats" });
      const x = m.result;
      runs.push({ round: r, variant: v.name, rps: round(x.rps, 0), statuses: x.statuses, errors: x.errors + x.timeouts, storeCalls: stats.storeCalls, total: x.total, cpu: m.cpu, quiet: m.quiet });
      b.log(`  S4 round ${r + 1} ${v.name.padEnd(10)} ${Math.round(x.rps).toString().padStart(7)} rps  statuses ${JSON.stringify(x.statuses)}  store calls ${JSON.stringify(stats.storeCalls)}  other ${m.cpu.other}%`);
    }
  }
  const summary: Record<string, unknown> = {};
  const rows: Array<Array<string | number | null>> = [];
  const rps = new Map<AuthVariant, number>();
  // Lookups a request causes. eventsLive() is an in-memory flag read (no I/O); touchPats(), addUsage() and
  // sweepSessions() are timer-driven writes (earlier requests' last-used times, the usage meter's flush,
  // expired web sessions): all counted, but reported apart.
  const NOT_LOOKUPS = new Set(["eventsLive", "touchPats", "addUsage", "sweepSessions", "subscribe"]);
  const sum = (rs: readonly AuthRun[], pick: (method: string) => boolean): number =>
    rs.reduce((n, r) => n + Object.entries(r.storeCalls).reduce((m, [k, c]) => m + (pick(k) ? c : 0), 0), 0);
  for (const v of VARIANTS) rps.set(v.name, median(usable(runs.filter((r) => r.variant === v.name)).map((r) => r.rps)));
  const cached = rps.get("cached");
  const runsOf = (v: AuthVariant): AuthRun[] => runs.filter((r) => r.variant === v);
  const vsCached = (v: AuthVariant): number | null => pairedRatio(runsOf(v), runsOf("cached"));
  const vsNote = (v: AuthVariant): string | undefined => pairedNote(perRound(runsOf(v), runsOf("cached"), (x, y) => x.rps / y.rps), ratio(rps.get(v), cached));
  for (const v of VARIANTS) {
    const rs = runs.filter((r) => r.variant === v.name);
    const cpu = medianCpu(usable(rs).map((r) => r.cpu));
    const bad = rs.reduce((n, r) => n + unexpected(r.statuses, v.expect, r.errors), 0);
    const total = rs.reduce((n, r) => n + r.total, 0);
    const lookups = sum(rs, (k) => !NOT_LOOKUPS.has(k));
    const byMethod: Record<string, number> = {};
    for (const r of rs) for (const [k, c] of Object.entries(r.storeCalls)) byMethod[k] = (byMethod[k] ?? 0) + c;
    const perReq = total === 0 ? 0 : round(lookups / total, 3);
    summary[v.name] = { runsUsed: usedLabel(rs), proxyCpuUsPerRequest: median(usable(rs).map((r) => cpuPerRequest(r.cpu, r.rps) ?? Number.NaN)), rps: round(rps.get(v.name) ?? Number.NaN, 0), vsCached: vsCached(v.name), expectedStatus: v.expect, unexpected: bad, requests: total, storeLookups: lookups, storeLookupsPerRequest: perReq, storeCallsByMethod: byMethod, cpu };
    const usPerReq = median(usable(rs).map((r) => cpuPerRequest(r.cpu, r.rps) ?? Number.NaN));
    rows.push([v.label, v.expect, round(rps.get(v.name) ?? Number.NaN, 0), vsCached(v.name), lookups, perReq, byMethod["touchPats"] ?? 0, ...cpuCells(cpu), Number.isNaN(usPerReq) ? "-" : usPerReq, usedLabel(rs), bad]);
  }
  const malformedCalls = (summary["malformed"] as { storeLookups: number }).storeLookups;
  const checks: Check[] = [
    check("S4.miss/cached", `S4 ${opts.distinct}-token cache-miss run / cached run`, vsCached("miss"), "x", ">= 0.7", (v) => v >= 0.7, vsNote("miss")),
    check("S4.malformed/cached", "S4 malformed-token flood rejected / cached accept rate", vsCached("malformed"), "x", ">= 1.0", (v) => v >= 1, vsNote("malformed")),
    check("S4.unknown/cached", "S4 unknown-token flood rejected / cached accept rate", vsCached("unknown"), "x", ">= 1.0", (v) => v >= 1, vsNote("unknown")),
    check("S4.malformed_store_calls", "S4 store lookups during malformed-token floods", malformedCalls, "calls", "= 0", (v) => v === 0),
  ];
  const table: Table = {
    title: `S4: auth paths through the gateway (1 KB POST, c=${opts.connections}; its own gateway process: embedded store with ${opts.distinct + 1} PATs, cache.max_entries=${cacheMaxEntries}); median of ${opts.rounds} x ${opts.durationSec}s`,
    columns: ["variant", "status", "req/s", "x cached", "store lookups", "lookups/req", "touch flushes", ...CPU_COLUMNS, "proxy cpu us/req", "runs used", "unexpected"],
    rows,
    notes: [
      `Tokens rotate per request over ${opts.distinct} distinct tokens (cached: 1). Each miss token belongs to its own user and membership, so a miss also misses the rights cache.`,
      CPU_NOTE,
      "Store calls are counted by wrapping every Store method in the gateway process (bench/gateway-main.ts). Lookups = every call except eventsLive() (an in-memory flag) and touchPats() (the timer-driven flush of earlier requests' last-used times, shown apart).",
    ],
  };
  return { id: "S4", config: { connections: opts.connections, durationSec: opts.durationSec, rounds: opts.rounds, distinct: opts.distinct, store: "embedded", cacheMaxEntries }, runs, summary, tables: [table], checks };
}

// ---- S6: soak -----------------------------------------------------------------------

interface SoakSample {
  readonly tSec: number;
  readonly rssMB: number;
  readonly heapUsedMB: number;
  readonly heapTotalMB: number;
  readonly externalMB: number;
  readonly eldP50Ms: number;
  readonly eldP99Ms: number;
  readonly eldMaxMs: number;
}

/** S6 on `gw`: a gateway process that has served nothing else, so its memory curve is its own. */
export async function soak(b: Bench, rate: number, gw: { readonly child: NodeChild; readonly target: Target }): Promise<ScenarioResult> {
  const { opts } = b;
  const gateway = gw.child;
  const rateInt = Math.max(1, Math.round(rate));
  b.log(`S6: soak ${opts.soakSec}s at ${rateInt} req/s (half of S1's gateway rate), sampling every ${opts.soakSampleSec}s`);
  await gateway.request({ cmd: "reset" });
  const samples: SoakSample[] = [];
  const started = performance.now();
  const sample = async (): Promise<void> => {
    const s = await gateway.request<GatewayStats>({ cmd: "stats" });
    await gateway.request({ cmd: "reset" });
    samples.push({ tSec: round((performance.now() - started) / 1000, 1), rssMB: round(s.rssBytes / MB, 1), heapUsedMB: round(s.heapUsedBytes / MB, 1), heapTotalMB: round(s.heapTotalBytes / MB, 1), externalMB: round(s.externalBytes / MB, 1), eldP50Ms: round(s.eldMs.p50, 2), eldP99Ms: round(s.eldMs.p99, 2), eldMaxMs: round(s.eldMs.max, 2) });
  };
  await sample();
  const timer = setInterval(() => {
    sample().catch(() => undefined);
  }, opts.soakSampleSec * 1000);
  let m: Measured<CannonResult>;
  try {
    m = await cannon(b, gw.target, { request: chatRequest(gw.target, chatBody(1024), b.token), connections: opts.connections, durationSec: opts.soakSec, overallRate: rateInt });
  } finally {
    clearInterval(timer);
  }
  await sample();
  const x = m.result;
  const window = Math.min(60, opts.soakSec / 2);
  const last = samples[samples.length - 1] as SoakSample;
  // The sample nearest to "one window before the end".
  const from = samples.reduce((best, s) => (Math.abs(s.tSec - (last.tSec - window)) < Math.abs(best.tSec - (last.tSec - window)) ? s : best), samples[0] as SoakSample);
  const growthPct = round(((last.rssMB - from.rssMB) / from.rssMB) * 100, 2);
  const maxRss = Math.max(...samples.map((s) => s.rssMB));
  const bad = unexpected(x.statuses, 200, x.errors + x.timeouts);
  const summary = { targetRps: rateInt, achievedRps: round(x.rps, 0), requests: x.total, unexpected: bad, statuses: x.statuses, rssStartMB: samples[0]?.rssMB, rssEndMB: last.rssMB, rssMaxMB: maxRss, growthLastWindowPct: growthPct, windowSec: window, eldP99MaxMs: Math.max(...samples.map((s) => s.eldP99Ms)), eldMaxMs: Math.max(...samples.map((s) => s.eldMaxMs)), cpu: m.cpu };
  const checks: Check[] = [
    check("S6.rss_growth", `S6 gateway RSS growth over the last ${window}s`, growthPct, "%", "< 5 %", (v) => v < 5, window < 60 ? `shortened soak: last ${window}s instead of the last minute` : undefined),
    check("S6.rss_max", "S6 gateway peak RSS", maxRss, "MB", "< 150 MB", (v) => v < 150),
    check("S6.errors", "S6 errors and non-200 responses", bad, "responses", "= 0", (v) => v === 0),
  ];
  const step = Math.max(1, Math.ceil(samples.length / 12));
  const table: Table = {
    title: `S6: soak ${opts.soakSec}s at ${rateInt} req/s (achieved ${Math.round(x.rps)}), c=${opts.connections}, on a freshly started gateway: RSS and event-loop delay`,
    columns: ["t s", "rss MB", "heap used MB", "heap total MB", "external MB", "eld p50 ms", "eld p99 ms", "eld max ms"],
    rows: samples.filter((_, i) => i % step === 0 || i === samples.length - 1).map((s) => [s.tSec, s.rssMB, s.heapUsedMB, s.heapTotalMB, s.externalMB, s.eldP50Ms, s.eldP99Ms, s.eldMaxMs]),
    notes: [
      `Event-loop delay from monitorEventLoopDelay (10 ms timer) in the gateway process: the delay beyond the timer interval, reset at each sample. Non-200/errors: ${bad}. CPU ${JSON.stringify(m.cpu.procs)}; other tenants ${m.cpu.other}%.`,
    ],
  };
  return { id: "S6", config: { durationSec: opts.soakSec, rate: rateInt, connections: opts.connections, sampleSec: opts.soakSampleSec }, runs: [{ result: x, cpu: m.cpu, samples }], summary, tables: [table], checks };
}
