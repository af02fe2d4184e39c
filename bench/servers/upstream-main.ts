/**
 * The fake OpenAI-compatible upstream as a bench child: JSON chat completions
 * of about 1 KB and SSE streams of `--sse-chunks` chunks paced `--sse-interval-ms`.
 *
 * Non-streamed chat completions are answered from one precomputed ~1 KB
 * Buffer (the built-in reply is ~350 bytes and the issue asks for ~1 KB);
 * streamed ones fall through to the fake's built-in SSE.
 */
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

const fake = await startFakeUpstream({
  record: false,
  sseChunks: Number(values["sse-chunks"]),
  sseIntervalMs: Number(values["sse-interval-ms"]),
});

const reply = chatReply(Number(values["response-bytes"]));
const STREAM = Buffer.from('"stream":true');
fake.route("POST", "/v1/chat/completions", (ctx) => {
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
