/**
 * The floor of what Node can do as a proxy: node:http in, an undici `Pool`
 * (dispatch API) out, bodies streamed both ways, no auth, no logging. Only
 * what any correct proxy must do is kept: hop-by-hop headers dropped, an
 * abort passed upstream when the client leaves.
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { Pool, type Dispatcher } from "undici";
import { memoryReading } from "../lib/memory.ts";
import { announceReady, serveIpc } from "../lib/proc.ts";

const { values } = parseArgs({
  options: {
    upstream: { type: "string" },
    connections: { type: "string", default: "128" },
  },
});
if (values.upstream === undefined) throw new Error("--upstream is required");

const pool = new Pool(values.upstream, {
  connections: Number(values.connections),
  pipelining: 1,
  keepAliveTimeout: 30_000,
});

const HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

class Handler implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  #controller: Dispatcher.DispatchController | null = null;

  constructor(res: ServerResponse) {
    this.#res = res;
    res.once("close", this.#onClose);
    res.on("drain", this.#onDrain);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    const out: OutgoingHttpHeaders = {};
    for (const name in headers) if (!HOP.has(name)) out[name] = headers[name];
    this.#res.writeHead(statusCode, out);
    if (headers["content-type"]?.startsWith("text/event-stream") === true) this.#res.flushHeaders();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, _err: Error): void {
    if (this.#res.headersSent) this.#res.destroy();
    else {
      this.#res.writeHead(502, { "content-length": "0" });
      this.#res.end();
    }
  }

  readonly #onDrain = (): void => {
    this.#controller?.resume();
  };

  readonly #onClose = (): void => {
    if (this.#controller !== null && !this.#controller.aborted && !this.#res.writableFinished) this.#controller.abort(new Error("client closed"));
  };
}

const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!HOP.has(name.toLowerCase())) headers.push(name, raw[i + 1] as string);
  }
  const hasBody = req.headers["content-length"] !== undefined ? req.headers["content-length"] !== "0" : req.headers["transfer-encoding"] !== undefined;
  pool.dispatch({ path: req.url ?? "/", method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null }, new Handler(res));
});

server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  announceReady(typeof addr === "object" && addr !== null ? addr.port : 0);
});
serveIpc((msg) => (msg["cmd"] === "memory" ? memoryReading(msg["gc"] === true) : "pong"));
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close();
  void pool.destroy().then(() => process.exit(0));
});
