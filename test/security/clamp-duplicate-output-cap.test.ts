// Finding: the clamp edits the body after the decision. A body that names its
// output cap twice (a duplicate key, a case variant a Go upstream folds to it,
// an escaped spelling) must never be forwarded with a cap the gateway did not
// set: either the one cap is replaced, or the request is refused. And the edit
// touches nothing else: the model the scope was checked on is forwarded as is.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("the clamp never forwards an output cap it did not set", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ sseIntervalMs: 1 });
    gw = await startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        cfg["limits"] = { policies: [{ name: "capped", subject: "pat", tokens_per_day: 1000, clamp_max_tokens: true }] };
      },
    });
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] }));
  });
  beforeEach(() => upstream.clear());
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const send = (raw: string): Promise<Response> =>
    fetch(`${gw.url}/proxy/d1/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: raw });

  it.each([
    ['{"model":"llama3","messages":[],"max_tokens":5,"max_tokens":100000}', "a duplicate key"],
    ['{"model":"llama3","messages":[],"max_tokens":5,"MAX_TOKENS":100000}', "a case variant"],
    ['{"model":"llama3","messages":[],"max_tokens":"100000"}', "a string"],
  ])("refuses %s (%s) and forwards nothing", async (raw) => {
    const r = await send(raw);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("bad_request");
    expect(upstream.requests.length).toBe(0);
  });

  it("an escaped spelling of the one cap is the cap: its value is replaced (the upstream decodes the key to max_tokens)", async () => {
    const { token: own } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    const raw = '{"model":"llama3","messages":[],"max\\u005ftokens":100000}';
    const r = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${own}`, "content-type": "application/json" }, body: raw });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const sent = JSON.parse(upstream.requests[0]!.body.toString("utf8")) as { max_tokens: number };
    expect(sent.max_tokens).toBe(1000 - Math.ceil(Buffer.byteLength(raw) / 4));
  });

  it("replaces the one cap, byte for byte elsewhere: the model and every other field are forwarded as sent", async () => {
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] }));
    const raw = '{"model":"llama3","messages":[{"role":"user","content":"\\u0068i"}],"max_tokens":100000,"temperature":0.5}';
    const r = await send(raw);
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    const sent = upstream.requests[0]!.body.toString("utf8");
    const input = Math.ceil(Buffer.byteLength(raw) / 4);
    expect(sent).toBe(raw.replace('"max_tokens":100000', `"max_tokens":${1000 - input}`));
  });
});
