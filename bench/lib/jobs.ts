/** What the orchestrator asks the load generator to do, and what it gets back. */
import type { Percentiles } from "./stats.ts";

/** One HTTP request to send again and again. */
export interface RequestSpec {
  readonly port: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Absent: plain HTTP/1.1. */
  readonly transport?: Transport;
}

/** HTTPS, and HTTP/2 over `h2Sessions` sessions when set (HTTP/1.1 over TLS when null). */
export interface Transport {
  readonly tls: true;
  readonly h2Sessions: number | null;
}

/** autocannon: throughput at a concurrency, or a fixed overall rate. */
export interface CannonJob {
  readonly request: RequestSpec;
  readonly connections: number;
  readonly durationSec: number;
  /** Requests per second over all connections; unlimited when absent. */
  readonly overallRate?: number;
  /** A token set loaded earlier: each request carries the next one (`Authorization: Bearer …`). */
  readonly tokenSet?: string;
}

export interface CannonResult {
  readonly rps: number;
  readonly total: number;
  readonly durationSec: number;
  /** autocannon records whole milliseconds: use the latency job for sub-millisecond numbers. */
  readonly latencyMs: { readonly mean: number; readonly p50: number; readonly p99: number; readonly max: number };
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  readonly resets: number;
  readonly bytesPerSec: number;
}

/** One connection, one request at a time, microsecond timing. */
export interface LatencyJob {
  readonly request: RequestSpec;
  readonly durationSec: number;
}

export interface LatencyResult {
  readonly us: Percentiles;
  readonly statuses: Record<string, number>;
  readonly errors: number;
}

/** SSE streams: `loop` keeps `concurrency` streams going for `durationSec`; `once` opens `concurrency` at once and waits for all. */
export interface SseJob {
  readonly request: RequestSpec;
  readonly mode: "loop" | "once";
  readonly concurrency: number;
  readonly durationSec: number;
  /** Frames a complete stream carries (content chunks + `[DONE]`). */
  readonly expectFrames: number;
  readonly paceMs: number;
  /** A stream stalls when a frame comes more than this late (beyond `paceMs`)… */
  readonly stallMs: number;
  /** …or its first byte takes longer than this (e.g. queued behind other streams for a pool connection). */
  readonly ttfbStallMs: number;
  /** Give up on a stream after this long. */
  readonly timeoutMs: number;
}

export interface SseResult {
  readonly streams: number;
  readonly completed: number;
  readonly stalled: number;
  readonly failed: number;
  readonly statuses: Record<string, number>;
  /** Request sent → first body byte. */
  readonly ttfbMs: Percentiles;
  /** Between consecutive frames of a stream. */
  readonly gapMs: Percentiles;
  readonly wallMs: number;
}

/** S8's burst: one streamed response at a time from `request`, read as fast as it arrives, again and again until told to stop. */
export interface BurstJob {
  readonly request: RequestSpec;
  /** Give up on one response after this long. */
  readonly timeoutMs: number;
}

export interface BurstResult {
  /** Responses that ended with status 200 and `[DONE]`; failed ones end the loop; the one cut off by the stop is neither. */
  readonly completed: number;
  readonly failed: number;
  readonly statuses: Record<string, number>;
  /** Body bytes received (the response cut off included) and the time they took: request sent → its end, or the stop. */
  readonly bytes: number;
  readonly ms: number;
  /** Why the first failed response failed; null when none did. */
  readonly error: string | null;
}
