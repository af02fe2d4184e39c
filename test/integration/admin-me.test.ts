// GET /me, GET /me/grantable (the scope picker's data), GET /admin/pats and the
// revoke reason, every response held to docs/openapi.yaml.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminFixture, scope, type AdminClient, type AdminFixture, type PatJson } from "../helpers/admin.ts";
import { ensureMember } from "../helpers/gateway.ts";

interface MeJson {
  kind: string;
  user_id: string | null;
  max_token_lifetime: string;
  max_token_lifetime_seconds: number;
  entity_types: Array<{ name: string; operations: string[] }>;
  domains: Array<{ id: string; name: string; roles: string[]; operations: string[] }>;
}
interface GrantableJson {
  operations: string[];
  entities: Array<{ id: string; source: string }>;
  upstream: { status: string; message: string | null };
}

let f: AdminFixture;
let alice: AdminClient;

beforeAll(async () => {
  f = await startAdminFixture({
    patch: (cfg) => {
      cfg.security.max_token_lifetime = "90d";
      cfg.ui = { entities: { datasets: { d1: ["sales"], "*": ["shared"] }, models: { d1: ["configured-model"] } } };
      cfg.upstreams.broken = { targets: ["http://127.0.0.1:9"], connect_timeout: "1s" };
    },
  });
  await ensureMember(f.gw.store, "d1", "alice", "developer");
  await ensureMember(f.gw.store, "d2", "bob", "admin");
  await f.gw.store.putDomain({ id: "down", name: "Down", upstream: "broken", createdAt: Date.now() });
  await ensureMember(f.gw.store, "down", "alice", "viewer");
  alice = await f.user("alice");
});
afterAll(async () => {
  await f.close();
});

describe("GET /me", () => {
  it("gives a user their domains, roles, held operations and the lifetime limit", async () => {
    const r = await alice.get<MeJson>("/me");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ kind: "user", user_id: "alice", max_token_lifetime: "90d", max_token_lifetime_seconds: 90 * 86400 });
    expect(r.body.domains.map((d) => d.id)).toEqual(["d1", "down"]);
    const d1 = r.body.domains.find((d) => d.id === "d1");
    expect(d1?.roles).toEqual(["developer"]);
    expect(d1?.operations).toContain("llm_chat_completions");
    expect(d1?.operations).not.toContain("llm_create");
    expect(r.body.entity_types.map((t) => t.name)).toEqual(expect.arrayContaining(["domains", "models", "datasets"]));
  });

  it("gives an operator every domain", async () => {
    const r = await f.ops.get<MeJson>("/me");
    expect(r.body.kind).toBe("operator");
    expect(r.body.user_id).toBeNull();
    expect(r.body.domains.map((d) => d.id).sort()).toEqual(["d1", "d2", "down"]);
  });

  it("refuses a PAT", async () => {
    const { token } = await f.gw.issue({ userId: "alice", scopes: [{ entityType: "models", entityId: "*", operation: "llm_read" }], role: "developer" });
    const r = await alice.get("/me", { auth: token });
    expect(r.status).toBe(401);
    expect(r.error.code).toBe("pat_not_accepted");
  });
});

describe("GET /me/grantable", () => {
  it("lists the upstream's models, the configured ids and the operations held", async () => {
    const r = await alice.get<GrantableJson>("/me/grantable?domain=d1&entity_type=models");
    expect(r.status).toBe(200);
    expect(r.body.upstream).toEqual({ status: "ok", message: null });
    expect(r.body.entities[0]).toEqual({ id: "*", source: "wildcard" });
    expect(r.body.entities).toEqual(expect.arrayContaining([{ id: "fake-model", source: "upstream" }, { id: "configured-model", source: "config" }]));
    expect(r.body.operations).toContain("llm_chat_completions");
    expect(r.body.operations).not.toContain("llm_delete");
  });

  it("says clearly when the upstream cannot list its models, and still offers the rest", async () => {
    const r = await alice.get<GrantableJson>("/me/grantable?domain=down&entity_type=models");
    expect(r.status).toBe(200);
    expect(r.body.upstream.status).toBe("unavailable");
    expect(r.body.upstream.message).toMatch(/could not list its models/);
    expect(r.body.entities).toEqual([{ id: "*", source: "wildcard" }]);
    // viewer: read-only on models
    expect(r.body.operations).toEqual(["llm_read"]);
  });

  it("offers ids from config for other types, per domain and for every domain", async () => {
    const r = await alice.get<GrantableJson>("/me/grantable?domain=d1&entity_type=datasets");
    expect(r.body.entities.map((e) => e.id)).toEqual(["*", "sales", "shared"]);
    expect(r.body.operations).toEqual(["read"]);
    expect(r.body.upstream.status).toBe("not_used");
  });

  it("answers a domain the user is not in like one that does not exist", async () => {
    const other = await alice.get("/me/grantable?domain=d2&entity_type=models");
    const none = await alice.get("/me/grantable?domain=nope&entity_type=models");
    expect([other.status, none.status]).toEqual([404, 404]);
    expect(other.text).toBe(none.text);
  });

  it("names a missing or unknown parameter", async () => {
    const missing = await alice.get("/me/grantable?domain=d1");
    expect(missing.status).toBe(400);
    expect(missing.error.param).toBe("entity_type");
    const unknown = await alice.get("/me/grantable?domain=d1&entity_type=spaceships");
    expect(unknown.status).toBe(400);
    expect(unknown.error.message).toMatch(/Unknown entity type "spaceships"/);
  });
});

describe("GET /admin/pats and the revoke reason", () => {
  it("lists every user's PATs with filters, for operators only", async () => {
    const a = await alice.post<PatJson>("/pats", { name: "a1", duration: "30d", scopes: [scope("d1", "models", "*", "llm_chat_completions")] });
    await alice.post("/pats", { name: "a-soon", duration: "2d", scopes: [scope("d1", "models", "*", "llm_read")] });
    const bob = await f.user("bob");
    await bob.post("/pats", { name: "b1", duration: "30d", scopes: [scope("d2", "models", "*", "llm_read")] });
    const all = await f.ops.get<{ total: number; pats: PatJson[] }>("/admin/pats");
    expect(all.status).toBe(200);
    expect(all.body.pats.map((p) => `${p.user_id}/${p.name}`).sort()).toEqual(expect.arrayContaining(["alice/a1", "alice/a-soon", "bob/b1"]));
    const inD2 = await f.ops.get<{ pats: PatJson[] }>("/admin/pats?domain=d2");
    expect(inD2.body.pats.map((p) => p.name)).toEqual(["b1"]);
    const soon = await f.ops.get<{ pats: PatJson[] }>("/admin/pats?expiring_within=7d");
    expect(soon.body.pats.map((p) => p.name).filter((n) => n.startsWith("a"))).toEqual(["a-soon"]);
    expect(await f.chat(a.body.token ?? "", "d1", "fake-model")).toBe(200);
    await new Promise((r) => setTimeout(r, 400)); // last-used times are coalesced (200 ms in tests)
    const unused = await f.ops.get<{ pats: PatJson[] }>("/admin/pats?unused=true&user_id=alice");
    expect(unused.body.pats.map((p) => p.name).filter((n) => n.startsWith("a"))).toEqual(["a-soon"]);
    const bad = await f.ops.get("/admin/pats?expiring_within=soon");
    expect(bad.status).toBe(400);
    const asUser = await alice.get("/admin/pats");
    expect(asUser.status).toBe(403);
    expect(asUser.error.code).toBe("operator_only");

    const revoked = await f.ops.patch<PatJson>(`/pats/${a.body.id}/secret/revoke`, { reason: "left the team" });
    expect(revoked.status).toBe(200);
    const line = f.gw.logs.records().find((r) => r.audit === "pat.revoke" && r.pat_id === a.body.id);
    expect(line).toMatchObject({ reason: "left the team", user_id: "alice" });
    const long = await f.ops.patch(`/pats/${a.body.id}/secret/revoke`, { reason: "x".repeat(501) });
    expect(long.status).toBe(400);
    expect(long.error.param).toBe("reason");
    const other = await f.ops.patch(`/pats/${a.body.id}/secret/revoke`, { why: "?" });
    expect(other.status).toBe(400);
  });
});
