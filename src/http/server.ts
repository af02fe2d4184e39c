/**
 * The gateway's listeners: how requests arrive, never what happens to them.
 * Without `server.tls`, one plain HTTP/1.1 server on server.port (the
 * deployment behind an ingress that terminates TLS). With it, server.port
 * speaks HTTPS — HTTP/1.1, plus HTTP/2 by ALPN when `server.tls.http2` is on —
 * and `server.tls.plain_port` may add a plain HTTP/1.1 listener beside it.
 * Every listener hands its requests to the same handler, so the data plane and
 * the management API do not know which one a request came through (`overTls`
 * tells, for the few places that care, such as a Secure cookie).
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import http2 from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import type { KeyPair, ServerTlsSettings } from "../config/tls.ts";
import { H2Response } from "./h2.ts";

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** A server that can listen: plain HTTP/1.1, HTTPS/1.1, or HTTPS with HTTP/2 and HTTP/1.1. */
type AnyServer = http.Server | https.Server | http2.Http2SecureServer;

// requestTimeout 0: an upload may take as long as the route's body rules allow (server.body_timeout for read bodies).
const HTTP1 = { keepAliveTimeout: 65_000, headersTimeout: 30_000, requestTimeout: 0, noDelay: true } as const;
// An HTTP/2 connection with no stream open is closed after this long, as an idle HTTP/1.1 keep-alive one is.
const H2_IDLE_MS = HTTP1.keepAliveTimeout;

/** Whether the request reached the gateway over TLS (its own HTTPS listener; an ingress in front is not seen). */
export function overTls(req: IncomingMessage): boolean {
  return (req.socket as Partial<TLSSocket> | null)?.encrypted === true;
}

/** The host the client addressed: `Host` on HTTP/1.1, `:authority` on HTTP/2 (which need not send Host). */
export function requestHost(req: IncomingMessage): string | undefined {
  const h = req.headers.host ?? req.headers[":authority"];
  return typeof h === "string" ? h : undefined;
}

/** The TLS context options for a pair: what setSecureContext takes on reload, too. */
function contextOptions(tls: ServerTlsSettings, pair: KeyPair): SecureContextOptions {
  return { cert: pair.cert, key: pair.key, minVersion: tls.minVersion, ...(pair.ca === null ? {} : { ca: pair.ca }) };
}

export interface ListenersOptions {
  readonly tls: ServerTlsSettings | null;
  /** The pair checked at start (required with tls). */
  readonly pair: KeyPair | null;
  readonly handler: RequestHandler;
}

/** The main listener (server.port) and the optional plain one, built once; listen, swap certificates, drain. */
export class Listeners {
  readonly main: AnyServer;
  /** The plain-HTTP listener beside an HTTPS one (server.tls.plain_port), or null. */
  readonly plain: http.Server | null;
  readonly #tls: ServerTlsSettings | null;
  /** Open TLS connections of an HTTP/2 server, which has no closeAllConnections of its own. */
  readonly #h2Sockets = new Set<Socket>();
  #port = 0;
  #plainPort: number | null = null;

  constructor(opts: ListenersOptions) {
    this.#tls = opts.tls;
    const tls = opts.tls;
    if (tls === null) {
      this.main = plainServer(opts.handler);
      this.plain = null;
      return;
    }
    if (opts.pair === null) throw new Error("server.tls needs its certificate and key");
    const handler = tls.hstsMaxAgeSec > 0 ? withHsts(opts.handler, `max-age=${tls.hstsMaxAgeSec}`) : opts.handler;
    const secure = {
      ...contextOptions(tls, opts.pair),
      requestCert: tls.clientAuth !== "none",
      rejectUnauthorized: tls.clientAuth === "require",
    };
    if (tls.http2) {
      const server = http2.createSecureServer({ ...secure, noDelay: HTTP1.noDelay, allowHTTP1: true, Http2ServerResponse: H2Response });
      // The data plane is written against IncomingMessage/ServerResponse; H2Response (src/http/h2.ts) fills in what the
      // compatibility objects lack, and test/integration/http2.test.ts holds them to it.
      server.on("request", handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
      server.on("checkContinue", handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
      // HTTP/1.1 connections on this server get the same timeouts as on a plain one (its own defaults differ).
      Object.assign(server, { keepAliveTimeout: HTTP1.keepAliveTimeout, headersTimeout: HTTP1.headersTimeout, requestTimeout: HTTP1.requestTimeout });
      server.on("session", idleClose);
      server.on("secureConnection", (socket: TLSSocket) => {
        this.#h2Sockets.add(socket);
        socket.once("close", () => this.#h2Sockets.delete(socket));
      });
      (server as unknown as http.Server).on("clientError", onClientError);
      this.main = server;
    } else {
      const server = https.createServer({ ...HTTP1, ...secure, ALPNProtocols: ["http/1.1"] }, handler);
      server.on("checkContinue", handler);
      server.on("clientError", onClientError);
      this.main = server;
    }
    if (tls.clientAuth === "optional") this.main.on("secureConnection", refuseBadClientCertificate);
    this.plain = tls.plainPort === null ? null : plainServer(opts.handler);
  }

  /** The bound port of server.port's listener (after listen). */
  get port(): number {
    return this.#port;
  }

  /** The bound port of the plain listener beside HTTPS, or null. */
  get plainPort(): number | null {
    return this.#plainPort;
  }

  /** Starts every listener; port 0 (tests) puts the plain listener on a free port too. */
  async listen(port: number, host: string): Promise<number> {
    this.#port = await listenOn(this.main, port, host);
    const plainPort = this.#tls?.plainPort ?? null;
    if (this.plain !== null && plainPort !== null) this.#plainPort = await listenOn(this.plain, port === 0 ? 0 : plainPort, host);
    return this.#port;
  }

  /** Puts a new certificate and key in use for new connections; open ones keep theirs. */
  setCertificate(pair: KeyPair): void {
    if (this.#tls === null) return;
    (this.main as https.Server | http2.Http2SecureServer).setSecureContext(contextOptions(this.#tls, pair));
  }

  /**
   * Adds an upgrade listener (HTTP/1.1 `Upgrade:`, e.g. a WebSocket) on every
   * listener, so an upgrade runs over the same ports, TLS and certificates.
   */
  onUpgrade(listener: UpgradeHandler): void {
    for (const s of this.#all()) (s as http.Server).on("upgrade", listener);
  }

  /**
   * Stops accepting and closes idle connections (HTTP/2 ones get a GOAWAY and
   * finish their streams); resolves once every connection has closed.
   */
  close(): Promise<void> {
    return Promise.all(
      this.#all().map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            if (s instanceof http.Server || s instanceof https.Server) s.closeIdleConnections();
          }),
      ),
    ).then(() => undefined);
  }

  /** Cuts every connection still open (the drain deadline, or the last request has ended). */
  closeAllConnections(): void {
    for (const s of this.#all()) {
      if (s instanceof http.Server || s instanceof https.Server) s.closeAllConnections();
    }
    for (const socket of this.#h2Sockets) socket.destroy();
  }

  #all(): AnyServer[] {
    return this.plain === null ? [this.main] : [this.main, this.plain];
  }
}

function plainServer(handler: RequestHandler): http.Server {
  const server = http.createServer(HTTP1, handler);
  // Expect: 100-continue is answered by the pipeline once the request is authorized, not by Node up front:
  // an unauthenticated client must not be invited to upload.
  server.on("checkContinue", handler);
  server.on("clientError", onClientError);
  return server;
}

function onClientError(_err: Error, socket: Duplex): void {
  if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
  else socket.destroy();
}

/** Strict-Transport-Security on every response of the HTTPS listener (never on plain HTTP: RFC 6797 §7.2). */
function withHsts(handler: RequestHandler, value: string): RequestHandler {
  return (req, res) => {
    res.setHeader("strict-transport-security", value);
    handler(req, res);
  };
}

/** client_auth optional: no certificate is fine, a certificate that does not verify is not. */
function refuseBadClientCertificate(socket: TLSSocket): void {
  if (!socket.authorized && Object.keys(socket.getPeerCertificate()).length > 0) socket.destroy();
}

/** Closes an HTTP/2 session that has had no open stream for H2_IDLE_MS (a GOAWAY, so the client reconnects cleanly). */
function idleClose(session: http2.ServerHttp2Session): void {
  let open = 0;
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    stream.once("close", () => open--);
  });
  session.setTimeout(H2_IDLE_MS, () => {
    if (open === 0) session.close();
  });
}

function listenOn(server: AnyServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve(typeof addr === "object" && addr !== null ? addr.port : port);
    });
  });
}
