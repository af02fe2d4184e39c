// Finding (SPEC §8): keys leaked to upstreams. The fake upstream asserts what it
// must and must not receive: no PAT, no client Authorization or other client
// credential, no hop-by-hop headers, no forged identity headers; it does get the
// injected upstream credential.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("what the upstream receives", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        cfg.upstreams.default!.credential = { header: "authorization", value: "Bearer sk-upstream-secret" };
      },
    });
    ({ token } = await gw.issue({ scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_chat_completions" }, { entityType: "domains", entityId: "d1", operation: "llm_read" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("strips the PAT, client credentials, hop-by-hop and identity headers; injects the upstream key", async () => {
    upstream.clear();
    // A raw request, so hop-by-hop headers are really on the wire.
    const body = JSON.stringify({ model: "llama3", messages: [] });
    const raw =
      `POST /proxy/d1/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\n` +
      "Content-Type: application/json\r\nConnection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
      "TE: trailers\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nCookie: session=abc\r\nX-Api-Key: sk-client\r\nApi-Key: sk-client2\r\n" +
      "X-Patgate-User-Id: mallory\r\nUpgrade: h2c\r\nX-Custom: kept\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const response = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(gw.port, "127.0.0.1", () => sock.write(raw));
      let data = "";
      sock.on("data", (d) => {
        data += d.toString();
        if (data.includes("\r\n\r\n") && data.includes('"model"')) sock.end();
      });
      sock.on("end", () => resolve(data));
      sock.on("error", reject);
    });
    expect(response.startsWith("HTTP/1.1 200")).toBe(true);
    expect(upstream.requests).toHaveLength(1);
    const seen = upstream.requests[0]!;
    const h = seen.headers;
    expect(h.authorization).toBe("Bearer sk-upstream-secret");
    for (const name of ["proxy-authorization", "cookie", "x-api-key", "api-key", "x-secret-hop", "keep-alive", "te", "upgrade", "x-patgate-user-id"]) {
      expect(h[name], name).toBeUndefined();
    }
    expect(h["x-custom"]).toBe("kept");
    expect(h["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const everything = JSON.stringify(seen.rawHeaders) + seen.body.toString("latin1") + seen.path;
    expect(everything).not.toContain(token);
    expect(everything).not.toContain("sk-client");
  });

  it("does not forward a PAT put in the query string, and does not accept it", async () => {
    upstream.clear();
    const res = await fetch(`${gw.url}/proxy/d1/v1/models?key=${token}`);
    expect(res.status).toBe(400);
    // Not even alongside a valid Authorization header.
    const both = await fetch(`${gw.url}/proxy/d1/v1/models?key=${token}`, { headers: { authorization: `Bearer ${token}` } });
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: { code: string } }).error.code).toBe("token_in_query");
    expect(upstream.requests).toHaveLength(0);
  });

  it("passes a client X-Request-Id through when it is sane, and replaces it when not", async () => {
    upstream.clear();
    const ok = await fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { authorization: `Bearer ${token}`, "x-request-id": "abc-123" } });
    expect(ok.headers.get("x-request-id")).toBe("abc-123");
    const bad = await fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { authorization: `Bearer ${token}`, "x-request-id": "a b<script>" } });
    expect(bad.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(upstream.requests.map((r) => r.headers["x-request-id"])).toEqual(["abc-123", bad.headers.get("x-request-id")]);
  });

  it("never echoes the token in error bodies or logs", async () => {
    const broken = token.slice(0, -2) + "zz";
    const res = await fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { authorization: `Bearer ${broken}` } });
    expect(await res.text()).not.toContain(broken.slice(4, 30));
    gw.app.log.flush();
    const all = gw.logs.lines.join("\n");
    expect(all).not.toMatch(/pat_[0-9A-Za-z]{22}_/);
    expect(all).not.toContain("sk-upstream-secret");
  });
});
