// The web page's limits and usage in a real browser against a real gateway:
// a PAT created with its own limits through the Create form (a looser-than-
// policy value refused next to its field), real requests through the data
// plane whose usage the fake upstream reports, the meter flushed on a short
// interval, and the usage view's numbers compared with what the upstream
// reported. A user sees only their own tokens' usage; an operator everyone's.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Browser, Locator, Page } from "playwright-core";
import { launch, openContext, screenshot, seriousA11yIssues, signInThroughIdp, type Watched } from "../helpers/browser.ts";
import { ensureMember } from "../helpers/gateway.ts";
import { startUiEnv, type UiEnv } from "../helpers/ui-env.ts";

// A real browser on a shared two-core machine: more room than the suite's 20 s default.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });
let env: UiEnv;
let browser: Browser;
let alice: Watched;
let bob: Watched;

const NARROW = { width: 390, height: 844 };
const WIDE = { width: 1280, height: 900 };
const MODELS_CHAT = (domain: string) => [{ domain_id: domain, entity_type: "models", entity_id: "*", operation: "llm_chat_completions" }];

beforeAll(async () => {
  [env, browser] = await Promise.all([
    startUiEnv({
      configure: (cfg) => {
        cfg["limits"] = { policies: [{ name: "per-pat", subject: "pat", requests_per_minute: 100, tokens_per_day: 1_000_000 }] };
        cfg["usage"] = { flush_interval: "1s" };
      },
    }),
    launch(),
  ]);
  // alice works in two domains, so the per-domain view has two rows.
  await ensureMember(env.gw.store, "lab", "alice", "developer");
  [alice, bob] = await Promise.all([openContext(browser, env.origin), openContext(browser, env.origin)]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await env?.close();
});

interface Usage {
  requests: number;
  input: number;
  output: number;
  /** Of input + output: charged as reserved, for an answer without usage. */
  estimated: number;
}

const none = (): Usage => ({ requests: 0, input: 0, output: 0, estimated: 0 });

/** The body of every chat request here: 3 output tokens at most. */
function chatBody(model: string, stream: boolean): string {
  return JSON.stringify({ model, max_tokens: 3, messages: [{ role: "user", content: "hi" }], ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) });
}

async function post(bearer: string, domain: string, body: string): Promise<Response> {
  return fetch(`${env.base}/proxy/${domain}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" }, body });
}

/** A chat completion through the data plane; the usage the upstream reported (from the JSON, or the stream's usage chunk, asked for). */
async function chat(bearer: string, domain: string, model: string, stream = false): Promise<Usage> {
  const res = await post(bearer, domain, chatBody(model, stream));
  const text = await res.text();
  expect(res.status, text).toBe(200);
  let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
  if (!stream) usage = (JSON.parse(text) as { usage: typeof usage }).usage;
  else {
    for (const line of text.split("\n")) {
      if (!line.startsWith("data: {")) continue;
      const chunk = JSON.parse(line.slice(6)) as { usage?: typeof usage | null };
      if (chunk.usage) usage = chunk.usage;
    }
  }
  if (usage === undefined) throw new Error(`no usage in ${text}`);
  return { requests: 1, input: usage.prompt_tokens, output: usage.completion_tokens, estimated: 0 };
}

/** A chat completion whose answer reports no usage: the gateway charges what it reserved (body bytes ÷ 4, and max_tokens). */
async function chatWithoutUsage(bearer: string, domain: string): Promise<Usage> {
  env.upstream.route("POST", "/v1/chat/completions", (c) => c.send(200, { id: "x", object: "chat.completion", choices: [] }));
  try {
    const body = chatBody("llama3", false);
    const res = await post(bearer, domain, body);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const input = Math.ceil(body.length / 4);
    return { requests: 1, input, output: 3, estimated: input + 3 };
  } finally {
    env.upstream.resetRoutes();
  }
}

function plus(a: Usage, b: Usage): Usage {
  return { requests: a.requests + b.requests, input: a.input + b.input, output: a.output + b.output, estimated: a.estimated + b.estimated };
}

const pct = (part: number, whole: number): string => `${Math.round((100 * part) / whole)} %`;
const tokensOf = (u: Usage): number => u.input + u.output;

const fmt = (n: number): string => n.toLocaleString("en-US");

/** Both widths, same page: `name-1280.png` and `name-390.png`; `show` is scrolled into view first (inside a dialog, the shot is what the viewport shows). */
async function shots(page: Page, name: string, show?: Locator): Promise<void> {
  await show?.scrollIntoViewIfNeeded();
  await screenshot(page, `${name}-1280`);
  await page.setViewportSize(NARROW);
  await show?.scrollIntoViewIfNeeded();
  await screenshot(page, `${name}-390`);
  await page.setViewportSize(WIDE);
}

async function expectCleanPage(w: Watched): Promise<void> {
  expect(await w.cspViolations()).toEqual([]);
  expect(await seriousA11yIssues(w.page)).toEqual([]);
}

/** A usage table's row for one key (a PAT id, a domain, a model, a user). */
function usageRow(page: Page, key: string): Locator {
  return page.locator(`table.usage tr[data-key="${key}"]`);
}

/** Requests, input and output tokens as a usage row shows them. */
async function shown(row: Locator): Promise<{ requests: string; input: string; output: string }> {
  const cell = (label: string) => row.locator(`td[data-label="${label}"]`).innerText();
  return { requests: await cell("Requests"), input: await cell("Input tokens"), output: await cell("Output tokens") };
}

const asShown = (u: Usage) => ({ requests: fmt(u.requests), input: fmt(u.input), output: fmt(u.output) });

/** A token made through the management API with the page's session (what the Create form calls). */
async function apiCreate(page: Page, body: unknown): Promise<{ id: string; token: string }> {
  return (await page.evaluate(async (b) => (await fetch("../pats", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) })).json(), body)) as { id: string; token: string };
}

/** The requests GET /usage counts for the signed-in caller, summed over the last day. */
async function countedRequests(page: Page): Promise<number> {
  const start = Math.floor(Date.now() / 1000) - 86_400;
  const r = (await page.evaluate(async (s) => (await fetch(`../usage?start_time=${s}&bucket_width=1h&limit=168`)).json(), start)) as { data: { results: { num_model_requests: number }[] }[] };
  return r.data.flatMap((b) => b.results).reduce((a, x) => a + x.num_model_requests, 0);
}

describe("web page: limits and usage", () => {
  let ciId = "";
  let ciToken = "";
  let labId = "";
  let bobId = "";
  let ci = none();
  let lab = none();
  const byModel: Record<string, Usage> = { llama3: none(), mistral: none() };

  it("creates a PAT with its own limits; a value looser than policy is refused next to its field", async () => {
    const page = alice.page;
    await signInThroughIdp(page, env.base, "alice");
    await page.getByRole("button", { name: "Create your first token" }).click();
    const dialog = page.getByRole("dialog", { name: "Create a personal access token" });
    await dialog.getByLabel("Name").fill("ci-usage");
    await dialog.getByLabel("Domain", { exact: true }).selectOption("demo");
    await dialog.getByLabel("Entity type").selectOption("models");
    await dialog.getByRole("radio", { name: "All models" }).check();
    await dialog.getByRole("checkbox", { name: /Chat completions/ }).check();
    await dialog.getByRole("button", { name: "Add", exact: true }).click();
    // Collapsed until asked for.
    const rpm = dialog.getByLabel("Requests per minute");
    expect(await rpm.isVisible()).toBe(false);
    await dialog.getByText("Limits", { exact: true }).click();
    await rpm.fill("500");
    await dialog.getByLabel("Tokens per day").fill("5000");
    await dialog.getByRole("button", { name: "Create token" }).click();
    const error = dialog.locator("#pat-limits-requests_per_minute-error");
    await expect.poll(() => error.textContent()).toBe("At most 100: the gateway's policy “per-pat” allows 100 requests per minute, and a token's own limits can only be tighter.");
    expect(await rpm.getAttribute("aria-invalid")).toBe("true");
    expect(await env.gw.store.listPatsByUser("alice")).toEqual([]);
    // Text that is no number is caught before any call.
    await dialog.getByLabel("Concurrent requests").fill("two");
    await dialog.locator("#pat-limits-concurrent-error").getByText("Enter a whole number").waitFor();
    expect(await dialog.getByRole("button", { name: "Create token" }).isDisabled()).toBe(true);
    await expectCleanPage(alice);
    await shots(page, "usage-create-refused", dialog.locator("#pat-limits-concurrent"));

    await dialog.getByLabel("Concurrent requests").fill("");
    await rpm.fill("50");
    expect(await error.isVisible()).toBe(false);
    await dialog.getByRole("region", { name: "Summary" }).getByText("Its own limits: 50 requests/min · 5,000 tokens/day.").waitFor();
    await shots(page, "usage-create-limits", dialog.getByRole("region", { name: "Summary" }));
    await dialog.getByRole("button", { name: "Create token" }).click();
    const once = page.getByRole("dialog", { name: "Copy your new token" });
    ciToken = await once.getByLabel("Token “ci-usage”").inputValue();
    await page.keyboard.press("Escape");
    await once.getByRole("button", { name: "Close, I have saved it" }).click();
    const row = page.getByRole("row", { name: /ci-usage/ });
    await row.getByText("Limits: 50 requests/min · 5,000 tokens/day").waitFor();
    const stored = (await env.gw.store.listPatsByUser("alice"))[0];
    ciId = stored?.id ?? "";
    expect(stored?.limits).toEqual({ requestsPerMinute: 50, tokensPerDay: 5000 });
    await expectCleanPage(alice);
    await shots(page, "usage-list-limits");
  });

  it("sends real requests through the gateway, for alice in two domains and for bob", async () => {
    const labPat = await apiCreate(alice.page, { name: "lab-bot", duration: "7d", scopes: MODELS_CHAT("lab") });
    labId = labPat.id;
    for (let i = 0; i < 3; i++) {
      const u = await chat(ciToken, "demo", "llama3");
      ci = plus(ci, u);
      byModel.llama3 = plus(byModel.llama3 as Usage, u);
    }
    for (let i = 0; i < 2; i++) {
      const u = await chat(ciToken, "demo", "mistral", true);
      ci = plus(ci, u);
      byModel.mistral = plus(byModel.mistral as Usage, u);
    }
    for (let i = 0; i < 2; i++) lab = plus(lab, await chat(labPat.token, "lab", "llama3"));
    // The fake reports 12 prompt tokens, 7 completion tokens unstreamed and one per chunk (max_tokens 3) streamed.
    expect(ci).toEqual({ requests: 5, input: 60, output: 27, estimated: 0 });
    expect(lab).toEqual({ requests: 2, input: 24, output: 14, estimated: 0 });
    lab = plus(lab, await chatWithoutUsage(labPat.token, "lab"));

    await signInThroughIdp(bob.page, env.base, "bob");
    const bobPat = await apiCreate(bob.page, { name: "bob-secret-project", duration: "7d", scopes: MODELS_CHAT("other") });
    bobId = bobPat.id;
    await chat(bobPat.token, "other", "llama3");
    // The meter writes every second (usage.flush_interval: 1s).
    await expect.poll(() => countedRequests(alice.page), { timeout: 15_000 }).toBe(8);
    await expect.poll(() => countedRequests(bob.page), { timeout: 15_000 }).toBe(1);
  });

  it("shows usage per PAT equal to what the upstream reported, with each one's share", async () => {
    const page = alice.page;
    await page.getByRole("link", { name: "Usage", exact: true }).click();
    await page.getByRole("heading", { name: "Usage", level: 1 }).waitFor();
    await usageRow(page, ciId).waitFor();
    expect(await shown(usageRow(page, ciId))).toEqual(asShown(ci));
    expect(await shown(usageRow(page, labId))).toEqual(asShown(lab));
    expect(await usageRow(page, ciId).getByRole("link").innerText()).toBe("ci-usage");
    const total = plus(ci, lab);
    // Each one's share of all tokens, and how much of its own was estimated.
    expect(await usageRow(page, ciId).locator('td[data-label="Share of tokens"]').innerText()).toBe(pct(tokensOf(ci), tokensOf(total)));
    expect(await usageRow(page, labId).locator('td[data-label="Share of tokens"]').innerText()).toBe(pct(tokensOf(lab), tokensOf(total)));
    expect(await usageRow(page, ciId).locator('td[data-label="Estimated"]').innerText()).toBe("none");
    expect(await usageRow(page, labId).locator('td[data-label="Estimated"]').innerText()).toBe(pct(lab.estimated, tokensOf(lab)));
    const figures = await page.locator(".figures").innerText();
    expect(figures).toContain(`Requests\n${fmt(total.requests)}`);
    expect(figures).toContain(`Input tokens\n${fmt(total.input)}`);
    expect(figures).toContain(`Output tokens\n${fmt(total.output)}`);
    expect(figures).toContain(`Estimated\n${fmt(total.estimated)} tokens`);
    // Nothing of bob's.
    expect(await usageRow(page, bobId).count()).toBe(0);
    expect(await page.getByText("bob-secret-project").count()).toBe(0);
    await expectCleanPage(alice);
    await shots(page, "usage-by-token");
    // The same in the dark scheme (the bars and meters are SVG filled from the theme's colours).
    await page.emulateMedia({ colorScheme: "dark" });
    await screenshot(page, "usage-by-token-dark-1280");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("shows usage per domain and per model, over a chosen range", async () => {
    const page = alice.page;
    await page.getByRole("radio", { name: "Domain" }).check();
    await usageRow(page, "demo").waitFor();
    expect(await shown(usageRow(page, "demo"))).toEqual(asShown(ci));
    expect(await shown(usageRow(page, "lab"))).toEqual(asShown(lab));
    expect(await usageRow(page, "other").count()).toBe(0);
    await shots(page, "usage-by-domain");
    await page.getByRole("radio", { name: "Model" }).check();
    await usageRow(page, "mistral").waitFor();
    expect(await shown(usageRow(page, "llama3"))).toEqual(asShown(plus(byModel.llama3 as Usage, lab)));
    expect(await shown(usageRow(page, "mistral"))).toEqual(asShown(byModel.mistral as Usage));
    // Hourly buckets over the last day: the same totals, 24 or 25 bars per row.
    const hourly = page.waitForResponse((r) => r.url().includes("bucket_width=1h"));
    await page.getByLabel("Range").selectOption("24h");
    await hourly;
    await expect.poll(() => usageRow(page, "mistral").locator("rect.spark-bar").count()).toBeGreaterThanOrEqual(24);
    expect(await shown(usageRow(page, "mistral"))).toEqual(asShown(byModel.mistral as Usage));
    await expectCleanPage(alice);
    await shots(page, "usage-by-model-24h");
  });

  it("shows current limit use from GET /me/limits: the PAT's own limits and the policy's", async () => {
    const page = alice.page;
    const own = (dim: string) => page.locator(`table.limits-use tr[data-policy="pat-own"][data-pat="${ciId}"][data-dimension="${dim}"]`);
    await own("requests_per_minute").waitFor();
    expect(await own("requests_per_minute").locator('td[data-label="Used now"]').innerText()).toBe("5 / 50");
    // Reservations are reconciled with the reported usage: what is used is what the upstream reported.
    expect(await own("tokens_per_day").locator('td[data-label="Used now"]').innerText()).toBe(`${fmt(ci.input + ci.output)} / 5,000`);
    const policy = page.locator(`table.limits-use tr[data-policy="per-pat"][data-pat="${labId}"][data-dimension="requests_per_minute"]`);
    expect(await policy.locator('td[data-label="Used now"]').innerText()).toBe("3 / 100");
    await expect.poll(() => policy.locator('td[data-label="Counts"]').innerText()).toBe("lab-bot");
    await page.getByRole("heading", { name: "Limits now" }).scrollIntoViewIfNeeded();
    await shots(page, "usage-limits-now");
  });

  it("shows a user only their own usage: bob sees his, and alice's hand-made call for bob's is refused", async () => {
    const refused = await alice.page.evaluate(async () => {
      const r = await fetch(`../usage?start_time=${Math.floor(Date.now() / 1000) - 86_400}&user_id=bob`);
      return { status: r.status, code: ((await r.json()) as { error: { code: string } }).error.code };
    });
    expect(refused).toEqual({ status: 403, code: "operator_only" });
    const limitsRefused = await alice.page.evaluate(async () => (await fetch("../me/limits?user_id=bob")).status);
    expect(limitsRefused).toBe(403);
    const page = bob.page;
    await page.goto(`${env.base}/ui/#/usage`);
    await usageRow(page, bobId).waitFor();
    expect(await shown(usageRow(page, bobId))).toMatchObject({ requests: "1" });
    expect(await page.locator("table.usage tbody tr").count()).toBe(1);
    expect(await usageRow(page, ciId).count()).toBe(0);
    expect(await page.getByText("ci-usage").count()).toBe(0);
    await page.getByRole("radio", { name: "Domain" }).check();
    await usageRow(page, "other").waitFor();
    expect(await page.locator("table.usage tbody tr").count()).toBe(1);
  });

  it("shows a PAT's usage by model on its page, and rotates it with new limits (a looser one refused)", async () => {
    const page = alice.page;
    await page.goto(`${env.base}/ui/#/tokens/${ciId}`);
    await page.getByRole("heading", { name: /ci-usage/, level: 1 }).waitFor();
    await page.getByText("50 requests/min · 5,000 tokens/day").waitFor();
    const section = page.getByRole("region", { name: "Usage" });
    await usageRow(page, "llama3").waitFor();
    expect(await shown(usageRow(page, "llama3"))).toEqual(asShown(byModel.llama3 as Usage));
    expect(await shown(usageRow(page, "mistral"))).toEqual(asShown(byModel.mistral as Usage));
    await section.locator('tr[data-policy="pat-own"][data-dimension="requests_per_minute"]').waitFor();
    await expectCleanPage(alice);
    await shots(page, "usage-token-page");

    await page.getByRole("button", { name: "Rotate", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Rotate “ci-usage”" });
    await dialog.getByText("Limits", { exact: true }).click();
    expect(await dialog.getByLabel("Requests per minute").inputValue()).toBe("50");
    await dialog.getByLabel("Tokens per day").fill("2000000");
    await dialog.getByRole("button", { name: "Rotate secret" }).click();
    await expect.poll(() => dialog.locator("#rotate-limits-tokens_per_day-error").textContent()).toContain("the gateway's policy “per-pat” allows 1,000,000 tokens per day");
    await shots(page, "usage-rotate-refused", dialog.locator("#rotate-limits-tokens_per_day"));
    await dialog.getByLabel("Tokens per day").fill("4000");
    await dialog.getByRole("button", { name: "Rotate secret" }).click();
    const once = page.getByRole("dialog", { name: "Copy the new secret" });
    await once.getByRole("button", { name: "Done" }).click();
    await once.getByRole("button", { name: "Close, I have saved it" }).click();
    await page.getByText("50 requests/min · 4,000 tokens/day").waitFor();
    expect((await env.gw.store.getPat(ciId))?.limits).toEqual({ requestsPerMinute: 50, tokensPerDay: 4000 });
  });

  it("shows an operator everyone's usage, by user", async () => {
    const op = await openContext(browser, env.origin);
    const page = op.page;
    await page.goto(`${env.base}/ui/`);
    await page.getByRole("button", { name: "Operator? Sign in with an admin key" }).click();
    await page.getByLabel("Admin key").fill(env.gw.adminKey ?? "");
    await page.getByRole("button", { name: "Sign in as operator" }).click();
    await page.getByRole("heading", { name: "All tokens" }).waitFor();
    // Every user's tokens list a PAT's own limits too.
    await page.getByRole("row", { name: /alice.*ci-usage/ }).getByText("Limits: 50 requests/min · 4,000 tokens/day").waitFor();
    await page.getByRole("link", { name: "Usage", exact: true }).click();
    await usageRow(page, bobId).waitFor();
    await expect.poll(() => usageRow(page, ciId).locator("td").first().innerText()).toBe("ci-usage of alice");
    await page.getByRole("radio", { name: "User" }).check();
    expect(await shown(usageRow(page, "alice"))).toEqual(asShown(plus(ci, lab)));
    expect(await shown(usageRow(page, "bob"))).toMatchObject({ requests: "1" });
    await page.locator("#usage-user").fill("alice");
    await page.locator("#usage-user").press("Enter");
    await page.locator(`table.limits-use tr[data-policy="pat-own"][data-pat="${ciId}"]`).first().waitFor();
    await expect.poll(() => usageRow(page, "bob").count()).toBe(0);
    await expectCleanPage(op);
    await shots(page, "usage-operator");
    await op.context.close();
  });
});
