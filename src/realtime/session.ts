/**
 * Realtime sessions: an authorized upgrade becomes two WebSockets, the
 * client's (accepted here) and the gateway's own to the upstream, relayed
 * frame by frame.
 *
 * Frames, not bytes, because the gateway must read some (a `session.update`
 * names a model, which is checked against the scopes like the URL's; a
 * `response.done` reports usage) and write one (the Realtime `error` event
 * before it closes a session it no longer allows). So this is `ws`, not a
 * byte pipe such as http-proxy-3's `ws()`, which passes the upgraded socket
 * through unread (docs/realtime.md says more).
 *
 * - Client frames are queued until the upstream is open, and while a frame's
 *   check waits on the store; each goes on in order.
 * - Backpressure: a side whose socket holds more than `realtime.max_buffered`
 *   unsent bytes pauses the other side's reading (and so, by TCP, its sender);
 *   the queue towards a connecting upstream is bounded the same way.
 * - Close codes pass both ways (codes that may not be sent become 1000 / 1011).
 * - The gateway's own ends: a change or the token's deadline (policy/streams.ts,
 *   as for HTTP streams) → `error` event, close 1008; idle and maximum session
 *   times → `error` event, close 1000; shutdown → close 1001.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import type { RealtimeSettings } from "../config/config.ts";
import { Denial, type ErrorCode } from "../errors.ts";
import type { RequestContext, StreamRelay } from "../http/context.ts";
import type { Need } from "../scopes/scope.ts";
import type { UpstreamSocket } from "../upstream/socket.ts";
import { TRANSCRIPTION_OPERATION, addUsage, clientEventId, errorEvent, responseDoneUsage, sessionModels, NO_MODELS } from "./events.ts";

/** The subprotocol the gateway selects towards the client, when offered (the browser SDK offers it with its key). */
export const REALTIME_PROTOCOL = "realtime";
// A client that does not answer the gateway's close within this time is cut.
const CLOSE_FLUSH_MS = 2000;

/** What a session hears and asks: its end (once), its start, and the decision on a model a frame names. */
export interface SessionHooks {
  sessionStarted(ctx: RequestContext): void;
  finish(ctx: RequestContext): void;
  /** The same decision as at the upgrade, for another entity and further needs (policy/authorize.ts decideFor). */
  decideFor(ctx: RequestContext, entityId: string, also: readonly Need[]): Denial | null | Promise<Denial | null>;
}

/** Accepts authorized upgrades and relays their sessions; built once in app.ts. */
export class RealtimeSessions {
  readonly #wss: WebSocketServer;
  readonly #settings: RealtimeSettings;
  readonly #hooks: SessionHooks;
  readonly #log: Logger;
  readonly #live = new Set<Session>();
  /** Upgrades handed to the WebSocket server and not yet accepted, for the one it refuses. */
  readonly #handing = new WeakMap<IncomingMessage, RequestContext>();

  constructor(settings: RealtimeSettings, hooks: SessionHooks, log: Logger) {
    this.#settings = settings;
    this.#hooks = hooks;
    this.#log = log;
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: settings.maxFrameBytes,
      perMessageDeflate: false,
      // Only `realtime` is ever selected: a key-bearing subprotocol is never echoed back.
      handleProtocols: (offered) => (offered.has(REALTIME_PROTOCOL) ? REALTIME_PROTOCOL : false),
    });
    // A handshake the server still refuses (a malformed Sec-WebSocket-Protocol list) gets a 400 and its access line,
    // and gives back what the decision took (a concurrency lease).
    this.#wss.on("wsClientError", (err, socket, req) => {
      const ctx = this.#handing.get(req);
      this.#handing.delete(req);
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      else socket.destroy();
      if (ctx === undefined) return;
      this.#log.info({ req_id: ctx.requestId, problem: err.message }, "realtime: the WebSocket handshake was refused");
      ctx.res.statusCode = 400;
      ctx.outcome = "bad_request";
      this.#hooks.finish(ctx);
    });
  }

  /** Sessions being relayed now. */
  get active(): number {
    return this.#live.size;
  }

  /** Bytes the gateway holds for all sessions now (queued for a connecting upstream, or unsent on a socket). */
  get bufferedBytes(): number {
    let n = 0;
    for (const s of this.#live) n += s.buffered;
    return n;
  }

  /** Completes an authorized upgrade (the 101) and starts relaying to `upstream`. */
  open(ctx: RequestContext, upstream: UpstreamSocket, socket: Duplex, head: Buffer): void {
    this.#handing.set(ctx.req, ctx);
    this.#wss.handleUpgrade(ctx.req, socket, head, (client) => {
      this.#handing.delete(ctx.req);
      const s = new Session(ctx, client, upstream, this.#settings, {
        ...this.#hooks,
        finish: (c) => {
          this.#live.delete(s);
          this.#hooks.finish(c);
        },
      }, this.#log);
      this.#live.add(s);
    });
  }

  /** Whether the request is an upgrade the WebSocket server can complete (RFC 6455 §4.2.1), checked before any decision. */
  static acceptable(req: IncomingMessage): boolean {
    const key = req.headers["sec-websocket-key"];
    const version = req.headers["sec-websocket-version"];
    return req.method === "GET" && req.headers.upgrade?.toLowerCase() === "websocket" && typeof key === "string" && /^[+/0-9A-Za-z]{22}==$/.test(key.trim()) && (version === "13" || version === "8");
  }
}

interface Queued {
  readonly data: Buffer;
  readonly binary: boolean;
}

function asBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

// RFC 6455 §7.4: 1005 and 1006 are never sent, 1015 neither; other codes outside these ranges are refused by ws.
function sendable(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** One relayed session; its StreamRelay side lets policy/streams.ts end it. */
class Session implements StreamRelay {
  readonly #ctx: RequestContext;
  readonly #client: WebSocket;
  readonly #upstream: WebSocket;
  readonly #hooks: SessionHooks;
  readonly #settings: RealtimeSettings;
  readonly #log: Logger;
  readonly #queue: Queued[] = [];
  #queued = 0;
  /** A frame's check is waiting on the store: later frames wait behind it. */
  #checking = false;
  #finished = false;
  #cut = false;
  #last = Date.now();
  #idleTimer: NodeJS.Timeout | null = null;
  #maxTimer: NodeJS.Timeout | null = null;
  #flushTimer: NodeJS.Timeout | null = null;

  constructor(ctx: RequestContext, client: WebSocket, upstream: UpstreamSocket, settings: RealtimeSettings, hooks: SessionHooks, log: Logger) {
    this.#ctx = ctx;
    this.#client = client;
    this.#hooks = hooks;
    this.#settings = settings;
    this.#log = log;
    ctx.res.statusCode = 101;
    ctx.upstreamStartedAt = performance.now();
    ctx.upstreamId = upstream.upstreamId;
    ctx.relay = this;
    ctx.realtime = true;
    this.#upstream = new WebSocket(upstream.url, [...upstream.protocols], {
      headers: upstream.headers,
      maxPayload: settings.maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: upstream.connectTimeoutMs,
      followRedirects: false,
      ...upstream.tls,
    });
    this.#wire();
    hooks.sessionStarted(ctx);
    this.#armIdle(settings.idleTimeoutMs);
    this.#maxTimer = setTimeout(() => this.cut("session_too_long"), settings.maxSessionMs);
    this.#maxTimer.unref();
  }

  /** Bytes held for this session: queued for the upstream, and unsent on either socket. */
  get buffered(): number {
    return this.#queued + this.#client.bufferedAmount + this.#upstream.bufferedAmount;
  }

  #wire(): void {
    const client = this.#client;
    const up = this.#upstream;
    client.on("message", (data, binary) => {
      // Frames a client sends after the gateway ended the session go nowhere, and are not kept.
      if (this.#cut || this.#finished) return;
      this.#last = Date.now();
      const buf = asBuffer(data);
      this.#queue.push({ data: buf, binary });
      this.#queued += buf.length;
      this.#pump();
    });
    up.on("open", () => {
      this.#ctx.upstreamHeadersAt = performance.now();
      this.#pump();
    });
    up.on("message", (data, binary) => {
      this.#last = Date.now();
      const buf = asBuffer(data);
      const ctx = this.#ctx;
      if (ctx.responseBytes === 0) ctx.upstreamFirstByteAt = performance.now();
      ctx.responseBytes += buf.length;
      const u = binary ? null : responseDoneUsage(buf);
      if (u !== null) ctx.usage = addUsage(ctx.usage, u);
      if (this.#cut || client.readyState !== WebSocket.OPEN) return;
      client.send(buf, { binary }, this.#flow);
      this.#flow();
    });
    client.on("close", (code, reason) => this.#clientClosed(code, reason));
    up.on("close", (code, reason) => this.#upstreamClosed(code, reason));
    client.on("error", (err) => this.#log.debug({ err, req_id: this.#ctx.requestId }, "realtime: client socket error"));
    up.on("error", (err) => {
      // Closing a connecting socket (the client left first) reports an error of its own: not news.
      if (this.#finished) return;
      this.#log.warn({ upstream: this.#ctx.upstreamId, req_id: this.#ctx.requestId, problem: err.message }, "realtime: upstream socket failed");
      this.cut("upstream_error");
    });
    up.on("unexpected-response", (_req, res) => {
      this.#log.warn({ upstream: this.#ctx.upstreamId, req_id: this.#ctx.requestId, status: res.statusCode }, "realtime: the upstream refused the upgrade");
      res.resume();
      this.cut("upstream_error");
    });
  }

  /** Sends queued client frames on, in order, each once its models are allowed. */
  #pump(): void {
    const up = this.#upstream;
    while (this.#queue.length > 0 && !this.#checking && !this.#cut && up.readyState === WebSocket.OPEN) {
      const next = this.#queue[0] as Queued;
      const pd = this.#check(next.data);
      if (pd instanceof Promise) {
        this.#checking = true;
        pd.then(
          (d) => {
            this.#checking = false;
            this.#deliver(d);
            this.#pump();
          },
          () => this.cut("store_unavailable"),
        );
        break;
      }
      this.#deliver(pd);
    }
    this.#flow();
  }

  /** The first queued frame: on to the upstream, or answered with an `error` event when refused. */
  #deliver(refused: Denial | null): void {
    const f = this.#queue.shift();
    if (f === undefined || this.#cut) return;
    this.#queued -= f.data.length;
    if (refused !== null) {
      this.#sendClient(errorEvent(refused.error, refused.message, refused.param, clientEventId(f.data)));
      return;
    }
    this.#upstream.send(f.data, { binary: f.binary }, this.#flow);
  }

  /** Null when the frame may go on; else why not. Adopts the models an allowed `session.update` names. */
  #check(frame: Buffer): Denial | null | Promise<Denial | null> {
    const named = sessionModels(frame);
    if (named instanceof Denial) return named;
    if (named === NO_MODELS) return null;
    const ctx = this.#ctx;
    const route = ctx.route;
    if (route === null) return new Denial("internal_error");
    // On a transcription session (an intent's variant) the transcription model is the session's entity.
    const main = route.intent !== null ? (named.transcription?.id ?? named.model) : named.model;
    const entity = main ?? ctx.entityId;
    let also = ctx.also;
    if (route.intent === null && named.transcription !== null) {
      also = [{ domainId: ctx.domainId, entityType: route.entityType, entityId: named.transcription.id, operation: TRANSCRIPTION_OPERATION, field: named.transcription.field }];
    }
    const adopt = (d: Denial | null): Denial | null => {
      if (d === null) {
        // Re-checks after a change now decide on what the session uses.
        ctx.entityId = entity;
        ctx.also = also;
      }
      return d;
    };
    const pd = this.#hooks.decideFor(ctx, entity, also);
    return pd instanceof Promise ? pd.then(adopt) : adopt(pd);
  }

  /** Backpressure: each side reads only while the other side's socket has room, and the queue too. */
  readonly #flow = (): void => {
    const max = this.#settings.maxBufferedBytes;
    const client = this.#client;
    const up = this.#upstream;
    const holdClient = this.#queued > max || up.bufferedAmount > max || this.#checking;
    if (holdClient !== client.isPaused && client.readyState === WebSocket.OPEN) {
      if (holdClient) client.pause();
      else client.resume();
    }
    const holdUp = client.bufferedAmount > max;
    if (holdUp !== up.isPaused && up.readyState === WebSocket.OPEN) {
      if (holdUp) up.pause();
      else up.resume();
    }
  };

  #sendClient(text: string): void {
    if (this.#client.readyState === WebSocket.OPEN) this.#client.send(text, this.#flow);
  }

  #clientClosed(code: number, reason: Buffer): void {
    const up = this.#upstream;
    if (up.readyState === WebSocket.OPEN) {
      if (sendable(code)) up.close(code, reason);
      else up.close(1000);
    } else if (up.readyState === WebSocket.CONNECTING) {
      up.terminate();
    }
    this.#finish("ok");
  }

  #upstreamClosed(code: number, reason: Buffer): void {
    const client = this.#client;
    if (!this.#cut && client.readyState === WebSocket.OPEN) {
      // 1006: the upstream went away without a close frame: to the client, an error on the server's side.
      if (sendable(code)) client.close(code, reason);
      else client.close(code === 1005 ? 1000 : 1011);
      this.#closeDeadline();
    }
    if (code === 1006 && !this.#cut) this.#ctx.cutReason = "upstream_error";
    this.#finish("ok");
  }

  /**
   * Ends the session on the gateway's behalf: the client gets one Realtime
   * `error` event saying why, then the close (1008 policy violation when the
   * grant changed or ended; 1000 for the session's own limits; 1001 at
   * shutdown; 1011 when the upstream failed); the upstream is closed.
   */
  cut(code: ErrorCode): void {
    if (this.#finished || this.#cut) return;
    this.#cut = true;
    this.#ctx.cutReason = code;
    const client = this.#client;
    if (client.readyState === WebSocket.OPEN) {
      client.send(errorEvent(code));
      // A close reason is at most 123 bytes: the code says it.
      client.close(closeCode(code), code);
      this.#closeDeadline();
    }
    const up = this.#upstream;
    if (up.readyState === WebSocket.OPEN) up.close(1000);
    else up.terminate();
    this.#finish(code);
  }

  #closeDeadline(): void {
    if (this.#flushTimer !== null) return;
    const client = this.#client;
    this.#flushTimer = setTimeout(() => client.terminate(), CLOSE_FLUSH_MS);
    this.#flushTimer.unref();
    client.once("close", () => {
      if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    });
  }

  #armIdle(ms: number): void {
    this.#idleTimer = setTimeout(this.#onIdle, ms);
    this.#idleTimer.unref();
  }

  // One timer per session, re-armed for what is left instead of on every frame.
  readonly #onIdle = (): void => {
    const left = this.#last + this.#settings.idleTimeoutMs - Date.now();
    if (left > 0) this.#armIdle(left);
    else this.cut("session_idle");
  };

  #finish(outcome: string): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    if (this.#maxTimer !== null) clearTimeout(this.#maxTimer);
    this.#queue.length = 0;
    this.#queued = 0;
    const ctx = this.#ctx;
    ctx.outcome = ctx.cutReason ?? outcome;
    this.#hooks.finish(ctx);
  }
}

function closeCode(code: ErrorCode): number {
  switch (code) {
    case "shutting_down":
      return 1001;
    case "session_idle":
    case "session_too_long":
      return 1000;
    case "upstream_error":
    case "upstream_timeout":
    case "upstream_tls_error":
    case "store_unavailable":
    case "internal_error":
      return 1011;
    default:
      return 1008;
  }
}
