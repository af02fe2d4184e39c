// The official `ollama` JS client, pointed at the gateway's Ollama routes with a
// PAT in its headers, against the fake upstream: every call succeeds when scoped,
// and a refusal raises an error whose message is the gateway's own text (Ollama's
// {"error": "<message>"} envelope; with OpenAI's the client shows "[object Object]").
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ollama } from "ollama";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { generateToken } from "../../src/tokens/format.ts";

const MODEL = "llama3";
const ON_MODEL = ["llm_chat_completions", "llm_completions", "llm_embeddings", "llm_read", "llm_create", "llm_delete"].map((operation) => ({
  entityType: "models",
  entityId: MODEL,
  operation,
}));

describe("the ollama client through the gateway", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;
  let client: Ollama;
  let bare: Ollama;

  const as = (t: string): Ollama => new Ollama({ host: `${gw.url}/proxy/d1`, headers: { Authorization: `Bearer ${t}` } });

  beforeAll(async () => {
    upstream = await startFakeUpstream({ sseIntervalMs: 1 });
    gw = await startGateway({ upstreamUrl: upstream.url });
    token = (await gw.issue({ scopes: [...ON_MODEL, { entityType: "domains", entityId: "d1", operation: "llm_read" }] })).token;
    client = as(token);
    bare = as((await gw.issue({ userId: "bob", scopes: [{ entityType: "models", entityId: MODEL, operation: "llm_embeddings" }] })).token);
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("chat, not streamed and streamed", async () => {
    const r = await client.chat({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: false });
    expect(r.message.content).toBeTruthy();
    let text = "";
    let done = false;
    for await (const part of await client.chat({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true })) {
      text += part.message.content;
      done ||= part.done;
    }
    expect(done).toBe(true);
    expect(text.length).toBeGreaterThan(0);
  });

  it("generate", async () => {
    const r = await client.generate({ model: MODEL, prompt: "hi", stream: false });
    expect(r.response).toBeTruthy();
  });

  it("embed", async () => {
    const r = await client.embed({ model: MODEL, input: ["a", "b"] });
    expect(r.embeddings).toHaveLength(2);
  });

  it("list, ps and version (domain-level reads) and show (a model read)", async () => {
    expect((await client.list()).models.length).toBeGreaterThan(0);
    expect((await client.ps()).models.length).toBeGreaterThan(0);
    expect((await client.version()).version).toBeTruthy();
    expect((await client.show({ model: MODEL })).modelfile).toContain(MODEL);
  });

  // The client sends {"name": …} (not "model") on pull and delete: the gateway authorizes that field.
  it("pull, with its progress streamed", async () => {
    const statuses: string[] = [];
    for await (const p of await client.pull({ model: MODEL, stream: true })) statuses.push(p.status);
    expect(statuses.at(-1)).toBe("success");
    expect(statuses.length).toBeGreaterThan(2);
  });

  it("delete", async () => {
    await expect(client.delete({ model: MODEL })).resolves.toEqual({ status: "success" });
  });

  it("a refusal raises an error whose message is the gateway's text, with the gateway's status", async () => {
    const refusals: Array<[() => Promise<unknown>, number, RegExp]> = [
      [() => bare.chat({ model: MODEL, messages: [], stream: false }), 403, /^The token lacks the scope "d1:models:\*:llm_chat_completions"/],
      [() => client.chat({ model: "mistral", messages: [], stream: false }), 403, /^The token lacks the scope "d1:models:mistral:llm_chat_completions"/],
      [() => bare.list(), 403, /^The token lacks the scope "d1:domains:\*:llm_read"/],
      [() => as(generateToken().token).generate({ model: MODEL, prompt: "x", stream: false }), 401, /^The token is malformed or unknown\.$/],
      [() => new Ollama({ host: `${gw.url}/proxy/d1` }).version(), 401, /^Missing bearer token/],
      [() => as(token).embed({ model: "", input: "x" }), 400, /^The field "model" must not be empty\.$/],
      // Over the route's 10mb body limit.
      [() => as(token).embed({ model: MODEL, input: "x".repeat(11 * 1024 * 1024) }), 413, /^The body exceeds this route's limit of \d+ bytes\.$/],
    ];
    for (const [call, status, message] of refusals) {
      const err = (await call().then(
        () => expect.unreachable("the call was allowed"),
        (e: unknown) => e,
      )) as { name: string; message: string; status_code: number };
      expect(err.name).toBe("ResponseError");
      expect(err.status_code).toBe(status);
      expect(err.message).toMatch(message);
    }
  });

  it("an upstream that breaks off: 502 in Ollama's envelope, which the client shows", async () => {
    const undo = upstream.route("POST", "/api/generate", (c) => {
      c.req.socket.destroy();
    });
    try {
      const err = (await client.generate({ model: MODEL, prompt: "x", stream: false }).then(
        () => expect.unreachable("the call was allowed"),
        (e: unknown) => e,
      )) as { message: string; status_code: number };
      expect(err.status_code).toBe(502);
      expect(err.message).toBe("The upstream failed or closed the connection.");
    } finally {
      undo();
    }
  });

  it("a request no route takes gets the shape of the routes nearest its path: Ollama's under /api, OpenAI's under /v1", async () => {
    const auth = { authorization: `Bearer ${token}` };
    const unknown = await fetch(`${gw.url}/proxy/d1/api/nope`, { headers: auth });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: expect.any(String) as string });
    const method = await fetch(`${gw.url}/proxy/d1/api/chat`, { headers: auth });
    expect(method.status).toBe(405);
    expect(method.headers.get("allow")).toContain("POST");
    expect(await method.json()).toEqual({ error: expect.any(String) as string });
    const err = (await new Ollama({ host: `${gw.url}/proxy/d1/api/x`, headers: auth }).version().then(
      () => expect.unreachable("the call was allowed"),
      (e: unknown) => e,
    )) as { message: string; status_code: number };
    expect(err.status_code).toBe(404);
    expect(err.message).not.toContain("[object Object]");
    const openai = await fetch(`${gw.url}/proxy/d1/v1/nope`, { headers: auth });
    expect(openai.status).toBe(404);
    expect(await openai.json()).toMatchObject({ error: { code: "no_route" } });
  });

  it("keeps the status, WWW-Authenticate and retry headers; OpenAI routes keep the OpenAI envelope", async () => {
    const ollama = await fetch(`${gw.url}/proxy/d1/api/tags`);
    expect(ollama.status).toBe(401);
    expect(ollama.headers.get("www-authenticate")).toBe('Bearer realm="patgate"');
    expect(ollama.headers.get("x-should-retry")).toBe("false");
    expect(await ollama.json()).toEqual({ error: "Missing bearer token: send 'Authorization: Bearer <PAT>'." });
    const openai = await fetch(`${gw.url}/proxy/d1/v1/models`);
    expect(openai.status).toBe(401);
    expect(openai.headers.get("www-authenticate")).toBe('Bearer realm="patgate"');
    expect(await openai.json()).toMatchObject({ error: { code: "missing_token", type: "invalid_request_error" } });
  });
});
