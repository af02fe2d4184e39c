// The official openai client, pointed at the gateway with a PAT as its API key,
// against the fake OpenAI-compatible upstream: every call succeeds when scoped
// and raises AuthenticationError / PermissionDeniedError when not.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI, { toFile } from "openai";
import { startFakeUpstream, recordedJson, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { generateToken } from "../../src/tokens/format.ts";

const ALL_LLAMA = ["llm_chat_completions", "llm_completions", "llm_embeddings", "llm_transcription", "llm_translation", "llm_read"].map((operation) => ({
  entityType: "models",
  entityId: "llama3",
  operation,
}));

describe("openai SDK through the gateway", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  let narrow: OpenAI;
  let lister: OpenAI;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ sseIntervalMs: 1 });
    gw = await startGateway({ upstreamUrl: upstream.url });
    const full = await gw.issue({ scopes: ALL_LLAMA });
    const listing = await gw.issue({ userId: "carol", scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_read" }] });
    lister = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: listing.token, maxRetries: 0 });
    const only = await gw.issue({ userId: "bob", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_embeddings" }] });
    client = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: full.token, maxRetries: 0 });
    narrow = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: only.token, maxRetries: 0 });
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("chat completion", async () => {
    const r = await client.chat.completions.create({ model: "llama3", messages: [{ role: "user", content: "hi" }] });
    expect(r.choices[0]?.message.content).toBeTruthy();
    expect(r.model).toBe("llama3");
  });

  it("streamed chat completion", async () => {
    const stream = await client.chat.completions.create({ model: "llama3", stream: true, messages: [{ role: "user", content: "hi" }] });
    let text = "";
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(chunks).toBeGreaterThanOrEqual(5);
    expect(text.length).toBeGreaterThan(0);
  });

  it("completion", async () => {
    const r = await client.completions.create({ model: "llama3", prompt: "hi" });
    expect(r.choices[0]?.text).toBeTruthy();
  });

  it("embeddings", async () => {
    const r = await client.embeddings.create({ model: "llama3", input: ["a", "b"] });
    expect(r.data).toHaveLength(2);
    expect(r.data[0]?.embedding.length).toBeGreaterThan(0);
  });

  it("model list (a domain-level read) and model retrieve (a model read)", async () => {
    const list = await lister.models.list();
    expect(list.data.length).toBeGreaterThan(0);
    await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((await lister.models.retrieve("mistral")).id).toBe("mistral");
    const one = await client.models.retrieve("llama3");
    expect(one.id).toBe("llama3");
    await expect(client.models.retrieve("mistral")).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it("model retrieve for an id with '/': the SDK sends it as %2F; it is authorized as that id and forwarded as the backend routes it", async () => {
    const id = "meta-llama/Llama-3.1-8B-Instruct";
    const slashed = await gw.issue({ userId: "dave", scopes: [{ entityType: "models", entityId: id, operation: "llm_read" }] });
    const c = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: slashed.token, maxRetries: 0 });
    upstream.clear();
    expect((await c.models.retrieve(id)).id).toBe(id);
    expect(upstream.requests[0]!.path).toBe(`/v1/models/${id}`);
    // The id is the whole of it: a scope on its first part does not grant it, nor the other way round.
    await expect(c.models.retrieve("meta-llama/other")).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
    await expect(client.models.retrieve(id)).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it("audio transcription (multipart), with the upload forwarded intact", async () => {
    upstream.clear();
    const audio = Buffer.alloc(40_000, 7);
    const r = await client.audio.transcriptions.create({ model: "llama3", file: await toFile(audio, "a.wav", { type: "audio/wav" }) });
    expect(typeof r.text).toBe("string");
    const seen = upstream.requests[0]!;
    // The client's multipart Content-Type (with its boundary) reaches the upstream unchanged.
    expect(seen.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    expect(seen.body.includes(audio)).toBe(true);
    await expect(
      client.audio.transcriptions.create({ model: "whisper-1", file: await toFile(audio, "a.wav", { type: "audio/wav" }) }),
    ).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it("audio translation", async () => {
    const r = await client.audio.translations.create({ model: "llama3", file: await toFile(Buffer.alloc(1000, 1), "a.wav") });
    expect(typeof r.text).toBe("string");
  });

  it("a token without the scope raises PermissionDeniedError for each call", async () => {
    await expect(narrow.chat.completions.create({ model: "llama3", messages: [] })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
    await expect(narrow.completions.create({ model: "llama3", prompt: "x" })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
    await expect(narrow.models.list()).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
    await expect(narrow.audio.transcriptions.create({ model: "llama3", file: await toFile(Buffer.alloc(10), "a.wav") })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
    const ok = await narrow.embeddings.create({ model: "llama3", input: "x" });
    expect(ok.data).toHaveLength(1);
  });

  it("a bad token raises AuthenticationError for each call", async () => {
    const bad = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: generateToken().token, maxRetries: 0 });
    const junk = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: "sk-not-a-pat", maxRetries: 0 });
    for (const c of [bad, junk]) {
      await expect(c.chat.completions.create({ model: "llama3", messages: [] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      await expect(c.embeddings.create({ model: "llama3", input: "x" })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      await expect(c.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    }
  });

  it("errors carry the OpenAI envelope the SDK reads", async () => {
    try {
      await narrow.chat.completions.create({ model: "llama3", messages: [] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
      const e = err as InstanceType<typeof OpenAI.PermissionDeniedError>;
      expect(e.code).toBe("insufficient_scope");
      expect(e.message).toContain("llm_chat_completions");
    }
  });

  it("forwards what the SDK sent, minus the PAT", async () => {
    upstream.clear();
    await client.chat.completions.create({ model: "llama3", messages: [{ role: "user", content: "hello" }], temperature: 0.5 });
    const seen = upstream.requests[0]!;
    expect(recordedJson(seen)).toMatchObject({ model: "llama3", temperature: 0.5 });
    expect(seen.headers.authorization).toBeUndefined();
  });
});
