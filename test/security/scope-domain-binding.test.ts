// Finding (review, item 9): nothing tested a scope's domain in a form that can
// fail. The tests named for it put the other domain's scope on a different
// PAT. Here one PAT holds one scope, for a model in domain A; its user is a
// member of A and B with the same role. In B, the same model must be refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { CompiledScopes } from "../../src/scopes/scope.ts";
import { ensureMember, startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("a scope is bound to its domain", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
    ({ token } = await gw.issue({ domainId: "a", scopes: [{ domainId: "a", entityType: "models", entityId: "m", operation: "llm_chat_completions" }] }));
    await ensureMember(gw.store, "b", "alice", "admin");
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const chat = (domain: string): Promise<Response> =>
    fetch(`${gw.url}/proxy/${domain}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: '{"model":"m","messages":[]}' });

  it("the model in the scope's own domain: 200", async () => {
    expect((await chat("a")).status).toBe(200);
  });

  it("the same model, same PAT, in another domain the user is a member of: 403", async () => {
    upstream.clear();
    const res = await chat("b");
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("insufficient_scope");
    expect(upstream.requests).toHaveLength(0);
  });

  it("CompiledScopes: every form of grant is bound to its domain", () => {
    const s = new CompiledScopes([
      { domainId: "a", entityType: "models", entityId: "m", operation: "op" },
      { domainId: "a", entityType: "models", entityId: "*", operation: "op2" },
      { domainId: "a", entityType: "domains", entityId: "a", operation: "op3" },
      { domainId: "a", entityType: "domains", entityId: "*", operation: "op4" },
    ]);
    for (const op of ["op", "op2", "op3", "op4"]) {
      expect(s.grants({ domainId: "a", entityType: "models", entityId: "m", operation: op })).toBe(true);
      expect(s.grants({ domainId: "b", entityType: "models", entityId: "m", operation: op })).toBe(false);
      expect(s.mayGrant("a", op)).toBe(true);
      expect(s.mayGrant("b", op)).toBe(false);
    }
    // A domains-type grant names its own domain: one for domain a does not cover domain b's entities.
    expect(new CompiledScopes([{ domainId: "b", entityType: "domains", entityId: "a", operation: "op" }]).grants({ domainId: "b", entityType: "models", entityId: "m", operation: "op" })).toBe(false);
  });
});
