// Who may call the management API: users with an OIDC JWT verified against
// the issuer's JWKS (served locally by test/helpers/jwks.ts), operators with
// an admin key, never a PAT. Every response is checked against the OpenAPI file.
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.ts";
import { ConfigError, loadSettings, parseSettings } from "../../src/config/config.ts";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { AdminClient, scope, startAdminFixture, type AdminFixture, type PatJson, type PatListJson } from "../helpers/admin.ts";
import { LogCapture, startGateway, writeConfig, type TestConfig } from "../helpers/gateway.ts";
import { startIdp, type TestIdp } from "../helpers/jwks.ts";
import { startRedis } from "../helpers/redis.ts";

const CHAT = scope("d1", "models", "llama3", "llm_chat_completions");

describe("management API credentials", () => {
  let fx: AdminFixture;
  let ops: AdminClient;

  beforeAll(async () => {
    fx = await startAdminFixture();
    ops = fx.ops;
    expect((await ops.post("/domains", { id: "d1" })).status).toBe(201);
    expect((await ops.put("/domains/d1/members/alice", { roles: ["developer"] })).status).toBe(201);
  });
  afterAll(async () => {
    await fx?.close();
  });

  const listAs = (credential: string | null, headers?: Record<string, string>): ReturnType<AdminClient["get"]> =>
    ops.get<PatListJson>("/pats", { auth: credential, ...(headers === undefined ? {} : { headers }) });

  async function expect401(credential: string | null, code: string, message?: RegExp): Promise<void> {
    const r = await listAs(credential);
    expect(r.status, r.text).toBe(401);
    expect(r.error.code).toBe(code);
    if (message !== undefined) expect(r.error.message).toMatch(message);
    expect(r.headers.get("www-authenticate")).toMatch(/^Bearer realm="patgate"/);
    if (credential !== null) expect(r.text).not.toContain(credential);
  }

  describe("OIDC users", () => {
    it("accepts a valid JWT and acts as its `sub`", async () => {
      const r = await listAs(await fx.idp.token("alice"));
      expect(r.status).toBe(200);
      const created = await ops.post<PatJson>("/pats", { name: "mine", duration: "1d", scopes: [CHAT] }, { auth: await fx.idp.token("alice") });
      expect(created.status).toBe(201);
      expect(created.body.user_id).toBe("alice");
    });

    it("refuses an expired JWT", async () => {
      await expect401(await fx.idp.token("alice", { expiresIn: -120 }), "invalid_credential", /expired/);
    });

    it("refuses a JWT for another audience", async () => {
      await expect401(await fx.idp.token("alice", { audience: "someone-else" }), "invalid_credential", /"aud"/);
    });

    it("refuses a JWT from another issuer", async () => {
      await expect401(await fx.idp.token("alice", { issuer: "https://evil.example/" }), "invalid_credential", /"iss"/);
    });

    it("refuses an unsecured JWT (alg: none)", async () => {
      await expect401(fx.idp.unsigned("alice"), "invalid_credential", /algorithm/);
    });

    it("refuses an HMAC-signed JWT (alg: HS256), even one keyed with public material", async () => {
      const now = Math.floor(Date.now() / 1000);
      const hs = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256", kid: fx.idp.kid })
        .setSubject("alice")
        .setIssuer(fx.idp.issuer)
        .setAudience(fx.idp.audience)
        .setExpirationTime(now + 300)
        .sign(new TextEncoder().encode(fx.idp.jwksUrl));
      await expect401(hs, "invalid_credential", /algorithm/);
    });

    it("refuses a JWT signed with a key the issuer does not publish (unknown kid)", async () => {
      await expect401(await fx.idp.token("alice", { kid: "not-a-published-kid" }), "invalid_credential", /key the issuer does not publish/);
    });

    it("refuses a forged signature (right kid, wrong key)", async () => {
      await expect401(await fx.idp.token("alice", { forge: true }), "invalid_credential", /signature/);
      // A token edited after signing: same thing.
      const [h, p, s] = (await fx.idp.token("alice")).split(".");
      const payload = JSON.parse(Buffer.from(p ?? "", "base64url").toString()) as Record<string, unknown>;
      const edited = Buffer.from(JSON.stringify({ ...payload, sub: "mallory" })).toString("base64url");
      await expect401(`${h}.${edited}.${s}`, "invalid_credential", /signature/);
    });

    it("refuses a JWT without exp, and one whose user claim is not a usable id", async () => {
      await expect401(await fx.idp.token("alice", { noExp: true }), "invalid_credential", /"exp"/);
      await expect401(await fx.idp.token("has space"), "invalid_credential", /"sub" claim/);
    });

    it("keeps users off operator endpoints (403), but lets them list their own domains", async () => {
      const alice = await fx.user("alice");
      for (const [method, path, body] of [
        ["POST", "/domains", { id: "x1" }],
        ["GET", "/domains/d1", undefined],
        ["GET", "/domains/d1/members", undefined],
        ["PUT", "/domains/d1/members/alice", { roles: ["admin"] }],
        ["DELETE", "/domains/d1/members/alice", undefined],
        ["GET", "/roles", undefined],
        ["PUT", "/roles/sneaky", { operations: ["*"] }],
      ] as const) {
        const r = await alice.call(method, path, body === undefined ? {} : { json: body });
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(r.error.code).toBe("operator_only");
      }
      const mine = await alice.get<{ total: number; domains: Array<{ id: string; roles: string[] }> }>("/domains");
      expect(mine.status).toBe(200);
      expect(mine.body.domains.map((d) => [d.id, d.roles])).toEqual([["d1", ["developer"]]]);
      const nobody = await fx.user("nobody");
      expect((await nobody.get<{ total: number }>("/domains")).body.total).toBe(0);
    });
  });

  describe("operators and other credentials", () => {
    it("401 with no credential, a non-Bearer scheme, or an empty one (no error attribute)", async () => {
      for (const headers of [{}, { authorization: "Basic dXNlcjpwYXNz" }, { authorization: "Bearer " }]) {
        const r = await ops.get("/pats", { auth: null, headers });
        expect(r.status).toBe(401);
        expect(r.error.code).toBe("missing_credential");
        expect(r.headers.get("www-authenticate")).toBe('Bearer realm="patgate"');
      }
    });

    it("401 for a wrong admin key and for garbage", async () => {
      await expect401(`${fx.gw.adminKey ?? ""}x`, "invalid_credential");
      await expect401("x".repeat(40), "invalid_credential");
      await expect401("a.b.c", "invalid_credential");
      await expect401("short", "invalid_credential");
    });

    it("a PAT is never a management credential, even a valid one", async () => {
      const created = await ops.post<PatJson>("/pats?user_id=alice", { name: "as-cred", duration: "1d", scopes: [CHAT] });
      const token = created.body.token ?? "";
      expect(await fx.chat(token)).toBe(200);
      await expect401(token, "pat_not_accepted");
      await expect401("pat_mistyped", "pat_not_accepted");
      const write = await ops.post("/domains", { id: "via-pat" }, { auth: token });
      expect(write.status).toBe(401);
    });

    it("operators act on any user's PATs by naming the user", async () => {
      const r = await ops.get<PatListJson>("/pats?user_id=alice");
      expect(r.status).toBe(200);
      expect(r.body.pats.every((p) => p.user_id === "alice")).toBe(true);
    });
  });
});

describe("OIDC configuration", () => {
  let upstream: FakeUpstream;
  let idp: TestIdp;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    idp = await startIdp();
  });
  afterAll(async () => {
    await idp?.close();
    await upstream?.close();
  });

  it("takes the user id from the configured claim", async () => {
    const gw = await startGateway({ upstreamUrl: upstream.url, oidc: { issuer: idp.issuer, audience: idp.audience, jwksUrl: idp.jwksUrl, userClaim: "email" } });
    try {
      const client = new AdminClient(gw.url, await idp.token("subject-123", {}, { email: "ann@example.com", email_verified: true }));
      expect((await client.post("/domains", { id: "x" })).error.code).toBe("operator_only");
      await new AdminClient(gw.url, gw.adminKey).post("/domains", { id: "d1" });
      await new AdminClient(gw.url, gw.adminKey).put("/domains/d1/members/ann@example.com", { roles: ["viewer"] });
      const mine = await client.post<PatJson>("/pats", { name: "n", duration: "1d", scopes: [scope("d1", "models", "*", "llm_read")] });
      expect(mine.status).toBe(201);
      expect(mine.body.user_id).toBe("ann@example.com");
      const noEmail = await client.get("/pats", { auth: await idp.token("subject-123") });
      expect(noEmail.status).toBe(401);
      expect(noEmail.error.message).toMatch(/"email" claim/);
    } finally {
      await gw.close();
    }
  });

  it("503 idp_unavailable while the issuer's key set cannot be fetched, then recovers", async () => {
    const down = await startIdp();
    down.down = true;
    const gw = await startGateway({ upstreamUrl: upstream.url, oidc: { issuer: down.issuer, audience: down.audience, jwksUrl: down.jwksUrl } });
    try {
      const client = new AdminClient(gw.url, await down.token("alice"));
      const r = await client.get("/pats");
      expect(r.status).toBe(503);
      expect(r.error.code).toBe("idp_unavailable");
      // Operators are not affected.
      expect((await client.get("/pats?user_id=alice", { auth: gw.adminKey })).status).toBe(200);
      down.down = false;
      expect((await client.get("/pats")).status).toBe(200);
    } finally {
      await gw.close();
      await down.close();
    }
  });

  it("without OIDC configured, a JWT is refused with a clear message", async () => {
    const gw = await startGateway({ upstreamUrl: upstream.url });
    try {
      const r = await new AdminClient(gw.url, await idp.token("alice")).get("/pats");
      expect(r.status).toBe(401);
      expect(r.error.message).toMatch(/OIDC sign-in is not configured/);
    } finally {
      await gw.close();
    }
  });

  it.each([
    [{ issuer: "https://idp.example/", audience: "a", jwks_url: "https://idp.example/jwks", algorithms: ["HS256"] }, /auth\.oidc\.algorithms: "HS256" is not allowed/],
    [{ issuer: "https://idp.example/", audience: "a", jwks_url: "https://idp.example/jwks", algorithms: ["none"] }, /"none" is not allowed/],
    [{ issuer: "https://idp.example/", audience: "a", jwks_url: "http://idp.example/jwks" }, /jwks_url: must be an https:\/\/ URL/],
    [{ issuer: "https://idp.example/", jwks_url: "https://idp.example/jwks" }, /auth\.oidc\.audience: is required/],
    [{ issuer: "https://idp.example/", audience: "a" }, /auth\.oidc\.jwks_url: is required/],
    [{ audience: "a" }, /auth\.oidc\.issuer: is required/],
  ])("refuses to start with an unsafe or incomplete auth.oidc (%#)", async (oidc, problem) => {
    const { file, dir } = await writeConfig({ upstreamUrl: upstream.url, patch: (c: TestConfig) => void (c.auth = { oidc }) });
    try {
      expect(() => loadSettings(file)).toThrow(problem);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("admin keys", () => {
  let upstream: FakeUpstream;
  // Not silent: these gateways' lines go to the log-leak check like any other's.
  const quiet = () => pino({ level: "info" }, new LogCapture());

  beforeAll(async () => {
    upstream = await startFakeUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it("accepts keys configured as sha256 hashes, plaintext, and in a file", async () => {
    const plain = "operator-key-0123456789-abcdefghijklmnop";
    const hashed = "hashed-operator-key-0123456789-abcdefghij";
    const hash = createHash("sha256").update(hashed).digest("hex");
    const fromFile = "key-from-a-secret-file-0123456789-abcdef";
    const keyFile = path.join(await mkdtemp(path.join(os.tmpdir(), "patgate-keys-")), "admin-keys");
    await writeFile(keyFile, `# operators\n\nsha256:${createHash("sha256").update(fromFile).digest("hex")}\n`);
    const gw = await startGateway({
      upstreamUrl: upstream.url,
      adminKey: null,
      patch: (c) => void (c.auth = { admin_keys: `${plain}, sha256:${hash.toUpperCase()}`, admin_keys_file: keyFile }),
    });
    try {
      expect(gw.printedAdminKeys).toEqual([]);
      const client = new AdminClient(gw.url, plain);
      expect((await client.get("/roles")).status).toBe(200);
      expect((await client.get("/roles", { auth: hashed })).status).toBe(200);
      expect((await client.get("/roles", { auth: fromFile })).status).toBe(200);
      expect((await client.get("/roles", { auth: `sha256:${hash}` })).status).toBe(401);
    } finally {
      await gw.close();
      await rm(path.dirname(keyFile), { recursive: true, force: true });
    }
  });

  it("refuses to start with a short or malformed admin key, without echoing it", () => {
    const base = { upstreams: { default: { targets: ["http://127.0.0.1:1"] } } };
    for (const [keys, problem] of [
      ["tooshort", /at least 32 characters/],
      ["sha256:abc", /64 hex digits/],
      [["with space in it and long enough to pass 32"], /printable ASCII without spaces/],
    ] as const) {
      let err: unknown;
      try {
        parseSettings({ ...base, auth: { admin_keys: keys } }, "/tmp/x.yaml");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(problem);
      expect((err as Error).message).not.toContain(Array.isArray(keys) ? keys[0] : keys);
    }
  });

  it("a first start with no key creates one, hands it out once and stores only its hash", async () => {
    const { file, dir } = await writeConfig({ upstreamUrl: upstream.url, adminKey: null });
    const printed: string[] = [];
    try {
      const app = await buildApp(loadSettings(file), { logger: quiet(), printAdminKey: (k) => printed.push(k) });
      const port = await app.listen(0, "127.0.0.1");
      expect(printed).toHaveLength(1);
      const key = printed[0] ?? "";
      expect(key).toMatch(/^pgadm_[A-Za-z0-9_-]{43}$/);
      const stored = await app.store.listAdminKeys();
      expect(stored.map((k) => k.hash)).toEqual([createHash("sha256").update(key).digest("hex")]);
      const client = new AdminClient(`http://127.0.0.1:${port}`, key);
      expect((await client.get("/roles")).status).toBe(200);
      await app.close();

      // A restart over the same store: no new key, the old one still works.
      const again = await buildApp(loadSettings(file), { logger: quiet(), printAdminKey: (k) => printed.push(k) });
      const port2 = await again.listen(0, "127.0.0.1");
      expect(printed).toHaveLength(1);
      expect((await new AdminClient(`http://127.0.0.1:${port2}`, key).get("/roles")).status).toBe(200);
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a store that is down at the first start delays the key, it does not stop the gateway", async () => {
    const redis = await startRedis();
    const printed: string[] = [];
    const { file, dir } = await writeConfig({ upstreamUrl: upstream.url, adminKey: null, redisUrl: redis.url, keyPrefix: redis.keyPrefix });
    try {
      if (redis.external) return;
      await redis.kill();
      const app = await buildApp(loadSettings(file), { logger: quiet(), printAdminKey: (k) => printed.push(k) });
      try {
        expect(printed).toEqual([]);
        await redis.restart();
        const deadline = Date.now() + 10_000;
        while (printed.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(printed).toHaveLength(1);
        expect((await app.store.listAdminKeys()).map((k) => k.hash)).toEqual([createHash("sha256").update(printed[0] ?? "").digest("hex")]);
      } finally {
        await app.close();
      }
    } finally {
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("configured keys replace the first-start key", async () => {
    const { file, dir } = await writeConfig({ upstreamUrl: upstream.url, adminKey: null });
    const printed: string[] = [];
    try {
      const first = await buildApp(loadSettings(file), { logger: quiet(), printAdminKey: (k) => printed.push(k) });
      await first.close();
      const configured = "configured-operator-key-0123456789-abcdef";
      const { file: file2, dir: dir2 } = await writeConfig({ upstreamUrl: upstream.url, adminKey: configured, patch: (c) => void (c.store = { embedded_path: loadSettings(file).store.embeddedPath }) });
      const app = await buildApp(loadSettings(file2), { logger: quiet(), printAdminKey: (k) => printed.push(k) });
      const port = await app.listen(0, "127.0.0.1");
      const client = new AdminClient(`http://127.0.0.1:${port}`, configured);
      expect((await client.get("/roles")).status).toBe(200);
      expect((await client.get("/roles", { auth: printed[0] ?? "" })).status).toBe(401);
      expect(printed).toHaveLength(1);
      await app.close();
      await rm(dir2, { recursive: true, force: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
