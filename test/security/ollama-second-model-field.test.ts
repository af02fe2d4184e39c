// Finding (review): Ollama's /api/create reads a base model from `from`, and
// /api/copy writes `destination` from `source`: a check on one field while the
// upstream acts on another. Both fields are now authorized (create's `from`
// also as a pull, since Ollama pulls a base it does not have:
// ollama-fields-that-reach-models.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("second model fields on Ollama create and copy", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
    ({ token } = await gw.issue({
      scopes: [
        { entityType: "models", entityId: "mine", operation: "llm_create" },
        { entityType: "models", entityId: "public", operation: "llm_read" },
        { entityType: "models", entityId: "public", operation: "llm_create" },
      ],
    }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${gw.url}/proxy/d1${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });

  it.each([
    ["create from a readable base", "/api/create", { model: "mine", from: "public" }, 200],
    ["create with no base", "/api/create", { model: "mine" }, 200],
    ["create from a model the token may not read", "/api/create", { model: "mine", from: "secret" }, 403],
    ["copy a readable source to a creatable name", "/api/copy", { source: "public", destination: "mine" }, 200],
    ["copy over a name the token may not create", "/api/copy", { source: "public", destination: "theirs" }, 403],
    ["copy a source the token may not read", "/api/copy", { source: "secret", destination: "mine" }, 403],
    ["a duplicated second field", "/api/create", null, 400],
  ])("%s", async (_name, path, body, status) => {
    upstream.clear();
    const res =
      body === null
        ? await fetch(`${gw.url}/proxy/d1${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: '{"model":"mine","from":"public","from":"secret"}' })
        : await post(path, body);
    expect(res.status).toBe(status);
    expect(upstream.requests).toHaveLength(status === 200 ? 1 : 0);
  });
});
