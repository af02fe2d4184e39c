// Finding (SPEC §8): "one user able to read or edit another user's scopes by
// id". User B must not be able to read, rename, describe, rotate, revoke,
// delete, or list/add/remove/clear the scopes of user A's PAT, and must not be
// able to tell that it exists: every attempt gets the very response an unknown
// id gets.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scope, startAdminFixture, type AdminClient, type AdminFixture, type PatJson, type PatListJson, type Res } from "../helpers/admin.ts";

const CHAT = scope("d1", "models", "llama3", "llm_chat_completions");

describe("a user cannot reach another user's PAT", () => {
  let fx: AdminFixture;
  let alice: AdminClient;
  let bob: AdminClient;
  let victim: PatJson & { token: string };

  beforeAll(async () => {
    fx = await startAdminFixture();
    await fx.ops.post("/domains", { id: "d1" });
    // Both hold the same rights, so a refusal can only come from ownership.
    await fx.ops.put("/domains/d1/members/alice", { roles: ["developer"] });
    await fx.ops.put("/domains/d1/members/bob", { roles: ["developer"] });
    alice = await fx.user("alice");
    bob = await fx.user("bob");
    const r = await alice.post<PatJson>("/pats", { name: "alice-ci", description: "alice's", duration: "30d", scopes: [CHAT] });
    expect(r.status).toBe(201);
    victim = r.body as PatJson & { token: string };
    await bob.post("/pats", { name: "bob-ci", duration: "30d", scopes: [CHAT] });
  });
  afterAll(async () => {
    await fx?.close();
  });

  const attempts: Array<[string, string, (id: string) => string, unknown]> = [
    ["read", "GET", (id) => `/pats/${id}`, undefined],
    ["rename", "PATCH", (id) => `/pats/${id}/name`, { name: "pwned" }],
    ["describe", "PATCH", (id) => `/pats/${id}/description`, { description: "pwned" }],
    ["rotate", "PATCH", (id) => `/pats/${id}/secret/reset`, { duration: "1d" }],
    ["revoke", "PATCH", (id) => `/pats/${id}/secret/revoke`, undefined],
    ["list scopes", "GET", (id) => `/pats/${id}/scope`, undefined],
    ["add scopes", "PATCH", (id) => `/pats/${id}/scope/add`, { scopes: [CHAT] }],
    ["remove scopes", "PATCH", (id) => `/pats/${id}/scope/remove`, { scopes: [CHAT] }],
    ["clear scopes", "DELETE", (id) => `/pats/${id}/scope`, undefined],
    ["delete", "DELETE", (id) => `/pats/${id}`, undefined],
  ];

  const strip = (r: Res<unknown>): { status: number; body: string; type: string | null } => ({
    status: r.status,
    // The request id differs per request; nothing else may.
    body: r.text,
    type: r.headers.get("content-type"),
  });

  it.each(attempts)("B cannot %s A's PAT, and gets exactly the unknown-id answer", async (_what, method, path, json) => {
    const opts = json === undefined ? {} : { json };
    const theirs = await bob.call(method, path(victim.id), opts);
    const nobody = await bob.call(method, path(randomUUID()), opts);
    expect(theirs.status).toBe(404);
    expect(theirs.error.code).toBe("pat_not_found");
    expect(strip(theirs)).toEqual(strip(nobody));
    expect(theirs.text).not.toContain(victim.id);
    expect(theirs.text).not.toContain("alice");
  });

  it("B cannot remove A's scopes by their ids (scopes_id), on A's PAT or through B's own", async () => {
    const listed = await alice.get<{ scopes: Array<{ id: string }> }>(`/pats/${victim.id}/scope`);
    const ids = listed.body.scopes.map((s) => s.id);
    expect(ids[0]).toMatch(/^[0-9a-f]{24}$/);
    const theirs = await bob.patch(`/pats/${victim.id}/scope/remove`, { scopes_id: ids });
    const nobody = await bob.patch(`/pats/${randomUUID()}/scope/remove`, { scopes_id: ids });
    expect(theirs.status).toBe(404);
    expect(strip(theirs)).toEqual(strip(nobody));
    // The same scope on B's PAT has another id: A's ids remove nothing there, and nothing of A's.
    const own = (await bob.get<PatListJson>("/pats")).body.pats[0]!;
    const ownIds = (await bob.get<{ scopes: Array<{ id: string }> }>(`/pats/${own.id}/scope`)).body.scopes.map((s) => s.id);
    expect(ownIds).not.toEqual(ids);
    const r = await bob.patch<PatJson>(`/pats/${own.id}/scope/remove`, { scopes_id: ids });
    expect(r.status).toBe(200);
    expect(r.body.scopes).toHaveLength(1);
    expect((await alice.get<PatJson>(`/pats/${victim.id}`)).body.scopes).toEqual(victim.scopes);
  });

  it("naming A as the user is refused for B, whatever the endpoint", async () => {
    for (const [method, path] of [["GET", "/pats?user_id=alice"], ["DELETE", "/pats?user_id=alice"], ["GET", `/pats/${victim.id}?user_id=alice`]] as const) {
      const r = await bob.call(method, path);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.error.code).toBe("operator_only");
    }
    const create = await bob.post("/pats?user_id=alice", { name: "planted", duration: "1d", scopes: [CHAT] });
    expect(create.status).toBe(403);
  });

  it("B's list and delete-all never show or touch A's PATs", async () => {
    const list = await bob.get<PatListJson>("/pats?limit=100");
    expect(list.body.pats.map((p) => p.user_id)).toEqual(["bob"]);
    expect(list.text).not.toContain(victim.id);
    expect((await bob.get<PatListJson>("/pats?name=alice")).body.total).toBe(0);
    expect((await bob.delete<{ deleted: number }>("/pats")).body).toEqual({ deleted: 1 });
  });

  it("after all that, A's PAT is exactly as it was and still works", async () => {
    const now = await alice.get<PatJson>(`/pats/${victim.id}`);
    const { token: _t, warnings: _w, ...before } = victim as typeof victim & { warnings?: string[] };
    expect(now.body).toEqual({ ...before, last_used_at: now.body.last_used_at });
    expect(await fx.chat(victim.token)).toBe(200);
  });
});
