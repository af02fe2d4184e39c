/**
 * The load generator, in its own process (pinned to its own core by the
 * orchestrator) so it never shares an event loop with what it measures.
 * Runs one job at a time: autocannon, the c=1 latency client or the SSE client.
 * S8 starts a second one for its burst stream, beside the paced streams of this one.
 */
import autocannon, { type Options } from "autocannon";
import type { BurstJob, CannonJob, CannonResult, LatencyJob, SseJob } from "./lib/jobs.ts";
import { runBurst, stopBurst } from "./lib/burst-client.ts";
import { runLatency } from "./lib/latency-client.ts";
import { openSseStreams, runSse } from "./lib/sse-client.ts";
import { runH2Cannon, runH2Sse } from "./lib/h2-client.ts";
import { announceReady, serveIpc } from "./lib/proc.ts";

const tokenSets = new Map<string, readonly string[]>();

async function cannon(job: CannonJob): Promise<CannonResult> {
  const r = job.request;
  if (r.transport?.h2Sessions != null) return runH2Cannon(job);
  const opts: Options = {
    // autocannon accepts any certificate over https: and offers no ALPN, so an HTTP/2 server answers in HTTP/1.1.
    url: `${r.transport === undefined ? "http" : "https"}://127.0.0.1:${r.port}${r.path}`,
    method: r.method,
    headers: { ...r.headers },
    body: r.body,
    connections: job.connections,
    duration: job.durationSec,
    timeout: 10,
  };
  if (job.overallRate !== undefined) opts.overallRate = job.overallRate;
  if (job.tokenSet !== undefined) {
    const tokens = tokenSets.get(job.tokenSet);
    if (tokens === undefined || tokens.length === 0) throw new Error(`no token set ${job.tokenSet}`);
    let i = 0;
    opts.requests = [
      {
        setupRequest: (req) => {
          const token = tokens[i++ % tokens.length] as string;
          return { ...req, headers: { ...req.headers, authorization: `Bearer ${token}` } };
        },
      },
    ];
  }
  const res = await autocannon(opts);
  const statuses: Record<string, number> = {};
  for (const [code, s] of Object.entries(res.statusCodeStats)) statuses[code] = s.count;
  return {
    rps: res.duration > 0 ? res.requests.total / res.duration : 0,
    total: res.requests.total,
    durationSec: res.duration,
    latencyMs: { mean: res.latency.mean, p50: res.latency.p50, p99: res.latency.p99, max: res.latency.max },
    statuses,
    errors: res.errors,
    timeouts: res.timeouts,
    resets: res.resets,
    bytesPerSec: res.throughput.average,
  };
}

serveIpc((msg) => {
  switch (msg["cmd"]) {
    case "tokens":
      tokenSets.set(msg["name"] as string, msg["list"] as string[]);
      return true;
    case "cannon":
      return cannon(msg["job"] as CannonJob);
    case "latency":
      return runLatency(msg["job"] as LatencyJob);
    case "sse": {
      const job = msg["job"] as SseJob;
      return job.request.transport?.h2Sessions != null ? runH2Sse(job) : runSse(job);
    }
    // Answered while an SSE job runs: IPC requests are handled concurrently.
    case "sseOpen":
      return openSseStreams();
    case "burst":
      return runBurst(msg["job"] as BurstJob);
    // Answered while the burst runs, as sseOpen is.
    case "burstStop":
      return stopBurst();
    default:
      throw new Error(`unknown command ${String(msg["cmd"])}`);
  }
});
announceReady(0);
