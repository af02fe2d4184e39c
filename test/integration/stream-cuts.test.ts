// A running stream the gateway ends: on a revoke, at its token's expiry time, at
// the end of a rotation's grace period, and at the drain deadline of a shutdown.
// Each ends with one last frame saying why (an SSE `error` event in the OpenAI
// shape; an NDJSON error line on Ollama routes), which the real clients raise,
// and the access line names the gateway's reason, not client_closed.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { Ollama } from "ollama";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { rotatedPat } from "../../src/tokens/issue.ts";
import { ERRORS } from "../../src/errors.ts";

const CHAT = [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }];

async function readAll(res: Response): Promise<string> {
  let text = "";
  const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  const decoder = new TextDecoder();
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value, { stream: true });
  return text;
}

describe("streams the gateway ends", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
  });
  beforeEach(() => {
    upstream.resetRoutes();
    upstream.configure({ sseMode: "manual", sseChunks: 50 });
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const accessLine = async (patId: string): Promise<Record<string, unknown> | undefined> => {
    await new Promise((r) => setTimeout(r, 50));
    return gw.logs.records().findLast((r) => r["msg"] === "access" && r["pat_id"] === patId);
  };

  it("openai client: a revoked stream raises an APIError with the gateway's message", async () => {
    const issued = await gw.issue({ userId: "sdk-revoke", scopes: CHAT });
    const client = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: issued.token, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "llama3", stream: true, messages: [{ role: "user", content: "hi" }] });
    const fake = await upstream.nextStream();
    await fake.release(2);
    const chunks: string[] = [];
    const consumed = (async () => {
      for await (const c of stream) {
        chunks.push(c.choices[0]?.delta.content ?? "");
        if (chunks.length === 2) expect(await gw.store.replacePat({ ...issued.record, revoked: true, revokedAt: Date.now() }, issued.record.version)).toBe("ok");
      }
    })();
    const err = await consumed.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toContain(ERRORS.stream_revoked.message);
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    await fake.waitForAbort(2_000);
    expect((await accessLine(issued.record.id))?.["reason"]).toBe("stream_revoked");
  });

  it("ollama client: a revoked NDJSON stream raises an Error with the gateway's message", async () => {
    const issued = await gw.issue({ userId: "ollama-revoke", scopes: CHAT });
    const client = new Ollama({ host: `${gw.url}/proxy/d1`, headers: { Authorization: `Bearer ${issued.token}` } });
    const it = await client.chat({ model: "llama3", stream: true, messages: [{ role: "user", content: "hi" }] });
    const fake = await upstream.nextStream();
    await fake.release(1);
    let n = 0;
    const err = await (async () => {
      for await (const _part of it) {
        if (++n === 1) await gw.store.replacePat({ ...issued.record, revoked: true, revokedAt: Date.now() }, issued.record.version);
      }
    })().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(ERRORS.stream_revoked.message);
    expect((await accessLine(issued.record.id))?.["reason"]).toBe("stream_revoked");
  });

  it("a stream is cut at its token's expiry time, with no change event", async () => {
    const issued = await gw.issue({ userId: "expiring", scopes: CHAT, lifetimeMs: 1500 });
    const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${issued.token}`, "content-type": "application/json" },
      body: '{"model":"llama3","stream":true,"messages":[]}',
    });
    const fake = await upstream.nextStream();
    await fake.release(1);
    const text = await readAll(res);
    // Not before the token's own end.
    expect(Date.now()).toBeGreaterThanOrEqual(issued.record.expiresAt);
    expect(text).toMatch(/event: error\ndata: \{"error":\{[^\n]*"code":"stream_expired"[^\n]*\}\}\n\n$/);
    await fake.waitForAbort(2_000);
    expect((await accessLine(issued.record.id))?.["reason"]).toBe("stream_expired");
  });

  it("a stream under a rotated-out secret runs on through the grace period and is cut at its end", async () => {
    const issued = await gw.issue({ userId: "rotating", scopes: CHAT });
    const res = await fetch(`${gw.url}/proxy/d1/api/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${issued.token}`, "content-type": "application/json" },
      body: '{"model":"llama3","messages":[]}',
    });
    const fake = await upstream.nextStream();
    await fake.release(1);
    const rotated = rotatedPat(gw.pepper, issued.record, 3_600_000, 1200);
    expect(await gw.store.replacePat(rotated.record, issued.record.version)).toBe("ok");
    const graceEnd = rotated.record.prevSecretExpiresAt as number;
    // Still running after the change event: the old secret is good until the grace period ends.
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.aborted).toBe(false);
    await fake.release(1);
    const text = await readAll(res);
    expect(Date.now()).toBeGreaterThanOrEqual(graceEnd);
    // Ollama route: an NDJSON line in Ollama's envelope.
    expect(text.trimEnd().split("\n").at(-1)).toBe(JSON.stringify({ error: ERRORS.stream_expired.message }));
    expect((await accessLine(issued.record.id))?.["reason"]).toBe("stream_expired");
  });

  it("a cut inside a frame the upstream was still sending closes the connection without a frame of its own", async () => {
    const issued = await gw.issue({ userId: "midframe", scopes: CHAT });
    upstream.route("POST", "/v1/chat/completions", (c) => {
      c.res.writeHead(200, { "content-type": "text/event-stream" });
      c.res.write('data: {"choices":[{"delta":{"content":"half');
    });
    // The client asks for usage itself, so the gateway relays the stream's bytes as they come, half events too.
    const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${issued.token}`, "content-type": "application/json" },
      body: '{"model":"llama3","stream":true,"stream_options":{"include_usage":true},"messages":[]}',
    });
    const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("half");
    await gw.store.replacePat({ ...issued.record, revoked: true, revokedAt: Date.now() }, issued.record.version);
    await expect((async () => {
      for (;;) if ((await reader.read()).done) return "ended cleanly";
    })()).rejects.toThrow();
    expect((await accessLine(issued.record.id))?.["reason"]).toBe("stream_revoked");
  });

  it("a stream the gateway edited holds an unfinished event back, so a cut inside it still ends with the gateway's frame", async () => {
    const issued = await gw.issue({ userId: "midframe-edited", scopes: CHAT });
    upstream.route("POST", "/v1/chat/completions", (c) => {
      c.res.writeHead(200, { "content-type": "text/event-stream" });
      c.res.write('data: {"choices":[{"delta":{"content":"whole"}}]}\r\n\r\ndata: {"choices":[{"delta":{"content":"half');
    });
    // No stream_options: the gateway adds include_usage and filters the stream, event by event.
    const client = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: issued.token, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "llama3", stream: true, messages: [] });
    const seen: string[] = [];
    const consumed = (async () => {
      for await (const c of stream) {
        seen.push(c.choices[0]?.delta.content ?? "");
        await gw.store.replacePat({ ...issued.record, revoked: true, revokedAt: Date.now() }, issued.record.version);
      }
    })().then(() => null, (e: unknown) => e);
    const err = await consumed;
    expect(seen).toEqual(["whole"]);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toContain(ERRORS.stream_revoked.message);
    expect((await accessLine(issued.record.id))?.["reason"]).toBe("stream_revoked");
  });
});

describe("the drain deadline", () => {
  it("ends a stream still running with shutting_down, logged as the gateway's cut", async () => {
    const upstream = await startFakeUpstream({ sseMode: "manual", sseChunks: 50 });
    const gw = await startGateway({ upstreamUrl: upstream.url, patch: (cfg) => Object.assign(cfg.server, { drain_timeout: "1s" }) });
    try {
      const issued = await gw.issue({ scopes: CHAT });
      const client = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: issued.token, maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: "llama3", stream: true, messages: [] });
      const fake = await upstream.nextStream();
      await fake.release(1);
      const consumed = (async () => {
        for await (const _c of stream) {
          /* read until the gateway ends it */
        }
      })().then(() => null, (e: unknown) => e);
      const logs = gw.logs;
      await gw.close();
      const err = await consumed;
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect((err as Error).message).toContain(ERRORS.shutting_down.message);
      const line = logs.records().findLast((r) => r["msg"] === "access" && r["pat_id"] === issued.record.id);
      expect(line?.["reason"]).toBe("shutting_down");
    } finally {
      await upstream.close();
    }
  });
});
