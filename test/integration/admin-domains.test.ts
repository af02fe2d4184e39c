// The operator API for domains, members and roles over real sockets; every
// response is checked against docs/openapi.yaml. Changes are seen by the data
// plane at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scope, startAdminFixture, type AdminClient, type AdminFixture, type PatJson } from "../helpers/admin.ts";

interface DomainJson {
  id: string;
  name: string;
  upstream: string | null;
  created_at: string;
}
interface MemberJson {
  domain_id: string;
  user_id: string;
  roles: string[];
}
interface RoleJson {
  name: string;
  operations: string[];
  source: "config" | "stored";
  effective: boolean;
}

describe("domains, members and roles", () => {
  let fx: AdminFixture;
  let ops: AdminClient;

  beforeAll(async () => {
    fx = await startAdminFixture({
      patch: (c) => {
        c.upstreams.second = { targets: ["http://127.0.0.1:9"] };
      },
    });
    ops = fx.ops;
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("GET /catalog shows every entity type with its operations, to users and operators alike", async () => {
    const alice = await fx.user("catalog-reader");
    for (const who of [ops, alice]) {
      const r = await who.get<{ entity_types: Array<{ name: string; operations: string[] }>; operations: Array<{ name: string; description: string | null }> }>("/catalog");
      expect(r.status).toBe(200);
      const types = new Map(r.body.entity_types.map((t) => [t.name, t.operations]));
      expect(types.get("datasets")).toEqual(["read", "update", "delete"]);
      expect(types.get("models")).toContain("llm_chat_completions");
      expect(types.get("models")).not.toContain("read");
      expect(types.get("domains")).toContain("read");
      expect(r.body.operations.find((o) => o.name === "llm_embeddings")?.description).toBe("Generate vector embeddings");
    }
    expect((await fetch(`${fx.gw.url}/catalog`)).status).toBe(401);
  });

  it("concurrent creates of one domain id: exactly one 201, every other 409 domain_exists", async () => {
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => ops.post<DomainJson>("/domains", { id: "racy", name: `racer ${i}` })));
    expect(all.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    for (const r of all.filter((x) => x.status === 409)) expect(r.error.code).toBe("domain_exists");
    const winner = all.find((r) => r.status === 201)!;
    expect((await ops.get<DomainJson>("/domains/racy")).body.name).toBe(winner.body.name);
  });

  /** A PAT for `user` in `domain` with the chat scope, via the API. */
  async function chatPat(domain: string, user: string): Promise<string> {
    const r = await ops.post<PatJson>(`/pats?user_id=${user}`, { name: `chat-${domain}-${user}`, duration: "1d", scopes: [scope(domain, "models", "llama3", "llm_chat_completions")] });
    expect(r.status, r.text).toBe(201);
    return r.body.token ?? "";
  }

  describe("domains", () => {
    it("creates, shows, lists and updates a domain", async () => {
      const r = await ops.post<DomainJson>("/domains", { id: "acme", name: "Acme Corp" });
      expect(r.status).toBe(201);
      expect(r.headers.get("location")).toBe("/domains/acme");
      expect(r.body).toMatchObject({ id: "acme", name: "Acme Corp", upstream: null });
      expect((await ops.get<DomainJson>("/domains/acme")).body).toEqual(r.body);

      const plain = await ops.post<DomainJson>("/domains", { id: "plain.one", upstream: "second" });
      expect(plain.body).toMatchObject({ id: "plain.one", name: "plain.one", upstream: "second" });

      const list = await ops.get<{ total: number; domains: DomainJson[] }>("/domains");
      expect(list.body.domains.map((d) => d.id)).toEqual(expect.arrayContaining(["acme", "plain.one"]));
      expect(list.body.total).toBe(list.body.domains.length);

      const upd = await ops.patch<DomainJson>("/domains/acme", { upstream: "second" });
      expect(upd.body).toMatchObject({ id: "acme", name: "Acme Corp", upstream: "second", created_at: r.body.created_at });
      const back = await ops.patch<DomainJson>("/domains/acme", { name: "Acme", upstream: null });
      expect(back.body).toMatchObject({ name: "Acme", upstream: null });
    });

    it("refuses duplicates (409), bad ids and fields (400) and unknown upstreams (422)", async () => {
      await ops.post("/domains", { id: "dup" });
      const dup = await ops.post("/domains", { id: "dup" });
      expect(dup.status).toBe(409);
      expect(dup.error).toMatchObject({ code: "domain_exists", param: "id" });
      for (const [body, param] of [
        [{}, "id"],
        [{ id: "has space" }, "id"],
        [{ id: "-leading" }, "id"],
        [{ id: "x".repeat(129) }, "id"],
        [{ id: 5 }, "id"],
        [{ id: "ok1", name: "" }, "name"],
        [{ id: "ok1", upstream: 3 }, "upstream"],
        [{ id: "ok1", color: "red" }, "color"],
      ] as const) {
        const r = await ops.post("/domains", body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.error).toMatchObject({ code: "invalid_field", param });
      }
      const up = await ops.post("/domains", { id: "ok2", upstream: "nowhere" });
      expect(up.status).toBe(422);
      expect(up.error).toMatchObject({ code: "unknown_upstream", param: "upstream" });
      expect(up.error.message).toContain("default, second");
      expect((await ops.patch("/domains/dup", { upstream: "nowhere" })).status).toBe(422);
      expect((await ops.patch("/domains/dup", {})).status).toBe(400);
    });

    it("404 for an unknown domain", async () => {
      for (const [method, path] of [["GET", "/domains/none"], ["DELETE", "/domains/none"], ["GET", "/domains/none/members"], ["GET", "/domains/none/members/u"], ["DELETE", "/domains/none/members/u"]] as const) {
        const r = await ops.call(method, path);
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(r.error.code).toBe("domain_not_found");
      }
      expect((await ops.patch("/domains/none", { name: "x" })).error.code).toBe("domain_not_found");
      expect((await ops.put("/domains/none/members/u", { roles: ["viewer"] })).error.code).toBe("domain_not_found");
    });

    it("deleting a domain removes its members and stops its PATs at once", async () => {
      await ops.post("/domains", { id: "doomed" });
      await ops.put("/domains/doomed/members/zoe", { roles: ["developer"] });
      const token = await chatPat("doomed", "zoe");
      expect(await fx.chat(token, "doomed")).toBe(200);
      expect((await ops.delete("/domains/doomed")).status).toBe(204);
      expect(await fx.chat(token, "doomed")).toBe(403);  // a deleted domain answers like one the user is not in
      expect((await ops.get("/domains/doomed")).status).toBe(404);
      // Recreated: the old membership is gone with it.
      await ops.post("/domains", { id: "doomed" });
      expect((await ops.get("/domains/doomed/members/zoe")).error.code).toBe("member_not_found");
      expect(await fx.chat(token, "doomed")).toBe(403);
    });
  });

  describe("members", () => {
    beforeAll(async () => {
      await ops.post("/domains", { id: "team" });
    });

    it("adds (201), updates (200), shows, lists and removes members", async () => {
      const add = await ops.put<MemberJson>("/domains/team/members/sam", { roles: ["viewer", "viewer"] });
      expect(add.status).toBe(201);
      expect(add.body).toEqual({ domain_id: "team", user_id: "sam", roles: ["viewer"] });
      const upd = await ops.put<MemberJson>("/domains/team/members/sam", { roles: ["developer", "viewer"] });
      expect(upd.status).toBe(200);
      expect(upd.body.roles).toEqual(["developer", "viewer"]);
      expect((await ops.get<MemberJson>("/domains/team/members/sam")).body).toEqual(upd.body);
      await ops.put("/domains/team/members/auth0%7Cabc", { roles: ["viewer"] });
      const list = await ops.get<{ total: number; members: MemberJson[] }>("/domains/team/members");
      expect(list.body.members.map((m) => m.user_id)).toEqual(["auth0|abc", "sam"]);
      expect((await ops.delete("/domains/team/members/auth0%7Cabc")).status).toBe(204);
      expect((await ops.delete("/domains/team/members/auth0%7Cabc")).error.code).toBe("member_not_found");
      expect((await ops.get("/domains/team/members/ghost")).error.code).toBe("member_not_found");
    });

    it("validates roles and user ids", async () => {
      const unknown = await ops.put("/domains/team/members/sam", { roles: ["viewer", "wizard"] });
      expect(unknown.status).toBe(422);
      expect(unknown.error).toMatchObject({ code: "unknown_role", param: "roles" });
      expect(unknown.error.message).toContain('"wizard"');
      for (const body of [{}, { roles: [] }, { roles: "viewer" }, { roles: [1] }]) {
        const r = await ops.put("/domains/team/members/sam", body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.error.param).toBe("roles");
      }
      const badUser = await ops.put("/domains/team/members/a%20b", { roles: ["viewer"] });
      expect(badUser.status).toBe(400);
      expect(badUser.error.param).toBe("user_id");
    });

    it("removing a member, or their role's operation, stops their PATs in that domain at once", async () => {
      await ops.put("/domains/team/members/max", { roles: ["developer"] });
      const token = await chatPat("team", "max");
      expect(await fx.chat(token, "team")).toBe(200);
      await ops.put("/domains/team/members/max", { roles: ["viewer"] });
      expect(await fx.chat(token, "team")).toBe(403);
      await ops.put("/domains/team/members/max", { roles: ["developer"] });
      expect(await fx.chat(token, "team")).toBe(200);
      expect((await ops.delete("/domains/team/members/max")).status).toBe(204);
      expect(await fx.chat(token, "team")).toBe(403);
    });
  });

  describe("roles", () => {
    it("lists the config roles with their source", async () => {
      const r = await ops.get<{ total: number; roles: RoleJson[] }>("/roles");
      expect(r.status).toBe(200);
      expect(r.body.roles).toEqual(expect.arrayContaining([{ name: "admin", operations: ["*"], source: "config", effective: true }]));
      expect((await ops.get<RoleJson>("/roles/viewer")).body).toEqual({ name: "viewer", operations: ["read", "llm_read"], source: "config", effective: true });
      expect((await ops.get("/roles/nope")).error.code).toBe("role_not_found");
      expect((await ops.get("/roles?limit=5")).error).toMatchObject({ code: "invalid_field", param: "limit" });
    });

    it("stores a role (201, then 200), validates it, and members get its rights at once", async () => {
      const put = await ops.put<RoleJson>("/roles/chatter", { operations: ["llm_chat_completions"] });
      expect(put.status).toBe(201);
      expect(put.body).toEqual({ name: "chatter", operations: ["llm_chat_completions"], source: "stored", effective: true });
      await ops.post("/domains", { id: "chat" });
      await ops.put("/domains/chat/members/cleo", { roles: ["chatter"] });
      const token = await chatPat("chat", "cleo");
      expect(await fx.chat(token, "chat")).toBe(200);
      const again = await ops.put<RoleJson>("/roles/chatter", { operations: ["llm_read"] });
      expect(again.status).toBe(200);
      expect(await fx.chat(token, "chat")).toBe(403);

      const bad = await ops.put("/roles/chatter", { operations: ["llm_read", "teleport"] });
      expect(bad.status).toBe(422);
      expect(bad.error).toMatchObject({ code: "unknown_operation", param: "operations" });
      expect((await ops.put("/roles/Bad-Name", { operations: [] })).error).toMatchObject({ code: "invalid_field", param: "name" });
      expect((await ops.put("/roles/ok_name", { operations: "read" })).error).toMatchObject({ code: "invalid_field", param: "operations" });
      expect((await ops.put("/roles/ok_name", {})).error.param).toBe("operations");
    });

    it("a stored role overlays the config role of the same name; deleting it restores the config one", async () => {
      const put = await ops.put<RoleJson>("/roles/viewer", { operations: ["read"] });
      expect(put.status).toBe(201);
      const list = await ops.get<{ roles: RoleJson[] }>("/roles");
      expect(list.body.roles.filter((r) => r.name === "viewer")).toEqual([
        { name: "viewer", operations: ["read", "llm_read"], source: "config", effective: false },
        { name: "viewer", operations: ["read"], source: "stored", effective: true },
      ]);
      expect((await ops.get<RoleJson>("/roles/viewer")).body.source).toBe("stored");
      expect((await ops.delete("/roles/viewer")).status).toBe(204);
      expect((await ops.get<RoleJson>("/roles/viewer")).body).toMatchObject({ source: "config", effective: true });
    });

    it("config roles cannot be deleted here (409); unknown ones are 404", async () => {
      const r = await ops.delete("/roles/admin");
      expect(r.status).toBe(409);
      expect(r.error.code).toBe("role_in_config");
      expect((await ops.delete("/roles/never_was")).error.code).toBe("role_not_found");
    });
  });
});
