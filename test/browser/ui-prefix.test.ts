// The web page behind an ingress that serves it under a multi-segment path
// prefix (/a/b/) and strips it before the gateway: every URL the page uses is
// relative, and ui.public_url (the one key) gives the OIDC redirect its prefix.
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import type { Browser } from "playwright-core";
import { launch, openContext, signInThroughIdp } from "../helpers/browser.ts";
import { startUiEnv, type UiEnv } from "../helpers/ui-env.ts";


// A real browser on a shared two-core machine: more room than the suite's 20 s default.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });
let env: UiEnv;
let browser: Browser;

beforeAll(async () => {
  [env, browser] = await Promise.all([startUiEnv({ prefix: "/a/b" }), launch()]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await env?.close();
});

it("signs in, creates a token and uses it, all under /a/b/", async () => {
  expect(env.base).toMatch(/\/a\/b$/);
  const w = await openContext(browser, env.origin);
  const paths: string[] = [];
  w.page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.origin === env.origin) paths.push(u.pathname);
  });
  await signInThroughIdp(w.page, env.base, "alice");
  await w.page.getByRole("button", { name: "Create your first token" }).click();
  const dialog = w.page.getByRole("dialog", { name: "Create a personal access token" });
  await dialog.getByLabel("Name").fill("behind-ingress");
  await dialog.getByLabel("Entity type").selectOption("models");
  await dialog.getByRole("radio", { name: "All models" }).check();
  await dialog.getByRole("checkbox", { name: /Chat completions/ }).check();
  await dialog.getByRole("button", { name: "Add", exact: true }).click();
  await dialog.getByRole("button", { name: "Create token" }).click();
  const once = w.page.getByRole("dialog", { name: "Copy your new token" });
  const token = await once.getByLabel("Token “behind-ingress”").inputValue();
  // The snippets point at the data plane under the same prefix.
  await once.getByText(`${env.base}/proxy/demo/v1/chat/completions`).waitFor();

  expect(paths.length).toBeGreaterThan(8);
  expect(paths.filter((p) => !p.startsWith("/a/b/"))).toEqual([]);
  expect(await w.cspViolations()).toEqual([]);

  const res = await fetch(`${env.base}/proxy/demo/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "llama3", messages: [{ role: "user", content: "hi" }] }),
  });
  expect(res.status).toBe(200);
  // The CSRF check compares against ui.public_url's origin, as the browser sees it.
  const page = await fetch(`${env.base}/ui/`);
  expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
  await w.context.close();
});
