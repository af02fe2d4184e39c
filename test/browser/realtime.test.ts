// The browser SDK through the gateway: the openai package's own OpenAIRealtimeWebSocket, bundled for
// the browser (rolldown, at test time) and run in headless Chromium against the gateway's HTTPS
// listener. It sends the PAT in the `openai-insecure-api-key.` subprotocol (a page cannot set
// Authorization on a WebSocket); the gateway selects `realtime` and the upstream never sees the key.
// A revoke ends the page's session with the SDK's `error` (stream_revoked) and close 1008; a PAT
// without the scope never opens one.
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import type { Browser, Page } from "playwright-core";
import { rolldown } from "rolldown";
import { launch } from "../helpers/browser.ts";
import { ROOT, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { TestCa } from "../helpers/certs.ts";
import { startRealtimeUpstream, type RealtimeUpstream } from "../helpers/realtime-upstream.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });

const REALTIME = [{ entityType: "models", entityId: "gpt-realtime", operation: "llm_realtime" }];
const ENTRY = 'export { OpenAIRealtimeWebSocket } from "openai/realtime/websocket"; export { OpenAI } from "openai";';

let upstream: RealtimeUpstream;
let gw: TestGateway;
let ca: TestCa;
let browser: Browser;
let sdk: string;

/** The SDK's browser build: the package as published, resolved with the browser conditions. */
async function bundleSdk(): Promise<string> {
  const b = await rolldown({
    input: "entry",
    cwd: ROOT,
    platform: "browser",
    logLevel: "warn",
    plugins: [{ name: "entry", resolveId: (id) => (id === "entry" ? "\0entry" : null), load: (id) => (id === "\0entry" ? ENTRY : null) }],
  });
  const out = await b.generate({ format: "iife", name: "RT" });
  await b.close();
  return out.output[0].code;
}

beforeAll(async () => {
  upstream = await startRealtimeUpstream();
  ca = new TestCa("rt-browser");
  const server = ca.issue("localhost");
  [gw, browser, sdk] = await Promise.all([
    startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        cfg.server.tls = { cert_file: server.cert, key_file: server.key };
        (cfg.upstreams["default"] as Record<string, unknown>)["credential"] = { header: "authorization", value: "Bearer sk-upstream-browser-test" };
      },
    }),
    launch(),
    bundleSdk(),
  ]);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await upstream?.close();
  ca?.remove();
});

/** A page on the gateway's own origin (the test CA is not in Chromium's store: its errors are ignored for this context only) with the SDK loaded. */
async function page(): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const p = await context.newPage();
  await p.goto(`https://localhost:${gw.port}/healthz`);
  await p.addScriptTag({ content: sdk });
  return p;
}

interface PageResult {
  protocol: string;
  events: string[];
  errors: Array<{ code: string | null; message: string }>;
  close: number;
}

// Runs in the page: opens a session with the browser SDK, sends one update and one response.create, then waits
// for the end (the test closes it, or the gateway does). A string, since this file is typed for Node, not the DOM.
const SESSION = `async ({ token, base, closeAfterDone }) => {
  const client = new RT.OpenAI({ apiKey: token, baseURL: base, dangerouslyAllowBrowser: true });
  const rt = new RT.OpenAIRealtimeWebSocket({ model: "gpt-realtime", dangerouslyAllowBrowser: true }, client);
  const events = [];
  const errors = [];
  rt.on("event", (e) => events.push(e.type));
  rt.on("error", (e) => errors.push({ code: e.error?.code ?? null, message: e.message }));
  const closed = new Promise((resolve) => rt.socket.addEventListener("close", (e) => resolve(e.code)));
  const opened = await new Promise((resolve) => {
    rt.socket.addEventListener("open", () => resolve(true));
    rt.socket.addEventListener("close", () => resolve(false));
  });
  if (opened) {
    rt.send({ type: "session.update", session: { type: "realtime", instructions: "hi" } });
    rt.send({ type: "response.create" });
    window.__sessionOpen = true;
    if (closeAfterDone) {
      await new Promise((resolve) => rt.on("response.done", resolve));
      rt.close();
    }
  }
  const close = await closed;
  return { protocol: rt.socket.protocol, events, errors, close };
}`;

it("OpenAIRealtimeWebSocket in Chromium completes a session through the key subprotocol; the upstream never sees the key", async () => {
  const issued = await gw.issue({ userId: "browser-sdk", scopes: REALTIME });
  const p = await page();
  const r = await p.evaluate<PageResult>(`(${SESSION})(${JSON.stringify({ token: issued.token, base: `https://localhost:${gw.port}/proxy/d1/v1`, closeAfterDone: true })})`);
  expect(r.protocol).toBe("realtime");
  expect(r.events).toEqual(expect.arrayContaining(["session.created", "session.updated", "response.created", "response.output_text.delta", "response.done"]));
  expect(r.errors).toEqual([]);
  expect(r.close).toBe(1000);
  const fake = await upstream.nextSession();
  expect(fake.handshake.protocols).toEqual(["realtime"]);
  expect(fake.handshake.raw).not.toContain(issued.token);
  expect(fake.handshake.raw).not.toContain("openai-insecure-api-key");
  expect(fake.handshake.headers.authorization).toBe("Bearer sk-upstream-browser-test");
  expect(fake.events.map((e) => e["type"])).toEqual(["session.update", "response.create"]);
  await p.context().close();
});

it("a revoke ends the page's session: the SDK raises stream_revoked, the close is 1008", async () => {
  const issued = await gw.issue({ userId: "browser-revoke", scopes: REALTIME });
  const p = await page();
  const running = p.evaluate<PageResult>(`(${SESSION})(${JSON.stringify({ token: issued.token, base: `https://localhost:${gw.port}/proxy/d1/v1`, closeAfterDone: false })})`);
  await p.waitForFunction("window.__sessionOpen === true");
  await upstream.nextSession();
  expect(await gw.store.replacePat({ ...issued.record, revoked: true, revokedAt: Date.now() }, issued.record.version)).toBe("ok");
  const r = await running;
  expect(r.close).toBe(1008);
  expect(r.errors.map((e) => e.code)).toContain("stream_revoked");
  await p.context().close();
});

it("a PAT without the scope never opens a session in the page (403 before the upgrade)", async () => {
  const before = upstream.sessions.length;
  const issued = await gw.issue({ userId: "browser-narrow", scopes: [{ entityType: "models", entityId: "other", operation: "llm_realtime" }] });
  const p = await page();
  const r = await p.evaluate<PageResult>(`(${SESSION})(${JSON.stringify({ token: issued.token, base: `https://localhost:${gw.port}/proxy/d1/v1`, closeAfterDone: true })})`);
  expect(r.close).toBe(1006);
  expect(r.events).toEqual([]);
  expect(upstream.sessions.length).toBe(before);
  const line = gw.logs.records().findLast((l) => l["msg"] === "access" && l["pat_id"] === issued.record.id);
  expect(line).toMatchObject({ status: 403, reason: "insufficient_scope" });
  await p.context().close();
});
