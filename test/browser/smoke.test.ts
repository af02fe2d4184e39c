import { afterAll, beforeAll, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { launch, openContext, screenshot } from "../helpers/browser.ts";
import { startUiEnv, type UiEnv } from "../helpers/ui-env.ts";

let env: UiEnv;
let browser: Browser;
beforeAll(async () => {
  env = await startUiEnv();
  browser = await launch();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await env?.close();
});

it("smoke", async () => {
  const { page, cspViolations } = await openContext(browser, env.origin);
  const logs: string[] = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("response", (r) => { if (r.status() >= 400) logs.push(`${r.status()} ${r.url()}`); });
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`${env.base}/ui/`);
  await page.getByRole("link", { name: "Sign in with your identity provider" }).click();
  await page.getByLabel("User name").fill("alice");
  await page.getByLabel("Password").fill("alice");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Personal Access Tokens" }).waitFor({ timeout: 10000 }).catch(() => undefined);
  await screenshot(page, "smoke-list");
  console.log(logs.join("\n"), await cspViolations(), page.url());
  expect(true).toBe(true);
}, 60_000);
