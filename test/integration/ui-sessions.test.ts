// The web page's server side without a browser: its headers, files, the
// admin-key sign-in, session cookies (attributes, rotation, idle and absolute
// lifetimes, sign-out), the CSRF check, and what the cookie is not.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startGateway({ upstreamUrl: upstream.url, patch: (cfg) => (cfg.ui = { session_idle: "1s", session_max: "3s" }) });
});
afterAll(async () => {
  await gw.close();
  await upstream.close();
});

/** Signs in with the admin key; the session cookie as `name=value`. */
async function signIn(cookie?: string): Promise<{ res: Response; cookie: string }> {
  const headers: Record<string, string> = { "content-type": "application/json", origin: gw.url };
  if (cookie !== undefined) headers.cookie = cookie;
  const res = await fetch(`${gw.url}/ui/auth/admin-key`, { method: "POST", headers, body: JSON.stringify({ key: gw.adminKey }) });
  const set = res.headers.getSetCookie().find((c) => c.includes("patgate_session=") && !c.includes("Max-Age=0")) ?? "";
  return { res, cookie: set.split(";")[0] ?? "" };
}

const me = (cookie: string, extra: Record<string, string> = {}): Promise<Response> => fetch(`${gw.url}/me`, { headers: { cookie, ...extra } });
const code = async (r: Response): Promise<string> => ((await r.json()) as { error: { code: string } }).error.code;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("the page's files", () => {
  it("serves the page with a strict CSP and no caching of the page itself", async () => {
    const res = await fetch(`${gw.url}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const html = await res.text();
    // Relative URLs only, and nothing inline for the CSP to allow.
    expect(html).not.toMatch(/(src|href)="\/|https?:\/\/|<script>|style=/);
  });

  it("serves the modules with ETags, the vendor modules with their bare import resolved", async () => {
    const hooks = await fetch(`${gw.url}/ui/vendor/hooks.js`);
    expect(hooks.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const text = await hooks.text();
    expect(text).toContain('from"./preact.js"');
    expect(text).not.toMatch(/from\s*["']preact["']/);
    const etag = hooks.headers.get("etag") ?? "";
    const again = await fetch(`${gw.url}/ui/vendor/hooks.js`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect((await fetch(`${gw.url}/ui/assets/nope.js`)).status).toBe(404);
    expect((await fetch(`${gw.url}/ui/tsconfig.json`)).status).toBe(404);
    const bare = await fetch(`${gw.url}/ui`, { redirect: "manual" });
    expect([bare.status, bare.headers.get("location")]).toEqual([308, "ui/"]);
  });
});

describe("sessions", () => {
  it("exchanges the admin key once for an opaque __Host- cookie and refuses anything else", async () => {
    const { res, cookie } = await signIn();
    expect(res.status).toBe(204);
    const set = res.headers.getSetCookie().join("\n");
    expect(set).toMatch(/__Host-patgate_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Secure; Max-Age=3/);
    expect(set).not.toContain(gw.adminKey ?? "-");
    const r = await me(cookie);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { kind: string }).kind).toBe("operator");

    const wrong = await fetch(`${gw.url}/ui/auth/admin-key`, { method: "POST", headers: { "content-type": "application/json", origin: gw.url }, body: JSON.stringify({ key: "pgadm_not-the-key-0000000000000000000000" }) });
    expect([wrong.status, await code(wrong)]).toEqual([400, "login_failed"]);
    const elsewhere = await fetch(`${gw.url}/ui/auth/admin-key`, { method: "POST", headers: { "content-type": "application/json", origin: "http://evil.example" }, body: JSON.stringify({ key: gw.adminKey }) });
    expect([elsewhere.status, await code(elsewhere)]).toEqual([403, "cross_origin_refused"]);
  });

  it("rotates the id at sign-in: the browser's previous session ends", async () => {
    const first = await signIn();
    const second = await signIn(first.cookie);
    expect(second.cookie).not.toBe(first.cookie);
    expect((await me(second.cookie)).status).toBe(200);
    const old = await me(first.cookie);
    expect([old.status, await code(old)]).toEqual([401, "session_invalid"]);
  });

  it("ends a session left idle, and any session at its absolute lifetime", async () => {
    const idle = await signIn();
    await sleep(1200);
    expect((await me(idle.cookie)).status).toBe(401);
    const busy = await signIn();
    const until = Date.now() + 3300;
    let last = 200;
    // Used every 300 ms it never idles out, but it still ends after 3 s.
    while (Date.now() < until) {
      last = (await me(busy.cookie)).status;
      if (last !== 200) break;
      await sleep(300);
    }
    expect(last).toBe(401);
    expect(Date.now()).toBeGreaterThan(until - 700);
  });

  it("sign-out deletes the session server-side", async () => {
    const { cookie } = await signIn();
    const out = await fetch(`${gw.url}/ui/auth/logout`, { method: "POST", headers: { cookie, "sec-fetch-site": "same-origin" } });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie().join()).toContain("Max-Age=0");
    expect((await me(cookie)).status).toBe(401);
  });

  it("checks the origin of cookie-authenticated changes, not of reads", async () => {
    const { cookie } = await signIn();
    const body = JSON.stringify({ id: "csrf-test" });
    const post = (h: Record<string, string>): Promise<Response> => fetch(`${gw.url}/domains`, { method: "POST", headers: { cookie, "content-type": "application/json", ...h }, body });
    expect(await code(await post({}))).toBe("cross_origin_refused");
    expect(await code(await post({ origin: "http://evil.example" }))).toBe("cross_origin_refused");
    expect(await code(await post({ "sec-fetch-site": "cross-site", origin: gw.url }))).toBe("cross_origin_refused");
    expect((await post({ "sec-fetch-site": "same-origin" })).status).toBe(201);
    expect((await me(cookie, { "sec-fetch-site": "cross-site" })).status).toBe(200);
  });

  it("is no credential on the data plane, never reaches the upstream, and loses to a bearer credential", async () => {
    const { cookie } = await signIn();
    const proxied = await fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { cookie } });
    expect([proxied.status, await code(proxied)]).toEqual([401, "missing_token"]);
    const { token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "*", operation: "llm_chat_completions" }] });
    const seen = upstream.requests.length;
    const chat = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { cookie, authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "llama3", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(chat.status).toBe(200);
    expect(upstream.requests.slice(seen).map((r) => r.headers.cookie)).toEqual([undefined]);
    const withPat = await me(cookie, { authorization: `Bearer ${token}` });
    expect([withPat.status, await code(withPat)]).toEqual([401, "pat_not_accepted"]);
  });

  it("uses a cookie without Secure (and without the __Host- prefix) only for plain http to a host that is not loopback", async () => {
    // fetch() will not send another Host: a plain request does, as a browser on the LAN would.
    const body = JSON.stringify({ key: gw.adminKey });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${gw.url}/ui/auth/admin-key`, { method: "POST", headers: { "content-type": "application/json", host: "gw.lan:8080", origin: "http://gw.lan:8080", "content-length": Buffer.byteLength(body) } }, resolve);
      req.on("error", reject);
      req.end(body);
    });
    res.resume();
    expect(res.statusCode).toBe(204);
    const set = (res.headers["set-cookie"] ?? []).join("\n");
    expect(set).toMatch(/^patgate_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3$/m);
  });

  it("sends a sign-in the browser did not start back to the page with an error", async () => {
    const res = await fetch(`${gw.url}/ui/auth/callback?code=x&state=y`, { redirect: "manual" });
    expect([res.status, res.headers.get("location")]).toEqual([303, "../?login_error=login_failed"]);
    const state = (await (await fetch(`${gw.url}/ui/auth/session`)).json()) as { signed_in: boolean; oidc: boolean };
    expect(state).toEqual({ signed_in: false, oidc: false });
  });
});

describe("ui.enabled: false", () => {
  it("leaves /ui/ to the management API's 404", async () => {
    const off = await startGateway({ upstreamUrl: upstream.url, patch: (cfg) => (cfg.ui = { enabled: false }) });
    try {
      const res = await fetch(`${off.url}/ui/`);
      expect([res.status, await code(res)]).toEqual([404, "no_route"]);
      const login = await fetch(`${off.url}/ui/auth/admin-key`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: off.adminKey }) });
      expect(login.status).toBe(404);
    } finally {
      await off.close();
    }
  });
});
