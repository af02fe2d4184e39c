import { overTls, requestHost } from "../http/server.ts";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeader } from "node:http";
import { looksLikePat } from "../tokens/format.ts";

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

/**
 * Client headers that can make an upstream, or a framework or proxy in front
 * of it, reinterpret the request: method overrides, original/rewritten-URL
 * headers, and forwarding or identity headers only a trusted proxy may set.
 * Always dropped (docs/configuration.md lists them); the gateway sets its own
 * forwarding headers (`security.forwarded_headers`).
 */
export const REINTERPRETING = [
  // method overrides (Express method-override, Rails, Symfony, ASP.NET)
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  // the URL the request "really" had (IIS, Symfony, nginx, Envoy)
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
  "x-original-method",
  "x-envoy-original-path",
  // forwarding: only the gateway says where a request came from
  "forwarded",
  "x-real-ip",
  "x-client-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-cluster-client-ip",
  "x-host",
  "x-url-scheme",
  "front-end-https",
  // identity asserted by an authenticating proxy
  "remote-user",
  "x-remote-user",
  "x-user",
  "x-user-id",
  "x-authenticated-user",
  "x-authenticated-userid",
  "x-consumer-id",
  "x-consumer-username",
  "x-goog-authenticated-user-email",
  "x-goog-authenticated-user-id",
  "x-endpoint-api-userinfo",
] as const;

/** Prefixes of header families dropped the same way (x-forwarded-for, -host, -proto, -user, -email, …). */
export const REINTERPRETING_PREFIXES = ["x-forwarded-", "x-auth-request-", "x-amzn-oidc-", "x-ms-client-principal"] as const;

const PLAIN_CONNECTION = new Set(["keep-alive", "close"]);
const END_TO_END = new Set(["content-type", "content-length", "content-encoding"]);

/** Identity headers that only the gateway may set: client copies are always dropped. */
export const IDENTITY_PREFIX = "x-patgate-";

/** What the gateway says about a request's origin: `set` writes X-Forwarded-For/-Proto/-Host and Forwarded, `none` writes nothing. */
export type ForwardedMode = "set" | "none";

/**
 * Which headers cross the gateway, compiled once: credentials, hop-by-hop
 * headers, headers that reinterpret the request and any header holding
 * something that looks like a PAT are removed on the way in; hop-by-hop
 * headers on the way out.
 */
export class HeaderPolicy {
  readonly #dropRequest: ReadonlySet<string>;
  readonly #dropResponse: ReadonlySet<string>;
  readonly #forwarded: ForwardedMode;

  constructor(stripRequestHeaders: readonly string[], forwarded: ForwardedMode = "set") {
    // HTTP/2 requests list their pseudo-headers in rawHeaders too; they describe the client's stream, not the upstream request.
    this.#dropRequest = new Set([...HOP_BY_HOP, ":method", ":path", ":scheme", ":authority", ":protocol", "host", "expect", "x-request-id", ...REINTERPRETING, ...stripRequestHeaders]);
    this.#dropResponse = new Set([...HOP_BY_HOP, "x-request-id"]);
    this.#forwarded = forwarded;
  }

  /**
   * The headers the gateway adds itself, first the request id, then (mode
   * `set`) where the request came from, as the gateway saw it: the peer
   * address, the scheme it was served on, the Host it asked for.
   */
  trusted(req: IncomingMessage, requestId: string): string[] {
    const out = ["x-request-id", requestId];
    if (this.#forwarded !== "set") return out;
    const ip = req.socket.remoteAddress ?? "";
    const proto = overTls(req) ? "https" : "http";
    const host = requestHost(req);
    const goodHost = host !== undefined && isHostValue(host);
    // RFC 7239: an IPv6 node is quoted and bracketed.
    const node = ip.includes(":") ? `"[${ip}]"` : ip;
    out.push("x-forwarded-for", ip, "x-forwarded-proto", proto);
    if (goodHost) out.push("x-forwarded-host", host);
    out.push("forwarded", goodHost ? `for=${node};proto=${proto};host="${host}"` : `for=${node};proto=${proto}`);
    return out;
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
      const raw = rawHeaders[i] as string;
      // Only a name of Connection's length is lowered to compare.
      if (raw.length === 10 && raw.toLowerCase() === "connection") {
        const value = rawHeaders[i + 1] as string;
        // The common values name no other header: skip building a set for them.
        if (!PLAIN_CONNECTION.has(value.toLowerCase())) connectionTokens = tokens(value, connectionTokens);
      }
    }
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const raw = rawHeaders[i] as string;
      const name = raw.toLowerCase();
      if (this.#dropRequest.has(name) || name === injected) continue;
      // Every family starts with "x-": two char checks spare most headers the prefix scan.
      // Stryker disable next-line ConditionalExpression,LogicalOperator: droppedFamily alone gives the same answer; the guard only saves work
      if (name.charCodeAt(0) === 0x78 /* x */ && name.charCodeAt(1) === 0x2d /* - */ && droppedFamily(name)) continue;
      // Connection may name hop-by-hop extras, never the framing and type the gateway itself relied on.
      if (connectionTokens !== null && connectionTokens.has(name) && !END_TO_END.has(name)) continue;
      const value = rawHeaders[i + 1] as string;
      // A credential in any header (a PAT pasted into X-Api-Key, a cookie) never travels on.
      if (looksLikePat(value)) continue;
      out.push(raw, value);
    }
    for (const v of extra) out.push(v);
    return out;
  }

  /**
   * The response headers sent to the client, as the flat [name, value, …]
   * list `writeHead` takes: upstream headers minus hop-by-hop ones and minus
   * those the gateway sets, then the gateway's own (`own`, then `more`:
   * lower-case names and values). A list, not an object: node:http then
   * neither checks each key with hasOwn nor grows an object a property at a time.
   */
  responseHeaders(headers: IncomingHttpHeaders, own: readonly string[], more: readonly string[] | null = null): OutgoingHttpHeader[] {
    const out: OutgoingHttpHeader[] = [];
    const connection = headers.connection;
    // As on the way in, the common values name no other header: no set for them.
    const listed = typeof connection === "string" && !PLAIN_CONNECTION.has(connection.toLowerCase()) ? tokens(connection, null) : null;
    for (const name in headers) {
      if (this.#dropResponse.has(name)) continue;
      if (listed !== null && listed.has(name)) continue;
      if (setsItself(own, name) || (more !== null && setsItself(more, name))) continue;
      const value = headers[name];
      if (value !== undefined) out.push(name, value);
    }
    for (let i = 0; i < own.length; i++) out.push(own[i] as string);
    if (more !== null) for (let i = 0; i < more.length; i++) out.push(more[i] as string);
    return out;
  }
}

/** Whether `name` is among the names of the gateway's own pairs (at most a dozen: a scan beats a set). */
function setsItself(own: readonly string[], name: string): boolean {
  for (let i = 0; i < own.length; i += 2) if (own[i] === name) return true;
  return false;
}

function droppedFamily(name: string): boolean {
  if (name.startsWith(IDENTITY_PREFIX)) return true;
  for (const p of REINTERPRETING_PREFIXES) if (name.startsWith(p)) return true;
  return false;
}

// A Host value worth repeating: host[:port] or [v6]:port, nothing that could break a quoted string.
function isHostValue(host: string): boolean {
  if (host.length === 0 || host.length > 255) return false;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x3a || c === 0x5b || c === 0x5d || c === 0x5f;
    if (!ok) return false;
  }
  return true;
}

function tokens(value: string, into: Set<string> | null): Set<string> {
  const set = into ?? new Set<string>();
  for (const t of value.split(",")) {
    // An empty token ("a,,b") adds "", which no header name equals.
    set.add(t.trim().toLowerCase());
  }
  return set;
}
