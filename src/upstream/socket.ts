/**
 * An authorized upgrade's upstream WebSocket: the same call an HTTP request
 * becomes (upstream/request.ts: target, path, header policy, the upstream's
 * own credential last), in the shape a WebSocket client takes.
 */
import type { ConnectionOptions } from "node:tls";
import type { UpstreamCall } from "./request.ts";

/** Where and how the gateway opens its own WebSocket to the upstream. */
export interface UpstreamSocket {
  /** ws: or wss: URL: the target's origin and base path, then the path and query below `/proxy/<domain>`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The client's offered subprotocols minus the credential-bearing ones. */
  readonly protocols: readonly string[];
  /** The upstream's TLS (trust, client certificate, SNI, verification), as its HTTP pool uses it. */
  readonly tls: ConnectionOptions;
  readonly connectTimeoutMs: number;
  readonly upstreamId: string;
}

// The WebSocket client writes its own handshake; the client's copies of these would clash with it or say
// where the page came from, which is the gateway's business, not the upstream's.
const HANDSHAKE = new Set(["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol", "sec-websocket-accept", "origin", "content-length"]);

/** The upstream socket for an authorized call, with `protocols` (never a key-bearing one) offered on. */
export function upstreamSocket(call: UpstreamCall, protocols: readonly string[]): UpstreamSocket {
  const { target, upstream, tls } = call.target;
  const headers: Record<string, string> = {};
  const h = call.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = (h[i] as string).toLowerCase();
    if (HANDSHAKE.has(name)) continue;
    const v = h[i + 1] as string;
    headers[name] = headers[name] === undefined ? v : `${headers[name]}, ${v}`;
  }
  const origin = target.origin.startsWith("https:") ? "wss:" + target.origin.slice(6) : "ws:" + target.origin.slice(5);
  return {
    url: origin + target.basePath + call.path,
    headers,
    protocols,
    tls: tls === null ? {} : tls.socketOptions(),
    connectTimeoutMs: upstream.connectTimeoutMs,
    upstreamId: upstream.id,
  };
}
