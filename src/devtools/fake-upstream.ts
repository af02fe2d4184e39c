/**
 * A programmable fake LLM backend (OpenAI-compatible, Ollama- and vLLM-shaped)
 * for tests, the benchmark and trying patgate without a model.
 *
 * Plain node:http on purpose: the benchmark measures the gateway, so the fake
 * must cost as little as possible per request. Responses are built once per
 * (shape, model) and cached as Buffers; only small, request-dependent bodies
 * are stringified per request.
 */
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { Busboy } from "@fastify/busboy";
import type { BusboyInstance } from "@fastify/busboy";
import { looksLikePat } from "../tokens/format.ts";

/** How streamed responses are paced: on a timer, or one frame per `FakeStream.release()`. */
export type SseMode = "timed" | "manual";

/** Knobs that can be changed on a running fake with `configure()`. */
export interface FakeUpstreamSettings {
  /** Keep every request in `requests` (the benchmark turns this off). */
  record: boolean;
  /** Added before every response, including overridden routes. */
  latencyMs: number;
  /** Content chunks per streamed completion. */
  sseChunks: number;
  /** Gap between streamed frames in "timed" mode; 0 writes them back to back. */
  sseIntervalMs: number;
  sseMode: SseMode;
}

/** Options for `startFakeUpstream`. */
export interface FakeUpstreamOptions extends Partial<FakeUpstreamSettings> {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Length of every fake embedding vector. */
  embeddingDim?: number;
  /** Model ids listed by /v1/models, /api/tags and /api/ps. */
  models?: readonly string[];
  onRequest?: (req: RecordedRequest) => void;
  /** Serve HTTPS (for TLS and mTLS tests): the URL is then https://localhost:<port>. */
  tls?: FakeTlsOptions;
}

/** The fake's own certificate, and optionally the client certificates it asks for. */
export interface FakeTlsOptions {
  /** PEM certificate chain and key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** CA for client certificates; with it the fake requires one that chains to it (mTLS). */
  clientCa?: string | Buffer;
  /** e.g. "TLSv1.2": in TLS 1.2 a refused client certificate fails the handshake itself. */
  maxVersion?: "TLSv1.2" | "TLSv1.3";
}

/** One request as the fake received it. */
export interface RecordedRequest {
  method: string;
  /** Path including the query string, exactly as sent (not normalised). */
  path: string;
  /**
   * Lower-cased names; repeated headers are joined with ", " (unlike Node's
   * req.headers, which silently drops duplicate Authorization etc.), so a
   * duplicate credential is visible. Null-prototype object.
   */
  headers: Record<string, string>;
  /** Names and values in wire order and case, as Node's `rawHeaders`. */
  rawHeaders: readonly string[];
  /** Complete body, or what arrived before the client went away. */
  body: Buffer;
  /** Epoch milliseconds (fractional) when the request head arrived. */
  receivedAt: number;
  /** The client closed the connection before the response was complete. */
  aborted: boolean;
  /** HTTPS only: the SNI name the client sent, and its certificate's serial number (null: none). */
  tls?: { servername: string | null; clientCertSerial: string | null };
}

/** A streamed response in progress (SSE or NDJSON), obtained from `nextStream()`. */
export interface FakeStream {
  readonly request: RecordedRequest;
  readonly format: "sse" | "ndjson";
  /** Frames in this response: content chunks, the usage chunk if asked for, and `data: [DONE]` where the protocol has one. */
  readonly total: number;
  /** Frames handed to the socket so far. */
  readonly written: number;
  readonly ended: boolean;
  readonly aborted: boolean;
  /** Manual mode: write the next `count` frames (ending the response after the last); resolves with the frames still pending once they are flushed to the socket. */
  release(count?: number): Promise<number>;
  /** Manual mode: write every remaining frame and end the response. */
  releaseAll(): Promise<void>;
  /** Resolves when the client disconnects mid-stream; rejects after `timeoutMs` (default 5000). */
  waitForAbort(timeoutMs?: number): Promise<void>;
  /** Settles once the stream ends normally or is aborted. */
  readonly finished: Promise<"ended" | "aborted">;
}

/** What an overriding route handler gets. */
export interface FakeRouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly recorded: RecordedRequest;
  readonly body: Buffer;
  /** The body parsed as JSON, or undefined if it is not JSON. */
  json(): unknown;
  /** Send a JSON response. */
  send(status: number, body: unknown, headers?: Record<string, string>): void;
  /** Run the built-in behaviour for this request (e.g. after a delay). */
  fallthrough(): Promise<void>;
}

/** Replaces the built-in behaviour of a route; may never respond (to simulate a hang). */
export type FakeRouteHandler = (ctx: FakeRouteContext) => void | Promise<void>;

/** A running fake upstream. */
export interface FakeUpstream {
  /** `http://host:port`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Called once per request when its body is complete (also when `record` is off). */
  onRequest: ((req: RecordedRequest) => void) | undefined;
  readonly settings: Readonly<FakeUpstreamSettings>;
  /** Change settings for requests that arrive from now on. */
  configure(patch: Partial<FakeUpstreamSettings>): void;
  /** Override `method` ("*" for any) on `path` (exact pathname, or a RegExp on it); the latest override wins. Returns a remover. */
  route(method: string, path: string | RegExp, handler: FakeRouteHandler): () => void;
  /** Drop every override. */
  resetRoutes(): void;
  /** The oldest stream not yet handed out, or the next one to start; rejects after `timeoutMs` (default 5000). */
  nextStream(timeoutMs?: number): Promise<FakeStream>;
  /** The first recorded aborted request, or the next request to be aborted; rejects after `timeoutMs` (default 5000). */
  waitForAbort(timeoutMs?: number): Promise<RecordedRequest>;
  /** Forget recorded requests and streams not yet handed out. */
  clear(): void;
  /**
   * Where a recorded request carried something that looks like a PAT (path,
   * a header, the body). The gateway must never forward one: `close()` rejects
   * when this is not empty, so every test that closes its fake asserts it.
   */
  readonly patSightings: readonly string[];
  /** Stop listening and destroy idle and active connections; rejects if a PAT was received (see patSightings). */
  close(): Promise<void>;
  /** Destroy every open connection but keep listening (so the next request needs a new one). */
  dropConnections(): void;
}

/** Prompt tokens reported by every usage block. */
export const FAKE_PROMPT_TOKENS = 12;
/** Assistant text of every non-streamed completion. */
export const FAKE_REPLY = "Hello from the patgate fake upstream.";
const FAKE_REPLY_TOKENS = 7;

/** Text of streamed chunk `i`; the whole streamed reply is `fakeStreamText(n)`. */
export function fakeStreamPiece(i: number): string {
  return `tok${i} `;
}

/** The full text a stream of `chunks` content chunks carries. */
export function fakeStreamText(chunks: number): string {
  let s = "";
  for (let i = 0; i < chunks; i++) s += fakeStreamPiece(i);
  return s;
}

/** The vector every fake embedding carries; values are exact in float32 so base64 round-trips exactly. */
export function fakeEmbeddingVector(dim: number): number[] {
  const v: number[] = [];
  for (let i = 0; i < dim; i++) v.push((i + 1) / 16);
  return v;
}

/** Parse a recorded body as JSON (throws if it is not). */
export function recordedJson(req: RecordedRequest): unknown {
  return JSON.parse(req.body.toString("utf8"));
}

/** Start a fake upstream on 127.0.0.1 (port 0 unless told otherwise). */
export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const fake = new FakeUpstreamServer(opts);
  await fake.listen(opts.port ?? 0, opts.host ?? "127.0.0.1");
  return fake;
}

// ---------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0);
const DEFAULT_WAIT_MS = 5000;
const CACHE_LIMIT = 256;
const JSON_HEADERS = "application/json";

type Json = Record<string, unknown>;

/** Promises waiting for the next value of some kind, each with its own timeout. */
class Waiters<T> {
  #list: Array<{ resolve: (v: T) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];

  wait(timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = {
        resolve,
        reject,
        // A test that waits for something that never happens must fail, not hang.
        timer: setTimeout(() => {
          this.#list = this.#list.filter((e) => e !== entry);
          reject(new Error(`fake upstream: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.#list.push(entry);
    });
  }

  get size(): number {
    return this.#list.length;
  }

  /** Resolve the oldest waiter only. */
  resolveOne(v: T): boolean {
    const e = this.#list.shift();
    if (e === undefined) return false;
    clearTimeout(e.timer);
    e.resolve(v);
    return true;
  }

  resolveAll(v: T): void {
    const list = this.#list;
    this.#list = [];
    for (const e of list) {
      clearTimeout(e.timer);
      e.resolve(v);
    }
  }

  rejectAll(err: Error): void {
    const list = this.#list;
    this.#list = [];
    for (const e of list) {
      clearTimeout(e.timer);
      e.reject(err);
    }
  }
}

/** One request/response pair; fixed shape so the hot path allocates one object. */
class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly recorded: RecordedRequest;
  readonly pathname: string;
  chunks: Buffer[] = [];
  bodyDone = false;
  stream: StreamDriver | undefined = undefined;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.req = req;
    this.res = res;
    const path = req.url ?? "/";
    const q = path.indexOf("?");
    this.pathname = q === -1 ? path : path.slice(0, q);
    this.recorded = {
      method: req.method ?? "GET",
      path,
      headers: headersFromRaw(req.rawHeaders),
      rawHeaders: req.rawHeaders,
      body: EMPTY,
      receivedAt: performance.timeOrigin + performance.now(),
      aborted: false,
    };
    if ((req.socket as Partial<TLSSocket>).encrypted === true) {
      const sock = req.socket as TLSSocket & { servername?: string | false };
      const serial = (sock.getPeerCertificate() as { serialNumber?: string }).serialNumber;
      this.recorded.tls = { servername: typeof sock.servername === "string" ? sock.servername : null, clientCertSerial: serial ?? null };
    }
  }

  get gone(): boolean {
    return this.recorded.aborted || this.res.destroyed;
  }
}

function headersFromRaw(raw: readonly string[]): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? "").toLowerCase();
    const value = raw[i + 1] ?? "";
    const prev = out[name];
    out[name] = prev === undefined ? value : `${prev}, ${value}`;
  }
  return out;
}

/** Drives one streamed response frame by frame, on a timer or on `release()`. */
class StreamDriver implements FakeStream {
  readonly request: RecordedRequest;
  readonly format: "sse" | "ndjson";
  readonly total: number;
  readonly finished: Promise<"ended" | "aborted">;
  written = 0;
  ended = false;
  aborted = false;
  #res: ServerResponse;
  #frames: readonly Buffer[];
  #mode: SseMode;
  #intervalMs: number;
  #timer: NodeJS.Timeout | undefined = undefined;
  #settle!: (v: "ended" | "aborted") => void;
  #abortWaiters = new Waiters<void>();
  #pendingReject: ((e: Error) => void) | undefined = undefined;

  constructor(ex: Exchange, format: "sse" | "ndjson", frames: readonly Buffer[], settings: FakeUpstreamSettings) {
    this.request = ex.recorded;
    this.format = format;
    this.total = frames.length;
    this.#res = ex.res;
    this.#frames = frames;
    this.#mode = settings.sseMode;
    this.#intervalMs = settings.sseIntervalMs;
    this.finished = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  start(): void {
    const res = this.#res;
    res.writeHead(200, [
      "content-type",
      this.format === "sse" ? "text/event-stream; charset=utf-8" : "application/x-ndjson",
      "cache-control",
      "no-cache",
    ]);
    if (this.#mode === "manual") {
      // Headers now, so the client's request resolves before any chunk exists.
      res.flushHeaders();
      return;
    }
    if (this.#intervalMs <= 0) {
      while (!this.ended && !this.aborted) this.#writeNext(undefined);
      return;
    }
    this.#tick();
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    if (this.aborted || this.ended) return;
    this.#writeNext(undefined);
    if (!this.ended) this.#timer = setTimeout(this.#tick, this.#intervalMs);
  };

  /** Writes one frame (ending the response after the last); `cb` runs once it is flushed. */
  #writeNext(cb: ((err?: Error | null) => void) | undefined): void {
    const frame = this.#frames[this.written];
    if (frame === undefined) return;
    this.written++;
    if (this.written === this.total) {
      this.ended = true;
      this.#res.end(frame, cb);
      this.#settle("ended");
    } else if (cb === undefined) {
      this.#res.write(frame);
    } else {
      this.#res.write(frame, cb);
    }
  }

  release(count = 1): Promise<number> {
    // count < 1 still writes one frame: a release that writes nothing would prove nothing.
    if (this.#mode !== "manual") return Promise.reject(new Error("fake upstream: release() needs sseMode 'manual'"));
    if (this.aborted) return Promise.reject(new Error("fake upstream: stream was aborted by the client"));
    if (this.#pendingReject !== undefined) return Promise.reject(new Error("fake upstream: await the previous release() first"));
    if (this.ended) return Promise.resolve(0);
    return new Promise<number>((resolve, reject) => {
      this.#pendingReject = reject;
      const done = (err?: Error | null): void => {
        this.#pendingReject = undefined;
        if (err) reject(err);
        else resolve(this.total - this.written);
      };
      for (let i = 1; i < count && this.written < this.total - 1; i++) this.#writeNext(undefined);
      this.#writeNext(done);
    });
  }

  async releaseAll(): Promise<void> {
    await this.release(this.total - this.written);
  }

  waitForAbort(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (this.aborted) return Promise.resolve();
    return this.#abortWaiters.wait(timeoutMs, "the client to abort the stream");
  }

  /** The client went away (or the fake is closing): stop writing. */
  onAbort(): void {
    if (this.ended || this.aborted) return;
    this.aborted = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pendingReject?.(new Error("fake upstream: stream was aborted by the client"));
    this.#pendingReject = undefined;
    this.#settle("aborted");
    this.#abortWaiters.resolveAll();
  }

  /** Dispose timers when the server closes without the socket having closed yet. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abortWaiters.rejectAll(new Error("fake upstream closed"));
  }
}

interface Override {
  method: string;
  path: string | RegExp;
  handler: FakeRouteHandler;
}

type Builtin = (fake: FakeUpstreamServer, ex: Exchange) => void;

class FakeUpstreamServer implements FakeUpstream {
  url = "";
  port = 0;
  readonly requests: RecordedRequest[] = [];
  readonly patSightings: string[] = [];
  onRequest: ((req: RecordedRequest) => void) | undefined;
  readonly settings: FakeUpstreamSettings;
  readonly models: readonly string[];
  readonly embeddingDim: number;
  /** Unix seconds / ISO time stamped into every response: fixed so bodies can be cached. */
  readonly created = Math.floor(Date.now() / 1000);
  readonly createdIso = new Date().toISOString();
  readonly embeddingJson: string;
  readonly embeddingBase64: string;
  readonly cache = new Map<string, Buffer | Buffer[]>();
  #server: Server | HttpsServer;
  #overrides: Override[] = [];
  #pendingStreams: StreamDriver[] = [];
  #streamWaiters = new Waiters<StreamDriver>();
  #abortWaiters = new Waiters<RecordedRequest>();
  #live = new Set<StreamDriver>();
  #closed = false;
  readonly #tls: boolean;

  constructor(opts: FakeUpstreamOptions) {
    this.settings = {
      record: opts.record ?? true,
      latencyMs: opts.latencyMs ?? 0,
      sseChunks: opts.sseChunks ?? 5,
      sseIntervalMs: opts.sseIntervalMs ?? 20,
      sseMode: opts.sseMode ?? "timed",
    };
    this.onRequest = opts.onRequest;
    this.models = opts.models ?? ["fake-model", "fake-embed", "whisper-1"];
    this.embeddingDim = opts.embeddingDim ?? 8;
    const vec = fakeEmbeddingVector(this.embeddingDim);
    this.embeddingJson = JSON.stringify(vec);
    this.embeddingBase64 = Buffer.from(new Float32Array(vec).buffer).toString("base64");
    const t = opts.tls;
    this.#tls = t !== undefined;
    this.#server =
      t === undefined
        ? createServer(this.#handle)
        : createHttpsServer(
            {
              cert: t.cert,
              key: t.key,
              ...(t.clientCa === undefined ? {} : { ca: t.clientCa, requestCert: true, rejectUnauthorized: true }),
              ...(t.maxVersion === undefined ? {} : { maxVersion: t.maxVersion }),
            },
            this.#handle,
          );
  }

  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        const addr = this.#server.address() as AddressInfo;
        this.port = addr.port;
        const h = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
        // A certificate names a host, rarely an address: HTTPS fakes are reached by name.
        this.url = this.#tls ? `https://localhost:${addr.port}` : `http://${h}:${addr.port}`;
        resolve();
      });
    });
  }

  configure(patch: Partial<FakeUpstreamSettings>): void {
    Object.assign(this.settings, patch);
    this.cache.clear();
  }

  route(method: string, path: string | RegExp, handler: FakeRouteHandler): () => void {
    const o: Override = { method: method.toUpperCase(), path, handler };
    this.#overrides.push(o);
    return () => {
      this.#overrides = this.#overrides.filter((x) => x !== o);
    };
  }

  resetRoutes(): void {
    this.#overrides = [];
  }

  nextStream(timeoutMs = DEFAULT_WAIT_MS): Promise<FakeStream> {
    const s = this.#pendingStreams.shift();
    if (s !== undefined) return Promise.resolve(s);
    return this.#streamWaiters.wait(timeoutMs, "a streamed response to start");
  }

  waitForAbort(timeoutMs = DEFAULT_WAIT_MS): Promise<RecordedRequest> {
    const r = this.requests.find((x) => x.aborted);
    if (r !== undefined) return Promise.resolve(r);
    return this.#abortWaiters.wait(timeoutMs, "a client to abort a request");
  }

  clear(): void {
    this.requests.length = 0;
    this.#pendingStreams = [];
  }

  #lookForPats(r: RecordedRequest): void {
    const at = `${r.method} ${r.path.slice(0, 80)}`;
    if (looksLikePat(r.path)) this.patSightings.push(`${at}: in the path`);
    for (let i = 0; i < r.rawHeaders.length; i += 2) {
      if (looksLikePat(r.rawHeaders[i + 1] ?? "")) this.patSightings.push(`${at}: in header ${r.rawHeaders[i] ?? ""}`);
    }
    if (r.body.length > 0 && r.body.includes("pat") && looksLikePat(r.body.toString("latin1"))) this.patSightings.push(`${at}: in the body`);
  }

  dropConnections(): void {
    this.#server.closeAllConnections();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.patSightings.length > 0) {
      const seen = this.patSightings.slice(0, 5).join("; ");
      return this.#shut().then(() => Promise.reject(new Error(`fake upstream received something that looks like a PAT: ${seen}`)));
    }
    return this.#shut();
  }

  #shut(): Promise<void> {
    const closed = new Error("fake upstream closed");
    this.#streamWaiters.rejectAll(closed);
    this.#abortWaiters.rejectAll(closed);
    return new Promise((resolve) => {
      this.#server.close(() => {
        resolve();
      });
      // close() alone waits for keep-alive and hung requests: never let a test hang on that.
      this.#server.closeAllConnections();
      for (const s of this.#live) s.dispose();
      this.#live.clear();
    });
  }

  /** Starts a streamed response and makes it available to `nextStream()`. */
  stream(ex: Exchange, format: "sse" | "ndjson", frames: readonly Buffer[]): void {
    const s = new StreamDriver(ex, format, frames, this.settings);
    ex.stream = s;
    if (this.settings.record || this.#streamWaiters.size > 0) {
      this.#live.add(s);
      // `finished` never rejects.
      void s.finished.then(() => this.#live.delete(s));
      if (!this.#streamWaiters.resolveOne(s)) this.#pendingStreams.push(s);
    }
    s.start();
  }

  readonly #handle = (req: IncomingMessage, res: ServerResponse): void => {
    const ex = new Exchange(req, res);
    res.on("close", () => {
      this.#onClose(ex);
    });
    req.on("data", (c: Buffer) => {
      ex.chunks.push(c);
    });
    req.on("end", () => {
      this.#onBody(ex);
    });
  };

  #onBody(ex: Exchange): void {
    ex.bodyDone = true;
    const c = ex.chunks;
    ex.recorded.body = c.length === 0 ? EMPTY : c.length === 1 ? (c[0] as Buffer) : Buffer.concat(c);
    ex.chunks = [];
    if (this.settings.record) {
      this.requests.push(ex.recorded);
      this.#lookForPats(ex.recorded);
    }
    this.onRequest?.(ex.recorded);
    const latency = this.settings.latencyMs;
    if (latency > 0) {
      setTimeout(() => {
        this.#dispatch(ex);
      }, latency);
    } else {
      this.#dispatch(ex);
    }
  }

  #onClose(ex: Exchange): void {
    if (ex.res.writableFinished) return;
    ex.recorded.aborted = true;
    if (!ex.bodyDone) {
      // Aborted mid-upload: still worth recording, with what did arrive.
      ex.bodyDone = true;
      ex.recorded.body = Buffer.concat(ex.chunks);
      ex.chunks = [];
      if (this.settings.record) this.requests.push(ex.recorded);
    }
    ex.stream?.onAbort();
    this.#abortWaiters.resolveAll(ex.recorded);
  }

  #dispatch(ex: Exchange): void {
    if (ex.gone) return;
    const method = ex.recorded.method;
    for (let i = this.#overrides.length - 1; i >= 0; i--) {
      const o = this.#overrides[i] as Override;
      if (o.method !== "*" && o.method !== method) continue;
      if (typeof o.path === "string" ? o.path !== ex.pathname : !o.path.test(ex.pathname)) continue;
      this.#runOverride(o, ex);
      return;
    }
    this.#builtin(ex);
  }

  #runOverride(o: Override, ex: Exchange): void {
    const ctx: FakeRouteContext = {
      req: ex.req,
      res: ex.res,
      recorded: ex.recorded,
      body: ex.recorded.body,
      json: () => parseJson(ex.recorded.body),
      send: (status, body, headers) => {
        const buf = Buffer.from(JSON.stringify(body));
        ex.res.writeHead(status, { "content-type": JSON_HEADERS, "content-length": String(buf.length), ...headers });
        ex.res.end(buf);
      },
      fallthrough: () => {
        this.#builtin(ex);
        return Promise.resolve();
      },
    };
    let out: void | Promise<void>;
    try {
      out = o.handler(ctx);
    } catch (err) {
      handlerFailed(ex, err);
      return;
    }
    if (out instanceof Promise) {
      out.catch((err: unknown) => {
        handlerFailed(ex, err);
      });
    }
  }

  #builtin(ex: Exchange): void {
    if (ex.gone) return;
    const p = ex.pathname;
    let methods = BUILTINS.get(p);
    if (methods === undefined && p.startsWith("/v1/models/") && p.length > "/v1/models/".length) {
      methods = MODEL_RETRIEVE;
    }
    if (methods === undefined) {
      sendError(ex, 404, `fake upstream: no route for ${ex.recorded.method} ${p}`, "not_found");
      return;
    }
    const fn = methods.get(ex.recorded.method);
    if (fn === undefined) {
      sendError(ex, 405, `fake upstream: ${ex.recorded.method} not allowed on ${p}`, "method_not_allowed");
      return;
    }
    fn(this, ex);
  }

  /** A cached Buffer for `key`, built once by `build`. */
  cached(key: string, build: () => Buffer): Buffer {
    let b = this.cache.get(key);
    if (b === undefined) {
      // Model names come from clients: bound the cache instead of trusting them.
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      b = build();
      this.cache.set(key, b);
    }
    return b as Buffer;
  }

  cachedFrames(key: string, build: () => Buffer[]): Buffer[] {
    let b = this.cache.get(key);
    if (b === undefined) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      b = build();
      this.cache.set(key, b);
    }
    return b as Buffer[];
  }
}

function handlerFailed(ex: Exchange, err: unknown): void {
  if (ex.gone) return;
  if (ex.res.headersSent) {
    ex.res.destroy();
    return;
  }
  sendError(ex, 500, `fake upstream: route handler threw: ${String(err)}`, "handler_error", "server_error");
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}

// --- responses --------------------------------------------------------------

function sendBuffer(ex: Exchange, status: number, contentType: string, buf: Buffer): void {
  ex.res.writeHead(status, ["content-type", contentType, "content-length", String(buf.length)]);
  ex.res.end(buf);
}

function sendJson(ex: Exchange, status: number, body: unknown): void {
  sendBuffer(ex, status, JSON_HEADERS, Buffer.from(JSON.stringify(body)));
}

function isOllama(ex: Exchange): boolean {
  return ex.pathname.startsWith("/api/");
}

/** Error in the backend's own envelope: Ollama's `{error: string}`, otherwise OpenAI's. */
function sendError(ex: Exchange, status: number, message: string, code: string, type = "invalid_request_error"): void {
  if (isOllama(ex)) {
    sendJson(ex, status, { error: message });
    return;
  }
  sendJson(ex, status, { error: { message, type, code, param: null } });
}

/** The body as a JSON object, or undefined after answering 400. */
function jsonBody(ex: Exchange): Json | undefined {
  const body = ex.recorded.body;
  if (body.length === 0) {
    sendError(ex, 400, "fake upstream: a JSON body is required", "bad_json");
    return undefined;
  }
  const v = parseJson(body);
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    sendError(ex, 400, "fake upstream: the body is not a JSON object", "bad_json");
    return undefined;
  }
  return v as Json;
}

/** The `model` (or Ollama's legacy `name`) field, or undefined after answering 400. */
function requireModel(ex: Exchange, b: Json): string | undefined {
  const m = b["model"] ?? (isOllama(ex) ? b["name"] : undefined);
  if (typeof m !== "string" || m === "") {
    sendError(ex, 400, "fake upstream: you must provide a model parameter", "missing_model");
    return undefined;
  }
  return m;
}

function optionalModel(b: Json): string {
  const m = b["model"];
  return typeof m === "string" && m !== "" ? m : "fake-model";
}

function sseFrame(obj: unknown): Buffer {
  return Buffer.from(`data: ${JSON.stringify(obj)}\n\n`);
}

function sseEvent(event: string, obj: unknown): Buffer {
  return Buffer.from(`event: ${event}\ndata: ${JSON.stringify(obj)}\n\n`);
}

function ndjsonLine(obj: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(obj)}\n`);
}

const SSE_DONE = Buffer.from("data: [DONE]\n\n");

function wantsUsage(b: Json): boolean {
  const so = b["stream_options"];
  return typeof so === "object" && so !== null && (so as Json)["include_usage"] === true;
}

function usage(completion: number): Json {
  return { prompt_tokens: FAKE_PROMPT_TOKENS, completion_tokens: completion, total_tokens: FAKE_PROMPT_TOKENS + completion };
}

/**
 * How many tokens (one per streamed chunk) a reply may have: `n`, or less when
 * the request caps its output (the first of `fields` present; Ollama's
 * `options.num_predict` with `ollama`), as a real model stops at its cap.
 */
function capped(n: number, b: Json, fields: readonly string[], ollama = false): number {
  const src = ollama ? (b["options"] as Json | undefined) : b;
  for (const f of ollama ? ["num_predict"] : fields) {
    const v = src?.[f];
    if (typeof v === "number" && Number.isInteger(v) && v >= 0) return Math.min(n, v);
  }
  return n;
}

/** Number of inputs in an OpenAI/Ollama `input` (string, string[], token ids, token id lists). */
function inputCount(input: unknown): number {
  if (Array.isArray(input)) return input.length > 0 && typeof input[0] === "number" ? 1 : input.length;
  return 1;
}

// --- OpenAI-compatible ------------------------------------------------------

const chatCompletions: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const model = requireModel(ex, b);
  if (model === undefined) return;
  const { created } = fake;
  if (b["stream"] === true) {
    const n = capped(fake.settings.sseChunks, b, ["max_completion_tokens", "max_tokens"]);
    const withUsage = wantsUsage(b);
    const frames = fake.cachedFrames(`chat-sse\0${model}\0${withUsage}\0${n}`, () => {
      const out: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const chunk: Json = {
          id: "chatcmpl-fake",
          object: "chat.completion.chunk",
          created,
          model,
          system_fingerprint: "fp_fake",
          choices: [
            {
              index: 0,
              delta: i === 0 ? { role: "assistant", content: fakeStreamPiece(i) } : { content: fakeStreamPiece(i) },
              logprobs: null,
              finish_reason: i === n - 1 ? "stop" : null,
            },
          ],
        };
        if (withUsage) chunk["usage"] = null;
        out.push(sseFrame(chunk));
      }
      // The usage chunk is no token: it comes with the end, not one pace later (as OpenAI sends it).
      out.push(withUsage ? Buffer.concat([sseFrame({ id: "chatcmpl-fake", object: "chat.completion.chunk", created, model, system_fingerprint: "fp_fake", choices: [], usage: usage(n) }), SSE_DONE]) : SSE_DONE);
      return out;
    });
    fake.stream(ex, "sse", frames);
    return;
  }
  const buf = fake.cached(`chat\0${model}`, () =>
    Buffer.from(
      JSON.stringify({
        id: "chatcmpl-fake",
        object: "chat.completion",
        created,
        model,
        system_fingerprint: "fp_fake",
        choices: [{ index: 0, message: { role: "assistant", content: FAKE_REPLY, refusal: null }, logprobs: null, finish_reason: "stop" }],
        usage: usage(FAKE_REPLY_TOKENS),
      }),
    ),
  );
  sendBuffer(ex, 200, JSON_HEADERS, buf);
};

const completions: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const model = requireModel(ex, b);
  if (model === undefined) return;
  const { created } = fake;
  if (b["stream"] === true) {
    const n = capped(fake.settings.sseChunks, b, ["max_tokens"]);
    const withUsage = wantsUsage(b);
    const frames = fake.cachedFrames(`cmpl-sse\0${model}\0${withUsage}\0${n}`, () => {
      const out: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        out.push(
          sseFrame({
            id: "cmpl-fake",
            object: "text_completion",
            created,
            model,
            choices: [{ text: fakeStreamPiece(i), index: 0, logprobs: null, finish_reason: i === n - 1 ? "stop" : null }],
          }),
        );
      }
      out.push(withUsage ? Buffer.concat([sseFrame({ id: "cmpl-fake", object: "text_completion", created, model, choices: [], usage: usage(n) }), SSE_DONE]) : SSE_DONE);
      return out;
    });
    fake.stream(ex, "sse", frames);
    return;
  }
  const buf = fake.cached(`cmpl\0${model}`, () =>
    Buffer.from(
      JSON.stringify({
        id: "cmpl-fake",
        object: "text_completion",
        created,
        model,
        choices: [{ text: FAKE_REPLY, index: 0, logprobs: null, finish_reason: "stop" }],
        usage: usage(FAKE_REPLY_TOKENS),
      }),
    ),
  );
  sendBuffer(ex, 200, JSON_HEADERS, buf);
};

const embeddings: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const model = requireModel(ex, b);
  if (model === undefined) return;
  if (b["input"] === undefined) {
    sendError(ex, 400, "fake upstream: 'input' is required", "missing_input");
    return;
  }
  const n = inputCount(b["input"]);
  // The official SDK asks for base64 unless told otherwise, then decodes little-endian float32.
  const base64 = b["encoding_format"] === "base64";
  const buf = fake.cached(`emb\0${model}\0${n}\0${base64}`, () => {
    const vec = base64 ? JSON.stringify(fake.embeddingBase64) : fake.embeddingJson;
    const items: string[] = [];
    for (let i = 0; i < n; i++) items.push(`{"object":"embedding","index":${i},"embedding":${vec}}`);
    const tokens = 4 * n;
    return Buffer.from(
      `{"object":"list","data":[${items.join(",")}],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${tokens},"total_tokens":${tokens}}}`,
    );
  });
  sendBuffer(ex, 200, JSON_HEADERS, buf);
};

function modelObject(fake: FakeUpstreamServer, id: string): Json {
  return { id, object: "model", created: fake.created, owned_by: "fake-upstream" };
}

const listModels: Builtin = (fake, ex) => {
  const buf = fake.cached("models", () =>
    Buffer.from(JSON.stringify({ object: "list", data: fake.models.map((m) => modelObject(fake, m)) })),
  );
  sendBuffer(ex, 200, JSON_HEADERS, buf);
};

const retrieveModel: Builtin = (fake, ex) => {
  // Ids may contain '/', sent raw or percent-encoded (the SDK encodes them): accept both.
  const raw = ex.pathname.slice("/v1/models/".length);
  let id = raw;
  try {
    id = decodeURIComponent(raw);
  } catch {
    // Not valid percent-encoding: echo it as sent.
  }
  sendJson(ex, 200, modelObject(fake, id));
};

function audio(task: "transcription" | "translation"): Builtin {
  return (_fake, ex) => {
    const ct = ex.req.headers["content-type"];
    if (ct === undefined || !ct.toLowerCase().startsWith("multipart/form-data")) {
      sendError(ex, 400, `fake upstream: expected multipart/form-data, got ${ct ?? "no content-type"}`, "bad_content_type");
      return;
    }
    const fields = new Map<string, string>();
    let fileName: string | undefined;
    let fileSize = 0;
    let failed = false;
    const fail = (msg: string): void => {
      if (failed) return;
      failed = true;
      sendError(ex, 400, `fake upstream: bad multipart body: ${msg}`, "bad_multipart");
    };
    let bb: BusboyInstance;
    try {
      bb = Busboy({ headers: { "content-type": ct } });
    } catch (err) {
      fail(String(err));
      return;
    }
    bb.on("field", (name, value) => {
      fields.set(name, value);
    });
    bb.on("file", (name, stream, filename) => {
      if (name === "file") fileName = filename;
      stream.on("data", (c: Buffer) => {
        if (name === "file") fileSize += c.length;
      });
    });
    bb.on("error", (err) => {
      fail(String(err));
    });
    bb.on("finish", () => {
      if (failed) return;
      const model = fields.get("model");
      if (model === undefined || model === "") {
        fail("missing 'model' field");
        return;
      }
      if (fileName === undefined) {
        fail("missing 'file' part");
        return;
      }
      const text = `fake ${task} of ${fileName} (${fileSize} bytes) by ${model}`;
      const format = fields.get("response_format") ?? "json";
      if (format === "text" || format === "srt" || format === "vtt") {
        sendBuffer(ex, 200, "text/plain; charset=utf-8", Buffer.from(text));
      } else if (format === "verbose_json") {
        sendJson(ex, 200, { task, language: fields.get("language") ?? "english", duration: 1.0, text, segments: [] });
      } else {
        sendJson(ex, 200, { text });
      }
    });
    bb.end(ex.recorded.body);
  };
}

function responseObject(fake: FakeUpstreamServer, model: string, status: string, text: string, outTokens: number): Json {
  return {
    id: "resp_fake",
    object: "response",
    created_at: fake.created,
    status,
    error: null,
    incomplete_details: null,
    model,
    output:
      status === "completed"
        ? [
            {
              type: "message",
              id: "msg_fake",
              status: "completed",
              role: "assistant",
              content: [{ type: "output_text", text, annotations: [] }],
            },
          ]
        : [],
    parallel_tool_calls: true,
    tool_choice: "auto",
    tools: [],
    usage:
      status === "completed"
        ? {
            input_tokens: FAKE_PROMPT_TOKENS,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: outTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: FAKE_PROMPT_TOKENS + outTokens,
          }
        : null,
  };
}

const responses: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const model = requireModel(ex, b);
  if (model === undefined) return;
  if (b["stream"] === true) {
    const n = capped(fake.settings.sseChunks, b, ["max_output_tokens"]);
    const frames = fake.cachedFrames(`resp-sse\0${model}\0${n}`, () => {
      const out: Buffer[] = [sseEvent("response.created", { type: "response.created", sequence_number: 0, response: responseObject(fake, model, "in_progress", "", 0) })];
      for (let i = 0; i < n; i++) {
        out.push(
          sseEvent("response.output_text.delta", {
            type: "response.output_text.delta",
            sequence_number: i + 1,
            item_id: "msg_fake",
            output_index: 0,
            content_index: 0,
            delta: fakeStreamPiece(i),
            logprobs: [],
          }),
        );
      }
      out.push(
        sseEvent("response.completed", {
          type: "response.completed",
          sequence_number: n + 1,
          response: responseObject(fake, model, "completed", fakeStreamText(n), n),
        }),
      );
      return out;
    });
    fake.stream(ex, "sse", frames);
    return;
  }
  const buf = fake.cached(`resp\0${model}`, () =>
    Buffer.from(JSON.stringify(responseObject(fake, model, "completed", FAKE_REPLY, FAKE_REPLY_TOKENS))),
  );
  sendBuffer(ex, 200, JSON_HEADERS, buf);
};

// --- Ollama -----------------------------------------------------------------

const OLLAMA_DETAILS = { parent_model: "", format: "gguf", family: "fake", families: ["fake"], parameter_size: "1B", quantization_level: "Q4_0" };

function ollamaTimings(evalCount: number): Json {
  return {
    total_duration: 1_000_000,
    load_duration: 100_000,
    prompt_eval_count: FAKE_PROMPT_TOKENS,
    prompt_eval_duration: 200_000,
    eval_count: evalCount,
    eval_duration: 700_000,
  };
}

/** Ollama streams unless `stream` is exactly false. */
function ollamaStreams(b: Json): boolean {
  return b["stream"] !== false;
}

function ollamaGenerative(kind: "chat" | "generate"): Builtin {
  return (fake, ex) => {
    const b = jsonBody(ex);
    if (b === undefined) return;
    const model = requireModel(ex, b);
    if (model === undefined) return;
    const at = fake.createdIso;
    const piece = (text: string): Json =>
      kind === "chat" ? { message: { role: "assistant", content: text } } : { response: text };
    const tail = (n: number): Json => (kind === "chat" ? ollamaTimings(n) : { context: [1, 2, 3], ...ollamaTimings(n) });
    if (ollamaStreams(b)) {
      const n = capped(fake.settings.sseChunks, b, [], true);
      const frames = fake.cachedFrames(`ollama-${kind}-stream\0${model}\0${n}`, () => {
        const out: Buffer[] = [];
        for (let i = 0; i < n; i++) out.push(ndjsonLine({ model, created_at: at, ...piece(fakeStreamPiece(i)), done: false }));
        out.push(ndjsonLine({ model, created_at: at, ...piece(""), done: true, done_reason: "stop", ...tail(n) }));
        return out;
      });
      fake.stream(ex, "ndjson", frames);
      return;
    }
    const buf = fake.cached(`ollama-${kind}\0${model}`, () =>
      Buffer.from(
        JSON.stringify({ model, created_at: at, ...piece(FAKE_REPLY), done: true, done_reason: "stop", ...tail(FAKE_REPLY_TOKENS) }),
      ),
    );
    sendBuffer(ex, 200, JSON_HEADERS, buf);
  };
}

const ollamaEmbed: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const model = requireModel(ex, b);
  if (model === undefined) return;
  const n = inputCount(b["input"] ?? "");
  const buf = fake.cached(`ollama-embed\0${model}\0${n}`, () => {
    const rows: string[] = [];
    for (let i = 0; i < n; i++) rows.push(fake.embeddingJson);
    return Buffer.from(
      `{"model":${JSON.stringify(model)},"embeddings":[${rows.join(",")}],"total_duration":1000000,"load_duration":100000,"prompt_eval_count":${4 * n}}`,
    );
  });
  sendBuffer(ex, 200, JSON_HEADERS, buf);
};

const ollamaEmbeddings: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  if (requireModel(ex, b) === undefined) return;
  sendBuffer(ex, 200, JSON_HEADERS, fake.cached("ollama-embeddings", () => Buffer.from(`{"embedding":${fake.embeddingJson}}`)));
};

function ollamaModelEntry(fake: FakeUpstreamServer, name: string): Json {
  return { name, model: name, modified_at: fake.createdIso, size: 1_000_000, digest: "sha256:fake", details: OLLAMA_DETAILS };
}

const ollamaTags: Builtin = (fake, ex) => {
  const buf = fake.cached("ollama-tags", () =>
    Buffer.from(JSON.stringify({ models: fake.models.map((m) => ollamaModelEntry(fake, m)) })),
  );
  sendBuffer(ex, 200, JSON_HEADERS, buf);
};

const ollamaPs: Builtin = (fake, ex) => {
  const buf = fake.cached("ollama-ps", () =>
    Buffer.from(
      JSON.stringify({
        models: fake.models.slice(0, 1).map((m) => ({ ...ollamaModelEntry(fake, m), expires_at: fake.createdIso, size_vram: 1_000_000 })),
      }),
    ),
  );
  sendBuffer(ex, 200, JSON_HEADERS, buf);
};

const ollamaShow: Builtin = (_fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const model = requireModel(ex, b);
  if (model === undefined) return;
  sendJson(ex, 200, {
    modelfile: `FROM ${model}`,
    parameters: "",
    template: "{{ .Prompt }}",
    details: OLLAMA_DETAILS,
    model_info: { "general.architecture": "fake", "general.name": model },
    capabilities: ["completion"],
  });
};

const ollamaVersion: Builtin = (_fake, ex) => {
  sendJson(ex, 200, { version: "0.0.0-fake" });
};

/** pull / push / create: a few progress lines then success, streamed unless `stream: false`. */
function ollamaProgress(statuses: readonly string[]): Builtin {
  return (fake, ex) => {
    const b = jsonBody(ex);
    if (b === undefined) return;
    if (requireModel(ex, b) === undefined) return;
    if (!ollamaStreams(b)) {
      sendJson(ex, 200, { status: "success" });
      return;
    }
    fake.stream(
      ex,
      "ndjson",
      statuses.map((status) => ndjsonLine({ status })),
    );
  };
}

const ollamaCopy: Builtin = (_fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  if (typeof b["source"] !== "string" || typeof b["destination"] !== "string") {
    sendError(ex, 400, "fake upstream: 'source' and 'destination' are required", "bad_request");
    return;
  }
  sendBuffer(ex, 200, JSON_HEADERS, EMPTY);
};

const ollamaDelete: Builtin = (_fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  if (requireModel(ex, b) === undefined) return;
  sendBuffer(ex, 200, JSON_HEADERS, EMPTY);
};

// --- vLLM -------------------------------------------------------------------

function words(s: unknown): string[] {
  return typeof s === "string" ? s.split(/\s+/).filter((w) => w !== "") : [];
}

const tokenize: Builtin = (_fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  let text = typeof b["prompt"] === "string" ? b["prompt"] : "";
  const messages = b["messages"];
  if (Array.isArray(messages)) {
    for (const m of messages as unknown[]) {
      const content = typeof m === "object" && m !== null ? (m as Json)["content"] : undefined;
      if (typeof content === "string") text += ` ${content}`;
    }
  }
  const tokens = words(text).map((_, i) => 100 + i);
  sendJson(ex, 200, { count: tokens.length, max_model_len: 4096, tokens });
};

const detokenize: Builtin = (_fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const tokens = Array.isArray(b["tokens"]) ? (b["tokens"] as unknown[]) : [];
  sendJson(ex, 200, { prompt: tokens.map((t) => `tok${String(t)}`).join(" ") });
};

function listEnvelope(fake: FakeUpstreamServer, model: string, data: unknown[], tokens: number): Json {
  return {
    id: "fake-list",
    object: "list",
    created: fake.created,
    model,
    data,
    usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0 },
  };
}

const pooling: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const n = inputCount(b["input"] ?? "");
  const vec = fakeEmbeddingVector(fake.embeddingDim);
  const data = Array.from({ length: n }, (_, index) => ({ index, object: "pooling", data: vec }));
  sendJson(ex, 200, listEnvelope(fake, optionalModel(b), data, 4 * n));
};

const classify: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const n = inputCount(b["input"] ?? "");
  const data = Array.from({ length: n }, (_, index) => ({ index, label: "positive", probs: [0.75, 0.25], num_classes: 2 }));
  sendJson(ex, 200, listEnvelope(fake, optionalModel(b), data, 4 * n));
};

const score: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const t2 = b["text_2"] ?? b["documents"];
  const n = Array.isArray(t2) ? t2.length : 1;
  const data = Array.from({ length: n }, (_, index) => ({ index, object: "score", score: 1 / (index + 2) }));
  sendJson(ex, 200, listEnvelope(fake, optionalModel(b), data, 8 * n));
};

const rerank: Builtin = (fake, ex) => {
  const b = jsonBody(ex);
  if (b === undefined) return;
  const docs = Array.isArray(b["documents"]) ? (b["documents"] as unknown[]) : [];
  const topN = typeof b["top_n"] === "number" ? b["top_n"] : docs.length;
  // Earlier documents score higher, so results are already in rank order.
  const results = docs.slice(0, topN).map((d, index) => ({
    index,
    document: { text: typeof d === "string" ? d : JSON.stringify(d) },
    relevance_score: 1 / (index + 2),
  }));
  sendJson(ex, 200, { id: "rerank-fake", model: optionalModel(b), usage: { total_tokens: 8 * docs.length }, results });
};

// --- route table --------------------------------------------------------------

function methods(entries: Record<string, Builtin>): Map<string, Builtin> {
  return new Map(Object.entries(entries));
}

const MODEL_RETRIEVE = methods({ GET: retrieveModel });

/** Built once: pathname → method → handler. */
const BUILTINS = new Map<string, Map<string, Builtin>>([
  ["/v1/chat/completions", methods({ POST: chatCompletions })],
  ["/v1/completions", methods({ POST: completions })],
  ["/v1/embeddings", methods({ POST: embeddings })],
  ["/v1/models", methods({ GET: listModels })],
  ["/v1/audio/transcriptions", methods({ POST: audio("transcription") })],
  ["/v1/audio/translations", methods({ POST: audio("translation") })],
  ["/v1/responses", methods({ POST: responses })],
  ["/api/chat", methods({ POST: ollamaGenerative("chat") })],
  ["/api/generate", methods({ POST: ollamaGenerative("generate") })],
  ["/api/embed", methods({ POST: ollamaEmbed })],
  ["/api/embeddings", methods({ POST: ollamaEmbeddings })],
  ["/api/tags", methods({ GET: ollamaTags })],
  ["/api/show", methods({ POST: ollamaShow })],
  ["/api/ps", methods({ GET: ollamaPs })],
  ["/api/version", methods({ GET: ollamaVersion })],
  ["/api/pull", methods({ POST: ollamaProgress(["pulling manifest", "downloading", "verifying sha256 digest", "writing manifest", "success"]) })],
  ["/api/push", methods({ POST: ollamaProgress(["retrieving manifest", "pushing", "pushing manifest", "success"]) })],
  ["/api/create", methods({ POST: ollamaProgress(["reading model metadata", "creating system layer", "writing manifest", "success"]) })],
  ["/api/copy", methods({ POST: ollamaCopy })],
  ["/api/delete", methods({ DELETE: ollamaDelete })],
  ["/tokenize", methods({ POST: tokenize })],
  ["/detokenize", methods({ POST: detokenize })],
  ["/pooling", methods({ POST: pooling })],
  ["/classify", methods({ POST: classify })],
  ["/score", methods({ POST: score })],
  ["/v1/score", methods({ POST: score })],
  ["/rerank", methods({ POST: rerank })],
  ["/v1/rerank", methods({ POST: rerank })],
]);
