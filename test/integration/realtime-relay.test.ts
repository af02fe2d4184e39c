// The relay holds up: client frames wait for a slow upstream and arrive in order; a side that stops
// reading pauses the other instead of growing the gateway's buffers (bounded by realtime.max_buffered);
// a frame above realtime.max_frame closes the session (1009); idle and maximum session times end it
// with a Realtime error event; the active-sessions gauge counts sessions.
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRealtimeUpstream, type RealtimeUpstream } from "../helpers/realtime-upstream.ts";
import { ERRORS } from "../../src/errors.ts";

const REALTIME = [{ entityType: "models", entityId: "gpt-realtime", operation: "llm_realtime" }];
const MAX_FRAME = 64 * 1024;
const MAX_BUFFERED = 256 * 1024;

interface Client {
  readonly ws: WebSocket;
  readonly events: Array<Record<string, unknown>>;
  /** Bytes of messages received. */
  received(): number;
  readonly ended: Promise<{ code: number; at: number }>;
}

async function open(gw: TestGateway, token: string): Promise<Client> {
  const ws = new WebSocket(`${gw.url}/proxy/d1/v1/realtime?model=gpt-realtime`, { headers: { authorization: `Bearer ${token}` } });
  const events: Array<Record<string, unknown>> = [];
  let bytes = 0;
  ws.on("message", (d: Buffer) => {
    bytes += d.length;
    // Flood frames are counted, not kept.
    if (d.length < 1024) events.push(JSON.parse(d.toString("utf8")) as Record<string, unknown>);
  });
  const ended = new Promise<{ code: number; at: number }>((resolve) => ws.on("close", (code) => resolve({ code, at: Date.now() })));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, events, received: () => bytes, ended };
}

const until = async (what: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

async function gauge(gw: TestGateway, name: string): Promise<number> {
  const m = gw.app.metrics.registry.getSingleMetric(name);
  const v = await m?.get();
  return v?.values[0]?.value ?? NaN;
}

describe("the realtime relay", () => {
  let upstream: RealtimeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startRealtimeUpstream();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        cfg["realtime"] = { max_frame: "64kb", max_buffered: "256kb", idle_timeout: "1s", max_session: "3s" };
      },
    });
    token = (await gw.issue({ userId: "relay", scopes: REALTIME })).token;
  });
  beforeEach(() => {
    upstream.acceptDelayMs = 0;
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("queues client frames until the upstream is open, then sends them on in order", async () => {
    upstream.acceptDelayMs = 300;
    const c = await open(gw, token);
    c.ws.send(JSON.stringify({ type: "session.update", session: { instructions: "one" } }));
    c.ws.send(JSON.stringify({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "two" }] } }));
    c.ws.send(JSON.stringify({ type: "response.create" }));
    const fake = await upstream.nextSession();
    await until(() => c.events.some((e) => e["type"] === "response.done"));
    expect(fake.events.map((e) => e["type"])).toEqual(["session.update", "conversation.item.create", "response.create"]);
    c.ws.close();
    await c.ended;
  });

  it("a client that stops reading pauses the upstream: the gateway holds no more than realtime.max_buffered, and all arrives once it reads again", async () => {
    const c = await open(gw, token);
    const fake = await upstream.nextSession();
    await until(() => c.events.some((e) => e["type"] === "session.created"));
    c.ws.pause();
    const total = 32 * 1024 * 1024;
    const frame = 32 * 1024;
    const left = await upstream.flood(fake, total, frame);
    await new Promise((r) => setTimeout(r, 300));
    const held = await gauge(gw, "patgate_realtime_buffered_bytes");
    // One frame may land on top of the bound before the pause takes hold.
    expect(held).toBeLessThanOrEqual(MAX_BUFFERED + 2 * (frame + 64));
    // The rest waits on the upstream's side: the gateway stopped reading it.
    expect(fake.socket.bufferedAmount).toBeGreaterThan(total / 2);
    expect(left).toBeGreaterThan(total / 2);
    c.ws.resume();
    // Every byte the upstream sent reaches the client once it reads again: paused, not dropped.
    await until(() => fake.socket.bufferedAmount === 0 && c.received() >= total, 15_000);
    c.ws.close();
    await c.ended;
  }, 30_000);

  it("an upstream that stops reading pauses the client the same way", async () => {
    const c = await open(gw, token);
    const fake = await upstream.nextSession();
    await until(() => c.events.some((e) => e["type"] === "session.created"));
    fake.socket.pause();
    const chunk = JSON.stringify({ type: "input_audio_buffer.append", audio: "B".repeat(32 * 1024) });
    for (let i = 0; i < 1024; i++) {
      c.ws.send(chunk);
      if (i % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(await gauge(gw, "patgate_realtime_buffered_bytes")).toBeLessThanOrEqual(MAX_BUFFERED + 2 * (chunk.length + 64));
    expect(c.ws.bufferedAmount).toBeGreaterThan(8 * 1024 * 1024);
    fake.socket.resume();
    await until(() => fake.events.length >= 1024, 15_000);
    c.ws.close();
    await c.ended;
  }, 30_000);

  it("a frame above realtime.max_frame closes the session with 1009", async () => {
    const c = await open(gw, token);
    const fake = await upstream.nextSession();
    c.ws.send(JSON.stringify({ type: "input_audio_buffer.append", audio: "C".repeat(MAX_FRAME + 1) }));
    expect((await c.ended).code).toBe(1009);
    await fake.closed;
    expect(fake.events).toEqual([]);
  });

  it("a session with no frame either way for realtime.idle_timeout is closed with session_idle", async () => {
    const c = await open(gw, token);
    await upstream.nextSession();
    const started = Date.now();
    const end = await c.ended;
    expect(end.at - started).toBeGreaterThanOrEqual(900);
    expect(end.code).toBe(1000);
    expect(c.events.at(-1)).toMatchObject({ type: "error", error: { code: "session_idle", message: ERRORS.session_idle.message } });
  });

  it("a busy session is closed at realtime.max_session with session_too_long; the gauge counts it while it runs", async () => {
    const c = await open(gw, token);
    const started = Date.now();
    await upstream.nextSession();
    expect(await gauge(gw, "patgate_realtime_sessions")).toBe(1);
    const beat = setInterval(() => {
      if (c.ws.readyState === WebSocket.OPEN) c.ws.send(JSON.stringify({ type: "input_audio_buffer.clear" }));
    }, 200);
    const end = await c.ended;
    clearInterval(beat);
    expect(end.at - started).toBeGreaterThanOrEqual(2900);
    expect(end.code).toBe(1000);
    expect(c.events.at(-1)).toMatchObject({ type: "error", error: { code: "session_too_long" } });
    await until(() => gw.logs.records().some((r) => r["msg"] === "access" && r["reason"] === "session_too_long"));
    expect(await gauge(gw, "patgate_realtime_sessions")).toBe(0);
  }, 10_000);

  it("a session still running at the drain deadline of a shutdown gets shutting_down and 1001", async () => {
    const own = await startGateway({ upstreamUrl: upstream.url });
    const t = (await own.issue({ userId: "drain", scopes: REALTIME })).token;
    const c = await open(own, t);
    await upstream.nextSession();
    const started = Date.now();
    const done = own.app.close(300);
    const end = await c.ended;
    expect(end.code).toBe(1001);
    expect(end.at - started).toBeGreaterThanOrEqual(250);
    expect(c.events.at(-1)).toMatchObject({ type: "error", error: { code: "shutting_down" } });
    await done;
    // own.close() would close the app a second time: only its scratch directory is left to remove.
    await rm(path.dirname(own.configFile), { recursive: true, force: true });
  });
});
