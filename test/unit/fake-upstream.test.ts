import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connect } from "node:net";
import OpenAI, { APIConnectionError, InternalServerError, toFile } from "openai";
import {
  FAKE_PROMPT_TOKENS,
  FAKE_REPLY,
  fakeEmbeddingVector,
  fakeStreamPiece,
  fakeStreamText,
  recordedJson,
  startFakeUpstream,
} from "../../src/devtools/fake-upstream.ts";
import type { FakeUpstream } from "../../src/devtools/fake-upstream.ts";

let upstream: FakeUpstream;
let client: OpenAI;

beforeEach(async () => {
  // Timed streams back to back keep the suite fast; pacing tests use manual mode.
  upstream = await startFakeUpstream({ sseIntervalMs: 0 });
  client = new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: "x", maxRetries: 0 });
});

afterEach(async () => {
  await upstream.close();
});

/** Fail with a message instead of hanging when `p` never settles. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms: ${what}`));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

async function postJson(path: string, body: unknown, method = "POST"): Promise<Response> {
  return fetch(`${upstream.url}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("fake upstream: listening and recording", () => {
  it("listens on 127.0.0.1 with a port chosen by the OS", () => {
    expect(upstream.port).toBeGreaterThan(0);
    expect(upstream.url).toBe(`http://127.0.0.1:${upstream.port}`);
  });

  it("records method, path with query, headers, raw headers and body", async () => {
    const seen: string[] = [];
    upstream.onRequest = (r) => seen.push(r.path);
    const res = await fetch(`${upstream.url}/v1/chat/completions?api-version=1`, {
      method: "POST",
      headers: { "content-type": "application/json", "X-Custom": "A" },
      body: JSON.stringify({ model: "m1", messages: [] }),
    });
    expect(res.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
    const r = upstream.requests[0]!;
    expect(r.method).toBe("POST");
    expect(r.path).toBe("/v1/chat/completions?api-version=1");
    expect(r.headers["x-custom"]).toBe("A");
    expect(r.rawHeaders).toContain("X-Custom");
    expect(recordedJson(r)).toEqual({ model: "m1", messages: [] });
    expect(r.aborted).toBe(false);
    expect(r.receivedAt).toBeGreaterThan(Date.now() - 10_000);
    expect(seen).toEqual(["/v1/chat/completions?api-version=1"]);
    upstream.clear();
    expect(upstream.requests).toHaveLength(0);
  });

  it("keeps duplicate headers visible (Node's req.headers would drop a second Authorization)", async () => {
    // A raw socket: Node's HTTP client would merge or reorder what we want on the wire.
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = connect(upstream.port, "127.0.0.1");
      let out = "";
      sock.on("data", (d: Buffer) => (out += d.toString()));
      sock.on("end", () => {
        resolve(out);
      });
      sock.on("error", reject);
      sock.end("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer one\r\nauthorization: Bearer two\r\nConnection: close\r\n\r\n");
    });
    expect(reply.startsWith("HTTP/1.1 200")).toBe(true);
    expect(upstream.requests[0]!.rawHeaders).toEqual(["Host", "x", "Authorization", "Bearer one", "authorization", "Bearer two", "Connection", "close"]);
    expect(upstream.requests[0]!.headers["authorization"]).toBe("Bearer one, Bearer two");
  });

  it("does not record when record is off, but still calls onRequest", async () => {
    upstream.configure({ record: false });
    let calls = 0;
    upstream.onRequest = () => calls++;
    await client.models.list();
    expect(upstream.requests).toHaveLength(0);
    expect(calls).toBe(1);
  });

  it("answers unknown paths with a 404 JSON error and wrong methods with 405", async () => {
    const res = await fetch(`${upstream.url}/v2/nothing`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe("not_found");
    const wrong = await fetch(`${upstream.url}/v1/chat/completions`);
    expect(wrong.status).toBe(405);
  });

  it("answers a body that is not JSON with 400", async () => {
    const res = await fetch(`${upstream.url}/v1/chat/completions`, { method: "POST", body: "{nope" });
    expect(res.status).toBe(400);
  });

  it("adds latencyMs before responding", async () => {
    upstream.configure({ latencyMs: 80 });
    const t0 = performance.now();
    await client.models.list();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
  });
});

describe("fake upstream: OpenAI-compatible API through the official SDK", () => {
  it("chat completion echoes the model and reports usage", async () => {
    const r = await client.chat.completions.create({ model: "org/llama-3", messages: [{ role: "user", content: "hi" }] });
    expect(r.object).toBe("chat.completion");
    expect(r.model).toBe("org/llama-3");
    expect(r.choices[0]?.message.content).toBe(FAKE_REPLY);
    expect(r.usage?.prompt_tokens).toBe(FAKE_PROMPT_TOKENS);
    expect(upstream.requests[0]!.headers["authorization"]).toBe("Bearer x");
  });

  it("streamed chat completion: n chunks then a usage chunk", async () => {
    const stream = await client.chat.completions.create({
      model: "m-stream",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks).toHaveLength(6);
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "m-stream")).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(fakeStreamText(5));
    expect(chunks[5]?.usage?.completion_tokens).toBe(5);
  });

  it("streams with the SSE content type, chunked", async () => {
    const res = await postJson("/v1/chat/completions", { model: "m", messages: [], stream: true });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("transfer-encoding")).toBe("chunked");
    const text = await res.text();
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(text.split("\n\n").filter((f) => f !== "")).toHaveLength(6);
  });

  it("text completion, plain and streamed", async () => {
    const r = await client.completions.create({ model: "m-cmpl", prompt: "say" });
    expect(r.object).toBe("text_completion");
    expect(r.model).toBe("m-cmpl");
    expect(r.choices[0]?.text).toBe(FAKE_REPLY);
    const stream = await client.completions.create({ model: "m-cmpl", prompt: "say", stream: true });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.text ?? "";
    expect(text).toBe(fakeStreamText(5));
  });

  it("embeddings: the SDK's default base64 encoding decodes to the fake vector", async () => {
    const r = await client.embeddings.create({ model: "m-emb", input: ["a", "b", "c"] });
    expect(recordedJson(upstream.requests[0]!)).toMatchObject({ encoding_format: "base64" });
    expect(r.model).toBe("m-emb");
    expect(r.data).toHaveLength(3);
    expect(r.data[2]?.index).toBe(2);
    expect(r.data[0]?.embedding).toEqual(fakeEmbeddingVector(8));
  });

  it("embeddings: explicit float encoding", async () => {
    const r = await client.embeddings.create({ model: "m-emb", input: "one", encoding_format: "float" });
    expect(r.data).toHaveLength(1);
    expect(r.data[0]?.embedding).toEqual(fakeEmbeddingVector(8));
  });

  it("models list and retrieve (ids with a slash survive the SDK's encoding)", async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(["fake-model", "fake-embed", "whisper-1"]);
    const m = await client.models.retrieve("meta-llama/Llama-3-8B");
    expect(m.id).toBe("meta-llama/Llama-3-8B");
    expect(upstream.requests[1]!.path).toBe("/v1/models/meta-llama%2FLlama-3-8B");
  });

  it("audio transcription and translation parse the multipart model field and file", async () => {
    const audio = Buffer.alloc(1234, 7);
    const t = await client.audio.transcriptions.create({ model: "whisper-1", file: await toFile(audio, "clip.wav") });
    expect(t.text).toBe("fake transcription of clip.wav (1234 bytes) by whisper-1");
    expect(upstream.requests[0]!.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    const tr = await client.audio.translations.create({ model: "whisper-x", file: await toFile(audio, "clip.wav") });
    expect(tr.text).toBe("fake translation of clip.wav (1234 bytes) by whisper-x");
  });

  it("audio without multipart is refused", async () => {
    const res = await postJson("/v1/audio/transcriptions", { model: "whisper-1" });
    expect(res.status).toBe(400);
  });

  it("responses API, plain and streamed", async () => {
    const r = await client.responses.create({ model: "m-resp", input: "hi" });
    expect(r.object).toBe("response");
    expect(r.model).toBe("m-resp");
    expect(r.output_text).toBe(FAKE_REPLY);
    const stream = await client.responses.create({ model: "m-resp", input: "hi", stream: true });
    let text = "";
    let completed = false;
    for await (const e of stream) {
      if (e.type === "response.output_text.delta") text += e.delta;
      if (e.type === "response.completed") completed = true;
    }
    expect(text).toBe(fakeStreamText(5));
    expect(completed).toBe(true);
  });
});

describe("fake upstream: manual SSE pacing", () => {
  it("the client sees chunk N before chunk N+1 is written", async () => {
    upstream.configure({ sseMode: "manual", sseChunks: 3 });
    // Headers are flushed at once in manual mode, so create() resolves before any chunk exists.
    const stream = await client.chat.completions.create({ model: "m", messages: [], stream: true });
    const s = await upstream.nextStream();
    expect(s.format).toBe("sse");
    expect(s.total).toBe(4); // 3 chunks + [DONE]
    expect(s.written).toBe(0);
    const it = stream[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) {
      const remaining = await s.release();
      expect(remaining).toBe(3 - i);
      const next = await within(it.next(), 2000, `chunk ${i} to reach the client`);
      if (next.done === true) throw new Error(`stream ended before chunk ${i}`);
      expect(next.value.choices[0]?.delta.content).toBe(fakeStreamPiece(i));
      // Nothing beyond chunk i has been written while the client holds chunk i.
      expect(s.written).toBe(i + 1);
    }
    await s.releaseAll();
    expect(s.ended).toBe(true);
    const end = await within(it.next(), 2000, "the stream to end");
    expect(end.done).toBe(true);
    expect(await s.finished).toBe("ended");
  });

  it("applies to Ollama NDJSON streams too", async () => {
    upstream.configure({ sseMode: "manual", sseChunks: 2 });
    const res = await postJson("/api/generate", { model: "llama3", prompt: "hi" });
    const s = await upstream.nextStream();
    expect(s.format).toBe("ndjson");
    const reader = res.body!.getReader();
    await s.release();
    const first = await within(reader.read(), 2000, "first NDJSON line");
    expect(JSON.parse(Buffer.from(first.value ?? []).toString())).toMatchObject({ response: fakeStreamPiece(0), done: false });
    expect(s.written).toBe(1);
    await s.releaseAll();
    await reader.cancel();
  });

  it("release() refuses in timed mode", async () => {
    upstream.configure({ sseIntervalMs: 1000 });
    const res = await postJson("/v1/chat/completions", { model: "m", messages: [], stream: true });
    const s = await upstream.nextStream();
    await expect(s.release()).rejects.toThrow(/manual/);
    await res.body?.cancel();
  });

  it("nextStream() rejects instead of hanging when no stream starts", async () => {
    await expect(upstream.nextStream(50)).rejects.toThrow(/timed out/);
  });
});

describe("fake upstream: abort detection", () => {
  it("a client abort mid-stream reaches the upstream, which stops writing", async () => {
    upstream.configure({ sseMode: "manual", sseChunks: 5 });
    const stream = await client.chat.completions.create({ model: "m", messages: [], stream: true });
    const s = await upstream.nextStream();
    await s.release();
    const it = stream[Symbol.asyncIterator]();
    await within(it.next(), 2000, "first chunk");
    stream.controller.abort();
    await s.waitForAbort(2000);
    expect(s.aborted).toBe(true);
    expect(s.request.aborted).toBe(true);
    expect(s.written).toBe(1);
    expect(await s.finished).toBe("aborted");
    await expect(s.release()).rejects.toThrow(/aborted/);
    expect(await upstream.waitForAbort(100)).toBe(s.request);
  });

  it("a timed stream stops at the abort too", async () => {
    upstream.configure({ sseIntervalMs: 30, sseChunks: 50 });
    const stream = await client.chat.completions.create({ model: "m", messages: [], stream: true });
    const s = await upstream.nextStream();
    for await (const _ of stream) break; // breaking out aborts the SDK's request
    const aborted = await upstream.waitForAbort(2000);
    expect(aborted).toBe(s.request);
    const written = s.written;
    expect(written).toBeLessThan(s.total);
    await new Promise((r) => setTimeout(r, 100));
    expect(s.written).toBe(written);
  });

  it("detects an abort while a non-streamed response is still pending", async () => {
    upstream.route("POST", "/v1/chat/completions", () => {
      // Never respond.
    });
    const ac = new AbortController();
    const pending = client.chat.completions.create({ model: "m", messages: [] }, { signal: ac.signal });
    pending.catch(() => undefined);
    await within(
      (async () => {
        while (upstream.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      })(),
      2000,
      "request to arrive",
    );
    ac.abort();
    const r = await upstream.waitForAbort(2000);
    expect(r.path).toBe("/v1/chat/completions");
    await expect(pending).rejects.toThrow();
  });
});

describe("fake upstream: programmable routes", () => {
  it("can return a 500 the SDK maps to InternalServerError", async () => {
    upstream.route("POST", "/v1/chat/completions", (ctx) => {
      ctx.send(500, { error: { message: "boom", type: "server_error", code: null, param: null } });
    });
    await expect(client.chat.completions.create({ model: "m", messages: [] })).rejects.toBeInstanceOf(InternalServerError);
  });

  it("can close the socket", async () => {
    upstream.route("*", "/v1/models", (ctx) => {
      ctx.req.socket.destroy();
    });
    await expect(client.models.list()).rejects.toBeInstanceOf(APIConnectionError);
  });

  it("can delay headers then fall through to the built-in behaviour; removal restores it", async () => {
    const remove = upstream.route("GET", /^\/v1\/models$/, async (ctx) => {
      await new Promise((r) => setTimeout(r, 60));
      await ctx.fallthrough();
    });
    const t0 = performance.now();
    const page = await client.models.list();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    expect(page.data).toHaveLength(3);
    remove();
    upstream.route("GET", "/v1/models", (ctx) => {
      ctx.send(503, { error: { message: "later", type: "server_error", code: null, param: null } });
    });
    upstream.resetRoutes();
    expect((await client.models.list()).data).toHaveLength(3);
  });

  it("a handler that throws becomes a 500", async () => {
    upstream.route("GET", "/api/version", () => {
      throw new Error("oops");
    });
    const res = await fetch(`${upstream.url}/api/version`);
    expect(res.status).toBe(500);
  });

  it("close() does not wait for a hung request", async () => {
    upstream.route("*", "/v1/models", () => new Promise<void>(() => undefined));
    const pending = fetch(`${upstream.url}/v1/models`);
    pending.catch(() => undefined);
    await within(
      (async () => {
        while (upstream.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      })(),
      2000,
      "request to arrive",
    );
    await within(upstream.close(), 1000, "close with a hung request");
    await expect(pending).rejects.toThrow();
  });
});

describe("fake upstream: Ollama and vLLM shapes", () => {
  it("/api/chat streams NDJSON unless stream is false", async () => {
    const res = await postJson("/api/chat", { model: "llama3", messages: [{ role: "user", content: "hi" }] });
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text())
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { model: string; done: boolean; message: { content: string }; eval_count?: number });
    expect(lines).toHaveLength(6);
    expect(lines.every((l) => l.model === "llama3")).toBe(true);
    expect(lines.slice(0, 5).every((l) => !l.done)).toBe(true);
    expect(lines[5]).toMatchObject({ done: true, done_reason: "stop", eval_count: 5 });
    expect(lines.map((l) => l.message.content).join("")).toBe(fakeStreamText(5));

    const plain = await postJson("/api/chat", { model: "llama3", messages: [], stream: false });
    expect(plain.headers.get("content-type")).toBe("application/json");
    expect(await plain.json()).toMatchObject({ model: "llama3", done: true, message: { content: FAKE_REPLY } });
  });

  it("/api/generate streams response pieces and a final context", async () => {
    const res = await postJson("/api/generate", { model: "llama3", prompt: "hi" });
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l["response"]).join("")).toBe(fakeStreamText(5));
    expect(lines.at(-1)).toMatchObject({ done: true, context: [1, 2, 3] });
  });

  it("Ollama errors use Ollama's envelope", async () => {
    const res = await postJson("/api/chat", { messages: [] });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: expect.stringContaining("model") as unknown });
  });

  it("answers every other Ollama and vLLM route with plausible JSON", async () => {
    const cases: Array<[string, string, unknown, (b: Record<string, unknown>) => void]> = [
      ["POST", "/api/embed", { model: "e", input: ["a", "b"] }, (b) => expect(b["embeddings"]).toHaveLength(2)],
      ["POST", "/api/embeddings", { model: "e", prompt: "a" }, (b) => expect(b["embedding"]).toEqual(fakeEmbeddingVector(8))],
      ["GET", "/api/tags", undefined, (b) => expect(b["models"]).toHaveLength(3)],
      ["POST", "/api/show", { model: "llama3" }, (b) => expect(b["modelfile"]).toBe("FROM llama3")],
      ["GET", "/api/ps", undefined, (b) => expect(b["models"]).toHaveLength(1)],
      ["GET", "/api/version", undefined, (b) => expect(typeof b["version"]).toBe("string")],
      ["POST", "/api/pull", { model: "llama3", stream: false }, (b) => expect(b["status"]).toBe("success")],
      ["POST", "/api/push", { model: "llama3", stream: false }, (b) => expect(b["status"]).toBe("success")],
      ["POST", "/api/create", { model: "mine", from: "llama3", stream: false }, (b) => expect(b["status"]).toBe("success")],
      ["POST", "/tokenize", { model: "v", prompt: "a b c" }, (b) => expect(b["count"]).toBe(3)],
      ["POST", "/detokenize", { model: "v", tokens: [1, 2] }, (b) => expect(b["prompt"]).toBe("tok1 tok2")],
      ["POST", "/pooling", { model: "v", input: ["a"] }, (b) => expect(b["data"]).toHaveLength(1)],
      ["POST", "/classify", { model: "v", input: ["a", "b"] }, (b) => expect(b["data"]).toHaveLength(2)],
      ["POST", "/score", { model: "v", text_1: "q", text_2: ["a", "b"] }, (b) => expect(b["data"]).toHaveLength(2)],
      ["POST", "/v1/score", { model: "v", text_1: "q", text_2: "a" }, (b) => expect(b["model"]).toBe("v")],
      ["POST", "/rerank", { model: "v", query: "q", documents: ["a", "b", "c"], top_n: 2 }, (b) => expect(b["results"]).toHaveLength(2)],
      ["POST", "/v1/rerank", { model: "v", query: "q", documents: ["a"] }, (b) => expect(b["model"]).toBe("v")],
    ];
    for (const [method, path, body, check] of cases) {
      const res =
        body === undefined ? await fetch(`${upstream.url}${path}`, { method }) : await postJson(path, body, method);
      expect(res.status, `${method} ${path}`).toBe(200);
      check((await res.json()) as Record<string, unknown>);
    }
  });

  it("/api/pull streams progress lines; copy and delete answer 200 with no body", async () => {
    const pull = await postJson("/api/pull", { model: "llama3" });
    const statuses = (await pull.text()).trim().split("\n").map((l) => (JSON.parse(l) as { status: string }).status);
    expect(statuses.at(-1)).toBe("success");
    const copy = await postJson("/api/copy", { source: "a", destination: "b" });
    expect(copy.status).toBe(200);
    expect(await copy.text()).toBe("");
    const del = await postJson("/api/delete", { model: "b" }, "DELETE");
    expect(del.status).toBe(200);
  });
});
