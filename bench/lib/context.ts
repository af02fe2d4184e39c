/** What every scenario gets: the running processes, the targets and the options. */
import type { CannonJob, CannonResult, LatencyJob, LatencyResult, RequestSpec, SseJob, SseResult, Transport } from "./jobs.ts";
import { cpuSnapshot, cpuUsage, waitQuiet, type CpuUsage, type NodeChild } from "./proc.ts";
import { DOMAIN, MODEL } from "./gateway-setup.ts";

export type TargetName = "direct" | "skeleton" | "http-proxy-3" | "nginx" | "gateway" | TlsTargetName;
export const TARGET_NAMES: readonly TargetName[] = ["direct", "skeleton", "http-proxy-3", "nginx", "gateway"];
/** S1h2 / S3h2: one gateway with server.tls.http2, over HTTP/1.1 (ALPN http/1.1) and HTTP/2 on one or many sessions. */
export type TlsTargetName = "gateway-tls-h1" | "gateway-h2" | "gateway-h2-mux";

/** Something the load generator sends requests to. */
export interface Target {
  readonly name: TargetName;
  readonly port: number;
  /** Put before the upstream path: `/proxy/<domain>` for the gateway, nothing for the baselines. */
  readonly prefix: string;
  /** The proxy process (null for `direct`: the upstream is always measured anyway). */
  readonly pid: number | null;
  /** Absent: plain HTTP/1.1. */
  readonly transport?: Transport;
}

export interface BenchOptions {
  readonly quick: boolean;
  readonly scenarios: ReadonlySet<string>;
  readonly rounds: number;
  /** Seconds per throughput run (S1, S4, S5). */
  readonly durationSec: number;
  readonly warmupSec: number;
  /** Seconds per c=1 latency run (S2) and per SSE loop run (S3). */
  readonly latencySec: number;
  readonly sseSec: number;
  /** S3's unmeasured warm-up per target, long enough for V8 to finish tiering up the streaming path. */
  readonly sseWarmupSec: number;
  readonly sseConcurrency: number;
  readonly sseLevels: readonly number[];
  /** Runs per capacity level; a level is held when a majority of them had no stall. */
  readonly sseCapacityRuns: number;
  /** One bisection step between the last level held and the first stalled. */
  readonly sseBisect: boolean;
  /** S7: streams held open at once per target, their pace, and how long each lasts. */
  readonly memStreams: number;
  readonly memPaceMs: number;
  readonly memStreamSec: number;
  /** S8: paced streams kept going beside the burst, and the size of each burst response. */
  readonly fairStreams: number;
  readonly burstBytes: number;
  readonly stallMs: number;
  readonly ttfbStallMs: number;
  readonly soakSec: number;
  readonly soakSampleSec: number;
  readonly connections: number;
  readonly distinct: number;
  readonly sseChunks: number;
  readonly sseIntervalMs: number;
  /** Before each run, wait (up to quietWaitMs) until all cores together are less busy than this (core-percent). */
  readonly quietBusyPct: number;
  readonly quietWaitMs: number;
}

export interface Bench {
  readonly opts: BenchOptions;
  readonly loadgen: NodeChild;
  readonly upstream: NodeChild;
  readonly targets: readonly Target[];
  /** The valid token every non-S4 request carries. */
  readonly token: string;
  /**
   * S4's gateway: its own process, same config but `cache.max_entries` low and
   * `distinct` more users and PATs in its store. Kept apart so the big store
   * (rewritten whole on every last-used flush) does not disturb S1–S3, S5, S6.
   */
  readonly auth: { readonly child: NodeChild; readonly target: Target; readonly cacheMaxEntries: number; readonly token: string } | null;
  /** Every proxy's pool size to the upstream. */
  readonly upstreamConnections: number;
  /** The bench's own Node proxies by target name (skeleton, http-proxy-3, gateway): S7 asks them for their memory over IPC. */
  readonly children: ReadonlyMap<TargetName, NodeChild>;
  /** Which core each measured process is pinned to (loadgen, upstream, proxy); null when not pinned. */
  readonly coreOf: ReadonlyMap<string, number> | null;
  log(line: string): void;
}

/** A job's result with the CPU each process used while it ran. */
export interface Measured<T> {
  readonly result: T;
  readonly cpu: CpuUsage;
  /** How long the run waited for other tenants' load to pass, and whether it did. */
  readonly quiet: { readonly waitedMs: number; readonly quiet: boolean };
}

function pidsFor(b: Bench, t: Target, extra: ReadonlyMap<string, number>): Map<string, number> {
  const m = new Map<string, number>([
    ["loadgen", b.loadgen.pid],
    ["upstream", b.upstream.pid],
    ...extra,
  ]);
  if (t.pid !== null) m.set("proxy", t.pid);
  return m;
}

/** `run` once the machine is quiet (not for a warm-up), with the CPU of the bench's processes and of `extra` ones (name → pid) over it. */
export async function measured<T>(b: Bench, t: Target, run: () => Promise<T>, warmup: boolean, extra: ReadonlyMap<string, number> = new Map()): Promise<Measured<T>> {
  const pids = pidsFor(b, t, extra);
  const quiet = warmup || b.opts.quietWaitMs <= 0 ? { waitedMs: 0, quiet: false } : await waitQuiet(b.opts.quietBusyPct, b.opts.quietWaitMs);
  const before = cpuSnapshot(pids);
  const result = await run();
  return { result, cpu: cpuUsage(before, cpuSnapshot(pids), b.coreOf), quiet };
}

export function cannon(b: Bench, t: Target, job: CannonJob, warmup = false): Promise<Measured<CannonResult>> {
  return measured(b, t, () => b.loadgen.request<CannonResult>({ cmd: "cannon", job }), warmup);
}

export function latency(b: Bench, t: Target, job: LatencyJob, warmup = false): Promise<Measured<LatencyResult>> {
  return measured(b, t, () => b.loadgen.request<LatencyResult>({ cmd: "latency", job }), warmup);
}

export function sse(b: Bench, t: Target, job: SseJob, warmup = false): Promise<Measured<SseResult>> {
  return measured(b, t, () => b.loadgen.request<SseResult>({ cmd: "sse", job }), warmup);
}

/**
 * A JSON chat-completion body of exactly `bytes` bytes (message content
 * padded); the fake streams at most `maxTokens` chunks. `extra` members go
 * in at the top level (S8's `stream_options`).
 */
export function chatBody(bytes: number, stream = false, maxTokens = 256, extra: Readonly<Record<string, unknown>> = {}): string {
  const make = (content: string): string =>
    JSON.stringify({ model: MODEL, messages: [{ role: "user", content }], max_tokens: maxTokens, ...(stream ? { stream: true } : {}), ...extra });
  const base = make("").length;
  const pad = "Summarise the following text in three sentences please. ";
  let content = "";
  while (base + content.length < bytes) content += pad;
  return make(content.slice(0, Math.max(0, bytes - base)));
}

/** POST /v1/chat/completions to `t` carrying `token`. */
export function chatRequest(t: Target, body: string, token: string): RequestSpec {
  return {
    port: t.port,
    method: "POST",
    path: `${t.prefix}/v1/chat/completions`,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body,
    ...(t.transport === undefined ? {} : { transport: t.transport }),
  };
}

export const GATEWAY_PREFIX = `/proxy/${DOMAIN}`;

/** `targets` rotated by `round`, so no target always runs first (warm caches, thermal state, neighbours). */
export function rotate<T>(list: readonly T[], round: number): T[] {
  const n = list.length;
  if (n === 0) return [];
  const k = round % n;
  return [...list.slice(k), ...list.slice(0, k)];
}

/** Count of responses whose status is not `expected`, plus transport errors. */
export function unexpected(statuses: Record<string, number>, expected: number, errors = 0): number {
  let n = errors;
  for (const [code, count] of Object.entries(statuses)) if (Number(code) !== expected) n += count;
  return n;
}
