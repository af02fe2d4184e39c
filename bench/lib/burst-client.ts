/**
 * S8's burst client: one streamed response at a time, read as fast as the
 * socket delivers it (flowing mode, nothing parsed), again and again until
 * `stopBurst()`, which cuts the response in flight off so the burst lasts
 * exactly as long as the paced streams beside it. It runs in a load generator
 * process of its own (bench/run.ts), so reading the burst never delays the
 * paced streams' timestamps in the other one.
 */
import http from "node:http";
import type { BurstJob, BurstResult } from "./jobs.ts";

const DONE = Buffer.from("data: [DONE]\n\n");

interface Outcome {
  readonly status: number;
  readonly bytes: number;
  readonly ms: number;
  /** Null: ended with status 200 and `[DONE]`, or cut off by the stop. */
  readonly error: string | null;
  readonly cut: boolean;
}

/** Cuts off the running loop's response in flight and ends the loop; null when no loop runs. */
let stopRunning: (() => void) | null = null;

/** Ends the running burst loop; false when none was running. */
export function stopBurst(): boolean {
  if (stopRunning === null) return false;
  stopRunning();
  return true;
}

/** Runs `job`'s loop until `stopBurst()` or the first failed response. */
export async function runBurst(job: BurstJob): Promise<BurstResult> {
  if (stopRunning !== null) throw new Error("a burst is already running");
  const r = job.request;
  const body = Buffer.from(r.body);
  const headers = { ...r.headers, "content-length": String(body.length) };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let stopped = false;
  let cut: (() => void) | null = null;
  stopRunning = () => {
    stopped = true;
    cut?.();
  };

  const one = (): Promise<Outcome> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      let status = 0;
      let bytes = 0;
      let tail: Buffer = Buffer.alloc(0);
      let settled = false;
      const settle = (how: "end" | "cut" | "error", error: string | null): void => {
        if (settled) return;
        settled = true;
        cut = null;
        clearTimeout(timer);
        const bad = how === "error" ? error : how === "end" && status !== 200 ? `status ${status}` : how === "end" && !tail.equals(DONE) ? "ended without [DONE]" : null;
        resolve({ status, bytes, ms: performance.now() - t0, error: bad, cut: how === "cut" });
      };
      const req = http.request({ host: "127.0.0.1", port: r.port, method: r.method, path: r.path, headers, agent }, (res) => {
        status = res.statusCode ?? 0;
        res.on("data", (c: Buffer) => {
          bytes += c.length;
          tail = c.length >= DONE.length ? c.subarray(c.length - DONE.length) : Buffer.concat([tail, c]).subarray(-DONE.length);
        });
        res.on("end", () => settle("end", null));
        res.on("error", (e) => settle("error", e.message));
      });
      const timer = setTimeout(() => {
        req.destroy();
        settle("error", `no end after ${job.timeoutMs} ms`);
      }, job.timeoutMs);
      cut = () => {
        req.destroy();
        settle("cut", null);
      };
      req.on("error", (e) => settle("error", e.message));
      req.end(body);
    });

  const statuses: Record<string, number> = {};
  let completed = 0;
  let bytes = 0;
  let ms = 0;
  let error: string | null = null;
  try {
    while (!stopped && error === null) {
      const o = await one();
      bytes += o.bytes;
      ms += o.ms;
      if (o.status !== 0) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
      if (o.error !== null) error = o.error;
      else if (!o.cut) completed++;
    }
  } finally {
    stopRunning = null;
    agent.destroy();
  }
  return { completed, failed: error === null ? 0 : 1, statuses, bytes, ms, error };
}
