// Operators by an OIDC claim (auth.oidc.operator_claim / operator_value), as
// an alternative to the admin key: through the web page's real sign-in with
// the dev OpenID provider, where carol's `groups` holds patgate-operators and
// alice's does not; a session made by the claim ends when the rule changes;
// and the same rule for JWTs sent to the management API.
import net from "node:net";
import { readFile, writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_OPERATOR_GROUP, startDevIdp, type DevIdp } from "../../devtools/dev-idp.ts";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startIdp, type TestIdp } from "../helpers/jwks.ts";
import { signInThroughDevIdp } from "../helpers/oidc-flow.ts";
import { spawnGateway, startGateway, writeConfig, type TestConfig, type TestGateway } from "../helpers/gateway.ts";

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

/** A port free right now (the gateway is restarted on it, so the provider's redirect URI stays right). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const status = async (url: string, cookie: string, path: string): Promise<[number, string | null]> => {
  const res = await fetch(`${url}${path}`, { headers: { cookie } });
  const body = (await res.json()) as { error?: { code: string } };
  return [res.status, body.error?.code ?? null];
};

describe("operators by an OIDC claim, signing in to the web page", () => {
  let idp: DevIdp;
  let cfg: Awaited<ReturnType<typeof writeConfig>>;
  let port = 0;

  beforeAll(async () => {
    idp = await startDevIdp({ port: 0 });
    port = await freePort();
    cfg = await writeConfig({
      upstreamUrl: upstream.url,
      oidc: { issuer: idp.issuer, audience: DEV_CLIENT_ID, jwksUrl: `${idp.issuer}/jwks` },
      patch: (c: TestConfig) => {
        c.server.port = port;
        Object.assign((c.auth as { oidc: Record<string, unknown> }).oidc, {
          client_id: DEV_CLIENT_ID,
          client_secret: DEV_CLIENT_SECRET,
          login_scopes: ["openid", "profile", "email", "groups"],
          operator_claim: "groups",
          operator_value: DEV_OPERATOR_GROUP,
        });
      },
    });
    idp.start([`http://127.0.0.1:${port}/ui/auth/callback`]);
  });
  afterAll(async () => {
    await idp?.close();
  });

  it("carol (in the group) is an operator, alice (another group) a user; when the rule changes, carol's operator session ends and alice's goes on", { timeout: 90_000 }, async () => {
    let g = await spawnGateway(cfg.file);
    try {
      const carol = await signInThroughDevIdp(g.url, idp.issuer, "carol");
      const state = (await (await fetch(`${g.url}/ui/auth/session`, { headers: { cookie: carol } })).json()) as Record<string, unknown>;
      expect(state).toMatchObject({ signed_in: true, kind: "operator", via: "oidc", display: "Carol Example", user_id: null });
      expect(await status(g.url, carol, "/admin/pats?user_id=alice")).toEqual([200, null]);
      // An operator by claim acts as one: the audit line names her.
      const made = await fetch(`${g.url}/domains`, { method: "POST", headers: { cookie: carol, "content-type": "application/json", "sec-fetch-site": "same-origin" }, body: JSON.stringify({ id: "claimed" }) });
      expect(made.status).toBe(201);

      const alice = await signInThroughDevIdp(g.url, idp.issuer, "alice");
      expect(await status(g.url, alice, "/me")).toEqual([200, null]);
      expect(await status(g.url, alice, "/admin/pats?user_id=alice")).toEqual([403, "operator_only"]);

      await expect.poll(() => g.stdout()).toMatch(/"audit":"domain\.create"[^\n]*"actor":"operator:carol"/);
      const signIns = g.stdout().split("\n").filter((l) => l.includes('"audit":"ui.sign_in"'));
      expect(signIns.some((l) => l.includes('"actor":"operator:carol"') && l.includes(`"operator_claim":"groups=${DEV_OPERATOR_GROUP}"`))).toBe(true);
      expect(signIns.some((l) => l.includes('"actor":"user:alice"'))).toBe(true);

      // The operator changes the rule and restarts the gateway (same database, same port).
      expect(await g.stop()).toBe(0);
      const yaml = parse(await readFile(cfg.file, "utf8")) as { auth: { oidc: Record<string, unknown> } };
      yaml.auth.oidc.operator_value = "platform-admins";
      await writeFile(cfg.file, stringify(yaml));
      g = await spawnGateway(cfg.file);
      expect(await status(g.url, carol, "/admin/pats?user_id=alice")).toEqual([401, "session_invalid"]);
      expect(await status(g.url, alice, "/me")).toEqual([200, null]);
      // Signing in again, carol is a user now.
      const again = await signInThroughDevIdp(g.url, idp.issuer, "carol");
      expect(await status(g.url, again, "/admin/pats?user_id=alice")).toEqual([403, "operator_only"]);
    } finally {
      await g.stop();
    }
  });
});

describe("operators by an OIDC claim, calling the management API with a JWT", () => {
  let jwt: TestIdp;
  let gw: TestGateway;

  beforeAll(async () => {
    jwt = await startIdp();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      oidc: { issuer: jwt.issuer, audience: jwt.audience, jwksUrl: jwt.jwksUrl, algorithms: ["RS256"] },
      patch: (c) => Object.assign((c.auth as { oidc: Record<string, unknown> }).oidc, { operator_claim: "realm_access.roles", operator_value: "patgate-operator" }),
    });
  });
  afterAll(async () => {
    await gw?.close();
    await jwt?.close();
  });

  const call = async (token: string): Promise<[number, string | null]> => {
    const res = await fetch(`${gw.url}/admin/pats?user_id=alice`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { error?: { code: string } };
    return [res.status, body.error?.code ?? null];
  };

  it("follows a dotted path into nested claims, and a list must contain the value exactly", async () => {
    expect(await call(await jwt.token("dana", {}, { realm_access: { roles: ["offline_access", "patgate-operator"] } }))).toEqual([200, null]);
    expect(await call(await jwt.token("erin", {}, { realm_access: { roles: ["patgate-operators", "PATGATE-OPERATOR"] } }))).toEqual([403, "operator_only"]);
    expect(await call(await jwt.token("fay", {}, { realm_access: "patgate-operator" }))).toEqual([403, "operator_only"]);
    expect(await call(await jwt.token("gus"))).toEqual([403, "operator_only"]);
  });

  it("audits an operator by claim under their user id", async () => {
    const token = await jwt.token("dana", {}, { realm_access: { roles: ["patgate-operator"] } });
    const res = await fetch(`${gw.url}/domains`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ id: "by-claim" }) });
    expect(res.status).toBe(201);
    expect(gw.logs.records().find((r) => r.audit === "domain.create" && r.domain === "by-claim")).toMatchObject({ actor: "operator:dana" });
  });
});
