// Finding class: route and domain confusion through non-canonical paths. The
// path is normalised once; traversal, doubled or encoded separators and
// control characters are rejected (400), never guessed at or forwarded.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

function rawGet(port: number, target: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => {
      sock.write(`GET ${target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    });
    let data = "";
    sock.on("data", (d) => (data += d.toString()));
    sock.on("end", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    sock.on("error", reject);
  });
}

describe("path tricks", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
    ({ token } = await gw.issue({ scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_read" }] }));
    await gw.issue({ userId: "alice", domainId: "d2", scopes: [{ entityType: "models", entityId: "zzz", operation: "llm_read" }] });
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("serves the canonical path", async () => {
    expect(await rawGet(gw.port, "/proxy/d1/v1/models", token)).toBe(200);
  });

  it.each([
    "/proxy/d1/v1/../v1/models",
    "/proxy/d1/v1/./models",
    "/proxy/d1//v1/models",
    "/proxy/d1/v1/models/",
    "/proxy/d1/v1%2fmodels",
    "/proxy/d1/v1%2Fmodels",
    "/proxy/d1/v1/%2e%2e/v1/models",
    "/proxy/d2/../d1/v1/models",
    "/proxy/d1/v1/models%00",
    "/proxy/d1/v1\\models",
    "/proxy/d1/v1/models%5c..",
    "/proxy/d1/v1/mod%zzels",
    // An encoded '/' is accepted only inside a {name+} parameter, and only between clean parts.
    "/proxy/d1%2Fd2/v1/models",
    "/proxy/d1/api%2Ftags",
    "/proxy/d1/v1/models/meta-llama%2F..%2Fother",
    "/proxy/d1/v1/models/meta-llama%2F%2FLlama",
    "/proxy/d1/v1/models/meta-llama%2F",
    "/proxy/d1/v1/models/%2Fetc",
    "/proxy/d1/v1/models/a%2F.%2Fb",
  ])("%s → 400, never forwarded", async (target) => {
    upstream.clear();
    expect(await rawGet(gw.port, target, token)).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it("a model id with a slash is matched whole and forwarded raw", async () => {
    upstream.clear();
    expect(await rawGet(gw.port, "/proxy/d1/v1/models/meta-llama/Llama-3-8B", token)).toBe(200);
    expect(upstream.requests[0]!.path).toBe("/v1/models/meta-llama/Llama-3-8B");
  });

  it("an encoded '/' in a model id ({model+}) is the same id, and forwarded as a plain '/'", async () => {
    upstream.clear();
    expect(await rawGet(gw.port, "/proxy/d1/v1/models/meta-llama%2FLlama-3-8B", token)).toBe(200);
    expect(await rawGet(gw.port, "/proxy/d1/v1/models/meta-llama%2fLlama-3-8B", token)).toBe(200);
    expect(upstream.requests.map((r) => r.path)).toEqual(["/v1/models/meta-llama/Llama-3-8B", "/v1/models/meta-llama/Llama-3-8B"]);
  });

  it("absolute-form targets are refused", async () => {
    upstream.clear();
    const status = await rawGet(gw.port, "http://evil.example/proxy/d1/v1/models", token);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(upstream.requests).toHaveLength(0);
  });
});
