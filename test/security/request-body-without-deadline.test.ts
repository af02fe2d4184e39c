// Finding (review, medium): a relayed request body had no deadline. A body on
// a route that needs nothing from it (any GET) was streamed to the upstream
// as slowly as the client liked, holding a pooled upstream connection for as
// long as it kept the socket open; a body the gateway reads could pause
// for the whole of server.body_timeout. Now a route that takes no body refuses
// one, a streamed body is cut when it pauses too long or runs past its total
// deadline, and a buffered one when it pauses.
import http from "node:http";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { ROOT, startGateway, type TestGateway } from "../helpers/gateway.ts";

/** Sends the head and `first` bytes of a body, then `more` chunks `everyMs` apart (never ending unless `end`); resolves with the status. */
function trickle(url: string, headers: Record<string, string>, opts: { method?: string; first: number; more: number; everyMs: number; end: boolean }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? "POST", headers });
    req.on("response", (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
      req.destroy();
    });
    req.on("error", (e) => (req.destroyed ? undefined : reject(e)));
    req.write(Buffer.alloc(opts.first, 0x61));
    let n = 0;
    const timer = setInterval(() => {
      if (req.destroyed) return clearInterval(timer);
      if (n++ >= opts.more) {
        clearInterval(timer);
        if (opts.end) req.end();
        return;
      }
      req.write("a");
    }, opts.everyMs);
  });
}

describe("every relayed request body has a deadline", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    upstream.route("POST", "/v1/uploads", (c) => c.send(200, { received: c.body.length }));
    // The shipped routes plus one that streams its body through (an upload route that reads nothing from it).
    const routes = path.join(os.tmpdir(), `patgate-routes-${process.pid}-${Date.now()}.yaml`);
    const shipped = readFileSync(path.join(ROOT, "routes.yaml"), "utf8");
    await writeFile(routes, `${shipped}\n  - id: test.upload\n    method: POST\n    path: /v1/uploads\n    operation: llm_read\n    entity: { type: domains, from: domain }\n    body: stream\n    body_limit: 1mb\n`);
    gw = await startGateway({
      upstreamUrl: upstream.url,
      routesFile: routes,
      patch: (cfg) => {
        cfg.server = { ...cfg.server, body_timeout: "20s", body_idle_timeout: "1s", streamed_body_timeout: "3s" };
      },
    });
    ({ token } = await gw.issue({ scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_read" }, { entityType: "models", entityId: "m", operation: "llm_chat_completions" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it.each([
    ["a declared body", { "content-length": "5" }],
    ["a chunked body", { "transfer-encoding": "chunked" }],
  ])("GET /api/tags with %s is refused before anything is forwarded", async (_name, extra) => {
    upstream.clear();
    const status = await trickle(`${gw.url}/proxy/d1/api/tags`, { authorization: `Bearer ${token}`, ...extra }, { method: "GET", first: 1, more: 1000, everyMs: 500, end: false });
    expect(status).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it("a GET without a body still goes through", async () => {
    const res = await fetch(`${gw.url}/proxy/d1/api/tags`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
  });

  it("a streamed body that stops arriving is cut after the idle timeout, and the upstream request with it", async () => {
    upstream.clear();
    const aborted = upstream.waitForAbort(15_000);
    const status = await trickle(`${gw.url}/proxy/d1/v1/uploads`, { authorization: `Bearer ${token}`, "content-length": "100000" }, { first: 1000, more: 0, everyMs: 100, end: false });
    expect(status).toBe(408);
    expect((await aborted).path).toBe("/v1/uploads");
  });

  it("a streamed body that trickles forever is cut at the total deadline", async () => {
    upstream.clear();
    const aborted = upstream.waitForAbort(15_000);
    // One byte every 300 ms never trips the 1 s idle timeout; the 3 s total deadline ends it.
    const status = await trickle(`${gw.url}/proxy/d1/v1/uploads`, { authorization: `Bearer ${token}`, "transfer-encoding": "chunked" }, { first: 10, more: 100, everyMs: 300, end: false });
    expect(status).toBe(408);
    expect((await aborted).path).toBe("/v1/uploads");
  });

  it("a streamed chunked body is cut at the route's limit with 413", async () => {
    upstream.clear();
    const status = await trickle(`${gw.url}/proxy/d1/v1/uploads`, { authorization: `Bearer ${token}`, "transfer-encoding": "chunked" }, { first: 2 * 1024 * 1024, more: 0, everyMs: 100, end: false });
    expect(status).toBe(413);
  });

  it("a streamed body that arrives in time goes through", async () => {
    upstream.clear();
    const status = await trickle(`${gw.url}/proxy/d1/v1/uploads`, { authorization: `Bearer ${token}`, "transfer-encoding": "chunked" }, { first: 1000, more: 3, everyMs: 200, end: true });
    expect(status).toBe(200);
    expect(upstream.requests.some((r) => r.path === "/v1/uploads" && !r.aborted && r.body.length === 1003)).toBe(true);
  });

  it("a body the gateway reads that pauses is refused with 408 long before server.body_timeout", async () => {
    upstream.clear();
    const status = await trickle(`${gw.url}/proxy/d1/v1/chat/completions`, { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": "1000" }, { first: 20, more: 0, everyMs: 100, end: false });
    expect(status).toBe(408);
    expect(upstream.requests).toHaveLength(0);
  });
});
