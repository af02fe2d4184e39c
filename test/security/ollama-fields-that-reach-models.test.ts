// Finding (review, medium): Ollama's /api/create and friends act on more than
// the field the gateway checked. A `from` Ollama does not have is pulled (so
// it is a pull, needing the pull's operation, not only a read); `files`,
// `adapters` and `draft_files` build a model from blobs by digest (any model's
// weights); `remote_host` makes Ollama proxy the model to another server; and
// show/pull/push/delete/create read the older `name` when `model` is absent,
// which the current ollama client sends. Each such field is now authorized as
// what it does, or refused, and a body naming two models across model/name is
// refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("Ollama fields that reach models", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
    const scope = (entityId: string, operation: string): { entityType: string; entityId: string; operation: string } => ({ entityType: "models", entityId, operation });
    ({ token } = await gw.issue({
      scopes: [
        scope("mine", "llm_create"),
        scope("readable", "llm_read"),
        scope("pullable", "llm_read"),
        scope("pullable", "llm_create"),
        scope("shown", "llm_read"),
        scope("gone", "llm_delete"),
        scope("pushed", "llm_update"),
      ],
    }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const call = (method: string, path: string, body: string): Promise<Response> =>
    fetch(`${gw.url}/proxy/d1${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body });

  it.each([
    // create's base model: a read, and a pull when Ollama does not have it
    ["create from a base the token may pull", "POST", "/api/create", { model: "mine", from: "pullable" }, 200, null],
    ["create from a base the token may only read (it could be pulled)", "POST", "/api/create", { model: "mine", from: "readable" }, 403, "insufficient_scope"],
    ["create from a base under another letter case of the key (Go reads it as from)", "POST", "/api/create", { model: "mine", FROM: "readable" }, 400, "entity_invalid"],
    // fields no scope can name
    ["create from blobs by digest", "POST", "/api/create", { model: "mine", files: { "model.gguf": "sha256:aaaa" } }, 400, "field_refused"],
    ["create with blobs under a differently cased key", "POST", "/api/create", { model: "mine", Files: { "model.gguf": "sha256:aaaa" } }, 400, "field_refused"],
    ["create with an adapter blob", "POST", "/api/create", { model: "mine", from: "pullable", adapters: { "a.gguf": "sha256:bbbb" } }, 400, "field_refused"],
    ["create with draft blobs", "POST", "/api/create", { model: "mine", from: "pullable", draft_files: { "d.gguf": "sha256:cccc" } }, 400, "field_refused"],
    ["create proxying to another server", "POST", "/api/create", { model: "mine", from: "pullable", remote_host: "http://10.0.0.1:11434" }, 400, "field_refused"],
    // the older `name`, which Ollama reads when `model` is absent
    ["create by name", "POST", "/api/create", { name: "mine", from: "pullable" }, 200, null],
    ["create by a name the token may not create", "POST", "/api/create", { name: "theirs", from: "pullable" }, 403, "insufficient_scope"],
    ["pull by name", "POST", "/api/pull", { name: "pullable" }, 200, null],
    ["pull by a name the token may not pull", "POST", "/api/pull", { name: "secret" }, 403, "insufficient_scope"],
    ["show by name", "POST", "/api/show", { name: "shown" }, 200, null],
    ["show by a name the token may not read", "POST", "/api/show", { name: "secret" }, 403, "insufficient_scope"],
    ["delete by name", "DELETE", "/api/delete", { name: "gone" }, 200, null],
    ["delete by a name the token may not delete", "DELETE", "/api/delete", { name: "secret" }, 403, "insufficient_scope"],
    ["push by name", "POST", "/api/push", { name: "pushed" }, 200, null],
    ["push by a name the token may not push", "POST", "/api/push", { name: "secret" }, 403, "insufficient_scope"],
    // two models across model/name
    ["pull naming two models", "POST", "/api/pull", { model: "pullable", name: "secret" }, 400, "entity_ambiguous"],
    ["pull with an empty model and a name (Ollama reads the name)", "POST", "/api/pull", { model: "", name: "secret" }, 400, "entity_invalid"],
    ["show naming one model twice", "POST", "/api/show", { model: "shown", name: "shown" }, 200, null],
    ["delete naming two models, the name in capitals", "DELETE", "/api/delete", { model: "gone", NAME: "secret" }, 400, "entity_ambiguous"],
    ["create naming two models", "POST", "/api/create", { model: "mine", name: "theirs", from: "pullable" }, 400, "entity_ambiguous"],
  ])("%s → %i", async (_name, method, path, body, status, code) => {
    upstream.clear();
    const res = await call(method, path, JSON.stringify(body));
    expect(res.status).toBe(status);
    // Ollama routes answer in Ollama's envelope, {"error": "<message>"}: the code is in the access line.
    const got = await gw.refusalCode(res);
    if (code !== null) expect(got).toBe(code);
    expect(upstream.requests).toHaveLength(status === 200 ? 1 : 0);
  });

  it("a refused field names itself and the reason", async () => {
    const res = await call("POST", "/api/create", JSON.stringify({ model: "mine", remote_host: "http://10.0.0.1:11434" }));
    const err = ((await res.json()) as { error: string }).error;
    expect(err).toMatch(/"remote_host"/);
    expect(err).toMatch(/proxy/);
  });
});
