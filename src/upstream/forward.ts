import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import type { RequestContext, StreamRelay } from "../http/context.ts";
import { sendError } from "../http/respond.ts";
import { BodyTooLargeError } from "../http/body.ts";
import { BodyTimeoutError } from "../http/bodies.ts";
import { errorBody, type ErrorCode } from "../errors.ts";
import type { HeaderPolicy } from "./headers.ts";
import type { PooledTarget } from "./upstreams.ts";
import { Tail, usageFromTail } from "./usage.ts";
import { tlsFailure } from "./tls.ts";
import { UsageChunkFilter } from "../limits/usage-chunk.ts";

const STREAMING_TYPES = ["text/event-stream", "application/x-ndjson", "application/jsonl"];
// A cut stream whose client does not take its last frame within this time is closed without waiting further.
const CUT_FLUSH_MS = 2000;
// The end of an SSE event (a blank line), in any of the line endings the format allows.
const SSE_EVENT_END = /(?:\r\n\r\n|\n\n|\r\r)$/;

/** What the data plane hears from a forwarded request: its end (once), and the start of a stream. */
export interface ForwardHooks {
  finish(ctx: RequestContext): void;
  streamStarted(ctx: RequestContext): void;
}

class ClientGone extends Error {
  override readonly name = "ClientGone";
}

/**
 * Streams one upstream response to the client: headers as they arrive, each
 * body chunk as it arrives (never buffered), with backpressure both ways and
 * the upstream request aborted as soon as the client leaves.
 */
class ProxyHandler implements Dispatcher.DispatchHandler, StreamRelay {
  readonly #ctx: RequestContext;
  readonly #policy: HeaderPolicy;
  readonly #hooks: ForwardHooks;
  #controller: Dispatcher.DispatchController | null = null;
  #finished = false;
  /** Set when the gateway ended the stream: later upstream data is dropped. */
  #cut = false;
  /** The response is Server-Sent Events (else NDJSON-like), for the shape of a cut's last frame. */
  #sse = false;
  readonly #tail = new Tail();
  #drop: UsageChunkFilter | null;

  constructor(ctx: RequestContext, policy: HeaderPolicy, hooks: ForwardHooks) {
    this.#ctx = ctx;
    this.#policy = policy;
    this.#hooks = hooks;
    this.#drop = ctx.admission?.dropUsage === true ? new UsageChunkFilter() : null;
    ctx.res.on("close", this.#onClientClose);
    ctx.res.on("drain", this.#onDrain);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#ctx.res.destroyed) controller.abort(new ClientGone("client closed"));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    const ctx = this.#ctx;
    ctx.upstreamHeadersAt = performance.now();
    const type = headers["content-type"];
    const streaming = typeof type === "string" && STREAMING_TYPES.some((t) => type.startsWith(t));
    ctx.streaming = streaming;
    this.#sse = streaming && type.startsWith("text/event-stream");
    // The gateway's own headers replace any the upstream sent by the same name.
    const own = ["x-request-id", ctx.requestId];
    if (streaming) {
      // Tell nginx-style ingresses not to buffer; send headers now so the first byte is not held back.
      own.push("x-accel-buffering", "no");
      if (headers["cache-control"] === undefined) own.push("cache-control", "no-cache");
    }
    // Dropping a chunk needs a response without a length (streams have none); with one, the client gets it all.
    if (this.#drop !== null && headers["content-length"] !== undefined) this.#drop = null;
    const out = this.#policy.responseHeaders(headers, own, ctx.admission?.headers ?? null);
    if (statusMessage !== undefined && statusMessage !== "") ctx.res.writeHead(statusCode, statusMessage, out);
    else ctx.res.writeHead(statusCode, out);
    if (streaming) {
      ctx.res.flushHeaders();
      ctx.relay = this;
      this.#hooks.streamStarted(ctx);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#cut) return;
    const ctx = this.#ctx;
    if (ctx.responseBytes === 0) ctx.upstreamFirstByteAt = performance.now();
    ctx.responseBytes += chunk.length;
    this.#tail.push(chunk);
    // A stream the gateway asked usage of: the usage chunk the client did not ask for is dropped.
    const out = this.#drop === null ? chunk : this.#drop.push(chunk);
    if (!ctx.res.write(out)) controller.pause();
  }

  onResponseEnd(): void {
    if (this.#cut) return;
    const ctx = this.#ctx;
    if (ctx.responseBytes > 0) ctx.usage = usageFromTail(this.#tail.text());
    ctx.res.end(this.#drop?.end());
    this.#finish("ok");
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    const ctx = this.#ctx;
    if (err instanceof ClientGone || ctx.res.destroyed) {
      this.#finish("client_closed");
      return;
    }
    const code = errorCode(err);
    // Mid-body failures cannot be reported in-band: cut the connection so the client sees a truncated response, not a clean end.
    if (ctx.res.headersSent) ctx.res.destroy();
    // The error is sent before the access line and metrics are written, so they carry its status (502/504), not 200.
    else sendError(ctx.res, ctx.requestId, code, { envelope: ctx.route?.errors ?? "openai" });
    this.#finish(code);
  }

  /**
   * Ends the stream on the gateway's behalf: the upstream request is aborted,
   * and the client gets one last frame saying why (an SSE `error` event, or an
   * NDJSON error line; the route's envelope), then the end. Mid-frame there is
   * no in-band way to say it: the connection is cut.
   */
  cut(code: ErrorCode): void {
    const ctx = this.#ctx;
    if (this.#finished || this.#cut || ctx.res.destroyed) return;
    this.#cut = true;
    ctx.cutReason = code;
    const frame = this.#errorFrame(code);
    if (this.#controller !== null && !this.#controller.aborted) this.#controller.abort(new ClientGone("cut by the gateway"));
    this.#finish(code);
    if (frame === null) {
      ctx.res.destroy();
      return;
    }
    ctx.res.end(frame);
    // A client that stopped reading must not hold the socket open for ever.
    const res = ctx.res;
    const timer = setTimeout(() => res.destroy(), CUT_FLUSH_MS);
    timer.unref();
    res.once("close", () => clearTimeout(timer));
  }

  /** The last frame for a cut stream, or null when the bytes so far end mid-frame. */
  #errorFrame(code: ErrorCode): string | null {
    const ctx = this.#ctx;
    const envelope = ctx.route?.errors ?? "openai";
    const body = errorBody(code, undefined, null, envelope);
    const sse = this.#sse;
    // An edited stream holds back an unfinished event, so the client's bytes end on an event boundary.
    if (this.#drop !== null) {
      if (!this.#drop.atEventEnd()) return null;
    } else if (ctx.responseBytes > 0) {
      const tail = this.#tail.text();
      if (sse ? !SSE_EVENT_END.test(tail) : !tail.endsWith("\n")) return null;
    }
    return sse ? `event: error\ndata: ${body}\n\n` : `${body}\n`;
  }

  #finish(outcome: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#ctx.outcome = this.#ctx.cutReason ?? outcome;
    this.#ctx.res.off("close", this.#onClientClose);
    this.#ctx.res.off("drain", this.#onDrain);
    this.#hooks.finish(this.#ctx);
  }

  readonly #onDrain = (): void => {
    this.#controller?.resume();
  };

  readonly #onClientClose = (): void => {
    if (this.#finished) return;
    if (this.#controller !== null && !this.#controller.aborted) this.#controller.abort(new ClientGone("client closed"));
  };
}

function errorCode(err: Error): ErrorCode {
  if (err instanceof BodyTooLargeError || err.cause instanceof BodyTooLargeError) return "body_too_large";
  if (err instanceof BodyTimeoutError || err.cause instanceof BodyTimeoutError) return "body_timeout";
  const code = (err as { code?: string }).code;
  if (code === "UND_ERR_CONNECT_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") return "upstream_timeout";
  if (tlsFailure(err) !== null) return "upstream_tls_error";
  return "upstream_error";
}

/**
 * Sends the request to the picked target. `body` is the buffered body, the
 * client request itself (streamed) or null; `headers` are already filtered.
 */
export function forward(
  ctx: RequestContext,
  target: PooledTarget,
  path: string,
  headers: string[],
  body: Buffer | Readable | null,
  policy: HeaderPolicy,
  hooks: ForwardHooks,
): void {
  ctx.upstreamStartedAt = performance.now();
  ctx.upstreamId = target.upstream.id;
  const handler = new ProxyHandler(ctx, policy, hooks);
  target.pool.dispatch(
    {
      path: target.target.basePath + path,
      method: ctx.req.method as Dispatcher.HttpMethod,
      headers,
      body,
    },
    handler,
  );
}
