// The header policy's rules at their edges: only Connection names hop-by-hop
// extras, HTTP/2 pseudo-headers never travel, a response without Connection
// loses only the fixed hop-by-hop set, and a Host is repeated in the
// forwarding headers only when every character is one a host can hold.
import { describe, expect, it } from "vitest";
import type { IncomingMessage } from "node:http";
import { HeaderPolicy } from "../../src/upstream/headers.ts";

const names = (out: string[]): string[] => out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());

describe("request headers", () => {
  const policy = new HeaderPolicy([]);

  it("a header other than Connection names no header to drop, even when its value is a header name", () => {
    const out = policy.requestHeaders(["X-Note", "x-kept, accept", "X-Kept", "1", "Accept", "*/*", "Via", "x-other", "X-Other", "2"], []);
    expect(names(out)).toEqual(["x-note", "x-kept", "accept", "via", "x-other"]);
  });

  it("Connection's tokens are dropped whichever Connection line names them, and empty tokens drop nothing", () => {
    const out = policy.requestHeaders(["Connection", "keep-alive", "X-A", "1", "Connection", " , X-A,,", "X-B", "2"], []);
    expect(names(out)).toEqual(["x-b"]);
  });

  it("drops HTTP/2 pseudo-headers, which describe the client's stream", () => {
    const raw = [":method", "POST", ":path", "/v1/chat", ":scheme", "https", ":authority", "gw", ":protocol", "websocket", "Accept", "*/*"];
    expect(policy.requestHeaders(raw, [])).toEqual(["Accept", "*/*"]);
  });
});

describe("response headers", () => {
  const policy = new HeaderPolicy([]);

  it("without a Connection header only the fixed hop-by-hop fields go", () => {
    const out = policy.responseHeaders({ "content-type": "text/event-stream", "transfer-encoding": "chunked", upgrade: "h2c", "x-trace": "t", "cache-control": "no-cache" }, []);
    expect(out).toEqual(["content-type", "text/event-stream", "x-trace", "t", "cache-control", "no-cache"]);
  });
});

describe("trusted forwarding headers", () => {
  const req = (host: string): IncomingMessage => ({ socket: { remoteAddress: "10.0.0.1", encrypted: false }, headers: { host } }) as unknown as IncomingMessage;
  const repeated = (policy: HeaderPolicy, host: string): boolean => policy.trusted(req(host), "id").includes("x-forwarded-host");
  const policy = new HeaderPolicy([]);

  it("repeats a Host made of letters (both cases, to z and Z), digits, '-', '.', '_', ':' and brackets", () => {
    for (const host of ["Zz.Aa09-_:8080", "az", "AZ", "[::1]:443", "a".repeat(255)]) expect(repeated(policy, host), host).toBe(true);
    expect(policy.trusted(req("Zz.Aa09-_:8080"), "id").at(-1)).toBe('for=10.0.0.1;proto=http;host="Zz.Aa09-_:8080"');
  });

  it("does not repeat a Host with any character just outside those ranges", () => {
    // '/' and ';' beside the digits, '@' and '\\' beside the capitals, '`' and '{' beside the small letters, and more.
    for (const c of ["/", ";", "<", "=", "?", "@", "\\", "^", "`", "{", "|", "}", "~", ",", "!", "\u00e9"]) {
      expect(repeated(policy, `a${c}b`), c).toBe(false);
    }
    expect(repeated(policy, "a".repeat(256))).toBe(false);
  });

  it("the default mode writes the forwarding headers; mode none writes only the request id", () => {
    expect(names(new HeaderPolicy([]).trusted(req("gw"), "id"))).toEqual(["x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"]);
    expect(new HeaderPolicy([], "set").trusted(req("gw"), "id")).toHaveLength(10);
    expect(new HeaderPolicy([], "none").trusted(req("gw"), "id")).toEqual(["x-request-id", "id"]);
  });
});
