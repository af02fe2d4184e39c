/**
 * S1h2 and S3h2: S1 (throughput) and S3 (SSE) against one gateway started
 * with `server.tls.http2`, reached four ways in the same rounds: plain HTTP/1.1
 * (the `gateway` target, another process with the same config minus TLS), HTTPS
 * with HTTP/1.1, HTTP/2 with one session per stream (many small clients), and
 * HTTP/2 with every stream on one session (one busy client multiplexing). The
 * question is whether HTTP/2 is worth turning on; the answer is in the ratios
 * against HTTPS/1.1, which pays the same TLS costs.
 */
import type { CannonResult, SseResult } from "./lib/jobs.ts";
import { cannon, chatBody, chatRequest, rotate, sse, unexpected, type Bench, type Measured, type Target, type TargetName } from "./lib/context.ts";
import type { CpuUsage } from "./lib/proc.ts";
import type { Check, ScenarioResult, Table } from "./lib/report-types.ts";
import { median, paired, round } from "./lib/stats.ts";
import { heldCell, measureCapacity } from "./lib/capacity.ts";
import { CPU_COLUMNS, CPU_NOTE, byTarget, capacityOptions, capacityTableNote, cpuCells, cpuPerRequest, info, joinNotes, medianCpu, pairedRatio, sseJob, uncontended, usedLabel } from "./scenarios.ts";

const BASE: TargetName = "gateway-tls-h1";

interface Run {
  readonly round: number;
  readonly target: TargetName;
  readonly rps: number;
  readonly cpu: CpuUsage;
  readonly quiet: Measured<unknown>["quiet"];
}

interface ThroughputRun extends Run {
  readonly latencyMs: CannonResult["latencyMs"];
  readonly statuses: Record<string, number>;
  readonly errors: number;
}

interface SseRun extends Run {
  readonly result: SseResult;
}

const TRANSPORT_NOTE =
  "gateway = plain HTTP/1.1 (its own process, same config without TLS); gateway-tls-h1 = HTTPS, HTTP/1.1 (autocannon / node:https, which offer no ALPN or http/1.1); gateway-h2 = HTTP/2, one TLS session per concurrent stream; gateway-h2-mux = HTTP/2, every stream on one session. The three HTTPS targets are one process (server.tls.http2: true, allowHTTP1). The h2 load client is bench/lib/h2-client.ts (node:http2), a different client from autocannon: compare proxy cpu us/req first, req/s second.";

/** S1h2: POST chat completions, 1 KB body, at c = connections, over each transport. */
export async function h2Throughput(b: Bench, targets: readonly Target[], tokenFor: (t: Target) => string): Promise<ScenarioResult> {
  const { opts } = b;
  const body = chatBody(1024);
  b.log(`S1h2: S1 over ${targets.map((t) => t.name).join(", ")}: c=${opts.connections}, ${opts.rounds} round(s) x ${opts.durationSec}s`);
  for (const t of targets) await cannon(b, t, { request: chatRequest(t, body, tokenFor(t)), connections: opts.connections, durationSec: opts.warmupSec }, true);
  const runs: ThroughputRun[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of rotate(targets, r)) {
      const m = await cannon(b, t, { request: chatRequest(t, body, tokenFor(t)), connections: opts.connections, durationSec: opts.durationSec });
      const x = m.result;
      runs.push({ round: r, target: t.name, rps: round(x.rps, 0), latencyMs: x.latencyMs, statuses: x.statuses, errors: x.errors + x.timeouts, cpu: m.cpu, quiet: m.quiet });
      b.log(`  S1h2 round ${r + 1} ${t.name.padEnd(15)} ${Math.round(x.rps).toString().padStart(7)} rps  p99 ${round(x.latencyMs.p99, 2)} ms  cpu ${JSON.stringify(m.cpu.procs)} other ${m.cpu.other}%`);
    }
  }
  const grouped = byTarget(runs, targets);
  const runsOf = (n: TargetName): ThroughputRun[] => runs.filter((r) => r.target === n);
  const usOf = (r: ThroughputRun): number => cpuPerRequest(r.cpu, r.rps) ?? Number.NaN;
  const cpuRatio = (n: TargetName): number | null => {
    const v = paired(runsOf(n), runsOf(BASE), (x, y) => usOf(x) / usOf(y), uncontended);
    return v === null ? null : round(v, 3);
  };
  const summary: Record<string, unknown> = {};
  const rows: Array<Array<string | number | null>> = [];
  for (const t of targets) {
    const rs = grouped.get(t.name) ?? [];
    const all = runsOf(t.name);
    const cpu = medianCpu(rs.map((r) => r.cpu));
    const us = median(rs.map(usOf));
    const bad = all.reduce((n, r) => n + unexpected(r.statuses, 200, r.errors), 0);
    const rps = round(median(rs.map((r) => r.rps)), 0);
    summary[t.name] = { runsUsed: usedLabel(all), rps, vsTlsH1: pairedRatio(all, runsOf(BASE)), proxyCpuUsPerRequest: round(us, 0), cpuVsTlsH1: cpuRatio(t.name), p50Ms: median(rs.map((r) => r.latencyMs.p50)), p99Ms: median(rs.map((r) => r.latencyMs.p99)), cpu, unexpected: bad, roundsRps: rs.map((r) => r.rps) };
    rows.push([t.name, rps, t.name === BASE ? "-" : pairedRatio(all, runsOf(BASE)), round(median(rs.map((r) => r.latencyMs.p50)), 2), round(median(rs.map((r) => r.latencyMs.p99)), 2), ...cpuCells(cpu), Number.isNaN(us) ? "-" : round(us, 0), t.name === BASE ? "-" : cpuRatio(t.name), usedLabel(all), bad]);
  }
  const bad = (n: TargetName): string | undefined => {
    const u = (summary[n] as { unexpected: number } | undefined)?.unexpected ?? 0;
    return u > 0 ? `${n}: ${u} responses were not 200` : undefined;
  };
  const checks: Check[] = [
    info("S1h2.h2/tls-h1", "S1 over HTTP/2 (a session per stream) / over HTTPS/1.1, req/s (recorded, no target)", pairedRatio(runsOf("gateway-h2"), runsOf(BASE)), "x", bad("gateway-h2")),
    info("S1h2.h2-mux/tls-h1", "S1 over HTTP/2 (one session) / over HTTPS/1.1, req/s (recorded, no target)", pairedRatio(runsOf("gateway-h2-mux"), runsOf(BASE)), "x", bad("gateway-h2-mux")),
    info("S1h2.cpu_h2/tls-h1", "S1 gateway CPU per request, HTTP/2 (a session per stream) / HTTPS/1.1 (recorded, no target)", cpuRatio("gateway-h2"), "x"),
    info("S1h2.cpu_h2-mux/tls-h1", "S1 gateway CPU per request, HTTP/2 (one session) / HTTPS/1.1 (recorded, no target)", cpuRatio("gateway-h2-mux"), "x"),
    info("S1h2.tls-h1/plain", "S1 over HTTPS/1.1 / plain HTTP/1.1, req/s (the cost of TLS; recorded, no target)", pairedRatio(runsOf(BASE), runsOf("gateway")), "x", joinNotes(bad(BASE), bad("gateway"))),
  ];
  const table: Table = {
    title: `S1h2: S1 (POST /v1/chat/completions, 1 KB body, ~1 KB response) at c=${opts.connections} over plain HTTP/1.1, HTTPS/1.1 and HTTP/2; median of ${opts.rounds} x ${opts.durationSec}s`,
    columns: ["target", "req/s", "x tls-h1", "p50 ms", "p99 ms", ...CPU_COLUMNS, "proxy cpu us/req", "cpu/req x tls-h1", "runs used", "non-200"],
    rows,
    notes: [TRANSPORT_NOTE, "x tls-h1 and cpu/req x tls-h1 = the median over rounds of the round's value over gateway-tls-h1's in the same round.", CPU_NOTE],
  };
  return { id: "S1h2", config: { bodyBytes: 1024, connections: opts.connections, durationSec: opts.durationSec, rounds: opts.rounds }, runs, summary, tables: [table], checks };
}

/** S3h2: S3's looped SSE streams (and its capacity levels) over each transport. */
export async function h2Sse(b: Bench, targets: readonly Target[], tokenFor: (t: Target) => string): Promise<ScenarioResult> {
  const { opts } = b;
  const job = (t: Target, mode: "loop" | "once", concurrency: number): ReturnType<typeof sseJob> => sseJob({ ...b, token: tokenFor(t) }, t, mode, concurrency);
  b.log(`S3h2: S3 over ${targets.map((t) => t.name).join(", ")}: ${opts.sseConcurrency} streams looped ${opts.sseSec}s x ${opts.rounds} after ${opts.sseWarmupSec}s warm-up; then ${opts.sseLevels.join("/")} at once`);
  for (const t of targets) await sse(b, t, { ...job(t, "loop", opts.sseConcurrency), durationSec: opts.sseWarmupSec }, true);
  const runs: SseRun[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of rotate(targets, r)) {
      const m = await sse(b, t, job(t, "loop", opts.sseConcurrency));
      const x = m.result;
      runs.push({ round: r, target: t.name, rps: x.streams, result: x, cpu: m.cpu, quiet: m.quiet });
      b.log(`  S3h2 round ${r + 1} ${t.name.padEnd(15)} streams ${x.streams} ttfb p99 ${x.ttfbMs.p99.toFixed(2)} ms  gap p99 ${x.gapMs.p99.toFixed(2)} ms  stalled ${x.stalled} failed ${x.failed}  cpu ${JSON.stringify(m.cpu.procs)} other ${m.cpu.other}%`);
    }
  }
  const { capacity: cap } = await measureCapacity(b, targets, (t, level) => job(t, "once", level), capacityOptions(b, "S3h2", 15));
  const grouped = byTarget(runs, targets);
  const runsOf = (n: TargetName): SseRun[] => runs.filter((r) => r.target === n);
  const proxyPct = (r: SseRun): number => r.cpu.procs["proxy"] ?? Number.NaN;
  const cpuRatio = (n: TargetName): number | null => {
    const v = paired(runsOf(n), runsOf(BASE), (x, y) => proxyPct(x) / proxyPct(y), uncontended);
    return v === null ? null : round(v, 3);
  };
  const diff = (n: TargetName, pick: (r: SseResult) => number): number | null => {
    const v = paired(runsOf(n), runsOf(BASE), (x, y) => pick(x.result) - pick(y.result), uncontended);
    return v === null ? null : round(v, 2);
  };
  const summary: Record<string, unknown> = {};
  const rows: Array<Array<string | number | null>> = [];
  for (const t of targets) {
    const rs = grouped.get(t.name) ?? [];
    const med = (f: (r: SseResult) => number): number => round(median(rs.map((r) => f(r.result))), 2);
    const stalled = rs.reduce((n, r) => n + r.result.stalled + r.result.failed, 0);
    const cpu = round(median(rs.map(proxyPct)), 0);
    const c = cap.get(t.name);
    summary[t.name] = { runsUsed: usedLabel(runsOf(t.name)), ttfbP50Ms: med((r) => r.ttfbMs.p50), ttfbP99Ms: med((r) => r.ttfbMs.p99), gapP99Ms: med((r) => r.gapMs.p99), proxyCpuPct: cpu, cpuVsTlsH1: cpuRatio(t.name), stalledOrFailed: stalled, streamsHeld: c?.held ?? 0, firstStallAt: c?.stalledAt ?? null };
    rows.push([t.name, med((r) => r.ttfbMs.p50), med((r) => r.ttfbMs.p99), t.name === BASE ? "-" : diff(t.name, (r) => r.ttfbMs.p99), med((r) => r.gapMs.p99), t.name === BASE ? "-" : diff(t.name, (r) => r.gapMs.p99), stalled, cpu, t.name === BASE ? "-" : cpuRatio(t.name), usedLabel(runsOf(t.name)), heldCell(c)]);
  }
  const checks: Check[] = [
    info("S3h2.cpu_h2/tls-h1", "S3 gateway CPU for the same streams, HTTP/2 (a session per stream) / HTTPS/1.1 (recorded, no target)", cpuRatio("gateway-h2"), "x"),
    info("S3h2.cpu_h2-mux/tls-h1", "S3 gateway CPU for the same streams, HTTP/2 (one session) / HTTPS/1.1 (recorded, no target)", cpuRatio("gateway-h2-mux"), "x"),
    info("S3h2.ttfb_p99_h2-mux-tls-h1", "S3 ttfb p99, HTTP/2 (one session) minus HTTPS/1.1 (recorded, no target)", diff("gateway-h2-mux", (r) => r.ttfbMs.p99), "ms"),
  ];
  const table: Table = {
    title: `S3h2: S3 (SSE, ${opts.sseChunks} chunks paced ${opts.sseIntervalMs} ms, ${opts.sseConcurrency} streams looped ${opts.sseSec}s, median of ${opts.rounds}; capacity ${opts.sseLevels.join("/")} at once) over plain HTTP/1.1, HTTPS/1.1 and HTTP/2`,
    columns: ["target", "ttfb p50 ms", "ttfb p99 ms", "ttfb p99 - tls-h1", "gap p99 ms", "gap p99 - tls-h1", "stalled/failed", "cpu% proxy", "cpu x tls-h1", "runs used", "streams held"],
    rows,
    notes: [TRANSPORT_NOTE, capacityTableNote(b), "The looped runs carry the same number of streams on every transport, so the proxy's CPU share is its cost for those streams."],
  };
  return { id: "S3h2", config: { chunks: opts.sseChunks, intervalMs: opts.sseIntervalMs, concurrency: opts.sseConcurrency, durationSec: opts.sseSec, levels: opts.sseLevels, capacityRunsPerLevel: opts.sseCapacityRuns, bisect: opts.sseBisect }, runs, summary, tables: [table], checks };
}
