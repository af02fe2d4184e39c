// Finding (SPEC §8): "the stored hash returned by read endpoints". No response
// of the management API ever carries a secret hash (current or previous, under
// any field name), and a token appears in exactly one response: the create or
// rotation that minted it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scope, startAdminFixture, type AdminFixture, type PatJson } from "../helpers/admin.ts";

const CHAT = scope("d1", "models", "llama3", "llm_chat_completions");

describe("secret hashes and tokens in responses", () => {
  let fx: AdminFixture;

  beforeAll(async () => {
    fx = await startAdminFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("exercises every PAT endpoint; no body holds a stored hash, each token shows once", async () => {
    const { ops } = fx;
    await ops.post("/domains", { id: "d1" });
    await ops.put("/domains/d1/members/alice", { roles: ["developer"] });
    const alice = await fx.user("alice");
    const created = await alice.post<PatJson>("/pats", { name: "p1", duration: "30d", scopes: [CHAT] });
    const id = created.body.id;
    const rotated = await alice.patch<PatJson>(`/pats/${id}/secret/reset`, { duration: "30d", grace_period: "1h" });
    expect(rotated.status).toBe(200);
    await alice.post("/pats", { name: "p2", duration: "1d", scopes: [CHAT] });
    await alice.get("/pats");
    await alice.get("/pats?status=active");
    await alice.get(`/pats/${id}`);
    await alice.get(`/pats/${id}/scope`);
    await alice.patch(`/pats/${id}/name`, { name: "p1-renamed" });
    await alice.patch(`/pats/${id}/description`, { description: "d" });
    await alice.patch(`/pats/${id}/scope/add`, { scopes: [scope("d1", "models", "*", "llm_read")] });
    await alice.patch(`/pats/${id}/scope/remove`, { scopes: [scope("d1", "models", "*", "llm_read")] });
    await ops.get(`/pats/${id}`);
    await ops.get("/pats?user_id=alice");
    await alice.patch(`/pats/${id}/secret/revoke`);
    await alice.get(`/pats/${id}`);

    // Every hash the store holds for this user, current and previous.
    const stored = await fx.gw.store.listPatsByUser("alice");
    const hashes = stored.flatMap((p) => [p.secretHash, p.prevSecretHash]).filter((h): h is string => h !== null);
    expect(hashes.length).toBeGreaterThanOrEqual(3);
    for (const body of ops.bodies) {
      for (const h of hashes) expect(body).not.toContain(h);
      expect(body).not.toMatch(/secret_?hash|prev_?secret|"hash"/i);
    }

    expect(ops.tokens.size).toBe(3);
    for (const count of ops.tokens.values()) expect(count).toBe(1);
    expect(ops.tokens.has(created.body.token ?? "")).toBe(true);
    expect(ops.tokens.has(rotated.body.token ?? "")).toBe(true);
  });
});
