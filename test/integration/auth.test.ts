import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { generateToken } from "../../src/tokens/format.ts";

const CHAT = { type: "models", entityId: "llama3", operation: "llm_chat_completions" } as const;

describe("token states on the data plane", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const chat = (token: string | null, domain = "d1", model = "llama3"): Promise<Response> =>
    fetch(`${gw.url}/proxy/${domain}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
    });

  async function expect401(res: Response, code: string): Promise<void> {
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
    const body = (await res.json()) as { error: { code: string; type: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message).not.toMatch(/pat_/);
  }

  it("allows a valid, scoped token", async () => {
    const { token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    const res = await chat(token);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string }).model).toBe("llama3");
  });

  it("401 without a token, with a non-Bearer scheme, and with an empty one", async () => {
    await expect401(await chat(null), "missing_token");
    const basic = await fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    await expect401(basic, "missing_token");
    const empty = await fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { authorization: "Bearer    " } });
    await expect401(empty, "missing_token");
  });

  it("401 for malformed and wrong-checksum tokens, without touching the store", async () => {
    const { token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    const flipped = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
    let calls = 0;
    const original = gw.store.getPat.bind(gw.store);
    gw.store.getPat = (id: string) => {
      calls++;
      return original(id);
    };
    try {
      await expect401(await chat("not-a-token"), "invalid_token");
      await expect401(await chat(flipped), "invalid_token");
      await expect401(await chat("pat_" + "x".repeat(200)), "invalid_token");
      // A token in the query string is refused outright (it would be forwarded and logged upstream).
      const q = await fetch(`${gw.url}/proxy/d1/v1/models?api_key=${token}`);
      expect(q.status).toBe(400);
      expect(((await q.json()) as { error: { code: string } }).error.code).toBe("token_in_query");
      expect(calls).toBe(0);
    } finally {
      gw.store.getPat = original;
    }
  });

  it("401 for a well-formed unknown token and for a known id with a wrong secret", async () => {
    await expect401(await chat(generateToken().token), "invalid_token");
    const { record } = await gw.issue({ scopes: [CHAT].map((s) => ({ entityType: s.type, entityId: s.entityId, operation: s.operation })) });
    await expect401(await chat(generateToken(record.id).token), "invalid_token");
  });

  it("401 for an expired token", async () => {
    const { token, record } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    expect((await chat(token)).status).toBe(200); // now cached
    await gw.store.replacePat({ ...record, expiresAt: Date.now() - 1 }, record.version);
    await expect401(await chat(token), "expired_token");
  });

  it("expiry is re-checked on every use of a cached token", async () => {
    const { token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }], lifetimeMs: 600 });
    expect((await chat(token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 700));
    await expect401(await chat(token), "expired_token");
  });

  it("401 for a revoked token and for a deleted one, right after the change", async () => {
    const a = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    const b = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    expect((await chat(a.token)).status).toBe(200);
    expect((await chat(b.token)).status).toBe(200);
    expect(await gw.store.replacePat({ ...a.record, revoked: true, revokedAt: Date.now() }, a.record.version)).toBe("ok");
    expect(await gw.store.deletePat(b.record.id)).toBe(true);
    await expect401(await chat(a.token), "revoked_token");
    await expect401(await chat(b.token), "invalid_token");
  });

  it("403 for a user removed from the domain, with a still-valid PAT", async () => {
    const { token } = await gw.issue({ userId: "bob", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    expect((await chat(token)).status).toBe(200);
    await gw.store.deleteMembership("d1", "bob");
    const res = await chat(token);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_a_member");
  });

  it("403 when the user's role no longer holds the operation, even though the PAT scope does", async () => {
    const { token } = await gw.issue({ userId: "carol", role: "admin", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    expect((await chat(token)).status).toBe(200);
    await gw.store.putMembership({ domainId: "d1", userId: "carol", roles: ["viewer"] });
    const res = await chat(token);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("role_denied");
  });

  it("403 names the missing scope; a scope in another domain grants nothing here", async () => {
    const { token } = await gw.issue({ userId: "dave", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_embeddings" }] });
    await gw.issue({ userId: "dave", domainId: "d2", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    const res = await chat(token);
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("insufficient_scope");
    expect(body.error.message).toContain("llm_chat_completions");
  });

  it("a domain-level scope covers every model in that domain and nothing in another", async () => {
    const { token } = await gw.issue({ userId: "erin", scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_chat_completions" }] });
    await gw.issue({ userId: "erin", domainId: "d2", scopes: [{ entityType: "models", entityId: "x", operation: "llm_read" }] });
    expect((await chat(token, "d1", "llama3")).status).toBe(200);
    expect((await chat(token, "d1", "mistral")).status).toBe(200);
    expect((await chat(token, "d2", "llama3")).status).toBe(403);
  });

  it("an unknown domain answers like one the user is not in (403), a path with no route 404; nothing is forwarded", async () => {
    const { token } = await gw.issue({ scopes: [{ entityType: "domains", entityId: "*", operation: "llm_chat_completions" }] });
    upstream.clear();
    // The same answer for "no such domain" and "not yours": a token cannot probe which domains exist.
    const unknown = await chat(token, "nope");
    expect(unknown.status).toBe(403);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("not_a_member");
    const r = await fetch(`${gw.url}/proxy/d1/v1/secret-admin`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("no_route");
    expect(upstream.requests).toHaveLength(0);
  });
});
