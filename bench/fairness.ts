/**
 * S8: one burst among paced streams (issue 18, fairness). Per target,
 * `fairStreams` paced SSE streams (S3's chunks and pace, looped with spread
 * starts) run alone, then again while one more stream at a time, through the
 * same proxy, carries `burstBytes` as fast as its upstream can write and its
 * client can read. A fair proxy keeps relaying the paced frames on time while
 * it relays the burst: their gap p99 with the burst stays within 0.5 ms of the
 * skeleton's with the same burst.
 */
import type { BurstJob, BurstResult, SseJob, SseResult } from "./lib/jobs.ts";
import { chatBody, chatRequest, measured, rotate, type Bench, type Measured, type Target, type TargetName } from "./lib/context.ts";
import { schedStat, type CpuUsage, type NodeChild } from "./lib/proc.ts";
import type { Check, ScenarioResult, Table } from "./lib/report-types.ts";
import { median, paired, pairedNote, perRound, round } from "./lib/stats.ts";
import { byTarget, check, contendedNote, CPU_NOTE, info, joinNotes, ratio, sseJob, uncontended, usedLabel } from "./scenarios.ts";

const MiB = 1024 * 1024;
/** Issue 18's gap target: the gateway's gap p99 with the burst at most this over the skeleton's. */
const SLACK_MS = 0.5;

type Phase = "alone" | "burst";

/** One target's line, as latest.json holds it (`S8.summary.<target>`): medians over rounds, ms unless named. */
interface FairSummary {
  readonly runsUsed: string;
  readonly gapP50AloneMs: number;
  readonly gapP99AloneMs: number;
  readonly gapP50BurstMs: number;
  readonly gapP99BurstMs: number;
  /** Paired by round: with the burst less alone. */
  readonly addedGapP99Ms: number | null;
  readonly gapMaxBurstMs: number;
  readonly ttfbP99AloneMs: number;
  readonly ttfbP99BurstMs: number;
  readonly burstMiBps: number;
  readonly burstsCompleted: number;
  readonly burstsFailed: number;
  readonly stalledAlone: number;
  readonly stalledBurst: number;
  readonly proxyCpuBurstPct: number;
  readonly proxyWaitBurstPct: number;
  readonly contentionPct: number;
}

interface FairRun {
  readonly round: number;
  readonly target: TargetName;
  readonly phase: Phase;
  readonly paced: SseResult;
  /** Null in the phase without the burst. */
  readonly burst: BurstResult | null;
  readonly burstMiBps: number | null;
  /** Share of the phase the proxy's main thread was ready to run but waited for its core (its own V8 threads, the kernel, neighbours); null for direct. */
  readonly proxyWaitPct: number | null;
  readonly cpu: CpuUsage;
  readonly quiet: Measured<unknown>["quiet"];
}

/**
 * S3's paced streams, except that they ask for usage themselves: a gateway
 * that asks on a client's behalf drops the usage frame again, and the fake
 * paces that frame like a token, so each such stream would carry one gap of
 * two paces (1 in 64 gaps, above p99) that has nothing to do with the burst.
 */
function pacedJob(b: Bench, t: Target, durationSec: number): SseJob {
  const { opts } = b;
  return {
    ...sseJob(b, t, "loop", opts.fairStreams),
    request: chatRequest(t, chatBody(256, true, 256, { stream_options: { include_usage: true } }), b.token),
    durationSec,
    // Content chunks, the usage frame, [DONE].
    expectFrames: opts.sseChunks + 2,
  };
}

/** The burst asks for no usage, as most clients: through the gateway it then takes the usage-dropping path, its most expensive. */
function burstJob(b: Bench, t: Target): BurstJob {
  const base = chatRequest(t, chatBody(256, true), b.token);
  return { request: { ...base, headers: { ...base.headers, "x-bench-burst-bytes": String(b.opts.burstBytes) } }, timeoutMs: 120_000 };
}

function mibPerSec(r: BurstResult): number | null {
  return r.ms > 0 ? round(r.bytes / MiB / (r.ms / 1000), 1) : null;
}

interface Phased {
  readonly paced: SseResult;
  readonly burst: BurstResult | null;
  readonly proxyWaitPct: number | null;
}

/**
 * The paced streams for `durationSec`, alone (`client` null) or while
 * `client` keeps one burst going through `t`; the burst stops when they end.
 */
function phase(b: Bench, client: NodeChild | null, t: Target, durationSec: number, warmup: boolean): Promise<Measured<Phased>> {
  const pacing = (): Promise<SseResult> => b.loadgen.request<SseResult>({ cmd: "sse", job: pacedJob(b, t, durationSec) });
  return measured(
    b,
    t,
    async () => {
      const t0 = performance.now();
      const s0 = t.pid === null ? null : schedStat(t.pid);
      const [paced, burst] =
        client === null
          ? [await pacing(), null]
          : await Promise.all([pacing().finally(() => client.request({ cmd: "burstStop" })), client.request<BurstResult>({ cmd: "burst", job: burstJob(b, t) })]);
      const s1 = t.pid === null ? null : schedStat(t.pid);
      const proxyWaitPct = s0 === null || s1 === null ? null : round(((s1.waitNs - s0.waitNs) / 1e6 / (performance.now() - t0)) * 100, 1);
      return { paced, burst, proxyWaitPct };
    },
    warmup,
    client === null ? new Map() : new Map([["burst", client.pid]]),
  );
}

/** S8 on every target; `client` is the second load generator that reads the burst. */
export async function fairness(b: Bench, client: NodeChild): Promise<ScenarioResult> {
  const { opts } = b;
  const mib = round(opts.burstBytes / MiB, 1);
  b.log(`S8: ${opts.fairStreams} paced streams (${opts.sseChunks} chunks every ${opts.sseIntervalMs} ms) looped ${opts.sseSec}s alone, then beside one ${mib} MiB burst at a time, ${opts.rounds} round(s), after ${opts.sseWarmupSec}s of warm-up with the burst`);
  // Both paths compiled before anything counts (S3's warm-up, bench/README.md); a burst that fails here is a set-up error.
  for (const t of b.targets) {
    const w = (await phase(b, client, t, opts.sseWarmupSec, true)).result.burst;
    if (w === null || w.failed > 0 || w.bytes === 0) throw new Error(`S8: ${t.name}'s burst failed in the warm-up: ${w?.error ?? "no bytes"} (statuses ${JSON.stringify(w?.statuses ?? {})})`);
  }
  const runs: FairRun[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of rotate(b.targets, r)) {
      const alone = await phase(b, null, t, opts.sseSec, false);
      const w = await phase(b, client, t, opts.sseSec, false);
      const burst = w.result.burst as BurstResult;
      const bmib = mibPerSec(burst);
      runs.push({ round: r, target: t.name, phase: "alone", paced: alone.result.paced, burst: null, burstMiBps: null, proxyWaitPct: alone.result.proxyWaitPct, cpu: alone.cpu, quiet: alone.quiet });
      runs.push({ round: r, target: t.name, phase: "burst", paced: w.result.paced, burst, burstMiBps: bmib, proxyWaitPct: w.result.proxyWaitPct, cpu: w.cpu, quiet: w.quiet });
      const a = alone.result.paced;
      const x = w.result.paced;
      const wait = (p: number | null): string => (p === null ? "-" : `${p}%`);
      b.log(`  S8 round ${r + 1} ${t.name.padEnd(12)} gap p99 ${a.gapMs.p99.toFixed(2)} -> ${x.gapMs.p99.toFixed(2)} ms  ttfb p99 ${a.ttfbMs.p99.toFixed(2)} -> ${x.ttfbMs.p99.toFixed(2)} ms  burst ${bmib ?? "-"} MiB/s (${burst.completed} done${burst.error === null ? "" : `, failed: ${burst.error}`})  stalled ${a.stalled}/${x.stalled}  proxy waited ${wait(alone.result.proxyWaitPct)} -> ${wait(w.result.proxyWaitPct)}  cpu ${JSON.stringify(w.cpu.procs)} other ${w.cpu.other}%`);
    }
  }
  return report(b, runs);
}

function report(b: Bench, runs: readonly FairRun[]): ScenarioResult {
  const { opts } = b;
  const of = (p: Phase, n: TargetName): FairRun[] => runs.filter((r) => r.phase === p && r.target === n);
  const alone = byTarget(runs.filter((r) => r.phase === "alone"), b.targets);
  const burst = byTarget(runs.filter((r) => r.phase === "burst"), b.targets);
  const med = (m: Map<TargetName, FairRun[]>, n: TargetName, f: (r: FairRun) => number | null): number => median((m.get(n) ?? []).map((r) => f(r) ?? Number.NaN));
  const gap99 = (r: FairRun): number => r.paced.gapMs.p99;
  /** The burst's effect on one target: its gap p99 with the burst less its gap p99 alone, paired by round. */
  const addedBy = (n: TargetName): number | null => {
    const v = paired(of("burst", n), of("alone", n), (x, y) => gap99(x) - gap99(y), uncontended);
    return v === null ? null : round(v, 2);
  };
  const failedBursts = (n: TargetName): number => of("burst", n).reduce((k, r) => k + (r.burst?.failed ?? 0), 0);
  const summary: Record<string, FairSummary> = {};
  const rows: Array<Array<string | number | null>> = [];
  for (const t of b.targets) {
    const n = t.name;
    const s: FairSummary = {
      runsUsed: usedLabel([...of("alone", n), ...of("burst", n)]),
      gapP50AloneMs: round(med(alone, n, (r) => r.paced.gapMs.p50), 2),
      gapP99AloneMs: round(med(alone, n, gap99), 2),
      gapP50BurstMs: round(med(burst, n, (r) => r.paced.gapMs.p50), 2),
      gapP99BurstMs: round(med(burst, n, gap99), 2),
      addedGapP99Ms: addedBy(n),
      gapMaxBurstMs: round(Math.max(...(burst.get(n) ?? []).map((r) => r.paced.gapMs.max)), 1),
      ttfbP99AloneMs: round(med(alone, n, (r) => r.paced.ttfbMs.p99), 2),
      ttfbP99BurstMs: round(med(burst, n, (r) => r.paced.ttfbMs.p99), 2),
      burstMiBps: round(med(burst, n, (r) => r.burstMiBps), 1),
      burstsCompleted: of("burst", n).reduce((k, r) => k + (r.burst?.completed ?? 0), 0),
      burstsFailed: failedBursts(n),
      stalledAlone: of("alone", n).reduce((k, r) => k + r.paced.stalled + r.paced.failed, 0),
      stalledBurst: of("burst", n).reduce((k, r) => k + r.paced.stalled + r.paced.failed, 0),
      proxyCpuBurstPct: round(med(burst, n, (r) => r.cpu.procs["proxy"] ?? null), 0),
      proxyWaitBurstPct: round(med(burst, n, (r) => r.proxyWaitPct), 1),
      contentionPct: round(median(runs.filter((r) => r.target === n).map((r) => r.cpu.contention)), 0),
    };
    summary[n] = s;
    rows.push([n, s.gapP50AloneMs, s.gapP99AloneMs, s.gapP50BurstMs, s.gapP99BurstMs, s.addedGapP99Ms, s.gapMaxBurstMs, s.ttfbP99AloneMs, s.ttfbP99BurstMs, s.burstMiBps, `${s.burstsCompleted}${s.burstsFailed > 0 ? ` (${s.burstsFailed} failed)` : ""}`, `${s.stalledAlone}/${s.stalledBurst}`, Number.isNaN(s.proxyCpuBurstPct) ? "-" : s.proxyCpuBurstPct, Number.isNaN(s.proxyWaitBurstPct) ? "-" : s.proxyWaitBurstPct, s.contentionPct, s.runsUsed]);
  }
  const gwBurst = of("burst", "gateway");
  const skBurst = of("burst", "skeleton");
  const broken = (["gateway", "skeleton"] as const).filter((n) => failedBursts(n) > 0);
  const over = paired(gwBurst, skBurst, (x, y) => gap99(x) - gap99(y), uncontended);
  const cell = (n: TargetName, k: keyof FairSummary): string => String(summary[n]?.[k] ?? "-");
  const checks: Check[] = [
    check(
      "S8.gap_p99_burst_vs_skeleton",
      "S8 gateway inter-chunk gap p99 with a burst, over the skeleton's with the same burst",
      broken.length > 0 || over === null ? null : round(over, 2),
      "ms",
      `<= ${SLACK_MS} ms`,
      (v) => v <= SLACK_MS,
      joinNotes(
        broken.length > 0 ? `the burst failed on ${broken.join(", ")}: not measured` : undefined,
        contendedNote(runs, ["gateway", "skeleton"]),
        pairedNote(perRound(gwBurst, skBurst, (x, y) => gap99(x) - gap99(y)), med(burst, "gateway", gap99) - med(burst, "skeleton", gap99), " ms", 2),
        `with the burst: gateway ${cell("gateway", "gapP99BurstMs")} ms, skeleton ${cell("skeleton", "gapP99BurstMs")} ms; alone: ${cell("gateway", "gapP99AloneMs")} and ${cell("skeleton", "gapP99AloneMs")} ms`,
      ),
    ),
    info("S8.gateway_added_by_burst", "S8 gateway inter-chunk gap p99 added by the burst (recorded, no target)", addedBy("gateway"), "ms", `skeleton ${String(addedBy("skeleton") ?? "-")} ms`),
    info("S8.gateway_burst_throughput", "S8 burst throughput through the gateway (recorded, no target)", round(med(burst, "gateway", (r) => r.burstMiBps), 1), "MiB/s", joinNotes(`skeleton ${cell("skeleton", "burstMiBps")} MiB/s`, `ratio ${String(ratio(med(burst, "gateway", (r) => r.burstMiBps), med(burst, "skeleton", (r) => r.burstMiBps)) ?? "-")}`)),
  ];
  const mib = round(opts.burstBytes / MiB, 1);
  const table: Table = {
    title: `S8: one burst among paced streams: ${opts.fairStreams} SSE streams (${opts.sseChunks} chunks paced ${opts.sseIntervalMs} ms) looped ${opts.sseSec}s alone, then beside one ${mib} MiB burst at a time read as fast as it comes; median of ${opts.rounds}`,
    columns: ["target", "gap p50 ms alone", "gap p99 ms alone", "gap p50 ms burst", "gap p99 ms burst", "added by burst p99", "gap max ms burst", "ttfb p99 ms alone", "ttfb p99 ms burst", "burst MiB/s", "bursts done", "stalled alone/burst", "cpu% proxy burst", "proxy wait % burst", "contention %", "runs used"],
    rows,
    notes: [
      `gap = time between consecutive frames of one paced stream, p99 over all of a run's; added by burst = gap p99 with the burst - alone, per round (both runs of a round back to back), median over rounds. The burst: one streamed response at a time of ${mib} MiB of SSE frames, written by the fake upstream as fast as the connection takes them and read by a second load generator process (same core as the first, at nice +10) as fast as they arrive, the next started as soon as one ends, for as long as the paced streams run. The paced streams ask for usage themselves, so no proxy edits them; the burst does not, so the gateway drops the usage frame it asked for on its behalf. burst MiB/s = its body bytes over the time from request to end. proxy wait % = the share of the burst phase the proxy's main thread was ready to run but waited for its core (/proc/<pid>/schedstat): behind its own V8 threads, the kernel's network work, or a neighbour.`,
      CPU_NOTE,
    ],
  };
  return { id: "S8", config: { streams: opts.fairStreams, chunks: opts.sseChunks, intervalMs: opts.sseIntervalMs, durationSec: opts.sseSec, warmupSec: opts.sseWarmupSec, burstBytes: opts.burstBytes, rounds: opts.rounds, slackMs: SLACK_MS }, runs, summary, tables: [table], checks };
}
