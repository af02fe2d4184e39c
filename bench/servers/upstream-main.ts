/**
 * The fake OpenAI-compatible upstream as a bench child: JSON chat completions
 * of about 1 KB and SSE streams of `--sse-chunks` chunks paced `--sse-interval-ms`.
 *
 * Non-streamed chat completions are answered from one precomputed ~1 KB
 * Buffer (the built-in reply is ~350 bytes and the issue asks for ~1 KB);
 * streamed ones fall through to the fake's built-in SSE.
 *
 * Burst mode (S8, bench/fairness.ts): a streamed chat completion whose request
 * carries `x-bench-burst-bytes: <n>` (decimal, 1 to 2^32) is answered with
 * n bytes of chat.completion.chunk frames, rounded up to whole 64 KiB blocks
 * of whole frames, written as fast as the connection takes them, then a last frame,
 * the usage frame when the request asked for it (as the gateway does) and
 * `[DONE]`. A value out of range, or the header on a request without
 * `"stream": true`, is answered 400.
 */
import type { ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { startFakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { announceReady, serveIpc } from "../lib/proc.ts";

const { values } = parseArgs({
  options: {
    "sse-chunks": { type: "string", default: "64" },
    "sse-interval-ms": { type: "string", default: "20" },
    "response-bytes": { type: "string", default: "1024" },
  },
});

const BURST_HEADER = "x-bench-burst-bytes";
const MAX_BURST = 2 ** 32;

/** The header's byte count, or null when it is not a whole number from 1 to MAX_BURST. */
function burstBytes(value: string | string[]): number | null {
  if (typeof value !== "string" || !/^\d{1,10}$/.test(value)) return null;
  const n = Number(value);
  return n >= 1 && n <= MAX_BURST ? n : null;
}

const sseData = (obj: object): Buffer => Buffer.from(`data: ${JSON.stringify(obj)}\n\n`);
const CHUNK = { id: "chatcmpl-bench-burst", object: "chat.completion.chunk", created: 0, model: "bench-model", system_fingerprint: "fp_bench" };
const chunkFrame = (content: string, finish: string | null): Buffer => sseData({ ...CHUNK, choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: finish }] });
const usageFrame = (tokens: number): Buffer => sseData({ ...CHUNK, choices: [], usage: { prompt_tokens: 12, completion_tokens: tokens, total_tokens: 12 + tokens } });
const BURST_FRAME = chunkFrame("burst ", null);
const FRAMES_PER_BLOCK = Math.ceil(65536 / BURST_FRAME.length);
const BURST_BLOCK = Buffer.concat(Array.from({ length: FRAMES_PER_BLOCK }, () => BURST_FRAME));
const BURST_LAST = chunkFrame(".", "stop");
const DONE = Buffer.from("data: [DONE]\n\n");

/** Writes whole 64 KiB blocks until `bytes` are out, each as soon as the connection took the one before. */
function sendBurst(res: ServerResponse, bytes: number, withUsage: boolean): void {
  const blocks = Math.max(1, Math.ceil(bytes / BURST_BLOCK.length));
  const tokens = blocks * FRAMES_PER_BLOCK + 1;
  const end = Buffer.concat([BURST_LAST, ...(withUsage ? [usageFrame(tokens)] : []), DONE]);
  let gone = false;
  res.once("close", () => {
    gone = true;
  });
  res.writeHead(200, ["content-type", "text/event-stream; charset=utf-8", "cache-control", "no-cache"]);
  let left = blocks;
  const next = (): void => {
    if (gone) return;
    if (left === 0) {
      res.end(end);
      return;
    }
    left--;
    // Back to the event loop after every block, even when the socket took it
    // at once: the paced streams' timers in this process keep their pace, so
    // what the burst delays is the proxy's doing, not the upstream's.
    if (res.write(BURST_BLOCK)) setImmediate(next);
    else res.once("drain", next);
  };
  next();
}

const fake = await startFakeUpstream({
  record: false,
  sseChunks: Number(values["sse-chunks"]),
  sseIntervalMs: Number(values["sse-interval-ms"]),
});

const reply = chatReply(Number(values["response-bytes"]));
const STREAM = Buffer.from('"stream":true');
fake.route("POST", "/v1/chat/completions", (ctx) => {
  const burst = ctx.req.headers[BURST_HEADER];
  if (burst !== undefined) {
    const bytes = burstBytes(burst);
    const body = ctx.json() as { stream?: unknown; stream_options?: { include_usage?: unknown } } | undefined;
    if (bytes === null || body?.stream !== true) {
      ctx.send(400, { error: { message: `fake upstream: ${BURST_HEADER} must be a whole number from 1 to ${MAX_BURST} on a request with "stream": true`, type: "invalid_request_error" } });
      return;
    }
    sendBurst(ctx.res, bytes, body.stream_options?.include_usage === true);
    return;
  }
  if (ctx.body.includes(STREAM)) return ctx.fallthrough();
  ctx.res.writeHead(200, ["content-type", "application/json", "content-length", String(reply.length)]);
  ctx.res.end(reply);
});

serveIpc((msg) => {
  if (msg["cmd"] === "ping") return "pong";
  // S7 holds streams open longer and paced slower than S3's, then puts S3's settings back.
  if (msg["cmd"] === "sse") {
    fake.configure({ sseChunks: Number(msg["chunks"]), sseIntervalMs: Number(msg["intervalMs"]) });
    return true;
  }
  throw new Error(`unknown command ${String(msg["cmd"])}`);
});
announceReady(fake.port);

process.on("SIGTERM", () => {
  void fake.close().then(() => process.exit(0));
});

/** An OpenAI chat completion whose serialised size is `bytes` (content padded to fit). */
function chatReply(bytes: number): Buffer {
  const make = (content: string): string =>
    JSON.stringify({
      id: "chatcmpl-bench",
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: "bench-model",
      system_fingerprint: "fp_bench",
      choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 200, completion_tokens: 150, total_tokens: 350 },
    });
  const base = make("").length;
  const words = "The quick brown fox jumps over the lazy dog. ";
  let content = "";
  while (base + content.length < bytes) content += words;
  return Buffer.from(make(content.slice(0, Math.max(0, bytes - base))));
}
