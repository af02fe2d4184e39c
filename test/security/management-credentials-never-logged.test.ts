// Finding (SPEC §8): "keys leaked to upstreams, logs and error messages".
// Admin keys, OIDC tokens and PATs sent to the management API never reach the
// log or an error message, accepted or refused; the log names who acted
// (a key fingerprint or the user id) and audit lines record every change.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scope, startAdminFixture, type AdminFixture, type PatJson } from "../helpers/admin.ts";

describe("management credentials in logs and errors", () => {
  let fx: AdminFixture;

  beforeAll(async () => {
    fx = await startAdminFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("logs who acted, never the credential", async () => {
    const { ops, idp } = fx;
    const adminKey = fx.gw.adminKey ?? "";
    await ops.post("/domains", { id: "d1" });
    await ops.put("/domains/d1/members/alice", { roles: ["developer"] });
    const jwt = await idp.token("alice");
    const alice = ops.as(jwt);
    const created = await alice.post<PatJson>("/pats", { name: "p", duration: "1d", scopes: [scope("d1", "models", "llama3", "llm_chat_completions")] });
    const pat = created.body.token ?? "";
    await alice.patch(`/pats/${created.body.id}/secret/revoke`);

    const refused = [
      `${adminKey}0`,
      await idp.token("alice", { forge: true }),
      await idp.token("alice", { expiresIn: -100 }),
      idp.unsigned("alice"),
      pat,
    ];
    for (const credential of refused) {
      const r = await ops.get("/pats", { auth: credential });
      expect(r.status).toBe(401);
      expect(r.text).not.toContain(credential);
    }
    await fx.gw.app.verifier.flushUsage();

    const log = fx.gw.logs.lines.join("\n");
    const jwtSignature = jwt.split(".")[2] ?? "";
    for (const secret of [adminKey, jwt, jwtSignature, pat, ...refused]) {
      expect(secret.length).toBeGreaterThan(20);
      expect(log).not.toContain(secret);
    }
    const records = fx.gw.logs.records();
    const admin = records.filter((r) => r.msg === "admin");
    expect(admin.length).toBeGreaterThanOrEqual(4 + refused.length);
    expect(admin.some((r) => r.caller === "user" && r.user === "alice" && r.status === 201)).toBe(true);
    const audit = records.filter((r) => r.msg === "audit");
    expect(audit.map((r) => r.audit)).toEqual(expect.arrayContaining(["domain.create", "member.put", "pat.create", "pat.revoke"]));
    expect(audit.find((r) => r.audit === "pat.create")?.actor).toBe("user:alice");
    expect(String(audit.find((r) => r.audit === "domain.create")?.actor)).toMatch(/^admin:[0-9a-f]{12}$/);
  });
});
