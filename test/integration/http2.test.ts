// HTTP/2 on the gateway (server.tls.http2, negotiated by ALPN beside HTTP/1.1):
// the openai client (undici with allowH2) and curl --http2 work; SSE streams
// frame by frame; connection-specific headers are handled on both legs (no
// pseudo-header reaches the upstream, no hop-by-hop header or reason phrase is
// sent on a stream); a body of unknown length is forwarded whole; a client
// that resets its stream aborts the upstream request; the management API
// answers too; a drain lets open streams finish.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { Agent, buildConnector, fetch as undiciFetch } from "undici";
import { fakeStreamPiece, startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { ROOT, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { TestCa } from "../helpers/certs.ts";

const run = promisify(execFile);
const SCOPES = ["llm_chat_completions", "llm_embeddings"].map((operation) => ({ entityType: "models", entityId: "llama3", operation }));

interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** One request on an HTTP/2 session, read to its end. */
function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string | Buffer | Buffer[]): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let got: http2.IncomingHttpHeaders = {};
    let text = "";
    req.on("response", (h) => {
      status = Number(h[":status"]);
      got = h;
    });
    req.setEncoding("utf8");
    req.on("data", (d: string) => (text += d));
    req.on("end", () => resolve({ status, headers: got, body: text }));
    req.on("error", reject);
    if (Array.isArray(body)) {
      for (const b of body) req.write(b);
      req.end();
    } else if (body !== undefined) req.end(body);
  });
}

describe("HTTP/2 on the gateway", () => {
  let ca: TestCa;
  let dir: string;
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let base: string;
  let token: string;
  let session: http2.ClientHttp2Session;
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };

  beforeAll(async () => {
    process.on("warning", onWarning);
    ca = new TestCa("h2");
    const server = ca.issue("localhost");
    dir = await mkdtemp(path.join(os.tmpdir(), "patgate-h2-"));
    // The default table plus a route whose body is streamed through unread (entity: the domain).
    const routes = `${readFileSync(path.join(ROOT, "routes.yaml"), "utf8")}
  - id: test.upload
    method: POST
    path: /v1/uploads
    operation: llm_create
    entity: { type: domains, from: domain }
`;
    await writeFile(path.join(dir, "routes.yaml"), routes);
    upstream = await startFakeUpstream({ sseIntervalMs: 1 });
    gw = await startGateway({
      upstreamUrl: upstream.url,
      routesFile: path.join(dir, "routes.yaml"),
      patch: (cfg) => {
        cfg.server.tls = { cert_file: server.cert, key_file: server.key, http2: true };
      },
    });
    base = `https://localhost:${gw.port}`;
    token = (await gw.issue({ scopes: [...SCOPES, { entityType: "domains", entityId: "d1", operation: "llm_read" }, { entityType: "domains", entityId: "d1", operation: "llm_create" }] })).token;
    session = http2.connect(base, { ca: readFileSync(ca.cert) });
  });
  afterAll(async () => {
    process.off("warning", onWarning);
    session?.close();
    await gw?.close();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
    ca?.remove();
  });

  it("the openai client over HTTP/2 (undici allowH2): chat, streamed chat, embeddings; the upstream sees no pseudo-header and no PAT", async () => {
    const protocols: Array<string | false> = [];
    const connector = buildConnector({ ca: readFileSync(ca.cert), allowH2: true });
    const agent = new Agent({
      allowH2: true,
      connect: (opts, cb) =>
        connector(opts, (err, socket) => {
          if (socket !== null) protocols.push((socket as { alpnProtocol?: string | false }).alpnProtocol ?? false);
          if (err !== null) cb(err, null);
          else cb(null, socket);
        }),
    });
    try {
      const client = new OpenAI({ baseURL: `${base}/proxy/d1/v1`, apiKey: token, maxRetries: 0, fetch: ((url: string, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch });
      upstream.clear();
      const chat = await client.chat.completions.create({ model: "llama3", messages: [{ role: "user", content: "hi" }] });
      expect(chat.choices[0]?.message.content).toBeTruthy();
      const stream = await client.chat.completions.create({ model: "llama3", stream: true, messages: [{ role: "user", content: "hi" }] });
      let chunks = 0;
      for await (const c of stream) if (c.choices[0]?.delta.content !== undefined) chunks++;
      expect(chunks).toBeGreaterThanOrEqual(5);
      const emb = await client.embeddings.create({ model: "llama3", input: "a" });
      expect(emb.data).toHaveLength(1);
      expect(protocols).toEqual(["h2"]);
      expect(upstream.requests).toHaveLength(3);
      for (const r of upstream.requests) {
        expect(r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i]?.startsWith(":"))).toEqual([]);
        expect(r.headers.authorization).toBeUndefined();
        expect(JSON.stringify(r.rawHeaders)).not.toContain(token);
      }
    } finally {
      await agent.close();
    }
  });

  it("curl --http2 -k gets the model list over HTTP/2", async () => {
    const { stdout } = await run("curl", ["-sS", "-k", "--http2", `${base}/proxy/d1/v1/models`, "-H", `Authorization: Bearer ${token}`, "-w", "\n%{http_version} %{http_code}"]);
    const [body, version] = stdout.split("\n");
    expect(version).toBe("2 200");
    expect((JSON.parse(body ?? "") as { data: unknown[] }).data.length).toBeGreaterThan(0);
    // HTTP/1.1 stays available on the same port.
    const h1 = await run("curl", ["-sS", "-k", "--http1.1", `${base}/proxy/d1/v1/models`, "-H", `Authorization: Bearer ${token}`, "-o", "/dev/null", "-w", "%{http_version} %{http_code}"]);
    expect(h1.stdout).toBe("1.1 200");
  });

  it("SSE over HTTP/2: each frame reaches the client before the upstream writes the next", async () => {
    upstream.configure({ sseMode: "manual", sseChunks: 4 });
    upstream.clear();
    try {
      const req = session.request({ ":method": "POST", ":path": "/proxy/d1/v1/chat/completions", authorization: `Bearer ${token}`, "content-type": "application/json" });
      req.end('{"model":"llama3","stream":true,"messages":[]}');
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => req.once("response", resolve));
      expect(headers[":status"]).toBe(200);
      expect(headers["content-type"]).toMatch(/^text\/event-stream/);
      const stream = await upstream.nextStream();
      let received = "";
      req.setEncoding("utf8");
      const next = (): Promise<void> => new Promise((resolve) => req.once("data", (d: string) => ((received += d), resolve())));
      for (let i = 0; i < 4; i++) {
        await stream.release(1);
        while (!received.includes(fakeStreamPiece(i))) await next();
        if (i + 1 < 4) expect(received).not.toContain(fakeStreamPiece(i + 1));
      }
      await stream.releaseAll();
      await new Promise<void>((resolve) => {
        req.on("data", (d: string) => (received += d));
        req.once("end", resolve);
      });
      expect(received).toContain("data: [DONE]");
    } finally {
      upstream.configure({ sseMode: "timed" });
    }
  });

  it("a client that resets its stream aborts the upstream request", async () => {
    upstream.configure({ sseMode: "manual", sseChunks: 10 });
    upstream.clear();
    try {
      const req = session.request({ ":method": "POST", ":path": "/proxy/d1/v1/chat/completions", authorization: `Bearer ${token}`, "content-type": "application/json" });
      req.end('{"model":"llama3","stream":true,"messages":[]}');
      const stream = await upstream.nextStream();
      await stream.release(1);
      await new Promise((resolve) => req.once("data", resolve));
      req.close(http2.constants.NGHTTP2_CANCEL);
      await stream.waitForAbort();
    } finally {
      upstream.configure({ sseMode: "timed" });
    }
  });

  it("connection-specific response headers and reason phrases are not sent on a stream (and Node has nothing to warn about)", async () => {
    const remove = upstream.route("POST", "/v1/chat/completions", ({ res }) => {
      res.writeHead(200, "Quite Fine", { "content-type": "application/json", connection: "x-hop", "x-hop": "1", "keep-alive": "timeout=5", "x-end": "kept" });
      res.end("{}");
    });
    try {
      const r = await h2request(session, { ":method": "POST", ":path": "/proxy/d1/v1/chat/completions", authorization: `Bearer ${token}`, "content-type": "application/json" }, '{"model":"llama3","messages":[]}');
      expect(r.status).toBe(200);
      expect(r.headers["x-end"]).toBe("kept");
      for (const h of ["connection", "keep-alive", "x-hop", "transfer-encoding"]) expect(r.headers[h], h).toBeUndefined();
      // A refusal that closes an HTTP/1.1 connection (the unread body is large) only ends the stream here.
      const big = Buffer.alloc(100_000, 0x20);
      const refused = await h2request(session, { ":method": "POST", ":path": "/proxy/d1/v1/chat/completions", "content-type": "application/json", "content-length": String(big.length) }, big);
      expect(refused.status).toBe(401);
      expect(refused.headers.connection).toBeUndefined();
      // The session is still usable afterwards.
      expect((await h2request(session, { ":path": "/healthz" })).status).toBe(200);
      expect(warnings.map((w) => w.message)).toEqual([]);
    } finally {
      remove();
    }
  });

  it("a request body of unknown length (no content-length) is streamed to the upstream whole", async () => {
    const remove = upstream.route("POST", "/v1/uploads", (c) => c.send(200, { bytes: c.body.length }));
    try {
      upstream.clear();
      const parts = [Buffer.alloc(40_000, 1), Buffer.alloc(30_000, 2), Buffer.from("end")];
      const r = await h2request(session, { ":method": "POST", ":path": "/proxy/d1/v1/uploads", authorization: `Bearer ${token}`, "content-type": "application/octet-stream" }, parts);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ bytes: 70_003 });
      expect(upstream.requests[0]?.body.equals(Buffer.concat(parts))).toBe(true);
    } finally {
      remove();
    }
  });

  it("the management API answers over HTTP/2", async () => {
    const r = await h2request(session, { ":path": "/pats?user_id=alice", authorization: `Bearer ${gw.adminKey ?? ""}` });
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as { pats: unknown[] }).pats.length).toBeGreaterThan(0);
  });
});

describe("HTTP/2 drain", () => {
  it("on close, an open stream finishes (GOAWAY, no new streams), then close resolves", async () => {
    const ca = new TestCa("h2-drain");
    const server = ca.issue("localhost");
    const upstream = await startFakeUpstream({ sseMode: "manual", sseChunks: 3 });
    const gw = await startGateway({ upstreamUrl: upstream.url, patch: (cfg) => (cfg.server.tls = { cert_file: server.cert, key_file: server.key, http2: true }) });
    const token = (await gw.issue({ scopes: SCOPES })).token;
    const session = http2.connect(`https://localhost:${gw.port}`, { ca: readFileSync(ca.cert) });
    try {
      const goaway = new Promise((resolve) => session.once("goaway", resolve));
      const req = session.request({ ":method": "POST", ":path": "/proxy/d1/v1/chat/completions", authorization: `Bearer ${token}`, "content-type": "application/json" });
      req.end('{"model":"llama3","stream":true,"messages":[]}');
      let received = "";
      req.setEncoding("utf8");
      req.on("data", (d: string) => (received += d));
      const ended = new Promise((resolve) => req.once("end", resolve));
      const stream = await upstream.nextStream();
      await stream.release(1);
      let closed = false;
      const closing = gw.close().then(() => (closed = true));
      await goaway;
      await new Promise((r) => setTimeout(r, 50));
      expect(closed).toBe(false);
      await stream.releaseAll();
      await ended;
      await closing;
      expect(received).toContain("data: [DONE]");
    } finally {
      session.destroy();
      await upstream.close();
      ca.remove();
    }
  });
});
