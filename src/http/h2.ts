/**
 * HTTP/2 requests reach the same handler as HTTP/1.1 ones, through Node's
 * compatibility objects (Http2ServerRequest / Http2ServerResponse), which
 * mirror IncomingMessage / ServerResponse closely enough for everything the
 * data plane and the management API use, with two gaps filled here, for
 * HTTP/2 streams only (HTTP/1.1 never sees this class):
 *
 * - `destroyed`, which the forwarding code reads to notice a client that left,
 *   is missing: it is the stream's.
 * - HTTP/2 has no reason phrase and no connection-specific header fields
 *   (RFC 9113 §8.2.2, §8.3.2): Node warns about the one and throws on the other,
 *   so writeHead drops them. (The header policy already keeps the upstream's
 *   hop-by-hop headers out; what is left is `connection: close` on a refusal
 *   whose body was not read, which means nothing on a stream.)
 */
import http2 from "node:http2";
import type { OutgoingHttpHeaders } from "node:http";

const CONNECTION_SPECIFIC = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] as const;

/** The response class of the gateway's HTTP/2 streams (http2.createSecureServer's `Http2ServerResponse`). */
export class H2Response extends http2.Http2ServerResponse {
  override writeHead(statusCode: number, headers?: OutgoingHttpHeaders | readonly string[]): this;
  override writeHead(statusCode: number, statusMessage: string, headers?: OutgoingHttpHeaders | readonly string[]): this;
  override writeHead(statusCode: number, a?: string | OutgoingHttpHeaders | readonly string[], b?: OutgoingHttpHeaders | readonly string[]): this {
    const headers = typeof a === "string" ? b : a;
    if (headers !== undefined && !isList(headers)) {
      for (const name of CONNECTION_SPECIFIC) if (headers[name] !== undefined) delete headers[name];
    }
    return super.writeHead(statusCode, headers);
  }
}

// An accessor over a property the type declarations call a field: defined on the prototype, not in the class body.
Object.defineProperty(H2Response.prototype, "destroyed", {
  get(this: H2Response): boolean {
    return this.stream.destroyed;
  },
});

function isList(h: OutgoingHttpHeaders | readonly string[]): h is readonly string[] {
  return Array.isArray(h);
}
