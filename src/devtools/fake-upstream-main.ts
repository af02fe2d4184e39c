/**
 * `npm run fake-upstream`: run the fake LLM backend so patgate can be tried
 * without a model. Runs until SIGINT/SIGTERM, then exits 0.
 */
import { parseArgs } from "node:util";
import { startFakeUpstream } from "./fake-upstream.ts";
import type { FakeUpstreamOptions } from "./fake-upstream.ts";

const USAGE = `usage: node src/devtools/fake-upstream-main.ts [options]
  --port <n>             port to listen on (default 8081; 0 picks a free one)
  --host <addr>          address to bind (default 127.0.0.1)
  --sse-interval-ms <n>  gap between streamed chunks (default 20)
  --sse-chunks <n>       content chunks per streamed reply (default 5)
  --latency-ms <n>       delay before every response (default 0)
  --quiet                do not log one line per request
  --help                 show this text`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function nonNegativeInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got '${value}'`);
  return n;
}

let args;
try {
  args = parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "sse-interval-ms": { type: "string" },
      "sse-chunks": { type: "string" },
      "latency-ms": { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean" },
    },
    strict: true,
  }).values;
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}

if (args.help === true) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const port = nonNegativeInt("port", args.port, 8081);
if (port > 65535) fail(`--port must be at most 65535, got ${port}`);

const opts: FakeUpstreamOptions = {
  port,
  host: args.host ?? "127.0.0.1",
  sseIntervalMs: nonNegativeInt("sse-interval-ms", args["sse-interval-ms"], 20),
  sseChunks: nonNegativeInt("sse-chunks", args["sse-chunks"], 5),
  latencyMs: nonNegativeInt("latency-ms", args["latency-ms"], 0),
  // A long-running process must not keep every request in memory.
  record: false,
};
if (args.quiet !== true) {
  opts.onRequest = (req) => {
    process.stdout.write(`${new Date().toISOString()} ${req.method} ${req.path} ${req.body.length}B\n`);
  };
}

const upstream = await startFakeUpstream(opts).catch((err: NodeJS.ErrnoException) => {
  // One line a person can act on, not a stack trace: the port is the usual reason.
  if (err.code === "EADDRINUSE") process.stderr.write(`fake upstream: port ${port} on ${opts.host ?? ""} is already in use; free it, or pick another with --port <n>\n`);
  else process.stderr.write(`fake upstream: cannot start: ${err.message}\n`);
  process.exit(1);
});
process.stdout.write(`fake upstream listening on ${upstream.url}\n`);

let stopping = false;
function stop(signal: string): void {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`${signal}: closing fake upstream\n`);
  upstream.close().then(
    () => {
      process.exitCode = 0;
    },
    (err: unknown) => {
      process.stderr.write(`close failed: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
process.once("SIGINT", () => {
  stop("SIGINT");
});
process.once("SIGTERM", () => {
  stop("SIGTERM");
});
