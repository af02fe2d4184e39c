// Findings (review): headers the gateway relies on must mean the same thing to
// the upstream. A client copy of the injected credential header is dropped; a
// second Content-Type is refused; Connection cannot strip Content-Type; a
// non-Latin-1 model id in a 403 does not crash into a 500; Expect: 100-continue
// is only answered once the request is authorized.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

function raw(port: number, head: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.write(head + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n` + body));
    let data = "";
    sock.on("data", (d) => (data += d.toString()));
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
  });
}

describe("header tricks", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        cfg.upstreams.default!.credential = { header: "x-goog-api-key", value: "UPSTREAM-SECRET" };
      },
    });
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const head = (extra: string): string => `POST /proxy/d1/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\n${extra}`;
  const body = '{"model":"llama3","messages":[]}';

  it("a client copy of the upstream credential header never reaches the upstream", async () => {
    upstream.clear();
    const res = await raw(gw.port, head("Content-Type: application/json\r\nX-Goog-Api-Key: CLIENT-VALUE\r\n"), body);
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    expect(upstream.requests[0]!.headers["x-goog-api-key"]).toBe("UPSTREAM-SECRET");
    expect(JSON.stringify(upstream.requests[0]!.rawHeaders)).not.toContain("CLIENT-VALUE");
  });

  it("two Content-Type headers on a route that reads the body → 400 ambiguous_header", async () => {
    upstream.clear();
    const res = await raw(gw.port, head("Content-Type: application/json\r\nContent-Type: text/plain\r\n"), body);
    expect(res).toMatch(/^HTTP\/1\.1 400/);
    expect(res).toContain("ambiguous_header");
    expect(upstream.requests).toHaveLength(0);
  });

  it("Connection: content-type does not strip the Content-Type the gateway checked", async () => {
    upstream.clear();
    const res = await raw(gw.port, head("Content-Type: application/json\r\nConnection: content-type\r\n"), body);
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    expect(upstream.requests[0]!.headers["content-type"]).toBe("application/json");
  });

  it("a 403 for a model id outside Latin-1 is a 403, with the scope percent-encoded in WWW-Authenticate", async () => {
    const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "模型", messages: [] }),
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toContain(encodeURIComponent("models:模型:llm_chat_completions"));
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("模型");
  });

  it("Expect: 100-continue: an unauthenticated client gets 401 and no invitation to upload", async () => {
    const res = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(gw.port, "127.0.0.1", () =>
        sock.write("POST /proxy/d1/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer pat_nope\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"),
      );
      let data = "";
      sock.on("data", (d) => {
        data += d.toString();
        if (data.includes("\r\n\r\n")) sock.destroy();
        resolve(data);
      });
      sock.on("error", reject);
    });
    expect(res).toMatch(/^HTTP\/1\.1 401/);
    expect(res).not.toContain("100 Continue");
  });

  it("Expect: 100-continue: an authorized client is invited and served", async () => {
    const res = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(gw.port, "127.0.0.1", () =>
        sock.write(`${head("Content-Type: application/json\r\n")}Content-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`),
      );
      let data = "";
      sock.on("data", (d) => {
        data += d.toString();
        if (data.startsWith("HTTP/1.1 100") && !data.includes("sent")) {
          data += "sent";
          sock.write(body);
        }
      });
      sock.on("end", () => resolve(data));
      sock.on("error", reject);
    });
    expect(res).toMatch(/^HTTP\/1\.1 100 Continue/);
    expect(res).toMatch(/HTTP\/1\.1 200/);
  });
});
