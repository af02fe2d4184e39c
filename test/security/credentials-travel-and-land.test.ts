// Finding (review, low): credentials travelled and landed. A PAT in any header
// but the stripped few was forwarded; a PAT sent as a model id, a path segment
// or an X-Request-Id reached the upstream, the access line and the error
// message; headers that make an upstream (or a framework in front of it)
// reinterpret the request — method overrides, original-URL headers,
// client-supplied forwarding and identity headers — passed through, and the
// gateway never said itself where the request came from.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { looksLikePat } from "../../src/tokens/format.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.write(request));
    let data = "";
    sock.on("data", (d) => (data += d.toString()));
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
  });
}

describe("credentials never travel or land", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let plain: TestGateway;
  let token: string;
  let other: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
    plain = await startGateway({ upstreamUrl: upstream.url, patch: (cfg) => void (cfg.security.forwarded_headers = "none") });
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "*", operation: "llm_chat_completions" }, { entityType: "models", entityId: "*", operation: "llm_read" }] }));
    ({ token: other } = await gw.issue({ scopes: [{ entityType: "models", entityId: "m", operation: "llm_read" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await plain?.close();
    // Rejects if the fake ever received anything that looks like a PAT.
    await upstream?.close();
  });

  const chat = (headers: Record<string, string>, body = '{"model":"m","messages":[]}', path = "/v1/chat/completions", g = gw): Promise<Response> =>
    fetch(`${g.url}/proxy/d1${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers }, body });

  it.each([
    ["a custom header", () => ({ "x-custom": other })],
    ["a cookie", () => ({ cookie: `session=${other}` })],
    ["a header holding the token without its checksum", () => ({ "x-note": other.slice(0, 70) })],
    ["a header holding it percent-encoded", () => ({ "x-note": other.replaceAll("_", "%5F") })],
    ["a header holding it JSON-escaped", () => ({ "x-note": other.replaceAll("_", "\\u005f") })],
    ["OpenAI's project header", () => ({ "openai-project": other })],
  ])("a PAT in %s is stripped before forwarding", async (_name, headers) => {
    upstream.clear();
    const res = await chat(headers());
    expect(res.status).toBe(200);
    const got = upstream.requests[0]!;
    expect(got.rawHeaders.some((v) => v.includes(other.slice(27, 60)))).toBe(false);
  });

  it.each([
    ["the model field", (t: string) => chat({}, JSON.stringify({ model: t, messages: [] }))],
    ["the model field, cut short", (t: string) => chat({}, JSON.stringify({ model: t.slice(0, 60), messages: [] }))],
    ["a path parameter", (t: string) => fetch(`${gw.url}/proxy/d1/v1/models/${t}`, { headers: { authorization: `Bearer ${token}` } })],
    ["a path parameter, percent-encoded", (t: string) => fetch(`${gw.url}/proxy/d1/v1/models/${t.replaceAll("_", "%5F")}`, { headers: { authorization: `Bearer ${token}` } })],
    ["the domain segment", (t: string) => fetch(`${gw.url}/proxy/${t}/v1/models`, { headers: { authorization: `Bearer ${token}` } })],
    ["the query, cut short", (t: string) => fetch(`${gw.url}/proxy/d1/v1/models?k=${t.slice(0, 60)}`, { headers: { authorization: `Bearer ${token}` } })],
  ])("a PAT in %s is refused, not forwarded, and never echoed", async (_name, send) => {
    upstream.clear();
    const res = await send(other);
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(looksLikePat(text)).toBe(false);
    expect(upstream.requests).toHaveLength(0);
  });

  it("a PAT sent as X-Request-Id is not kept, echoed, logged or forwarded", async () => {
    upstream.clear();
    const res = await chat({ "x-request-id": other });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).not.toBe(other);
    expect(upstream.requests[0]!.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    ["a well-formed short id", "req-2026.12:01_a", true],
    ["an id of 64 characters", "a-".repeat(32), true],
    ["an id of 65 characters", "a".repeat(30) + "-" + "b".repeat(34), false],
    ["an id with a space", "a b", false],
    ["an id with a quote", 'a"b', false],
    ["a base62 run as long as a secret", "x" + "Ab1".repeat(14), false],
  ])("X-Request-Id: %s is kept: %s", async (_name, id, kept) => {
    const res = await chat({ "x-request-id": id });
    expect(res.headers.get("x-request-id") === id).toBe(kept);
  });

  it("headers that reinterpret the request are stripped, and the gateway sets the forwarding headers itself", async () => {
    upstream.clear();
    const res = await raw(
      gw.port,
      "POST /proxy/d1/v1/chat/completions HTTP/1.1\r\nHost: gw.example:8080\r\n" +
        `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
        "X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: DELETE\r\n" +
        "X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-Original-URI: /admin\r\nX-Envoy-Original-Path: /admin\r\n" +
        "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Prefix: /admin\r\n" +
        'Forwarded: for=10.0.0.1;host="evil.example"\r\nX-Real-IP: 10.0.0.1\r\nTrue-Client-IP: 10.0.0.1\r\nCF-Connecting-IP: 10.0.0.1\r\n' +
        "X-Forwarded-User: admin\r\nX-Forwarded-Email: admin@example.com\r\nX-Auth-Request-Email: admin@example.com\r\nX-Remote-User: admin\r\nRemote-User: admin\r\n" +
        "X-Amzn-Oidc-Identity: admin\r\nX-MS-Client-Principal-Name: admin\r\nX-Goog-Authenticated-User-Email: admin@example.com\r\n" +
        "X-Kept: yes\r\nContent-Length: 27\r\nConnection: close\r\n\r\n" +
        '{"model":"m","messages":[]}',
    );
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    const h = upstream.requests[0]!.headers;
    const names = Object.keys(h);
    for (const n of names) expect(n).not.toMatch(/override|original|rewrite|real-ip|client-ip|connecting-ip|user|email|principal|identity|prefix/);
    expect(h["x-forwarded-for"]).toBe("127.0.0.1");
    expect(h["x-forwarded-proto"]).toBe("http");
    expect(h["x-forwarded-host"]).toBe("gw.example:8080");
    expect(h.forwarded).toBe('for=127.0.0.1;proto=http;host="gw.example:8080"');
    expect(h["x-kept"]).toBe("yes");
    expect(upstream.requests[0]!.method).toBe("POST");
  });

  it("with security.forwarded_headers: none, client copies are still stripped and none is set", async () => {
    upstream.clear();
    const { token: t } = await plain.issue({ scopes: [{ entityType: "models", entityId: "m", operation: "llm_chat_completions" }] });
    const res = await chat({ authorization: `Bearer ${t}`, "x-forwarded-for": "10.0.0.1", forwarded: "for=10.0.0.1" }, undefined, undefined, plain);
    expect(res.status).toBe(200);
    const h = upstream.requests[0]!.headers;
    expect(h["x-forwarded-for"]).toBeUndefined();
    expect(h.forwarded).toBeUndefined();
  });

  it("no log line of the gateway holds anything that looks like a PAT", () => {
    const lines = [...gw.logs.lines, ...plain.logs.lines];
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.filter((l) => looksLikePat(l))).toEqual([]);
  });
});
