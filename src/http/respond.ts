import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ERRORS, errorBody, retryHeaders, type ErrorCode, type ErrorEnvelope } from "../errors.ts";
import { redactPats } from "../tokens/format.ts";

/**
 * Sends a catalogue error in the route's envelope (OpenAI's unless the route
 * says otherwise). 401s carry WWW-Authenticate (RFC 6750) so clients know to
 * fetch a new token; 403s name the missing scope; the retry headers SDKs obey
 * come from the catalogue.
 */
export function sendError(
  res: ServerResponse,
  requestId: string,
  code: ErrorCode,
  opts: { message?: string | undefined; param?: string | null | undefined; scope?: string | undefined; allow?: readonly string[] | undefined; close?: boolean; envelope?: ErrorEnvelope; headers?: Readonly<Record<string, string>> | undefined } = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = ERRORS[code].status;
  // A message may quote what the client sent (a model id, a domain): never a token.
  const body = errorBody(code, opts.message === undefined ? undefined : redactPats(opts.message), opts.param, opts.envelope);
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-request-id": requestId,
    "cache-control": "no-store",
  };
  if (status === 401) {
    headers["www-authenticate"] = code === "missing_token" ? 'Bearer realm="patgate"' : 'Bearer realm="patgate", error="invalid_token"';
  } else if (code === "insufficient_scope" && opts.scope !== undefined) {
    // Header values must be Latin-1 and must not break the quoted string: model ids may be any Unicode.
    const given = redactPats(opts.scope);
    const scope = /^[\x20-\x7e]*$/.test(given) ? given.replace(/["\\]/g, "") : encodeURIComponent(given);
    headers["www-authenticate"] = `Bearer realm="patgate", error="insufficient_scope", scope="${scope}"`;
  }
  if (opts.allow !== undefined) headers.allow = opts.allow.join(", ");
  // Headers the refusal brings (a 429's Retry-After and RateLimit headers), never the framing ones above;
  // then the catalogue's retry hint where the refusal gave none.
  if (opts.headers !== undefined) for (const k in opts.headers) if (headers[k] === undefined) headers[k] = opts.headers[k] as string;
  const retry = retryHeaders(code);
  for (let i = 0; i < retry.length; i += 2) headers[retry[i] as string] ??= retry[i + 1] as string;
  // A body we did not read would otherwise be drained before the connection is reused.
  if (opts.close === true) headers.connection = "close";
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * A response object on an upgrade's socket, so that an upgrade refused
 * before its 101 gets the same HTTP answer (sendError) and the same access
 * line as any request. The socket is closed once the answer is sent;
 * `detachUpgrade` hands it back to the WebSocket server instead.
 */
export function upgradeResponse(req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once("finish", () => socket.end());
  return res;
}

/** Takes the socket back from an upgrade's response object (the 101 is written by the WebSocket server). */
export function detachUpgrade(res: ServerResponse, socket: Duplex): void {
  res.detachSocket(socket as Socket);
}
