/**
 * An HTTP/2 load client (autocannon speaks only HTTP/1.1) on node:http2: the
 * h2 halves of S1 (throughput) and S3 (SSE). Requests are spread over
 * `transport.h2Sessions` TLS sessions, each carrying its share of the
 * concurrent streams: one session with every stream on it is how one busy
 * client multiplexes; one session per stream is how many small clients look.
 * Each stream slot sends its next request when the previous one ends, as an
 * autocannon connection does.
 */
import http2 from "node:http2";
import type { CannonJob, CannonResult, RequestSpec, SseJob, SseResult } from "./jobs.ts";
import { percentiles, Samples } from "./stats.ts";

const LF = 0x0a;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function connect(spec: RequestSpec): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    // The bench's certificate is self-signed: what is measured is the gateway, not trust.
    const s = http2.connect(`https://127.0.0.1:${spec.port}`, { rejectUnauthorized: false, servername: "localhost" });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

async function sessions(spec: RequestSpec, n: number): Promise<http2.ClientHttp2Session[]> {
  const list = await Promise.all(Array.from({ length: Math.max(1, n) }, () => connect(spec)));
  // A stream error is counted where it happens; the session must not throw it at the process.
  for (const s of list) s.on("error", () => undefined);
  return list;
}

function headersOf(spec: RequestSpec, body: Buffer): http2.OutgoingHttpHeaders {
  const h: http2.OutgoingHttpHeaders = { ":method": spec.method, ":path": spec.path, "content-length": String(body.length) };
  for (const [k, v] of Object.entries(spec.headers)) h[k.toLowerCase()] = v;
  return h;
}

/** Throughput: `job.connections` streams kept busy for `job.durationSec`. */
export async function runH2Cannon(job: CannonJob): Promise<CannonResult> {
  const spec = job.request;
  const body = Buffer.from(spec.body);
  const headers = headersOf(spec, body);
  const list = await sessions(spec, spec.transport?.h2Sessions ?? 1);
  const latency = new Samples();
  const statuses: Record<string, number> = {};
  let errors = 0;
  let bytes = 0;
  const started = performance.now();
  const until = started + job.durationSec * 1000;

  const one = (session: http2.ClientHttp2Session): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = session.request(headers);
      let status = 0;
      req.on("response", (h) => {
        status = Number(h[":status"]);
      });
      req.on("data", (chunk: Buffer) => (bytes += chunk.length));
      req.on("end", () => {
        latency.push(performance.now() - t0);
        statuses[status] = (statuses[status] ?? 0) + 1;
        resolve();
      });
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.end(body);
    });

  const worker = async (_: unknown, i: number): Promise<void> => {
    const session = list[i % list.length] as http2.ClientHttp2Session;
    while (performance.now() < until) await one(session);
  };
  await Promise.all(Array.from({ length: job.connections }, worker));
  const durationSec = (performance.now() - started) / 1000;
  for (const s of list) s.close();
  const p = percentiles(latency.values());
  return {
    rps: p.count / durationSec,
    total: p.count,
    durationSec,
    latencyMs: { mean: p.mean, p50: p.p50, p99: p.p99, max: p.max },
    statuses,
    errors,
    timeouts: 0,
    resets: 0,
    bytesPerSec: bytes / durationSec,
  };
}

interface StreamOutcome {
  readonly ok: boolean;
  readonly stalled: boolean;
  readonly status: number;
}

/** S3 over HTTP/2: the same frame timing as sse-client.ts, streams spread over the sessions. */
export async function runH2Sse(job: SseJob): Promise<SseResult> {
  const spec = job.request;
  const body = Buffer.from(spec.body);
  const headers = headersOf(spec, body);
  const list = await sessions(spec, spec.transport?.h2Sessions ?? 1);
  const ttfb = new Samples();
  const gaps = new Samples();
  const statuses: Record<string, number> = {};
  let streams = 0;
  let completed = 0;
  let stalled = 0;
  let failed = 0;

  const one = (session: http2.ClientHttp2Session): Promise<StreamOutcome> =>
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
        clearTimeout(timer);
        resolve({ ok: ok && frames >= job.expectFrames, stalled: late || frames < job.expectFrames, status });
      };
      const t0 = performance.now();
      const req = session.request(headers);
      req.on("response", (h) => {
        status = Number(h[":status"]);
      });
      req.on("data", (chunk: Buffer) => {
        const now = performance.now();
        if (first < 0) {
          first = now;
          ttfb.push(now - t0);
          if (now - t0 > job.ttfbStallMs) late = true;
        }
        let n = 0;
        for (let i = 0; i < chunk.length; i++) {
          const lf = chunk[i] === LF;
          if (lf && prevLf) n++;
          prevLf = lf;
        }
        for (let k = 0; k < n; k++) {
          if (last >= 0) {
            const gap = now - last;
            gaps.push(gap);
            if (gap > job.paceMs + job.stallMs) late = true;
          }
          last = now;
          frames++;
        }
      });
      req.on("end", () => settle(status === 200));
      req.on("error", () => settle(false));
      const timer = setTimeout(() => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        settle(false);
      }, job.timeoutMs);
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
    for (let i = 0; i < job.concurrency; i++) all.push(one(list[i % list.length] as http2.ClientHttp2Session));
    for (const o of await Promise.all(all)) record(o);
  } else {
    // Starts spread over one stream's length, as in sse-client.ts: a steady state, not bursts.
    const cycleMs = job.expectFrames * job.paceMs;
    const until = started + job.durationSec * 1000 + cycleMs;
    const worker = async (_: unknown, i: number): Promise<void> => {
      await sleep((i * cycleMs) / job.concurrency);
      const session = list[i % list.length] as http2.ClientHttp2Session;
      while (performance.now() < until) record(await one(session));
    };
    await Promise.all(Array.from({ length: job.concurrency }, worker));
  }
  const wallMs = performance.now() - started;
  for (const s of list) s.close();
  return { streams, completed, stalled, failed, statuses, ttfbMs: percentiles(ttfb.values()), gapMs: percentiles(gaps.values()), wallMs };
}
