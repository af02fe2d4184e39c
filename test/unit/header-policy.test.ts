// Response headers on their way to the client: hop-by-hop fields and the ones
// an upstream's Connection header names are dropped, everything else passes.
import { describe, expect, it } from "vitest";
import type { IncomingMessage } from "node:http";
import { HeaderPolicy, REINTERPRETING } from "../../src/upstream/headers.ts";
import { generateToken } from "../../src/tokens/format.ts";

describe("HeaderPolicy.responseHeaders", () => {
  const policy = new HeaderPolicy([]);

  it("drops hop-by-hop fields and the upstream's request id, keeps the rest", () => {
    const out = policy.responseHeaders({
      "content-type": "application/json",
      "content-length": "12",
      connection: "keep-alive",
      "keep-alive": "timeout=5",
      "transfer-encoding": "chunked",
      "x-request-id": "upstream-id",
      "openai-model": "m",
    }, []);
    expect(out).toEqual(["content-type", "application/json", "content-length", "12", "openai-model", "m"]);
  });

  it("drops the fields a Connection header names, in any letter case and spacing", () => {
    const out = policy.responseHeaders({ connection: "Keep-Alive, X-Internal-Trace ,x-debug", "x-internal-trace": "1", "x-debug": "2", "x-kept": "3" }, []);
    expect(out).toEqual(["x-kept", "3"]);
  });

  it("keeps every other field when Connection is a plain keep-alive or close", () => {
    for (const connection of ["keep-alive", "Keep-Alive", "close", "CLOSE"]) {
      expect(policy.responseHeaders({ connection, "x-kept": "1", server: "s" }, [])).toEqual(["x-kept", "1", "server", "s"]);
    }
  });

  it("puts the gateway's own pairs last, in place of the upstream's by the same names; repeated values stay a list", () => {
    const out = policy.responseHeaders({
      "x-ratelimit-remaining-requests": "7",
      "set-cookie": ["a=1", "b=2"],
      ratelimit: '"up";r=1',
      "x-kept": "1",
    }, ["x-request-id", "gw-id", "ratelimit", '"gw";r=5'], ["x-ratelimit-remaining-requests", "4"]);
    expect(out).toEqual(["set-cookie", ["a=1", "b=2"], "x-kept", "1", "x-request-id", "gw-id", "ratelimit", '"gw";r=5', "x-ratelimit-remaining-requests", "4"]);
  });
});

describe("HeaderPolicy.requestHeaders and trusted", () => {
  const policy = new HeaderPolicy(["authorization", "x-api-key"]);
  const names = (out: string[]): string[] => out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());

  it.each([...REINTERPRETING, "x-forwarded-for", "x-forwarded-host", "x-forwarded-anything", "x-auth-request-user", "x-amzn-oidc-data", "x-ms-client-principal-id", "x-patgate-user"])(
    "drops the client's %s",
    (name) => {
      const out = policy.requestHeaders([name, "v", "X-Kept", "1"], []);
      expect(names(out)).toEqual(["x-kept"]);
    },
  );

  it.each(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "http2-settings", "host", "expect", "x-request-id", "x-api-key", "authorization"])(
    "drops %s",
    (name) => {
      expect(names(policy.requestHeaders([name, "keep-alive", "Accept", "*/*"], []))).toEqual(["accept"]);
    },
  );

  it("keeps other x- headers, and content headers even when Connection names them; drops what Connection names", () => {
    const out = policy.requestHeaders(["X-Trace", "1", "Connection", "x-hop, content-type, content-length, content-encoding", "X-Hop", "2", "Content-Type", "a/b", "Content-Length", "3", "Content-Encoding", "identity", "xx-forwarded-for", "4"], ["x-request-id", "r"]);
    expect(out).toEqual(["X-Trace", "1", "Content-Type", "a/b", "Content-Length", "3", "Content-Encoding", "identity", "xx-forwarded-for", "4", "x-request-id", "r"]);
  });

  it("drops the injected credential's header and any header holding something PAT-shaped", () => {
    const { token } = generateToken();
    const out = policy.requestHeaders(["X-Goog-Api-Key", "client", "X-Note", `see ${token}`, "X-Short", token.slice(0, 34), "X-Fine", "pat and more"], ["x-goog-api-key", "upstream"], "x-goog-api-key");
    expect(out).toEqual(["X-Short", token.slice(0, 34), "X-Fine", "pat and more", "x-goog-api-key", "upstream"]);
  });

  it("trusted: the request id, then X-Forwarded-For/-Proto/-Host and Forwarded from what the gateway saw", () => {
    const req = (remoteAddress: string | undefined, host: string | undefined, encrypted = false): IncomingMessage => ({ socket: { remoteAddress, encrypted }, headers: host === undefined ? {} : { host } }) as unknown as IncomingMessage;
    expect(policy.trusted(req("10.1.2.3", "gw:8080"), "id")).toEqual(["x-request-id", "id", "x-forwarded-for", "10.1.2.3", "x-forwarded-proto", "http", "x-forwarded-host", "gw:8080", "forwarded", 'for=10.1.2.3;proto=http;host="gw:8080"']);
    expect(policy.trusted(req("::1", "[::1]:8443", true), "id")).toEqual(["x-request-id", "id", "x-forwarded-for", "::1", "x-forwarded-proto", "https", "x-forwarded-host", "[::1]:8443", "forwarded", 'for="[::1]";proto=https;host="[::1]:8443"']);
    // A Host that could break the quoted string, or none, is not repeated.
    for (const host of ['evil"; for=1.1.1.1', "", undefined, "a".repeat(256), "a b", "a/b"]) {
      const out = policy.trusted(req("10.1.2.3", host), "id");
      expect(out).toEqual(["x-request-id", "id", "x-forwarded-for", "10.1.2.3", "x-forwarded-proto", "http", "forwarded", "for=10.1.2.3;proto=http"]);
    }
    expect(policy.trusted(req("10.1.2.3", "Host-9.example_x:1"), "id")).toContain("Host-9.example_x:1");
    expect(policy.trusted(req(undefined, "h"), "id").slice(2, 4)).toEqual(["x-forwarded-for", ""]);
    expect(new HeaderPolicy([], "none").trusted(req("10.1.2.3", "gw"), "id")).toEqual(["x-request-id", "id"]);
  });
});
