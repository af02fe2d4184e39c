/**
 * Latency at concurrency 1 with microsecond timing: one keep-alive TCP
 * connection, a prebuilt request, the next request written the moment the
 * previous response is complete. A raw socket instead of node:http keeps the
 * client's own cost and jitter small, so differences between targets show.
 */
import net from "node:net";
import type { LatencyJob, LatencyResult, RequestSpec } from "./jobs.ts";
import { percentiles, Samples } from "./stats.ts";

const CRLF2 = Buffer.from("\r\n\r\n");
const CHUNKED_END = Buffer.from("0\r\n\r\n");
const EMPTY: Buffer = Buffer.alloc(0);

/** The request as bytes (HTTP/1.1, keep-alive, with Host and Content-Length). */
export function requestBytes(r: RequestSpec): Buffer {
  let head = `${r.method} ${r.path} HTTP/1.1\r\nhost: 127.0.0.1:${r.port}\r\n`;
  for (const [k, v] of Object.entries(r.headers)) head += `${k}: ${v}\r\n`;
  const body = Buffer.from(r.body);
  if (body.length > 0 || r.method === "POST") head += `content-length: ${body.length}\r\n`;
  return Buffer.concat([Buffer.from(head + "\r\n"), body]);
}

/** Where one response ends in `buf`, or -1 when it is not complete yet; `status` out through the callback. */
export function responseEnd(buf: Buffer, onStatus: (s: number) => void): number {
  const headEnd = buf.indexOf(CRLF2);
  if (headEnd === -1) return -1;
  const head = buf.toString("latin1", 0, headEnd);
  onStatus(Number(head.slice(9, 12)));
  const lower = head.toLowerCase();
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
  if (cl !== null) {
    const end = headEnd + 4 + Number(cl[1]);
    return buf.length >= end ? end : -1;
  }
  if (lower.includes("\r\ntransfer-encoding: chunked")) {
    // Good enough for the bench's responses: no trailers, so the body ends with the last-chunk marker.
    return buf.length >= headEnd + 4 + 5 && buf.subarray(buf.length - 5).equals(CHUNKED_END) ? buf.length : -1;
  }
  return headEnd + 4;
}

/** Sends `job.request` back to back for `job.durationSec`; percentiles in microseconds. */
export function runLatency(job: LatencyJob): Promise<LatencyResult> {
  const bytes = requestBytes(job.request);
  const samples = new Samples();
  const statuses: Record<string, number> = {};
  let errors = 0;
  return new Promise((resolve) => {
    const until = performance.now() + job.durationSec * 1000;
    let socket: net.Socket;
    let buf: Buffer = EMPTY;
    let sentAt = 0;
    let done = false;
    let status = 0;
    const setStatus = (s: number): void => {
      status = s;
    };

    const finish = (): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ us: percentiles(samples.values()), statuses, errors });
    };
    const send = (): void => {
      if (performance.now() >= until) return finish();
      buf = EMPTY;
      sentAt = performance.now();
      socket.write(bytes);
    };
    const connect = (): void => {
      socket = net.connect({ host: "127.0.0.1", port: job.request.port, noDelay: true });
      socket.on("connect", send);
      socket.on("data", (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        const end = responseEnd(buf, setStatus);
        if (end === -1) return;
        samples.push((performance.now() - sentAt) * 1000);
        statuses[status] = (statuses[status] ?? 0) + 1;
        send();
      });
      socket.on("error", () => {
        errors++;
      });
      socket.on("close", () => {
        if (done) return;
        // The server closed the connection: count it and carry on with a new one.
        errors++;
        if (performance.now() >= until) finish();
        else connect();
      });
    };
    connect();
  });
}
