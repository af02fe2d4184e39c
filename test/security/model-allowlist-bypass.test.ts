// Finding (SPEC §8): an allow-list checked against one field while the upstream
// served another. A model-scoped PAT may chat with exactly that model, however
// the request is written: duplicate keys, escaped keys, query parameters, a
// missing or non-string model, or a non-JSON content type are refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("models:llama3:llm_chat_completions", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const send = (body: string, opts: { query?: string; type?: string | null } = {}): Promise<Response> =>
    fetch(`${gw.url}/proxy/d1/v1/chat/completions${opts.query ?? ""}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, ...(opts.type === null ? {} : { "content-type": opts.type ?? "application/json" }) },
      // A string body makes fetch add text/plain; bytes carry no content type at all.
      body: opts.type === null ? new TextEncoder().encode(body) : body,
    });

  it("chats with llama3 through the SDK and is refused for any other model", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: token, maxRetries: 0 });
    const ok = await client.chat.completions.create({ model: "llama3", messages: [{ role: "user", content: "hi" }] });
    expect(ok.model).toBe("llama3");
    await expect(client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it.each([
    ["duplicate key, allowed first", '{"model":"llama3","model":"gpt-4o","messages":[]}', 400],
    ["duplicate key, allowed last", '{"model":"gpt-4o","model":"llama3","messages":[]}', 400],
    ["escaped duplicate", '{"model":"llama3","mod\\u0065l":"gpt-4o","messages":[]}', 400],
    ["escaped only, other model", '{"\\u006dodel":"gpt-4o","messages":[]}', 403],
    ["missing model", '{"messages":[]}', 400],
    ["numeric model", '{"model":7,"messages":[]}', 400],
    ["array model", '{"model":["llama3"],"messages":[]}', 400],
    ["not an object", '["llama3"]', 400],
    ["broken JSON", '{"model":"llama3",', 400],
    ["model with a suffix", '{"model":"llama3 ","messages":[]}', 403],
    ["case variant", '{"model":"LLAMA3","messages":[]}', 403],
  ])("%s: %s → %i, never forwarded", async (_name, body, status) => {
    upstream.clear();
    const res = await send(body);
    expect(res.status).toBe(status);
    expect(upstream.requests).toHaveLength(0);
  });

  it("nested or quoted 'model' is not a second model key", async () => {
    upstream.clear();
    const res = await send('{"messages":[{"role":"user","content":"\\"model\\":\\"gpt-4o\\""}],"metadata":{"model":"gpt-4o"},"model":"llama3"}');
    expect(res.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
  });

  it("refuses a model named in the query string too", async () => {
    upstream.clear();
    expect((await send('{"model":"llama3","messages":[]}', { query: "?model=gpt-4o" })).status).toBe(400);
    expect((await send('{"model":"llama3","messages":[]}', { query: "?%6dodel=gpt-4o" })).status).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it("refuses form-encoded and text bodies (415); accepts a missing content type as JSON", async () => {
    upstream.clear();
    expect((await send("model=gpt-4o", { type: "application/x-www-form-urlencoded" })).status).toBe(415);
    expect((await send('{"model":"llama3"}', { type: "text/plain" })).status).toBe(415);
    expect(upstream.requests).toHaveLength(0);
    expect((await send('{"model":"llama3","messages":[]}', { type: null })).status).toBe(200);
    expect((await send('{"model":"llama3","messages":[]}', { type: "application/json; charset=utf-8" })).status).toBe(200);
  });

  it("forwards exactly the bytes it authorized", async () => {
    upstream.clear();
    const body = '{"model":"llama3",  "messages":[],"seed":12345678901234567890}';
    expect((await send(body)).status).toBe(200);
    expect(upstream.requests[0]!.body.toString()).toBe(body);
  });
});
