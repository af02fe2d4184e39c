import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

// RFC 9110 §7.6.1 connection-specific fields, plus what the pool sets itself
// (host) and what a proxy must not pass on (expect, proxy-*).
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
];

const PLAIN_CONNECTION = new Set(["keep-alive", "close"]);
const END_TO_END = new Set(["content-type", "content-length", "content-encoding"]);

/** Identity headers that only the gateway may set: client copies are always dropped. */
export const IDENTITY_PREFIX = "x-patgate-";

/**
 * Which headers cross the gateway, compiled once: credentials and hop-by-hop
 * headers are removed on the way in; hop-by-hop headers on the way out.
 */
export class HeaderPolicy {
  readonly #dropRequest: ReadonlySet<string>;
  readonly #dropResponse: ReadonlySet<string>;

  constructor(stripRequestHeaders: readonly string[]) {
    // HTTP/2 requests list their pseudo-headers in rawHeaders too; they describe the client's stream, not the upstream request.
    this.#dropRequest = new Set([...HOP_BY_HOP, ":method", ":path", ":scheme", ":authority", ":protocol", "host", "expect", "x-request-id", ...stripRequestHeaders]);
    this.#dropResponse = new Set([...HOP_BY_HOP, "x-request-id"]);
  }

  /**
   * The forwarded request headers as undici's flat [name, value, …] array:
   * client headers minus dropped ones, then `extra` (request id, upstream credential) last.
   * `injected` (lower-case) is the upstream credential's header: a client copy of it is
   * dropped, or the client would choose the credential for upstreams that read the first value.
   */
  requestHeaders(rawHeaders: readonly string[], extra: readonly string[], injected: string | null = null): string[] {
    const out: string[] = [];
    let connectionTokens: Set<string> | null = null;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = (rawHeaders[i] as string).toLowerCase();
      if (name === "connection") {
        const value = rawHeaders[i + 1] as string;
        // The common values name no other header: skip building a set for them.
        if (!PLAIN_CONNECTION.has(value.toLowerCase())) connectionTokens = tokens(value, connectionTokens);
      }
    }
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const raw = rawHeaders[i] as string;
      const name = raw.toLowerCase();
      if (this.#dropRequest.has(name) || name.startsWith(IDENTITY_PREFIX)) continue;
      if (name === injected) continue;
      // Connection may name hop-by-hop extras, never the framing and type the gateway itself relied on.
      if (connectionTokens !== null && connectionTokens.has(name) && !END_TO_END.has(name)) continue;
      out.push(raw, rawHeaders[i + 1] as string);
    }
    for (const v of extra) out.push(v);
    return out;
  }

  /** The response headers sent to the client: upstream headers minus hop-by-hop ones. */
  responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    const connection = headers.connection;
    // As on the way in, the common values name no other header: no set for them.
    const listed = typeof connection === "string" && !PLAIN_CONNECTION.has(connection.toLowerCase()) ? tokens(connection, null) : null;
    for (const name in headers) {
      if (this.#dropResponse.has(name)) continue;
      if (listed !== null && listed.has(name)) continue;
      out[name] = headers[name];
    }
    return out;
  }
}

function tokens(value: string, into: Set<string> | null): Set<string> {
  const set = into ?? new Set<string>();
  for (const t of value.split(",")) {
    const name = t.trim().toLowerCase();
    if (name !== "") set.add(name);
  }
  return set;
}
