// The web page in a real browser (Debian's Chromium, headless) against a real
// gateway, the dev OpenID provider and the fake upstream: the seed's flow from
// sign-in to revoke, rotate, what the scope picker offers, the operator's
// revoke with a reason, sign-out, CSRF, CSP and accessibility. The tests run in
// order and share one browser; each actor has its own context (cookies).
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Browser, Locator, Page } from "playwright-core";
import { launch, openContext, screenshot, seriousA11yIssues, type Watched } from "../helpers/browser.ts";
import { startUiEnv, type UiEnv } from "../helpers/ui-env.ts";


// A real browser on a shared two-core machine: more room than the suite's 20 s default.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });
let env: UiEnv;
let browser: Browser;
let alice: Watched;
let token = "";

const NARROW = { width: 390, height: 844 };
const WIDE = { width: 1280, height: 900 };

beforeAll(async () => {
  [env, browser] = await Promise.all([startUiEnv(), launch()]);
  alice = await openContext(browser, env.origin);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await env?.close();
});

/** One chat completion through the data plane with `bearer`. */
async function chat(bearer: string, model: string): Promise<{ status: number; code: string | null }> {
  const res = await fetch(`${env.base}/proxy/demo/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  });
  const body = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: body.error?.code ?? null };
}

/** Both widths, same page: `name-1280.png` and `name-390.png`. */
async function shots(page: Page, name: string): Promise<void> {
  await screenshot(page, `${name}-1280`);
  await page.setViewportSize(NARROW);
  await screenshot(page, `${name}-390`);
  await page.setViewportSize(WIDE);
}

/** The value attributes of every element the locator finds. */
async function values(l: Locator): Promise<string[]> {
  return Promise.all((await l.all()).map(async (e) => (await e.getAttribute("value")) ?? ""));
}

async function expectCleanPage(w: Watched): Promise<void> {
  expect(await w.cspViolations()).toEqual([]);
  expect(await seriousA11yIssues(w.page)).toEqual([]);
}

describe("web page: the seed's flow", () => {
  it("signs a user in through the OpenID provider (code + PKCE) and shows the empty list", async () => {
    const page = alice.page;
    await page.goto(`${env.base}/ui/`);
    await page.getByRole("link", { name: "Sign in with your identity provider" }).waitFor();
    await expectCleanPage(alice);
    await shots(page, "signin");
    const authorize = page.waitForRequest((r) => r.url().startsWith(`${env.idp.issuer}/auth`));
    await page.getByRole("link", { name: "Sign in with your identity provider" }).click();
    const q = new URL((await authorize).url()).searchParams;
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("state")).toMatch(/.{20,}/);
    expect(q.get("nonce")).toMatch(/.{20,}/);
    await page.getByLabel("User name").fill("alice");
    await page.getByLabel("Password").fill("alice");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "No tokens yet" }).waitFor();
    const cookies = await alice.context.cookies(env.base);
    const session = cookies.find((c) => c.name === "__Host-patgate_session");
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict", path: "/" });
    expect(cookies.some((c) => c.name.includes("login"))).toBe(false);
    // Nothing of the session lives in the page's storage.
    expect(await page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")).toEqual([0, 0, ""]);
    await expectCleanPage(alice);
    await shots(page, "list-empty");
  });

  it("creates a PAT with a model scope picked in the dialog, shows it once, and copies it", async () => {
    const page = alice.page;
    await page.getByRole("button", { name: "Create your first token" }).click();
    const dialog = page.getByRole("dialog", { name: "Create a personal access token" });
    await dialog.getByLabel("Name").fill("laptop");
    await expect.poll(() => dialog.getByText("Available.").count()).toBe(1);
    await dialog.getByLabel("Entity type").selectOption("models");
    // The upstream's models, plus "all".
    await dialog.getByRole("radio", { name: "llama3" }).check();
    await expect.poll(() => dialog.getByRole("radio", { name: "mistral" }).count()).toBe(1);
    await dialog.getByRole("checkbox", { name: /Chat completions/ }).check();
    await expectCleanPage(alice);
    await shots(page, "create-picker");
    await dialog.getByRole("button", { name: "Add", exact: true }).click();
    await dialog.getByText("Chat completions — model llama3 in demo").first().waitFor();
    await dialog.getByRole("region", { name: "Summary" }).waitFor();
    await shots(page, "create-dialog");
    await dialog.getByRole("button", { name: "Create token" }).click();

    const once = page.getByRole("dialog", { name: "Copy your new token" });
    await once.waitFor();
    const shown = await once.getByLabel("Token “laptop”").inputValue();
    expect(shown).toMatch(/^pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{49}$/);
    await once.getByRole("button", { name: "Copy" }).click();
    await once.getByText("Copied to the clipboard.").waitFor();
    token = String(await page.evaluate("navigator.clipboard.readText()"));
    expect(token).toBe(shown);
    // Page memory only: not in storage, the URL or the history.
    expect(await page.evaluate("[localStorage.length, sessionStorage.length, location.href.includes('pat_')]")).toEqual([0, 0, false]);
    await expectCleanPage(alice);
    await shots(page, "copy-once");
  });

  it("lets that token chat with the scoped model (200) and no other (403)", async () => {
    expect(await chat(token, "llama3")).toEqual({ status: 200, code: null });
    expect(await chat(token, "mistral")).toEqual({ status: 403, code: "insufficient_scope" });
  });

  it("asks before closing the token dialog, then lists the token", async () => {
    const page = alice.page;
    const once = page.getByRole("dialog", { name: "Copy your new token" });
    await page.keyboard.press("Escape");
    await once.getByText("You will not see this token again.").waitFor();
    await once.getByRole("button", { name: "Close, I have saved it" }).click();
    await once.waitFor({ state: "detached" });
    const row = page.getByRole("row", { name: /laptop/ });
    await row.getByText("Active").waitFor();
    await row.getByText("never").waitFor();
    await expectCleanPage(alice);
    await shots(page, "list");
  });

  it("revokes it with a confirmation that names it, and the same call then gets 401", async () => {
    const page = alice.page;
    await page.getByRole("button", { name: "Revoke laptop" }).click();
    const confirm = page.getByRole("alertdialog", { name: "Revoke “laptop”?" });
    await confirm.getByText("Last used").waitFor();
    await expectCleanPage(alice);
    await shots(page, "revoke-confirm");
    await confirm.getByRole("button", { name: "Revoke token" }).click();
    await confirm.waitFor({ state: "detached" });
    expect(await chat(token, "llama3")).toEqual({ status: 401, code: "revoked_token" });
    // Revoked tokens are behind "show inactive".
    await page.getByLabel("Show inactive (1)").check();
    await page.getByRole("row", { name: /laptop/ }).getByText("Revoked").waitFor();
  });
});

describe("web page: rotate, the picker's limits", () => {
  let patId = "";
  let current = "";

  it("rotates: the new secret is shown once and the old one stops working", async () => {
    const page = alice.page;
    const created = (await page.evaluate(async () => {
      const r = await fetch("../pats", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "ci", duration: "30d", scopes: [{ domain_id: "demo", entity_type: "models", entity_id: "*", operation: "llm_chat_completions" }] }) });
      return r.json();
    })) as { id: string; token: string };
    patId = created.id;
    expect(await chat(created.token, "llama3")).toMatchObject({ status: 200 });
    await page.goto(`${env.base}/ui/#/tokens/${patId}`);
    await page.getByRole("heading", { name: /ci/, level: 1 }).waitFor();
    await page.getByRole("button", { name: "Rotate" }).click();
    const dialog = page.getByRole("dialog", { name: "Rotate “ci”" });
    await dialog.getByLabel("7 days").check();
    await dialog.getByRole("button", { name: "Rotate secret" }).click();
    const once = page.getByRole("dialog", { name: "Copy the new secret" });
    const fresh = await once.getByLabel("Token “ci”").inputValue();
    expect(fresh).not.toBe(created.token);
    expect(await chat(created.token, "llama3")).toMatchObject({ status: 401 });
    expect(await chat(fresh, "llama3")).toMatchObject({ status: 200 });
    current = fresh;
    await once.getByRole("button", { name: "Done" }).click();
    await once.getByRole("button", { name: "Close, I have saved it" }).click();
    await expectCleanPage(alice);
    await shots(page, "token-page");
  });

  it("rotates with a grace period: the old secret keeps working until it ends", async () => {
    const page = alice.page;
    const before = (await page.evaluate(async (id) => (await fetch(`../pats/${id}`)).json(), patId)) as { previous_secret_expires_at: string | null };
    expect(before.previous_secret_expires_at).toBeNull();
    await page.getByRole("button", { name: "Rotate" }).click();
    const dialog = page.getByRole("dialog", { name: "Rotate “ci”" });
    await dialog.getByLabel("Keep the old secret working for").selectOption("1h");
    await dialog.getByRole("button", { name: "Rotate secret" }).click();
    const once = page.getByRole("dialog", { name: "Copy the new secret" });
    await once.getByRole("button", { name: "Copy" }).click();
    const newest = String(await page.evaluate("navigator.clipboard.readText()"));
    await once.getByRole("button", { name: "Done" }).click();
    await once.getByRole("button", { name: "Close, I have saved it" }).click();
    await page.getByText("Previous secret").waitFor();
    expect(newest).not.toBe(current);
    expect(await chat(newest, "llama3")).toMatchObject({ status: 200 });
    // Within the grace the previous secret still works…
    expect(await chat(current, "llama3")).toMatchObject({ status: 200 });
    // …and once a grace has passed it stops (a 1 s grace through the same API the page calls).
    const again = (await page.evaluate(async (id) => (await fetch(`../pats/${id}/secret/reset`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ duration: "7d", grace_period: "1s" }) })).json(), patId)) as { token: string };
    expect(await chat(newest, "llama3")).toMatchObject({ status: 200 });
    await new Promise((r) => setTimeout(r, 1300));
    expect(await chat(newest, "llama3")).toMatchObject({ status: 401 });
    expect(await chat(again.token, "llama3")).toMatchObject({ status: 200 });
  });

  it("offers only the entities and operations the user holds; a hand-made call for more is refused", async () => {
    const page = alice.page;
    await page.getByRole("button", { name: "Add scope" }).click();
    // alice is a developer in demo only: bob's domain is not offered.
    const domains = await page.getByLabel("Domain", { exact: true }).locator("option").allTextContents();
    expect(domains).toEqual(["demo"]);
    await page.getByLabel("Entity type").selectOption("models");
    await page.getByRole("checkbox", { name: /Chat completions/ }).waitFor();
    const ops = await values(page.getByRole("group", { name: "Operations" }).getByRole("checkbox"));
    expect(ops).toContain("llm_chat_completions");
    expect(ops).not.toContain("llm_create");
    expect(ops).not.toContain("llm_delete");
    await page.getByLabel("Entity type").selectOption("datasets");
    await page.getByRole("radio", { name: "sales-2025" }).waitFor();
    const dsOps = await values(page.getByRole("group", { name: "Operations" }).getByRole("checkbox"));
    expect(dsOps).toEqual(["read"]);
    const refused = await page.evaluate(async (id) => {
      const r = await fetch(`../pats/${id}/scope/add`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes: [{ domain_id: "demo", entity_type: "models", entity_id: "llama3", operation: "llm_delete" }] }) });
      return { status: r.status, code: ((await r.json()) as { error: { code: string } }).error.code };
    }, patId);
    expect(refused).toEqual({ status: 403, code: "scope_not_held" });
    const otherDomain = await page.evaluate(async () => {
      const r = await fetch("../me/grantable?domain=other&entity_type=models");
      return r.status;
    });
    expect(otherDomain).toBe(404);
    await page.getByRole("button", { name: "Cancel" }).click();
  });
});

describe("web page: operators", () => {
  it("signs in with an admin key, sees another user's PAT, revokes it with a reason, and the audit line has it", async () => {
    const op = await openContext(browser, env.origin);
    const page = op.page;
    await page.goto(`${env.base}/ui/`);
    await page.getByRole("button", { name: "Operator? Sign in with an admin key" }).click();
    await page.getByLabel("Admin key").fill(env.gw.adminKey ?? "");
    await page.getByRole("button", { name: "Sign in as operator" }).click();
    await page.getByRole("heading", { name: "All tokens" }).waitFor();
    // The key is not kept by the browser: only the session cookie.
    expect(await page.evaluate("[localStorage.length, sessionStorage.length]")).toEqual([0, 0]);
    const row = page.getByRole("row", { name: /alice.*ci/ });
    await row.waitFor();
    await expectCleanPage(op);
    await shots(page, "operator-list");
    await row.getByRole("button", { name: "Revoke ci of alice" }).click();
    const confirm = page.getByRole("alertdialog", { name: "Revoke “ci”?" });
    await confirm.getByLabel(/Reason/).fill("laptop lost");
    await shots(page, "operator-revoke");
    await confirm.getByRole("button", { name: "Revoke token" }).click();
    await confirm.waitFor({ state: "detached" });
    await expect.poll(() => env.gw.logs.records().filter((r) => r.audit === "pat.revoke" && r.reason === "laptop lost").length).toBe(1);
    const line = env.gw.logs.records().find((r) => r.audit === "pat.revoke" && r.reason === "laptop lost");
    expect(line?.actor).toMatch(/^admin:/);
    expect(line?.user_id).toBe("alice");

    await page.getByRole("link", { name: "Domains" }).click();
    await page.getByRole("heading", { name: "Domains and members" }).waitFor();
    await page.getByRole("button", { name: "Members" }).first().click();
    await page.getByRole("cell", { name: "alice", exact: true }).waitFor();
    await expectCleanPage(op);
    await shots(page, "operator-domains");
    await page.getByRole("link", { name: "Roles" }).click();
    await page.getByRole("cell", { name: "developer", exact: true }).first().waitFor();
    await expectCleanPage(op);
    await shots(page, "operator-roles");
    await op.context.close();
  });

  it("signs carol in through the identity provider as an operator: her groups claim holds patgate-operators", async () => {
    const op = await openContext(browser, env.origin);
    const page = op.page;
    await page.goto(`${env.base}/ui/`);
    await page.getByRole("link", { name: "Sign in with your identity provider" }).click();
    await page.getByLabel("User name").fill("carol");
    await page.getByLabel("Password").fill("carol");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "All tokens" }).waitFor();
    await page.getByRole("row", { name: /alice.*ci/ }).waitFor();
    await page.getByRole("button", { name: /Carol Example/ }).click();
    await page.getByRole("menu", { name: "Profile" }).getByText("Operator, by your identity provider").waitFor();
    await expectCleanPage(op);
    await shots(page, "operator-oidc-menu");
    const status = await page.evaluate(async () => (await fetch("../admin/pats?user_id=alice")).status);
    expect(status).toBe(200);
    const line = env.gw.logs.records().find((r) => r.audit === "ui.sign_in" && r.actor === "operator:carol");
    expect(line).toMatchObject({ via: "oidc", operator_claim: "groups=patgate-operators" });
    await op.context.close();
  });
});

describe("web page: sessions", () => {
  it("refuses a cross-origin POST that carries the session cookie", async () => {
    const cookie = (await alice.context.cookies(env.base)).find((c) => c.name === "__Host-patgate_session");
    const body = JSON.stringify({ name: "csrf", duration: "1d", scopes: [{ domain_id: "demo", entity_type: "models", entity_id: "*", operation: "llm_chat_completions" }] });
    const headers = { cookie: `${cookie?.name}=${cookie?.value}`, "content-type": "application/json" };
    const fromElsewhere = await fetch(`${env.base}/pats`, { method: "POST", headers: { ...headers, origin: "http://evil.example" }, body });
    expect(fromElsewhere.status).toBe(403);
    expect(((await fromElsewhere.json()) as { error: { code: string } }).error.code).toBe("cross_origin_refused");
    const sameSite = await fetch(`${env.base}/pats`, { method: "POST", headers: { ...headers, "sec-fetch-site": "same-site" }, body });
    expect(sameSite.status).toBe(403);
    // The cookie is no credential on the data plane.
    const proxied = await fetch(`${env.base}/proxy/demo/v1/models`, { headers: { cookie: headers.cookie } });
    expect(proxied.status).toBe(401);
    // …and a PAT is none for the UI or the management API.
    const patLogin = await fetch(`${env.base}/ui/auth/admin-key`, { method: "POST", headers: { "content-type": "application/json", origin: env.origin }, body: JSON.stringify({ key: token }) });
    expect(((await patLogin.json()) as { error: { code: string } }).error.code).toBe("pat_not_accepted");
  });

  it("refuses a POST a page on another origin makes with the user's cookie (the browser sends it: same site, other port)", async () => {
    const evil = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><title>elsewhere</title><script>
        fetch(${JSON.stringify(`${env.base}/pats`)}, { method: "POST", mode: "no-cors", credentials: "include", headers: { "content-type": "text/plain" },
          body: JSON.stringify({ name: "planted", duration: "1d", scopes: [{ domain_id: "demo", entity_type: "models", entity_id: "*", operation: "llm_chat_completions" }] }) })
          .finally(() => { document.title = "sent"; });
      </script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, "127.0.0.1", () => resolve()));
    try {
      const page = await alice.context.newPage();
      await page.goto(`http://127.0.0.1:${(evil.address() as { port: number }).port}/`);
      await expect.poll(() => page.title()).toBe("sent");
      await page.close();
      await expect.poll(() => env.gw.logs.records().filter((r) => r.msg === "admin" && r.reason === "cross_origin_refused" && r.method === "POST").length).toBeGreaterThan(0);
      const names = (await env.gw.store.listPatsByUser("alice")).map((p) => p.name);
      expect(names).not.toContain("planted");
    } finally {
      evil.close();
    }
  });

  it("sign-out deletes the session on the server: the old cookie gets 401", async () => {
    const page = alice.page;
    const cookie = (await alice.context.cookies(env.base)).find((c) => c.name === "__Host-patgate_session");
    const header = `${cookie?.name}=${cookie?.value}`;
    expect((await fetch(`${env.base}/me`, { headers: { cookie: header } })).status).toBe(200);
    await page.goto(`${env.base}/ui/`);
    await page.getByRole("button", { name: /Alice Example/ }).click();
    await page.getByRole("menuitem", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    const after = await fetch(`${env.base}/me`, { headers: { cookie: header } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { code: string } }).error.code).toBe("session_invalid");
  });
});

// Last: it leaves this machine's address throttled for a minute.
describe("web page: the admin-key form's limit", () => {
  it("shows the 429's message next to the field once too many wrong keys were tried", async () => {
    const w = await openContext(browser, env.origin);
    const page = w.page;
    await page.goto(`${env.base}/ui/`);
    await page.getByRole("button", { name: "Operator? Sign in with an admin key" }).click();
    const field = page.getByLabel("Admin key");
    const submit = page.getByRole("button", { name: "Sign in as operator" });
    const error = page.locator("#admin-key-error");
    // 5 failures per address (the PAT tried above was one): wrong keys until the form says so.
    let text = "";
    for (let i = 0; i < 6 && !text.startsWith("Too many"); i++) {
      await field.fill(`pgadm_wrong_${i}_${"x".repeat(30)}`);
      await submit.click();
      await submit.waitFor(); // named so again once the answer is in
      text = (await error.textContent()) ?? "";
      if (!text.startsWith("Too many")) expect(text).toBe("That is not an admin key of this gateway.");
    }
    expect(text).toMatch(/^Too many failed sign-ins from your address\. Try again in \d+ seconds\.$/);
    await expect.poll(() => env.gw.logs.records().filter((r) => r.audit === "ui.sign_in_throttled").length).toBe(1);
    await expectCleanPage(w);
    await shots(page, "signin-throttled");
    await w.context.close();
  });
});
