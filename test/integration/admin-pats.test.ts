// The /pats API over real sockets: every endpoint's success shape and its
// documented errors, each response checked against docs/openapi.yaml by the
// AdminClient. Users sign in with JWTs from a local issuer; operators use the
// configured admin key.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdminClient} from "../helpers/admin.ts";
import { scope, startAdminFixture, type AdminFixture, type PatJson, type PatListJson, type ScopeJson } from "../helpers/admin.ts";

const CHAT = scope("d1", "models", "llama3", "llm_chat_completions");
const READ = scope("d1", "models", "*", "llm_read");
const DAY = 86_400_000;

describe("the /pats API", () => {
  let fx: AdminFixture;
  let ops: AdminClient;
  let alice: AdminClient;
  let n = 0;

  beforeAll(async () => {
    fx = await startAdminFixture();
    ops = fx.ops;
    expect((await ops.post("/domains", { id: "d1" })).status).toBe(201);
    expect((await ops.post("/domains", { id: "d2" })).status).toBe(201);
    expect((await ops.put("/domains/d1/members/alice", { roles: ["developer"] })).status).toBe(201);
    alice = await fx.user("alice");
  });

  afterAll(async () => {
    // The token of every PAT appeared in exactly one response: its create or its rotation.
    expect(ops.tokens.size).toBeGreaterThan(5);
    for (const [token, count] of ops.tokens) expect(count, token.slice(0, 30)).toBe(1);
    await fx?.close();
  });

  const create = (client: AdminClient, body: Record<string, unknown> = {}, query = ""): ReturnType<AdminClient["post"]> =>
    client.post<PatJson>(`/pats${query}`, { name: `pat-${++n}`, duration: "30d", scopes: [CHAT], ...body });

  async function made(client: AdminClient = alice, body: Record<string, unknown> = {}, query = ""): Promise<PatJson & { token: string }> {
    const r = await create(client, body, query);
    expect(r.status, r.text).toBe(201);
    return r.body as PatJson & { token: string };
  }

  describe("POST /pats", () => {
    it("creates a PAT, shows its token once, and the token works on the data plane", async () => {
      const r = await alice.post<PatJson>("/pats", { name: "ci", description: "for CI", duration: "30d", scopes: [CHAT, CHAT] });
      expect(r.status).toBe(201);
      const p = r.body;
      expect(r.headers.get("location")).toBe(`/pats/${p.id}`);
      expect(p).toMatchObject({ user_id: "alice", name: "ci", description: "for CI", scopes: [CHAT], revoked: false, revoked_at: null, last_used_at: null, status: "active" });
      expect(Date.parse(p.expires_at) - Date.parse(p.issued_at)).toBe(30 * DAY);
      expect(p.token).toMatch(/^pat_/);
      expect(await fx.chat(p.token ?? "")).toBe(200);

      const shown = await alice.get<PatJson>(`/pats/${p.id}`);
      expect(shown.status).toBe(200);
      expect(shown.body.token).toBeUndefined();
      expect(shown.text).not.toContain(p.token);
      const listed = await alice.get<PatListJson>("/pats?name=ci");
      expect(listed.text).not.toContain(p.token);
      const scopes = await alice.get(`/pats/${p.id}/scope`);
      expect(scopes.text).not.toContain(p.token);
    });

    it("warns when a scope can grant nothing yet (no membership in its domain, or no role with its operation)", async () => {
      const mine = await alice.post<PatJson & { warnings: string[] }>("/pats", { name: `w-${++n}`, duration: "1d", scopes: [CHAT] });
      expect(mine.body.warnings).toEqual([]);
      const r = await ops.post<PatJson & { warnings: string[] }>("/pats?user_id=alice", {
        name: `w-${++n}`,
        duration: "1d",
        scopes: [CHAT, scope("d2", "models", "llama3", "llm_chat_completions"), scope("d1", "models", "llama3", "llm_delete")],
      });
      expect(r.status).toBe(201);
      expect(r.body.warnings).toEqual([
        '"d2:models:llama3:llm_chat_completions" grants nothing yet: alice is not a member of domain "d2" (patgate member add d2 alice --role R).',
        '"d1:models:llama3:llm_delete" grants nothing yet: no role of alice in domain "d1" holds "llm_delete".',
      ]);
    });

    it("an operator creates a PAT for a user named with ?user_id=, and must name one", async () => {
      const p = await made(ops, {}, "?user_id=carol");
      expect(p.user_id).toBe("carol");
      const r = await create(ops);
      expect(r.status).toBe(400);
      expect(r.error).toMatchObject({ code: "invalid_field", param: "user_id" });
      const bad = await create(ops, {}, "?user_id=a%20b");
      expect(bad.status).toBe(400);
      expect(bad.error.param).toBe("user_id");
    });

    it.each([
      ["30d", 30 * DAY],
      ["720h", 720 * 3_600_000],
      ["1y", 365 * DAY],
      ["90m", 90 * 60_000],
      ["1h30m", 90 * 60_000],
    ])("accepts the duration %s", async (duration, ms) => {
      const p = await made(alice, { duration });
      expect(Date.parse(p.expires_at) - Date.parse(p.issued_at)).toBe(ms);
    });

    it.each([
      ["0s", /zero/],
      ["-5d", /negative/],
      ["banana", /not a duration/],
      ["2y", /longer than the maximum token lifetime of 1y/],
      ["366d", /maximum token lifetime of 1y/],
      ["1.5d", /fractional/],
      ["", /empty/],
    ])("refuses the duration %j with a clear message naming the limit", async (duration, why) => {
      const r = await create(alice, { duration });
      expect(r.status).toBe(400);
      expect(r.error).toMatchObject({ code: "invalid_duration", param: "duration" });
      expect(r.error.message).toMatch(why);
      expect(r.error.message).toMatch(/1y/);
    });

    it("refuses a missing or non-string duration, naming the limit", async () => {
      const missing = await alice.post("/pats", { name: "nodur", scopes: [CHAT] });
      expect(missing.status).toBe(400);
      expect(missing.error).toMatchObject({ code: "invalid_duration", param: "duration" });
      expect(missing.error.message).toMatch(/required.*1y/);
      const num = await create(alice, { duration: 30 });
      expect(num.status).toBe(400);
      expect(num.error.code).toBe("invalid_duration");
    });

    it("refuses missing or bad fields with 400 naming the field", async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ name: undefined }, "name"],
        [{ name: "   " }, "name"],
        [{ name: "x".repeat(101) }, "name"],
        [{ name: "tab\there" }, "name"],
        [{ name: 7 }, "name"],
        [{ description: 5 }, "description"],
        [{ description: "x".repeat(1001) }, "description"],
        [{ scopes: [] }, "scopes"],
        [{ scopes: "models:llama3:llm_chat_completions" }, "scopes"],
        [{ scopes: [{ ...CHAT, extra: 1 }] }, "scopes[0].extra"],
        [{ scopes: [{ ...CHAT, operation: "" }] }, "scopes[0].operation"],
        [{ scopes: [{ ...CHAT, domain_id: "../x" }] }, "scopes[0].domain_id"],
        [{ scopes: [CHAT, { ...CHAT, entity_id: "a\u0001b" }] }, "scopes[1].entity_id"],
        [{ surprise: true }, "surprise"],
      ];
      for (const [over, param] of cases) {
        const body: Record<string, unknown> = { name: `bad-${++n}`, duration: "30d", scopes: [CHAT], ...over };
        const r = await alice.post("/pats", JSON.parse(JSON.stringify(body)));
        expect(r.status, JSON.stringify(over)).toBe(400);
        expect(r.error.code).toBe("invalid_field");
        expect(r.error.param, JSON.stringify(over)).toBe(param);
      }
      const none = await alice.post("/pats", { name: "noscopes", duration: "30d" });
      expect(none.status).toBe(400);
      expect(none.error.param).toBe("scopes");
    });

    it("checks scopes against the catalog (422)", async () => {
      const cases: Array<[ScopeJson, string]> = [
        [scope("d1", "spaceships", "x", "read"), "scopes[0].entity_type"],
        [scope("d1", "models", "llama3", "fly"), "scopes[0].operation"],
        [scope("d1", "datasets", "x", "llm_chat_completions"), "scopes[0].operation"],
        [scope("d1", "domains", "d2", "llm_read"), "scopes[0].entity_id"],
      ];
      for (const [s, param] of cases) {
        const r = await create(ops, { scopes: [s] }, "?user_id=alice");
        expect(r.status, JSON.stringify(s)).toBe(422);
        expect(r.error).toMatchObject({ code: "invalid_scope", param });
      }
    });

    it("409 when the user already has a PAT of that name; another user may reuse it", async () => {
      await made(alice, { name: "dup" });
      const again = await create(alice, { name: " dup " });
      expect(again.status).toBe(409);
      expect(again.error).toMatchObject({ code: "name_taken", param: "name" });
      expect((await made(ops, { name: "dup" }, "?user_id=dave")).user_id).toBe("dave");
    });

    it("a user cannot grant a scope they do not hold (403 naming it); an operator can", async () => {
      // alice is a developer in d1: no llm_create there, and no membership in d2 at all.
      const notHeld = scope("d1", "models", "llama3", "llm_create");
      const r = await create(alice, { scopes: [CHAT, notHeld] });
      expect(r.status).toBe(403);
      expect(r.error).toMatchObject({ code: "scope_not_held", param: "scopes[1]" });
      expect(r.error.message).toContain("models:llama3:llm_create");
      expect(r.error.message).toContain('"d1"');
      const otherDomain = await create(alice, { scopes: [scope("d2", "models", "llama3", "llm_chat_completions")] });
      expect(otherDomain.status).toBe(403);
      expect(otherDomain.error.code).toBe("scope_not_held");
      // A domain-level grant needs the operation in that domain too.
      const domainWide = await create(alice, { scopes: [scope("d1", "domains", "*", "llm_create")] });
      expect(domainWide.status).toBe(403);
      expect((await made(alice, { scopes: [scope("d1", "domains", "d1", "llm_read")] })).scopes).toHaveLength(1);

      expect((await made(ops, { scopes: [notHeld] }, "?user_id=alice")).scopes).toEqual([notHeld]);
      const unknownDomain = await create(ops, { scopes: [scope("nowhere", "models", "x", "llm_read")] }, "?user_id=alice");
      expect(unknownDomain.status).toBe(422);
      expect(unknownDomain.error).toMatchObject({ code: "unknown_domain", param: "scopes[0].domain_id" });
    });
  });

  describe("request bodies", () => {
    it("415 for a body that is not JSON", async () => {
      const r = await alice.call("POST", "/pats", { raw: "name=x", contentType: "application/x-www-form-urlencoded" });
      expect(r.status).toBe(415);
      expect(r.error.code).toBe("unsupported_media_type");
      const none = await alice.call("PATCH", `/pats/${randomUUID()}/name`, { raw: '{"name":"x"}' });
      expect(none.status).toBe(415);
    });

    it("400 for invalid JSON or a JSON value that is not an object", async () => {
      for (const raw of ["{", "[]", '"x"', "null", "\xff"]) {
        const r = await alice.call("POST", "/pats", { raw, contentType: "application/json" });
        expect(r.status, raw).toBe(400);
        expect(r.error.code).toBe("bad_json");
      }
    });

    it("413 for a body over 64 KiB", async () => {
      const r = await alice.post("/pats", { name: "big", duration: "30d", scopes: [CHAT], description: "x".repeat(70_000) });
      expect(r.status).toBe(413);
      expect(r.error.code).toBe("body_too_large");
    });

    it("accepts application/json with a charset and vendor +json types", async () => {
      const r = await alice.call("POST", "/pats", { raw: JSON.stringify({ name: `cs-${++n}`, duration: "1d", scopes: [CHAT] }), contentType: "application/json; charset=utf-8" });
      expect(r.status).toBe(201);
    });

    it("refuses fields on endpoints that take none", async () => {
      const p = await made();
      const r = await alice.patch(`/pats/${p.id}/secret/revoke`, { now: true });
      expect(r.status).toBe(400);
      expect(r.error).toMatchObject({ code: "invalid_field", param: "now" });
    });
  });

  describe("GET /pats", () => {
    let user: AdminClient;
    const ids: string[] = [];

    beforeAll(async () => {
      expect((await ops.put("/domains/d1/members/lister", { roles: ["developer"] })).status).toBe(201);
      user = await fx.user("lister");
      for (const name of ["alpha", "beta", "Gamma", "delta", "alphabet"]) ids.push((await made(user, { name })).id);
      expect((await user.patch(`/pats/${ids[1]}/secret/revoke`)).status).toBe(200);
      // An expired one, straight into the store (the API never issues one).
      const { record } = await fx.gw.issue({ userId: "lister", name: "old", role: "developer", lifetimeMs: 1, scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
      ids.push(record.id);
      await new Promise((r) => setTimeout(r, 5));
    });

    it("lists only the caller's PATs, oldest first, with the total", async () => {
      const r = await user.get<PatListJson>("/pats");
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ total: 6, offset: 0, limit: 20 });
      expect(r.body.pats.map((p) => p.id)).toEqual(ids);
      expect(r.body.pats.every((p) => p.user_id === "lister")).toBe(true);
    });

    it("pages with offset and limit", async () => {
      const r = await user.get<PatListJson>("/pats?offset=2&limit=2");
      expect(r.body).toMatchObject({ total: 6, offset: 2, limit: 2 });
      expect(r.body.pats.map((p) => p.id)).toEqual(ids.slice(2, 4));
      const past = await user.get<PatListJson>("/pats?offset=50");
      expect(past.body.pats).toEqual([]);
      expect(past.body.total).toBe(6);
    });

    it("filters by name (contains, any case) and by computed status", async () => {
      const byName = await user.get<PatListJson>("/pats?name=ALPHA");
      expect(byName.body.pats.map((p) => p.name)).toEqual(["alpha", "alphabet"]);
      expect(byName.body.total).toBe(2);
      const gamma = await user.get<PatListJson>("/pats?name=gam");
      expect(gamma.body.pats.map((p) => p.name)).toEqual(["Gamma"]);
      const revoked = await user.get<PatListJson>("/pats?status=revoked");
      expect(revoked.body.pats.map((p) => p.name)).toEqual(["beta"]);
      const expired = await user.get<PatListJson>("/pats?status=expired");
      expect(expired.body.pats.map((p) => [p.name, p.status])).toEqual([["old", "expired"]]);
      const active = await user.get<PatListJson>("/pats?status=active&name=a");
      expect(active.body.pats.map((p) => p.name)).toEqual(["alpha", "Gamma", "delta", "alphabet"]);
    });

    it("an operator lists a named user's PATs", async () => {
      const r = await ops.get<PatListJson>("/pats?user_id=lister&limit=100");
      expect(r.body.total).toBe(6);
      const missing = await ops.get("/pats");
      expect(missing.status).toBe(400);
      expect(missing.error.param).toBe("user_id");
    });

    it.each([
      ["status=gone", "status"],
      ["limit=0", "limit"],
      ["limit=101", "limit"],
      ["offset=-1", "offset"],
      ["limit=ten", "limit"],
      ["name=a&name=b", "name"],
      ["user_ld=lister", "user_ld"],
    ])("400 for ?%s", async (q, param) => {
      const r = await user.get(`/pats?${q}`);
      expect(r.status).toBe(400);
      expect(r.error).toMatchObject({ code: "invalid_field", param });
    });
  });

  describe("one PAT", () => {
    it("GET /pats/{id}: 404 for unknown and malformed ids", async () => {
      for (const id of [randomUUID(), randomUUID().toUpperCase(), "not-a-uuid", "a%20b"]) {
        const r = await alice.get(`/pats/${id}`);
        expect(r.status, id).toBe(404);
      }
      expect((await alice.get(`/pats/${randomUUID()}`)).error.code).toBe("pat_not_found");
    });

    it("PATCH name and description", async () => {
      const p = await made();
      const renamed = await alice.patch<PatJson>(`/pats/${p.id}/name`, { name: `renamed-${p.id}` });
      expect(renamed.status).toBe(200);
      expect(renamed.body.name).toBe(`renamed-${p.id}`);
      expect(Date.parse(renamed.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(p.updated_at));
      const described = await alice.patch<PatJson>(`/pats/${p.id}/description`, { description: "line one\nline two" });
      expect(described.body.description).toBe("line one\nline two");
      expect(described.body.name).toBe(`renamed-${p.id}`);

      const other = await made();
      const clash = await alice.patch(`/pats/${other.id}/name`, { name: `renamed-${p.id}` });
      expect(clash.status).toBe(409);
      expect(clash.error.code).toBe("name_taken");
      expect((await alice.patch(`/pats/${p.id}/name`, {})).error).toMatchObject({ code: "invalid_field", param: "name" });
      expect((await alice.patch(`/pats/${p.id}/description`, { description: null })).error).toMatchObject({ code: "invalid_field", param: "description" });
      expect((await alice.patch(`/pats/${randomUUID()}/name`, { name: "x" })).status).toBe(404);
    });

    it("revoke: refused on the data plane at once, idempotent, and final", async () => {
      const p = await made();
      expect(await fx.chat(p.token)).toBe(200);
      const r = await alice.patch<PatJson>(`/pats/${p.id}/secret/revoke`);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ revoked: true, status: "revoked" });
      expect(r.body.revoked_at).not.toBeNull();
      expect(await fx.chat(p.token)).toBe(401);
      const again = await alice.patch<PatJson>(`/pats/${p.id}/secret/revoke`);
      expect(again.body.revoked_at).toBe(r.body.revoked_at);
      const rotate = await alice.patch(`/pats/${p.id}/secret/reset`, { duration: "30d" });
      expect(rotate.status).toBe(409);
      expect(rotate.error.code).toBe("pat_revoked");
    });

    it("reset (rotate): new secret and expiry, same id, name and scopes; the old secret stops at once", async () => {
      const p = await made(alice, { scopes: [CHAT, READ] });
      const r = await alice.patch<PatJson>(`/pats/${p.id}/secret/reset`, { duration: "7d" });
      expect(r.status).toBe(200);
      const q = r.body;
      expect(q).toMatchObject({ id: p.id, name: p.name, scopes: p.scopes, previous_secret_expires_at: null, status: "active" });
      expect(q.token).toMatch(/^pat_/);
      expect(q.token).not.toBe(p.token);
      expect(Date.parse(q.expires_at) - Date.parse(q.updated_at)).toBe(7 * DAY);
      expect(await fx.chat(p.token)).toBe(401);
      expect(await fx.chat(q.token ?? "")).toBe(200);
    });

    it("reset with a grace period keeps the old secret working, never past its old expiry", async () => {
      const p = await made(alice, { duration: "1h" });
      const r = await alice.patch<PatJson>(`/pats/${p.id}/secret/reset`, { duration: "30d", grace_period: "2d" });
      expect(r.status).toBe(200);
      // Grace asked for 2 days, but the old secret would have expired within the hour.
      expect(r.body.previous_secret_expires_at).toBe(p.expires_at);
      expect(await fx.chat(p.token)).toBe(200);
      expect(await fx.chat(r.body.token ?? "")).toBe(200);

      const s = await made(alice, { duration: "30d" });
      const short = await alice.patch<PatJson>(`/pats/${s.id}/secret/reset`, { duration: "30d", grace_period: "10m" });
      const graceMs = Date.parse(short.body.previous_secret_expires_at ?? "") - Date.parse(short.body.updated_at);
      expect(graceMs).toBe(600_000);
    });

    it("reset refuses bad durations and unknown fields", async () => {
      const p = await made();
      for (const [body, code, param] of [
        [{}, "invalid_duration", "duration"],
        [{ duration: "0s" }, "invalid_duration", "duration"],
        [{ duration: "5y" }, "invalid_duration", "duration"],
        [{ duration: "1d", grace_period: "-1h" }, "invalid_duration", "grace_period"],
        [{ duration: "1d", grace: "1h" }, "invalid_field", "grace"],
      ] as const) {
        const r = await alice.patch(`/pats/${p.id}/secret/reset`, body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.error).toMatchObject({ code, param });
      }
      expect(await fx.chat(p.token)).toBe(200);
    });

    it("an expired PAT can be rotated back to life", async () => {
      const { record } = await fx.gw.issue({ userId: "alice", role: "developer", name: `exp-${++n}`, lifetimeMs: 1, scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
      await new Promise((r) => setTimeout(r, 5));
      expect((await alice.get<PatJson>(`/pats/${record.id}`)).body.status).toBe("expired");
      const r = await alice.patch<PatJson>(`/pats/${record.id}/secret/reset`, { duration: "1d" });
      expect(r.body.status).toBe("active");
      expect(await fx.chat(r.body.token ?? "")).toBe(200);
    });

    it("DELETE: gone from the API and refused on the data plane", async () => {
      const p = await made();
      expect((await alice.delete(`/pats/${p.id}`)).status).toBe(204);
      expect((await alice.get(`/pats/${p.id}`)).status).toBe(404);
      expect((await alice.delete(`/pats/${p.id}`)).status).toBe(404);
      expect(await fx.chat(p.token)).toBe(401);
    });

    it("an operator reaches any PAT by id; with user_id it must be that user's", async () => {
      const p = await made();
      expect((await ops.get(`/pats/${p.id}`)).status).toBe(200);
      expect((await ops.get(`/pats/${p.id}?user_id=alice`)).status).toBe(200);
      expect((await ops.get(`/pats/${p.id}?user_id=bob`)).status).toBe(404);
      // A typo is refused, not ignored.
      expect((await ops.delete(`/pats/${p.id}?usr_id=alice`)).error).toMatchObject({ code: "invalid_field", param: "usr_id" });
      expect((await ops.patch<PatJson>(`/pats/${p.id}/description`, { description: "by ops" })).body.description).toBe("by ops");
    });
  });

  describe("scopes", () => {
    it("lists, adds (deduplicated), removes and clears; the data plane follows", async () => {
      const p = await made(alice, { scopes: [READ] });
      expect(await fx.chat(p.token)).toBe(403);
      const list = await alice.get<{ total: number; scopes: Array<ScopeJson & { id: string }> }>(`/pats/${p.id}/scope`);
      expect(list.body).toEqual({ total: 1, scopes: [{ id: expect.stringMatching(/^[0-9a-f]{24}$/) as string, ...READ }] });

      const added = await alice.patch<PatJson>(`/pats/${p.id}/scope/add`, { scopes: [CHAT, READ] });
      expect(added.status).toBe(200);
      expect(added.body.scopes).toEqual([READ, CHAT]);
      expect(await fx.chat(p.token)).toBe(200);

      const removed = await alice.patch<PatJson>(`/pats/${p.id}/scope/remove`, { scopes: [CHAT, scope("d1", "models", "absent", "llm_read")] });
      expect(removed.body.scopes).toEqual([READ]);
      expect(await fx.chat(p.token)).toBe(403);

      expect((await alice.patch(`/pats/${p.id}/scope/add`, { scopes: [CHAT] })).status).toBe(200);
      expect((await alice.delete(`/pats/${p.id}/scope`)).status).toBe(204);
      expect((await alice.get<{ scopes: ScopeJson[] }>(`/pats/${p.id}/scope`)).body.scopes).toEqual([]);
      expect(await fx.chat(p.token)).toBe(403);
    });

    it("removes by the stable ids GET /pats/{id}/scope shows (scopes_id, the reference system's form)", async () => {
      const p = await made(alice, { scopes: [READ, CHAT] });
      const ids = async (): Promise<string[]> => (await alice.get<{ scopes: Array<{ id: string }> }>(`/pats/${p.id}/scope`)).body.scopes.map((s) => s.id);
      const before = await ids();
      expect(before).toHaveLength(2);
      // Stable: the same on every read, and unchanged by an unrelated edit.
      await alice.patch(`/pats/${p.id}/description`, { description: "x" });
      expect(await ids()).toEqual(before);
      expect(await fx.chat(p.token)).toBe(200);
      const r = await alice.patch<PatJson>(`/pats/${p.id}/scope/remove`, { scopes_id: [before[1], "0123456789abcdef01234567"] });
      expect(r.status).toBe(200);
      expect(r.body.scopes).toEqual([READ]);
      expect(await ids()).toEqual([before[0]]);
      expect(await fx.chat(p.token)).toBe(403);
      // Exactly one of the two forms.
      expect((await alice.patch(`/pats/${p.id}/scope/remove`, { scopes: [READ], scopes_id: before })).error).toMatchObject({ code: "invalid_field" });
      expect((await alice.patch(`/pats/${p.id}/scope/remove`, {})).error).toMatchObject({ code: "invalid_field", param: "scopes" });
      expect((await alice.patch(`/pats/${p.id}/scope/remove`, { scopes_id: [] })).error).toMatchObject({ code: "invalid_field", param: "scopes_id" });
      expect((await alice.patch(`/pats/${p.id}/scope/remove`, { scopes_id: [7] })).error).toMatchObject({ code: "invalid_field", param: "scopes_id" });
    });

    it("add checks the catalog and the user's rights; remove checks only the shape", async () => {
      const p = await made();
      const invalid = await alice.patch(`/pats/${p.id}/scope/add`, { scopes: [scope("d1", "datasets", "x", "llm_read")] });
      expect(invalid.status).toBe(422);
      const notHeld = await alice.patch(`/pats/${p.id}/scope/add`, { scopes: [scope("d1", "models", "*", "llm_delete")] });
      expect(notHeld.status).toBe(403);
      expect(notHeld.error.message).toContain("models:*:llm_delete");
      expect((await alice.patch(`/pats/${p.id}/scope/add`, { scopes: [] })).status).toBe(400);
      expect((await alice.patch(`/pats/${p.id}/scope/add`, {})).error.param).toBe("scopes");
      // A scope the catalog does not know can still be removed.
      const r = await alice.patch(`/pats/${p.id}/scope/remove`, { scopes: [scope("d1", "spaceships", "x", "fly")] });
      expect(r.status).toBe(200);
      expect((await alice.patch(`/pats/${p.id}/scope/remove`, { scopes: [{ domain_id: "d1" }] })).status).toBe(400);
    });

    it("concurrent edits never lose an update (compare-and-set with retries)", async () => {
      const p = await made(ops, { scopes: [READ] }, "?user_id=alice");
      const extra = Array.from({ length: 10 }, (_, i) => scope("d1", "models", `m${i}`, "llm_chat_completions"));
      const results = await Promise.all([
        ...extra.map((s) => ops.patch(`/pats/${p.id}/scope/add`, { scopes: [s] })),
        ops.patch(`/pats/${p.id}/description`, { description: "concurrent" }),
        ops.patch(`/pats/${p.id}/name`, { name: `concurrent-${p.id}` }),
      ]);
      expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
      const final = (await ops.get<PatJson>(`/pats/${p.id}`)).body;
      expect(final.scopes).toHaveLength(1 + extra.length);
      expect(final.scopes).toEqual(expect.arrayContaining([READ, ...extra]));
      expect(final).toMatchObject({ description: "concurrent", name: `concurrent-${p.id}` });
    });
  });

  describe("DELETE /pats (all of mine)", () => {
    it("deletes every PAT of the caller and only theirs", async () => {
      expect((await ops.put("/domains/d1/members/erin", { roles: ["developer"] })).status).toBe(201);
      const erin = await fx.user("erin");
      const a = await made(erin);
      await made(erin);
      const keep = await made();
      const r = await erin.delete<{ deleted: number }>("/pats");
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ deleted: 2 });
      expect((await erin.get<PatListJson>("/pats")).body.total).toBe(0);
      expect(await fx.chat(a.token)).toBe(401);
      expect(await fx.chat(keep.token)).toBe(200);
      // Operators name the user.
      await made(ops, {}, "?user_id=erin");
      expect((await ops.delete("/pats")).status).toBe(400);
      expect((await ops.delete<{ deleted: number }>("/pats?user_id=erin")).body).toEqual({ deleted: 1 });
    });
  });

  describe("last_used_at", () => {
    it("is null until the PAT is used, then shows the (coalesced) time of use", async () => {
      const p = await made();
      expect((await alice.get<PatJson>(`/pats/${p.id}`)).body.last_used_at).toBeNull();
      const before = Date.now();
      expect(await fx.chat(p.token)).toBe(200);
      let seen: string | null = null;
      const deadline = Date.now() + 5000;
      while (seen === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        seen = (await alice.get<PatJson>(`/pats/${p.id}`)).body.last_used_at;
      }
      expect(seen).not.toBeNull();
      expect(Date.parse(seen ?? "")).toBeGreaterThanOrEqual(before - 1);
      expect(Date.parse(seen ?? "")).toBeLessThanOrEqual(Date.now());
    });
  });

  describe("routing", () => {
    it("404 for unknown paths, 405 with Allow for a known path and another method", async () => {
      const unknown = await alice.get("/nothing-here");
      expect(unknown.status).toBe(404);
      expect(unknown.error.code).toBe("no_route");
      expect((await alice.get("/pats/")).status).toBe(404);
      const wrong = await alice.call("PUT", "/pats");
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get("allow")).toBe("POST, GET, DELETE");
      // The health endpoints and the data plane are untouched.
      expect((await fetch(`${fx.gw.url}/healthz`)).status).toBe(200);
    });
  });
});
