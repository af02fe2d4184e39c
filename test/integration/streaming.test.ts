// Streaming both ways: SSE reaches the client chunk by chunk (never buffered),
// a client that leaves aborts the upstream request at once, request bodies are
// streamed when the route needs nothing from them, and upstream failures and
// timeouts map to 502/504.
import http from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startFakeUpstream, fakeStreamPiece, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("streaming", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        Object.assign(cfg.upstreams.default!, { headers_timeout: "1s", body_timeout: "1s" });
      },
    });
    ({ token } = await gw.issue({
      scopes: ["llm_chat_completions", "llm_create", "llm_completions", "llm_read"].map((operation) => ({ entityType: "domains", entityId: "d1", operation })),
    }));
  });
  beforeEach(() => {
    upstream.resetRoutes();
    upstream.configure({ sseMode: "timed", sseIntervalMs: 1 });
    upstream.clear();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const post = (path: string, body: string, signal?: AbortSignal): Promise<Response> =>
    fetch(`${gw.url}/proxy/d1${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
      ...(signal === undefined ? {} : { signal }),
    });

  it("SSE: the client receives each chunk before the upstream writes the next", async () => {
    upstream.configure({ sseMode: "manual", sseChunks: 4 });
    const res = await post("/v1/chat/completions", '{"model":"llama3","stream":true,"messages":[]}');
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("x-accel-buffering")).toBe("no");
    const stream = await upstream.nextStream();
    const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const decoder = new TextDecoder();
    let received = "";
    for (let i = 0; i < 4; i++) {
      expect(stream.written).toBe(i);
      await stream.release(1);
      // Read until chunk i is here; the upstream has not written chunk i+1 yet.
      while (!received.includes(fakeStreamPiece(i))) {
        const { value, done } = await reader.read();
        expect(done).toBe(false);
        received += decoder.decode(value, { stream: true });
      }
      expect(stream.written).toBe(i + 1);
      if (i + 1 < 4) expect(received).not.toContain(fakeStreamPiece(i + 1));
    }
    await stream.releaseAll();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += decoder.decode(value, { stream: true });
    }
    expect(received).toContain("data: [DONE]");
  });

  it("a client that disconnects mid-stream aborts the upstream request", async () => {
    upstream.configure({ sseMode: "manual", sseChunks: 10 });
    const ac = new AbortController();
    const res = await post("/v1/chat/completions", '{"model":"llama3","stream":true,"messages":[]}', ac.signal);
    const stream = await upstream.nextStream();
    await stream.release(1);
    const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    await reader.read();
    ac.abort();
    await stream.waitForAbort(2_000);
    expect(stream.aborted).toBe(true);
    await stream.finished;
  });

  it("a stream whose PAT is revoked mid-stream is cut at once with an error event, and the upstream request aborted", async () => {
    const issued = await gw.issue({ userId: "streamer", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    upstream.configure({ sseMode: "manual", sseChunks: 50 });
    const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${issued.token}`, "content-type": "application/json" },
      body: '{"model":"llama3","stream":true,"messages":[]}',
    });
    const stream = await upstream.nextStream();
    await stream.release(1);
    const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    await reader.read();
    const t0 = performance.now();
    expect(await gw.store.replacePat({ ...issued.record, revoked: true, revokedAt: Date.now() }, issued.record.version)).toBe("ok");
    // The client's stream ends with an SSE error event saying why, and the upstream hears the abort.
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(rest).toMatch(/event: error\ndata: \{"error":\{"message":"[^"]+","type":"invalid_request_error","code":"stream_revoked","param":null\}\}\n\n$/);
    await stream.waitForAbort(2_000);
    await new Promise((r) => setTimeout(r, 50));
    const line = gw.logs.records().findLast((r) => r["pat_id"] === issued.record.id);
    expect(line?.["reason"]).toBe("stream_revoked");
  });

  it("a scope change that still allows the stream leaves it running", async () => {
    const issued = await gw.issue({ userId: "streamer2", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    upstream.configure({ sseMode: "manual", sseChunks: 3 });
    const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${issued.token}`, "content-type": "application/json" },
      body: '{"model":"llama3","stream":true,"messages":[]}',
    });
    const stream = await upstream.nextStream();
    await stream.release(1);
    const extra = { domainId: "d1", entityType: "models", entityId: "mistral", operation: "llm_chat_completions" };
    expect(await gw.store.replacePat({ ...issued.record, scopes: [...issued.record.scopes, extra] }, issued.record.version)).toBe("ok");
    await new Promise((r) => setTimeout(r, 100));
    await stream.releaseAll();
    expect(await res.text()).toContain("data: [DONE]");
  });

  it("Ollama NDJSON streams through unbuffered too", async () => {
    upstream.configure({ sseMode: "manual", sseChunks: 3 });
    const res = await post("/api/generate", '{"model":"llama3","prompt":"hi"}');
    const stream = await upstream.nextStream();
    expect(stream.format).toBe("ndjson");
    await stream.release(1);
    const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('"done":false');
    expect(stream.written).toBe(1);
    await stream.releaseAll();
    while (!(await reader.read()).done);
  });

  it("upstream that never sends headers → 504 upstream_timeout", async () => {
    upstream.route("POST", "/v1/completions", () => undefined);
    const res = await post("/v1/completions", '{"model":"llama3","prompt":"x"}');
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("upstream_timeout");
  });

  it("upstream that stalls mid-body → the client's response is cut, not ended cleanly", async () => {
    upstream.route("POST", "/v1/completions", ({ res }) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"partial":');
    });
    const res = await post("/v1/completions", '{"model":"llama3","prompt":"x"}');
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it("upstream that closes the connection → 502 upstream_error", async () => {
    upstream.route("POST", "/v1/completions", ({ req }) => {
      req.socket.destroy();
    });
    const res = await post("/v1/completions", '{"model":"llama3","prompt":"x"}');
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("upstream_error");
  });

  it("upstream errors pass through with their status and body", async () => {
    upstream.route("POST", "/v1/completions", (c) => c.send(429, { error: { message: "slow down", type: "rate_limit_error" } }, { "retry-after": "3" }));
    const res = await post("/v1/completions", '{"model":"llama3","prompt":"x"}');
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("3");
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe("slow down");
  });

  it("body over the route's limit → 413 before anything is forwarded", async () => {
    const big = JSON.stringify({ model: "llama3", messages: [{ role: "user", content: "x".repeat(11 * 1024 * 1024) }] });
    const res = await post("/v1/chat/completions", big).catch((e: unknown) => e);
    // The gateway may answer 413 and close before the client finished sending.
    if (res instanceof Response) expect(res.status).toBe(413);
    expect(upstream.requests).toHaveLength(0);
  });

  it("a chunked body over the limit (no Content-Length) → 413", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${gw.url}/proxy/d1/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "transfer-encoding": "chunked" },
      });
      req.on("response", (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on("error", reject);
      const piece = Buffer.alloc(1024 * 1024, 32);
      req.write('{"model":"llama3","x":"');
      let sent = 0;
      const pump = (): void => {
        while (sent < 12) {
          sent++;
          if (!req.write(piece)) return void req.once("drain", pump);
        }
        req.end('"}');
      };
      pump();
    });
    expect(status).toBe(413);
    expect(upstream.requests).toHaveLength(0);
  });

  it("a chunked body on a route that takes none (GET /api/tags) is refused, never forwarded", async () => {
    upstream.clear();
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${gw.url}/proxy/d1/api/tags`, {
        method: "GET",
        headers: { authorization: `Bearer ${token}`, "transfer-encoding": "chunked" },
      });
      req.on("response", (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on("error", reject);
      const piece = Buffer.alloc(1024 * 1024, 32);
      let sent = 0;
      const pump = (): void => {
        while (sent < 12) {
          sent++;
          if (!req.write(piece)) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
    // Streamed bodies cut at their limit and deadlines: test/security/request-body-without-deadline.test.ts.
    expect(status).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it("client abort while the gateway waits for upstream headers aborts the upstream request", async () => {
    upstream.route("POST", "/v1/completions", () => undefined);
    const ac = new AbortController();
    const pending = post("/v1/completions", '{"model":"llama3","prompt":"x"}', ac.signal).catch(() => "aborted");
    const seen = new Promise<void>((resolve) => (upstream.onRequest = (): void => resolve()));
    await seen;
    upstream.onRequest = undefined;
    ac.abort();
    expect(await pending).toBe("aborted");
    const aborted = await upstream.waitForAbort(2_000);
    expect(aborted.path).toBe("/v1/completions");
  });
});
