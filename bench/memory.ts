/**
 * S7: memory per open stream (issue 18). Each proxy gets `memStreams` SSE
 * streams opened at once and held open (paced, long enough to outlast the
 * opening), and its RSS and V8 heap are read over IPC, after a full GC, once
 * idle and again while every stream is open. The difference over the number
 * of streams is what one open stream costs that proxy.
 */
import type { SseJob, SseResult } from "./lib/jobs.ts";
import { chatBody, chatRequest, sse, type Bench, type Measured, type Target, type TargetName } from "./lib/context.ts";
import type { MemoryReading } from "./lib/memory.ts";
import { procStat } from "./lib/proc.ts";
import type { Check, ScenarioResult, Table } from "./lib/report-types.ts";
import { median, round } from "./lib/stats.ts";
import { check, info, ratio, sseJob } from "./scenarios.ts";

const MB = 1024 * 1024;
/** Readings taken while every stream is open, 0.5 s apart; their median is reported. */
const SAMPLES = 3;
const SAMPLE_GAP_MS = 500;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** RSS and heap of a proxy; the heap is null for nginx (RSS from /proc only). */
interface Reading {
  readonly rssBytes: number;
  readonly heapUsedBytes: number | null;
  readonly afterGc: boolean;
  /** Streams open at the load generator when the reading was taken. */
  readonly open: number;
}

interface MemoryRun {
  readonly target: TargetName;
  readonly idle: Reading;
  readonly held: readonly Reading[];
  /** From the job's start until every stream had its first byte; null: never all open at once. */
  readonly allOpenMs: number | null;
  readonly result: SseResult;
  readonly cpu: Measured<unknown>["cpu"];
}

/** A proxy's memory: over IPC from the bench's Node proxies (after a full GC), from /proc for nginx. */
async function readMemory(b: Bench, t: Target): Promise<Reading> {
  const open = await b.loadgen.request<number>({ cmd: "sseOpen" });
  const child = b.children.get(t.name);
  if (child !== undefined) {
    const m = await child.request<MemoryReading>({ cmd: "memory", gc: true });
    return { rssBytes: m.rssBytes, heapUsedBytes: m.heapUsedBytes, afterGc: m.afterGc, open };
  }
  return { rssBytes: t.pid === null ? Number.NaN : (procStat(t.pid)?.rssBytes ?? Number.NaN), heapUsedBytes: null, afterGc: false, open };
}

function memJob(b: Bench, t: Target, chunks: number): SseJob {
  const { opts } = b;
  return {
    ...sseJob(b, t, "once", opts.memStreams),
    request: chatRequest(t, chatBody(256, true, chunks), b.token),
    expectFrames: chunks + 1,
    paceMs: opts.memPaceMs,
    timeoutMs: 30_000 + chunks * opts.memPaceMs * 2,
  };
}

/** Waits until `n` streams are open at the load generator, or `deadline` (performance.now()) passes. */
async function allOpen(b: Bench, n: number, deadline: number): Promise<boolean> {
  while (performance.now() < deadline) {
    if ((await b.loadgen.request<number>({ cmd: "sseOpen" })) >= n) return true;
    await sleep(100);
  }
  return false;
}

async function measureTarget(b: Bench, t: Target, chunks: number): Promise<MemoryRun> {
  const { opts } = b;
  const idle = await readMemory(b, t);
  const started = performance.now();
  const job = sse(b, t, memJob(b, t, chunks));
  // Sampling must end well before the first streams do.
  const open = await allOpen(b, opts.memStreams, started + (opts.memStreamSec * 1000) / 2);
  const allOpenMs = open ? round(performance.now() - started, 0) : null;
  const held: Reading[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    held.push(await readMemory(b, t));
    if (i < SAMPLES - 1) await sleep(SAMPLE_GAP_MS);
  }
  const m = await job;
  return { target: t.name, idle, held, allOpenMs, result: m.result, cpu: m.cpu };
}

export async function memoryPerStream(b: Bench): Promise<ScenarioResult> {
  const { opts } = b;
  const targets = b.targets.filter((t) => t.pid !== null);
  const chunks = Math.round((opts.memStreamSec * 1000) / opts.memPaceMs);
  b.log(`S7: ${opts.memStreams} SSE streams open at once per target (${chunks} chunks paced ${opts.memPaceMs} ms); RSS and heap after a full GC, idle and with every stream open`);
  // Warm each proxy up at S3's settings first, so the idle reading already holds the compiled streaming path.
  for (const t of targets) await sse(b, t, { ...sseJob(b, t, "loop", opts.sseConcurrency), durationSec: opts.warmupSec }, true);
  const runs: MemoryRun[] = [];
  await b.upstream.request({ cmd: "sse", chunks, intervalMs: opts.memPaceMs });
  try {
    for (const t of targets) {
      const r = await measureTarget(b, t, chunks);
      runs.push(r);
      const h = medianReading(r.held);
      b.log(`  S7 ${t.name.padEnd(12)} idle rss ${mb(r.idle.rssBytes)} MB heap ${mb(r.idle.heapUsedBytes)} MB; ${opts.memStreams} open: rss ${mb(h.rss)} MB heap ${mb(h.heap)} MB (open at sampling ${r.held.map((x) => x.open).join("/")}, all open after ${r.allOpenMs ?? "-"} ms)  completed ${r.result.completed} stalled ${r.result.stalled}`);
    }
  } finally {
    await b.upstream.request({ cmd: "sse", chunks: opts.sseChunks, intervalMs: opts.sseIntervalMs });
  }
  return report(b, runs, chunks);
}

function medianReading(rs: readonly Reading[]): { rss: number; heap: number | null } {
  const heaps = rs.map((r) => r.heapUsedBytes);
  return { rss: median(rs.map((r) => r.rssBytes)), heap: heaps.some((h) => h === null) ? null : median(heaps as number[]) };
}

function mb(bytes: number | null): number | string {
  return bytes === null || !Number.isFinite(bytes) ? "-" : round(bytes / MB, 1);
}

function perStreamKb(bytes: number | null, streams: number): number | string {
  return bytes === null || !Number.isFinite(bytes) ? "-" : round(bytes / streams / 1024, 1);
}

function report(b: Bench, runs: readonly MemoryRun[], chunks: number): ScenarioResult {
  const { opts } = b;
  const n = opts.memStreams;
  const summary: Record<string, unknown> = {};
  const rows: Array<Array<string | number | null>> = [];
  for (const r of runs) {
    const h = medianReading(r.held);
    const dRss = h.rss - r.idle.rssBytes;
    const dHeap = h.heap === null || r.idle.heapUsedBytes === null ? null : h.heap - r.idle.heapUsedBytes;
    const allHeld = r.held.every((x) => x.open >= n);
    summary[r.target] = { idleRssBytes: r.idle.rssBytes, idleHeapUsedBytes: r.idle.heapUsedBytes, openRssBytes: h.rss, openHeapUsedBytes: h.heap, rssPerStreamBytes: round(dRss / n, 0), heapPerStreamBytes: dHeap === null ? null : round(dHeap / n, 0), allOpenAtSampling: allHeld, allOpenMs: r.allOpenMs, afterGc: r.idle.afterGc, completed: r.result.completed, stalled: r.result.stalled };
    rows.push([r.target, mb(r.idle.rssBytes), mb(h.rss), mb(dRss), perStreamKb(dRss, n), mb(r.idle.heapUsedBytes), mb(h.heap), mb(dHeap), perStreamKb(dHeap, n), r.held.map((x) => x.open).join("/"), r.allOpenMs ?? "-", r.result.completed, r.result.stalled, r.cpu.procs["proxy"] ?? "-"]);
  }
  const of = (name: TargetName): { rss: number; dRss: number; dHeap: number | null; allOpen: boolean } | undefined => {
    const r = runs.find((x) => x.target === name);
    if (r === undefined) return undefined;
    const h = medianReading(r.held);
    return { rss: h.rss, dRss: h.rss - r.idle.rssBytes, dHeap: h.heap === null || r.idle.heapUsedBytes === null ? null : h.heap - r.idle.heapUsedBytes, allOpen: r.held.every((x) => x.open >= n) };
  };
  const gw = of("gateway");
  const sk = of("skeleton");
  const notAllOpen = [gw, sk].some((x) => x !== undefined && !x.allOpen) ? `not every stream was open at each reading (the table's 'open at readings'): the figures are low` : undefined;
  const perStreamRatio = gw === undefined || sk === undefined ? null : ratio(gw.dRss, sk.dRss);
  const checks: Check[] = [
    check("S7.rss_gateway/skeleton", `S7 gateway RSS / skeleton's with ${n} streams open`, ratio(gw?.rss, sk?.rss), "x", "<= 1.5", (v) => v <= 1.5, [notAllOpen, perStreamRatio === null ? undefined : `per-stream RSS (over idle) ratio ${perStreamRatio}`].filter((x) => x !== undefined).join("; ") || undefined),
    info("S7.gateway_rss_per_stream", "S7 gateway RSS per open stream, over idle (recorded, no target)", gw === undefined ? null : round(gw.dRss / n / 1024, 1), "KB", sk === undefined ? undefined : `skeleton ${round(sk.dRss / n / 1024, 1)} KB`),
    info("S7.gateway_heap_per_stream", "S7 gateway V8 heap per open stream, over idle, after a full GC (recorded, no target)", gw?.dHeap == null ? null : round(gw.dHeap / n / 1024, 1), "KB", sk?.dHeap == null ? undefined : `skeleton ${round(sk.dHeap / n / 1024, 1)} KB`),
  ];
  const table: Table = {
    title: `S7: memory per open stream: ${n} SSE streams opened at once and held (${chunks} chunks paced ${opts.memPaceMs} ms, ~${opts.memStreamSec}s each); RSS and heap used after a full GC, idle and with every stream open (median of ${SAMPLES} readings ${SAMPLE_GAP_MS} ms apart)`,
    columns: ["target", "idle rss MB", "open rss MB", "rss diff MB", "rss KB/stream", "idle heap MB", "open heap MB", "heap diff MB", "heap KB/stream", "open at readings", "all open after ms", "completed", "stalled", "cpu% proxy"],
    rows,
    notes: [
      "Read in the proxy process over IPC (bench/lib/memory.ts) after a full GC (gc() exposed at run time), so heap is live objects; nginx's RSS comes from /proc and it has no V8 heap; direct has no proxy and is left out. KB/stream = (open - idle) / streams. The pace is slower than S3's so that the readings measure held streams, not a proxy behind on frames; stalls are counted but do not fail the scenario. The gateway asks the upstream for usage and drops the usage frame its client did not ask for, so each of its streams has one gap of two paces before [DONE], which counts as a stall here.",
    ],
  };
  return { id: "S7", config: { streams: n, chunks, paceMs: opts.memPaceMs, streamSec: opts.memStreamSec, samples: SAMPLES, sampleGapMs: SAMPLE_GAP_MS }, runs, summary, tables: [table], checks };
}
