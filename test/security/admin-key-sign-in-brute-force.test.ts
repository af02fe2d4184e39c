// Finding: the web page's admin-key form (POST /ui/auth/admin-key) is a
// password form on the network, and it took guesses as fast as a client could
// send them. Failed attempts are now limited per client address and for the
// whole gateway (429 sign_in_throttled with Retry-After), a refused attempt is
// not checked at all (so the answer says nothing about the key), the wait is
// bounded, so the correct key gets in once it is over, and every failure is
// audited without what was typed.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

interface Answer {
  status: number;
  code: string | null;
  message: string;
  retryAfter: string | null;
}

/** POST /ui/auth/admin-key from `from` (a loopback address of this machine), with extra headers. */
function attempt(gw: TestGateway, key: string, from = "127.0.0.1", headers: Record<string, string> = {}): Promise<Answer> {
  const body = JSON.stringify({ key });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${gw.url}/ui/auth/admin-key`,
      { method: "POST", localAddress: from, headers: { "content-type": "application/json", origin: gw.url, "content-length": Buffer.byteLength(body), ...headers } },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => {
          const err = text === "" ? null : ((JSON.parse(text) as { error?: { code: string; message: string } }).error ?? null);
          resolve({ status: res.statusCode ?? 0, code: err?.code ?? null, message: err?.message ?? "", retryAfter: res.headers["retry-after"] ?? null });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const guess = (): string => `pgadm_guess_${randomBytes(20).toString("hex")}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("admin-key sign-in: failed attempts are throttled", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    // 3 per address and 6 in all, refilling over 3 s: one more try per address every second.
    gw = await startGateway({ upstreamUrl: upstream.url, patch: (c) => (c.ui = { sign_in_limit: { per_address: 3, global: 6, window: "3s" } }) });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("answers 429 with Retry-After once an address has used its attempts, without checking even the right key, and lets it in after the wait", async () => {
    const typed = [guess(), guess(), guess()];
    for (const k of typed) expect(await attempt(gw, k)).toMatchObject({ status: 400, code: "login_failed" });
    const throttled = await attempt(gw, guess());
    expect(throttled).toMatchObject({ status: 429, code: "sign_in_throttled", retryAfter: "1" });
    expect(throttled.message).toMatch(/^Too many failed sign-ins from your address\. Try again in 1 second\.$/);
    // The right key gets the same answer now: a throttled attempt says nothing about the key.
    expect(await attempt(gw, gw.adminKey ?? "")).toMatchObject({ status: 429, code: "sign_in_throttled" });
    // Another address is not held up by this one.
    expect(await attempt(gw, guess(), "127.0.0.2")).toMatchObject({ status: 400, code: "login_failed" });

    await sleep(Number(throttled.retryAfter) * 1000 + 50);
    expect(await attempt(gw, gw.adminKey ?? "")).toMatchObject({ status: 204 });
    // A success forgets the address's failures: a typo right after is a plain 400 again.
    expect(await attempt(gw, guess())).toMatchObject({ status: 400, code: "login_failed" });

    // Audited: every failure (with the client, the reason), one line per throttled episode, never what was typed.
    const lines = gw.logs.records();
    const failed = lines.filter((r) => r.audit === "ui.sign_in_failed");
    expect(failed.length).toBe(5);
    expect(failed[0]).toMatchObject({ client: "127.0.0.1", via: "admin_key", reason: "not_an_admin_key" });
    expect(lines.filter((r) => r.audit === "ui.sign_in_throttled")).toEqual([expect.objectContaining({ client: "127.0.0.1", scope: "address", retry_after_s: 1 })]);
    expect(lines.filter((r) => r.audit === "ui.sign_in").length).toBe(1);
    const all = gw.logs.lines.join("\n");
    for (const k of typed) {
      expect(all).not.toContain(k);
      expect(all).not.toContain(k.slice(12, 32));
    }
  });

  it("limits all addresses together, saying it is the gateway that is limited", async () => {
    await sleep(3100); // both buckets full again
    const answers: Answer[] = [];
    for (let i = 10; i < 14; i++) for (let j = 0; j < 2; j++) answers.push(await attempt(gw, guess(), `127.0.0.${i}`));
    expect(answers.slice(0, 6).every((a) => a.code === "login_failed")).toBe(true);
    expect(answers.slice(6)).toEqual([expect.objectContaining({ status: 429, code: "sign_in_throttled" }), expect.objectContaining({ status: 429, code: "sign_in_throttled" })]);
    expect(answers[6]?.message).toMatch(/^Too many failed sign-ins on this gateway\./);
    expect(Number(answers[6]?.retryAfter)).toBeLessThanOrEqual(1);
    expect(gw.logs.records().filter((r) => r.audit === "ui.sign_in_throttled" && r.scope === "global").length).toBe(1);
  });
});

describe("admin-key sign-in behind a trusted proxy", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ upstreamUrl: upstream.url, patch: (c) => (c.ui = { sign_in_limit: { per_address: 2, global: 100, window: "1m" }, trusted_proxies: ["127.0.0.1"] }) });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("counts the client X-Forwarded-For names, not the proxy; from anyone else the header counts for nothing", async () => {
    const via = (client: string): Record<string, string> => ({ "x-forwarded-for": client });
    for (let i = 0; i < 2; i++) expect(await attempt(gw, guess(), "127.0.0.1", via("198.51.100.1"))).toMatchObject({ status: 400 });
    expect(await attempt(gw, guess(), "127.0.0.1", via("198.51.100.1"))).toMatchObject({ status: 429, code: "sign_in_throttled" });
    // A client that puts someone else's address on the left is still itself.
    expect(await attempt(gw, guess(), "127.0.0.1", via("198.51.100.2, 198.51.100.1"))).toMatchObject({ status: 429 });
    // Another client behind the same proxy is not held up.
    expect(await attempt(gw, guess(), "127.0.0.1", via("198.51.100.2"))).toMatchObject({ status: 400 });
    // Not a trusted proxy: its X-Forwarded-For is ignored, so rotating it buys nothing.
    for (let i = 0; i < 2; i++) expect(await attempt(gw, guess(), "127.0.0.5", via(`203.0.113.${i}`))).toMatchObject({ status: 400 });
    expect(await attempt(gw, guess(), "127.0.0.5", via("203.0.113.99"))).toMatchObject({ status: 429 });
    expect(gw.logs.records().filter((r) => r.audit === "ui.sign_in_failed").map((r) => r.client)).toEqual(["198.51.100.1", "198.51.100.1", "198.51.100.2", "127.0.0.5", "127.0.0.5"]);
  });
});
