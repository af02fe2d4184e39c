// Whose PATs a /pats call acts on, and what an owner's edits keep, over real
// sockets: a user may name themselves with ?user_id= but no one else; an
// operator must name the user for the calls that act on "all of them"; a
// rotation keeps, replaces or drops the PAT's own limits as asked; a
// revocation's reason is bounded after trimming; adding scopes that are all
// there already changes nothing, and no PAT grows past MAX_SCOPES.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDuration } from "../../src/util/duration.ts";
import { scope, startAdminFixture, type AdminClient, type AdminFixture, type PatJson, type PatListJson } from "../helpers/admin.ts";

const CHAT = scope("d1", "models", "llama3", "llm_chat_completions");

describe("/pats: whose PATs, and what edits keep", () => {
  let fx: AdminFixture;
  let alice: AdminClient;
  let n = 0;

  beforeAll(async () => {
    fx = await startAdminFixture();
    expect((await fx.ops.post("/domains", { id: "d1" })).status).toBe(201);
    expect((await fx.ops.put("/domains/d1/members/alice", { roles: ["developer"] })).status).toBe(201);
    alice = await fx.user("alice");
  });
  afterAll(async () => {
    await fx?.close();
  });

  async function made(client: AdminClient, body: Record<string, unknown> = {}, query = ""): Promise<PatJson & { limits: Record<string, number> | null }> {
    const r = await client.post<PatJson & { limits: Record<string, number> | null }>(`/pats${query}`, { name: `own-${++n}`, duration: "30d", scopes: [CHAT], ...body });
    expect(r.status, r.text).toBe(201);
    return r.body;
  }

  describe("?user_id=", () => {
    it("a user may name themselves, on every kind of call", async () => {
      const p = await made(alice, {}, "?user_id=alice");
      expect(p.user_id).toBe("alice");
      const listed = await alice.get<PatListJson>("/pats?user_id=alice");
      expect(listed.status).toBe(200);
      expect(listed.body.pats.map((x) => x.id)).toContain(p.id);
      expect((await alice.get(`/pats/${p.id}?user_id=alice`)).status).toBe(200);
      expect((await alice.patch(`/pats/${p.id}/name?user_id=alice`, { name: `own-${++n}` })).status).toBe(200);
    });

    it("a user naming anyone else is refused as operator-only, naming user_id, before any lookup", async () => {
      const p = await made(alice);
      for (const [method, path] of [["GET", "/pats?user_id=bob"], ["POST", "/pats?user_id=bob"], ["DELETE", "/pats?user_id=bob"], ["GET", `/pats/${p.id}?user_id=bob`], ["DELETE", `/pats/${p.id}?user_id=Alice`]] as const) {
        const r = await alice.call(method, path, method === "POST" ? { json: { name: "x", duration: "1d", scopes: [CHAT] } } : {});
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(r.error).toMatchObject({ code: "operator_only", param: "user_id" });
      }
      expect((await alice.get(`/pats/${p.id}`)).status).toBe(200);
    });

    it("an operator names the user for list and delete-all too, and a repeated user_id is refused", async () => {
      for (const [method, path] of [["GET", "/pats"], ["DELETE", "/pats"]] as const) {
        const r = await fx.ops.call(method, path);
        expect(r.status, `${method} ${path}`).toBe(400);
        expect(r.error).toMatchObject({ code: "invalid_field", param: "user_id" });
      }
      const twice = await fx.ops.get("/pats?user_id=alice&user_id=bob");
      expect(twice.status).toBe(400);
      expect(twice.error.param).toBe("user_id");
    });

    it("a repeated status filter is refused, naming status", async () => {
      const r = await alice.get("/pats?status=active&status=revoked");
      expect(r.status).toBe(400);
      expect(r.error).toMatchObject({ code: "invalid_field", param: "status" });
    });
  });

  describe("a rotation and the PAT's own limits", () => {
    it("keeps them when the body does not mention limits, replaces them when it does, drops them for null or {}", async () => {
      const p = await made(alice, { limits: { requests_per_minute: 7 } });
      expect(p.limits).toEqual({ requests_per_minute: 7 });
      const reset = (body: Record<string, unknown>): ReturnType<AdminClient["patch"]> => alice.patch<PatJson & { limits: unknown }>(`/pats/${p.id}/secret/reset`, { duration: "30d", ...body });

      const kept = await reset({});
      expect(kept.status).toBe(200);
      expect((kept.body as { limits: unknown }).limits).toEqual({ requests_per_minute: 7 });
      const replaced = await reset({ limits: { tokens_per_day: 1000 } });
      expect((replaced.body as { limits: unknown }).limits).toEqual({ tokens_per_day: 1000 });
      expect(((await alice.get<{ limits: unknown }>(`/pats/${p.id}`)).body).limits).toEqual({ tokens_per_day: 1000 });
      const dropped = await reset({ limits: null });
      expect((dropped.body as { limits: unknown }).limits).toBeNull();
      await reset({ limits: { concurrent: 2 } });
      const emptied = await reset({ limits: {} });
      expect((emptied.body as { limits: unknown }).limits).toBeNull();
    });

    it("refuses bad limits without rotating", async () => {
      const p = await made(alice);
      const r = await alice.patch(`/pats/${p.id}/secret/reset`, { duration: "30d", limits: { requests_per_minute: 0 } });
      expect(r.status).toBe(400);
      expect(r.error.param).toBe("limits.requests_per_minute");
      expect((await alice.get<PatJson>(`/pats/${p.id}`)).body.expires_at).toBe(p.expires_at);
    });
  });

  describe("a revocation's reason", () => {
    it("may be 500 characters once trimmed, not 501", async () => {
      const a = await made(alice);
      expect((await alice.patch(`/pats/${a.id}/secret/revoke`, { reason: `  ${"r".repeat(500)}  ` })).status).toBe(200);
      const b = await made(alice);
      const long = await alice.patch(`/pats/${b.id}/secret/revoke`, { reason: "r".repeat(501) });
      expect(long.status).toBe(400);
      expect(long.error).toMatchObject({ code: "invalid_field", param: "reason" });
      expect((await alice.get<PatJson>(`/pats/${b.id}`)).body.revoked).toBe(false);
    });
  });

  // A refusal says which rule the call broke and what to send instead, and names the field.
  describe("each refusal names the rule that refused it", () => {
    it("whose PATs: another user's, or an operator naming no one", async () => {
      const other = await alice.get("/pats?user_id=bob");
      expect(other.error.message).toBe("Only operators may act on another user's PATs (user_id).");
      const nobody = await fx.ops.get("/pats");
      expect(nobody.error.message).toBe("Operators name the user whose PATs these are: add ?user_id=<user>.");
    });

    it("create: a taken name, missing scopes, a scope not held, an unknown domain, a bad lifetime", async () => {
      const p = await made(alice);
      const taken = await alice.post("/pats", { name: p.name, duration: "1d", scopes: [CHAT] });
      expect(taken.error).toMatchObject({ code: "name_taken", param: "name", message: `There is already a PAT named "${p.name}" for this user; choose another name.` });
      const noScopes = await alice.post("/pats", { name: `own-${++n}`, duration: "1d" });
      expect(noScopes.error).toMatchObject({ code: "invalid_field", param: "scopes" });
      expect(noScopes.error.message).toMatch(/"scopes" is required: at least one \{"domain_id","entity_type","entity_id","operation"\}/);
      const notHeld = await alice.post("/pats", { name: `own-${++n}`, duration: "1d", scopes: [CHAT, scope("d1", "models", "m", "llm_delete")] });
      expect(notHeld.error).toMatchObject({ code: "scope_not_held", param: "scopes[1]", message: 'You cannot grant "d1:models:m:llm_delete" (DOMAIN:TYPE:ID:OP): you do not hold "llm_delete" in domain "d1".' });
      const unknown = await fx.ops.post("/pats?user_id=alice", { name: `own-${++n}`, duration: "1d", scopes: [scope("nope", "models", "m", "llm_read")] });
      expect(unknown.error).toMatchObject({ code: "unknown_domain", param: "scopes[0].domain_id", message: 'scopes[0]: there is no domain "nope".' });
      const typed = await alice.post("/pats", { name: `own-${++n}`, duration: 30, scopes: [CHAT] });
      expect(typed.error).toMatchObject({ code: "invalid_duration", param: "duration" });
      expect(typed.error.message).toMatch(/^The field "duration" must be a string such as "30d", "720h" or "1y"; at most 1y \(security.max_token_lifetime\)\.$/);
      const long = await alice.post("/pats", { name: `own-${++n}`, duration: "400d", scopes: [CHAT] });
      expect(long.error.message).toBe('The duration "400d" is longer than the maximum token lifetime of 1y (security.max_token_lifetime).');
      // The duration parser's own words, capitalised, then the limit.
      const parsed = parseDuration("0s");
      if (parsed.ok) throw new Error("0s parses");
      const bad = await alice.post("/pats", { name: `own-${++n}`, duration: "0s", scopes: [CHAT] });
      expect(bad.error.message).toBe(`${parsed.error.charAt(0).toUpperCase()}${parsed.error.slice(1)}. The maximum is 1y (security.max_token_lifetime).`);
      expect(bad.error.message.charAt(0)).not.toBe(parsed.error.charAt(0));
    });

    it("list, revoke and scope edits", async () => {
      const status = await alice.get("/pats?status=gone");
      expect(status.error).toMatchObject({ code: "invalid_field", param: "status", message: 'The query parameter "status" must be one of active, expired, revoked.' });
      const p = await made(alice);
      const reason = await alice.patch(`/pats/${p.id}/secret/revoke`, { reason: "r".repeat(501) });
      expect(reason.error.message).toBe('The field "reason" is longer than 500 characters.');
      const both = await alice.patch(`/pats/${p.id}/scope/remove`, { scopes: [CHAT], scopes_id: ["x"] });
      expect(both.error).toMatchObject({ code: "invalid_field", param: "scopes_id" });
      expect(both.error.message).toMatch(/exactly one of "scopes" .* and "scopes_id"/);
      const neither = await alice.patch(`/pats/${p.id}/scope/remove`, {});
      expect(neither.error).toMatchObject({ code: "invalid_field", param: "scopes" });
    });
  });

  describe("adding scopes", () => {
    it("adding only scopes the PAT has changes nothing: same scopes, same updated_at", async () => {
      const p = await made(alice);
      const again = await alice.patch<PatJson>(`/pats/${p.id}/scope/add`, { scopes: [CHAT] });
      expect(again.status).toBe(200);
      expect(again.body.scopes).toEqual([CHAT]);
      expect(again.body.updated_at).toBe(p.updated_at);
    });

    it("a PAT holds at most 256 scopes: an add past that is refused and changes nothing", async () => {
      const many = Array.from({ length: 250 }, (_, i) => scope("d1", "models", `m${i}`, "llm_chat_completions"));
      const p = await made(fx.ops, { scopes: many }, "?user_id=alice");
      expect(p.scopes).toHaveLength(250);
      const more = (from: number, count: number): unknown[] => Array.from({ length: count }, (_, i) => scope("d1", "models", `x${from + i}`, "llm_chat_completions"));
      const refused = await fx.ops.patch(`/pats/${p.id}/scope/add`, { scopes: [many[0], ...more(0, 7)] });
      expect(refused.status).toBe(400);
      expect(refused.error).toMatchObject({ code: "invalid_field", param: "scopes", message: "A PAT holds at most 256 scopes." });
      expect((await fx.ops.get<PatJson>(`/pats/${p.id}`)).body.scopes).toHaveLength(250);
      // Exactly up to the bound is fine; a scope already there does not count twice.
      const upTo = await fx.ops.patch<PatJson>(`/pats/${p.id}/scope/add`, { scopes: [many[0], ...more(0, 6)] });
      expect(upTo.status).toBe(200);
      expect(upTo.body.scopes).toHaveLength(256);
    });
  });
});
