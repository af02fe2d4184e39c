/**
 * A small SSE client on node:http that timestamps every frame as it arrives:
 * time to first byte, gaps between frames, and whether a stream stalled.
 */
import http from "node:http";
import https from "node:https";
import type { SseJob, SseResult } from "./jobs.ts";
import { percentiles, Samples } from "./stats.ts";

const LF = 0x0a;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Streams of every job that have their first byte and have not ended: S7 waits for all of its to be open. */
let openStreams = 0;

export function openSseStreams(): number {
  return openStreams;
}

interface StreamOutcome {
  readonly ok: boolean;
  readonly stalled: boolean;
  readonly status: number;
}

/** Runs `job` and reports TTFB and frame-gap percentiles in milliseconds. */
export async function runSse(job: SseJob): Promise<SseResult> {
  const tls = job.request.transport !== undefined;
  // Over TLS the bench's self-signed certificate is accepted: what is measured is the gateway, not trust.
  const agent = tls ? new https.Agent({ keepAlive: true, maxSockets: Infinity, rejectUnauthorized: false }) : new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const request = tls ? https.request : http.request;
  const ttfb = new Samples();
  const gaps = new Samples();
  const statuses: Record<string, number> = {};
  let streams = 0;
  let completed = 0;
  let stalled = 0;
  let failed = 0;
  const body = Buffer.from(job.request.body);
  const headers = { ...job.request.headers, "content-length": String(body.length) };

  const one = (): Promise<StreamOutcome> =>
    new Promise((resolve) => {
      let first = -1;
      let last = -1;
      let frames = 0;
      let prevLf = false;
      let late = false;
      let settled = false;
      let status = 0;
      const settle = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        if (first >= 0) openStreams--;
        clearTimeout(timer);
        resolve({ ok: ok && frames >= job.expectFrames, stalled: late || frames < job.expectFrames, status });
      };
      const t0 = performance.now();
      const req = request({ host: "127.0.0.1", port: job.request.port, method: job.request.method, path: job.request.path, headers, agent }, (res) => {
        status = res.statusCode ?? 0;
        res.on("data", (chunk: Buffer) => {
          const now = performance.now();
          if (first < 0) {
            first = now;
            openStreams++;
            ttfb.push(now - t0);
            if (now - t0 > job.ttfbStallMs) late = true;
          }
          // A frame ends with a blank line; a "\n" may end one chunk and the next "\n" start the following.
          let n = 0;
          for (let i = 0; i < chunk.length; i++) {
            const lf = chunk[i] === LF;
            if (lf && prevLf) n++;
            prevLf = lf;
          }
          for (let k = 0; k < n; k++) {
            // Frames that arrive together get a gap of 0: the one before them carries the delay.
            if (last >= 0) {
              const gap = now - last;
              gaps.push(gap);
              if (gap > job.paceMs + job.stallMs) late = true;
            }
            last = now;
            frames++;
          }
        });
        res.on("end", () => settle(status === 200));
        res.on("error", () => settle(false));
      });
      const timer = setTimeout(() => {
        req.destroy();
        settle(false);
      }, job.timeoutMs);
      req.on("error", () => settle(false));
      req.end(body);
    });

  const record = (o: StreamOutcome): void => {
    streams++;
    statuses[o.status] = (statuses[o.status] ?? 0) + 1;
    if (o.ok) completed++;
    else failed++;
    if (o.stalled) stalled++;
  };

  const started = performance.now();
  if (job.mode === "once") {
    const all: Array<Promise<StreamOutcome>> = [];
    for (let i = 0; i < job.concurrency; i++) all.push(one());
    for (const o of await Promise.all(all)) record(o);
  } else {
    // Every stream lasts the same time, so workers started together would stay
    // in step for the whole run, each new stream arriving in a burst of
    // `concurrency` at once, and TTFB would measure how fast a burst drains
    // (the "once" levels measure that). Spreading the first starts over one
    // stream's length keeps arrivals evenly spaced: the steady state of
    // `concurrency` streams in flight.
    const cycleMs = job.expectFrames * job.paceMs;
    const until = started + job.durationSec * 1000 + cycleMs;
    const worker = async (_: unknown, i: number): Promise<void> => {
      await sleep((i * cycleMs) / job.concurrency);
      while (performance.now() < until) record(await one());
    };
    await Promise.all(Array.from({ length: job.concurrency }, worker));
  }
  const wallMs = performance.now() - started;
  agent.destroy();
  return { streams, completed, stalled, failed, statuses, ttfbMs: percentiles(ttfb.values()), gapMs: percentiles(gaps.values()), wallMs };
}
