/**
 * Debian's Chromium driven by playwright-core for the web page's tests: one
 * browser per test file, headless, no network beyond the page's own origin.
 * Playwright gives each launch a fresh, temporary user-data-dir.
 */
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { ROOT } from "./gateway.ts";

export const CHROMIUM = "/usr/bin/chromium";
/** Where the tests write their screenshots (git-ignored; the README names it). */
export const SCREENSHOTS = path.join(ROOT, "test-results", "ui-screenshots");

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Violations of the page's CSP and console errors, collected per context. */
export interface Watched {
  readonly context: BrowserContext;
  readonly page: Page;
  /** CSP violations seen by the page (securitypolicyviolation events), across navigations. */
  cspViolations(): Promise<string[]>;
}

/** A fresh context (own cookies) with a page that records CSP violations; clipboard allowed for `origin`. */
export async function openContext(browser: Browser, origin: string, viewport = { width: 1280, height: 900 }): Promise<Watched> {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "Europe/Berlin" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const violations: string[] = [];
  await context.exposeBinding("__cspViolation", (_src, text: string) => {
    violations.push(text);
  });
  // Runs in the page, before its own scripts (a string: this file is typed for Node, not the DOM).
  await context.addInitScript(
    'document.addEventListener("securitypolicyviolation", (e) => { void window.__cspViolation(e.violatedDirective + " " + e.blockedURI + " at " + e.sourceFile + ":" + e.lineNumber); });',
  );
  const page = await context.newPage();
  // A wait that fails says what it waited for, well before the test's own timeout.
  page.setDefaultTimeout(15_000);
  return { context, page, cspViolations: () => Promise.resolve([...violations]) };
}

let axeSource: string | null = null;

/** axe-core run in the page (evaluated, not injected as a script tag, so the page's CSP stays on): its serious and critical violations. */
export async function seriousA11yIssues(page: Page): Promise<string[]> {
  axeSource ??= await readFile(path.join(ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8");
  const result: Array<{ id: string; impact: string; help: string; nodes: string[] }> = await page.evaluate(`(async () => { ${axeSource}; const r = await axe.run(document, { resultTypes: ["violations"] }); return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) })); })()`);
  return result.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.join(", ")})`);
}

/** A full-page PNG under SCREENSHOTS. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Signs `user` in through the dev OpenID provider (its password is the user name), from the page at `base`/ui/. */
export async function signInThroughIdp(page: Page, base: string, user: string): Promise<void> {
  await page.goto(`${base}/ui/`);
  await page.getByRole("link", { name: "Sign in with your identity provider" }).click();
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Personal Access Tokens", level: 1 }).waitFor();
}
