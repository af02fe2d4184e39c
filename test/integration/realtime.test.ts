// The Realtime API through the gateway (GET /proxy/<domain>/v1/realtime, a WebSocket upgrade):
// the openai SDK's OpenAIRealtimeWS completes a session over wss; refusals are HTTP answers before
// the 101; the upstream sees its own credential, never the PAT or the key subprotocol; the model of
// a session.update is checked like the URL's; close codes pass both ways.
import { readFileSync } from "node:fs";
import { once } from "node:events";
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import { WebSocket } from "ws";
import { Agent, request } from "undici";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { TestCa } from "../helpers/certs.ts";
import { startRealtimeUpstream, type RealtimeUpstream } from "../helpers/realtime-upstream.ts";

const UPSTREAM_KEY = "sk-upstream-own-credential-0123456789";
const REALTIME = [{ entityType: "models", entityId: "gpt-realtime", operation: "llm_realtime" }];

/** Opens a raw WebSocket; resolves with it once open, or with the HTTP answer that refused the upgrade. */
function connect(url: string, opts: { token?: string; protocols?: string[]; ca?: Buffer } = {}): Promise<{ ws: WebSocket; protocol: string } | { status: number; body: string; headers: IncomingMessage["headers"] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }, ...(opts.ca === undefined ? {} : { ca: opts.ca }) });
    ws.once("open", () => resolve({ ws, protocol: ws.protocol }));
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    ws.once("error", (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

/** The next parsed event a raw socket receives whose type is `type`. */
function nextEvent(ws: WebSocket, type: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const on = (data: Buffer): void => {
      const e = JSON.parse(data.toString()) as Record<string, unknown>;
      if (e["type"] !== type) return;
      ws.off("message", on);
      resolve(e);
    };
    ws.on("message", on);
  });
}

describe("realtime sessions through the gateway", () => {
  let upstream: RealtimeUpstream;
  let gw: TestGateway;
  let ca: TestCa;
  let caPem: Buffer;
  let wss: string;

  beforeAll(async () => {
    upstream = await startRealtimeUpstream();
    ca = new TestCa("rt");
    const server = ca.issue("localhost");
    caPem = readFileSync(ca.cert);
    gw = await startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        cfg.server.tls = { cert_file: server.cert, key_file: server.key };
        const def = cfg.upstreams["default"] as Record<string, unknown>;
        def["credential"] = { header: "authorization", value: `Bearer ${UPSTREAM_KEY}` };
        cfg["limits"] = { policies: [{ name: "rt-one-at-a-time", subject: "pat", concurrent: 1, match: { models: ["gpt-realtime-limited"] } }] };
      },
    });
    wss = `wss://localhost:${gw.port}/proxy/d1/v1/realtime`;
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
    ca?.remove();
  });

  const accessLine = async (patId: string): Promise<Record<string, unknown> | undefined> => {
    for (let i = 0; i < 50; i++) {
      const line = gw.logs.records().findLast((r) => r["msg"] === "access" && r["pat_id"] === patId);
      if (line !== undefined) return line;
      await new Promise((r) => setTimeout(r, 20));
    }
    return undefined;
  };

  it("OpenAIRealtimeWS (the openai Node SDK) over wss completes a session: update, response, usage in the access line", async () => {
    const issued = await gw.issue({ userId: "sdk-user", scopes: REALTIME });
    const client = new OpenAI({ apiKey: issued.token, baseURL: `https://localhost:${gw.port}/proxy/d1/v1` });
    const rt = new OpenAIRealtimeWS({ model: "gpt-realtime", options: { ca: caPem } }, client);
    const errors: unknown[] = [];
    rt.on("error", (e) => errors.push(e));
    const created = new Promise<Record<string, unknown>>((resolve) => rt.on("session.created", (e) => resolve(e as unknown as Record<string, unknown>)));
    await once(rt.socket, "open");
    expect(((await created)["session"] as { model: string }).model).toBe("gpt-realtime");
    const updated = new Promise((resolve) => rt.on("session.updated", resolve));
    rt.send({ type: "session.update", session: { type: "realtime", model: "gpt-realtime", instructions: "be brief" } });
    await updated;
    const done = new Promise<Record<string, unknown>>((resolve) => rt.on("response.done", (e) => resolve(e as unknown as Record<string, unknown>)));
    const deltas: string[] = [];
    rt.on("response.output_text.delta", (e) => deltas.push(e.delta));
    rt.send({ type: "response.create" });
    const d = await done;
    expect((d["response"] as { usage: { output_tokens: number } }).usage.output_tokens).toBe(5);
    expect(deltas.join("")).toBe("Hello");
    const fake = await upstream.nextSession();
    rt.close();
    expect((await fake.closed).code).toBe(1000);
    expect(errors).toEqual([]);

    const line = await accessLine(issued.record.id);
    expect(line).toMatchObject({ route: "openai.realtime", operation: "llm_realtime", status: 101, entity: "models:gpt-realtime", decision: "allow", reason: "ok", usage: { input_tokens: 7, output_tokens: 5 } });
    // The upstream saw its own credential, never the PAT.
    expect(fake.handshake.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(fake.handshake.raw).not.toContain(issued.token);
    expect(fake.handshake.url).toBe("/v1/realtime?model=gpt-realtime");
  });

  it("the browser SDK's way (the key in the openai-insecure-api-key subprotocol): `realtime` is selected, the key never echoed nor passed on", async () => {
    const issued = await gw.issue({ userId: "browser-user", scopes: REALTIME });
    const r = await connect(`${wss}?model=gpt-realtime`, { protocols: ["realtime", `openai-insecure-api-key.${issued.token}`, "openai-project.proj_x"], ca: caPem });
    if (!("ws" in r)) throw new Error(`refused: ${r.status} ${r.body}`);
    expect(r.protocol).toBe("realtime");
    const fake = await upstream.nextSession();
    expect(fake.handshake.protocols).toEqual(["realtime"]);
    expect(fake.handshake.raw).not.toContain(issued.token);
    expect(fake.handshake.raw).not.toContain("openai-insecure-api-key");
    expect(fake.handshake.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    r.ws.close(1000);
    await fake.closed;
    const line = await accessLine(issued.record.id);
    expect(JSON.stringify(line)).not.toContain(issued.token);
    expect(gw.logs.lines.join("\n")).not.toContain(issued.token);
  });

  it("a PAT without the scope gets HTTP 403 before the upgrade, in the OpenAI envelope; the upstream is never asked", async () => {
    const before = upstream.sessions.length;
    const issued = await gw.issue({ userId: "narrow", scopes: [{ entityType: "models", entityId: "gpt-realtime", operation: "llm_chat_completions" }] });
    const r = await connect(`${wss}?model=gpt-realtime`, { token: issued.token, ca: caPem });
    expect("status" in r && r.status).toBe(403);
    if (!("status" in r)) return;
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: "insufficient_scope", type: "invalid_request_error" } });
    const other = await gw.issue({ userId: "other-model", scopes: REALTIME });
    const r2 = await connect(`${wss}?model=gpt-4o-realtime`, { token: other.token, ca: caPem });
    expect("status" in r2 && r2.status).toBe(403);
    if ("status" in r2) expect(r2.headers["www-authenticate"]).toContain('scope="models:gpt-4o-realtime:llm_realtime"');
    const none = await connect(`${wss}?model=gpt-realtime`, { ca: caPem });
    expect("status" in none && none.status).toBe(401);
    const bad = await connect(`${wss}?model=gpt-realtime`, { token: "pat_notatoken", ca: caPem });
    expect("status" in bad && bad.status).toBe(401);
    expect(upstream.sessions.length).toBe(before);
  });

  it("refuses before the 101 what it cannot authorize exactly: two models, a second spelling, model with intent; a plain GET gets 426", async () => {
    // With both operations on every model, only the request's shape can refuse it.
    const issued = await gw.issue({ userId: "tricks", scopes: [{ entityType: "models", entityId: "*", operation: "llm_realtime" }, { entityType: "models", entityId: "*", operation: "llm_transcription" }] });
    for (const q of ["model=gpt-realtime&model=other", "model=gpt-realtime&Model=other", "model=gpt-realtime&intent=transcription", "intent=dance", ""]) {
      const r = await connect(`${wss}?${q}`, { token: issued.token, ca: caPem });
      expect("status" in r && r.status, q).toBe(400);
    }
    const agent = new Agent({ connect: { ca: caPem } });
    const plain = await request(`https://localhost:${gw.port}/proxy/d1/v1/realtime?model=gpt-realtime`, { headers: { authorization: `Bearer ${issued.token}` }, dispatcher: agent });
    expect(plain.statusCode).toBe(426);
    expect(((await plain.body.json()) as { error: { code: string } }).error.code).toBe("upgrade_required");
    await agent.close();
  });

  it("intent=transcription is llm_transcription on every model; the transcription model a session names is checked", async () => {
    const one = await gw.issue({ userId: "tr-one", scopes: [{ entityType: "models", entityId: "whisper-1", operation: "llm_transcription" }] });
    const r = await connect(`${wss}?intent=transcription`, { token: one.token, ca: caPem });
    expect("status" in r && r.status).toBe(403);
    const all = await gw.issue({ userId: "tr-all", scopes: [{ entityType: "models", entityId: "*", operation: "llm_transcription" }] });
    const ok = await connect(`${wss}?intent=transcription`, { token: all.token, ca: caPem });
    if (!("ws" in ok)) throw new Error(`refused: ${ok.status} ${ok.body}`);
    const fake = await upstream.nextSession();
    expect(fake.handshake.url).toBe("/v1/realtime?intent=transcription");
    const updated = nextEvent(ok.ws, "session.updated");
    ok.ws.send(JSON.stringify({ type: "session.update", session: { type: "transcription", audio: { input: { transcription: { model: "whisper-1" } } } } }));
    await updated;
    ok.ws.close();
    await fake.closed;
    const line = await accessLine(all.record.id);
    expect(line).toMatchObject({ operation: "llm_transcription", entity: "models:whisper-1" });
  });

  it("a session.update naming a model the PAT may not use is answered with an error event and not passed on; an allowed one is", async () => {
    const issued = await gw.issue({ userId: "updater", scopes: [...REALTIME, { entityType: "models", entityId: "gpt-realtime-mini", operation: "llm_realtime" }] });
    const r = await connect(`${wss}?model=gpt-realtime`, { token: issued.token, ca: caPem });
    if (!("ws" in r)) throw new Error(`refused: ${r.status} ${r.body}`);
    const fake = await upstream.nextSession();
    const refused = nextEvent(r.ws, "error");
    r.ws.send(JSON.stringify({ type: "session.update", event_id: "evt_bad", session: { model: "gpt-5-realtime" } }));
    const e = (await refused)["error"] as Record<string, unknown>;
    expect(e).toMatchObject({ code: "insufficient_scope", type: "invalid_request_error", event_id: "evt_bad" });
    // Ambiguous spellings and a transcription model without llm_transcription are refused too.
    for (const bad of [
      '{"type":"session.update","session":{"model":"gpt-realtime","MODEL":"gpt-5-realtime"}}',
      '{"type":"session.update","session":{"mod\\u0065l":"gpt-5-realtime"}}',
      '{"type":"session.update","type":"x","session":{"model":"gpt-5-realtime"}}',
      JSON.stringify({ type: "session.update", session: { audio: { input: { transcription: { model: "whisper-1" } } } } }),
    ]) {
      const err = nextEvent(r.ws, "error");
      r.ws.send(bad);
      expect(((await err)["error"] as { code: string }).code, bad).toMatch(/entity_ambiguous|insufficient_scope|role_denied/);
    }
    const updated = nextEvent(r.ws, "session.updated");
    r.ws.send(JSON.stringify({ type: "session.update", session: { model: "gpt-realtime-mini" } }));
    await updated;
    const updates = fake.events.filter((x) => x["type"] === "session.update");
    expect(updates).toEqual([{ type: "session.update", session: { model: "gpt-realtime-mini" } }]);
    r.ws.close();
    const line = await accessLine(issued.record.id);
    expect(line?.["entity"]).toBe("models:gpt-realtime-mini");
  });

  it("a limit refuses before the upgrade with 429 and its Retry-After; a session holds its concurrent slot until it ends", async () => {
    const issued = await gw.issue({ userId: "limited", scopes: [{ entityType: "models", entityId: "gpt-realtime-limited", operation: "llm_realtime" }] });
    const url = `${wss}?model=gpt-realtime-limited`;
    const first = await connect(url, { token: issued.token, ca: caPem });
    if (!("ws" in first)) throw new Error(`refused: ${first.status} ${first.body}`);
    const fake = await upstream.nextSession();
    const second = await connect(url, { token: issued.token, ca: caPem });
    expect("status" in second && second.status).toBe(429);
    if ("status" in second) {
      expect(JSON.parse(second.body)).toMatchObject({ error: { code: "rate_limit_exceeded", param: "rt-one-at-a-time" } });
      expect(second.headers["retry-after"]).toBeDefined();
    }
    first.ws.close();
    await fake.closed;
    const third = await connect(url, { token: issued.token, ca: caPem });
    if (!("ws" in third)) throw new Error(`refused after the first ended: ${third.status} ${third.body}`);
    await upstream.nextSession();
    third.ws.close();
  });

  it("a handshake the WebSocket server refuses after the decision (a malformed subprotocol list) is a 400 with its access line, and frees the slot", async () => {
    const issued = await gw.issue({ userId: "bad-protocols", scopes: [{ entityType: "models", entityId: "gpt-realtime-limited", operation: "llm_realtime" }] });
    const raw = async (): Promise<string> => {
      const { connect: tls } = await import("node:tls");
      const s = tls({ host: "localhost", port: gw.port, ca: caPem, servername: "localhost" });
      await once(s, "secureConnect");
      s.write(["GET /proxy/d1/v1/realtime?model=gpt-realtime-limited HTTP/1.1", "Host: localhost", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", `Authorization: Bearer ${issued.token}`, "Sec-WebSocket-Protocol: realtime,,bad protocol", "", ""].join("\r\n"));
      let text = "";
      s.setEncoding("utf8");
      for await (const chunk of s) text += chunk as string;
      return text;
    };
    expect(await raw()).toMatch(/^HTTP\/1.1 400 /);
    const line = await accessLine(issued.record.id);
    expect(line).toMatchObject({ status: 400, reason: "bad_request" });
    // The concurrent slot the decision took is free again (rt-one-at-a-time allows one).
    const ok = await connect(`${wss}?model=gpt-realtime-limited`, { token: issued.token, ca: caPem });
    if (!("ws" in ok)) throw new Error(`refused: ${ok.status} ${ok.body}`);
    await upstream.nextSession();
    ok.ws.close();
  });

  it("close codes pass both ways", async () => {
    const issued = await gw.issue({ userId: "closer", scopes: REALTIME });
    const a = await connect(`${wss}?model=gpt-realtime`, { token: issued.token, ca: caPem });
    if (!("ws" in a)) throw new Error("refused");
    const fa = await upstream.nextSession();
    a.ws.close(4001, "client says bye");
    expect(await fa.closed).toEqual({ code: 4001, reason: "client says bye" });

    const b = await connect(`${wss}?model=gpt-realtime`, { token: issued.token, ca: caPem });
    if (!("ws" in b)) throw new Error("refused");
    await upstream.nextSession();
    const closed = once(b.ws, "close");
    b.ws.send(JSON.stringify({ type: "test.close", code: 4002, reason: "upstream says bye" }));
    const [code, reason] = (await closed) as [number, Buffer];
    expect([code, reason.toString()]).toEqual([4002, "upstream says bye"]);
  });
});

describe("realtime on an HTTPS listener with HTTP/2 on", () => {
  it("the upgrade arrives over the listener's HTTP/1.1 fallback and the session opens", async () => {
    const up = await startRealtimeUpstream();
    const ca = new TestCa("rt-h2");
    const s = ca.issue("localhost");
    const gw = await startGateway({ upstreamUrl: up.url, patch: (c) => (c.server.tls = { cert_file: s.cert, key_file: s.key, http2: true }) });
    try {
      const t = await gw.issue({ scopes: REALTIME });
      const r = await connect(`wss://localhost:${gw.port}/proxy/d1/v1/realtime?model=gpt-realtime`, { token: t.token, ca: readFileSync(ca.cert) });
      if (!("ws" in r)) throw new Error(`refused: ${r.status} ${r.body}`);
      const created = nextEvent(r.ws, "session.created");
      await created;
      r.ws.close();
    } finally {
      await gw.close();
      await up.close();
      ca.remove();
    }
  });
});

describe("realtime to an https upstream", () => {
  it("opens wss:// to it with the upstream's own TLS trust (tls.ca_file), and refuses one it cannot trust", async () => {
    const upCa = new TestCa("rt-up");
    const up = await startRealtimeUpstream({ tls: upCa.issue("localhost") });
    const start = (trusted: boolean): Promise<TestGateway> =>
      startGateway({
        upstreamUrl: up.url,
        patch: (c) => {
          if (trusted) (c.upstreams["default"] as Record<string, unknown>)["tls"] = { ca_file: upCa.cert };
        },
      });
    const [good, bad] = await Promise.all([start(true), start(false)]);
    try {
      const t = await good.issue({ scopes: REALTIME });
      const r = await connect(`ws://127.0.0.1:${good.port}/proxy/d1/v1/realtime?model=gpt-realtime`, { token: t.token });
      if (!("ws" in r)) throw new Error(`refused: ${r.status} ${r.body}`);
      await nextEvent(r.ws, "session.created");
      r.ws.close();
      await (await up.nextSession()).closed;

      const t2 = await bad.issue({ scopes: REALTIME });
      const r2 = await connect(`ws://127.0.0.1:${bad.port}/proxy/d1/v1/realtime?model=gpt-realtime`, { token: t2.token });
      if (!("ws" in r2)) throw new Error(`refused: ${r2.status} ${r2.body}`);
      const err = await nextEvent(r2.ws, "error");
      expect(err["error"]).toMatchObject({ code: "upstream_error" });
      const [code] = (await once(r2.ws, "close")) as [number];
      expect(code).toBe(1011);
      expect(up.sessions.length).toBe(1);
    } finally {
      await good.close();
      await bad.close();
      await up.close();
      upCa.remove();
    }
  });
});
