// Finding (review, low): identity claims must be trustworthy. With
// auth.oidc.user_claim: email, a token whose email the issuer never verified
// (many let a user type any address) became that address's user, with its
// memberships and PATs. Now the email must come with email_verified: true.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { AdminClient, scope, type PatJson } from "../helpers/admin.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startIdp, type TestIdp } from "../helpers/jwks.ts";

describe("an unverified email is not a user id", () => {
  let upstream: FakeUpstream;
  let idp: TestIdp;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    idp = await startIdp();
    gw = await startGateway({ upstreamUrl: upstream.url, oidc: { issuer: idp.issuer, audience: idp.audience, jwksUrl: idp.jwksUrl, userClaim: "email" } });
    const ops = new AdminClient(gw.url, gw.adminKey);
    await ops.post("/domains", { id: "d1" });
    await ops.put("/domains/d1/members/ann@example.com", { roles: ["viewer"] });
    // Ann's own PAT, made with a verified token.
    const ann = new AdminClient(gw.url, await idp.token("ann-sub", {}, { email: "ann@example.com", email_verified: true }));
    expect((await ann.post<PatJson>("/pats", { name: "anns", duration: "1d", scopes: [scope("d1", "models", "*", "llm_read")] })).status).toBe(201);
  });
  afterAll(async () => {
    await gw?.close();
    await idp?.close();
    await upstream?.close();
  });

  it.each([
    ["no email_verified claim", {}],
    ["email_verified: false", { email_verified: false }],
    ['email_verified: "true" (a string)', { email_verified: "true" }],
  ])("%s → 401, and Ann's PATs stay out of reach", async (_name, extra) => {
    const mallory = new AdminClient(gw.url, await idp.token("mallory-sub", {}, { email: "ann@example.com", ...extra }));
    const list = await mallory.get("/pats");
    expect(list.status).toBe(401);
    expect(list.error.message).toMatch(/not verified/);
  });

  it("a verified email still works", async () => {
    const ann = new AdminClient(gw.url, await idp.token("ann-sub", {}, { email: "ann@example.com", email_verified: true }));
    const list = await ann.get<{ pats: PatJson[] }>("/pats");
    expect(list.status).toBe(200);
  });
});
