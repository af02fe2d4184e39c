// A Realtime session stays authorized: two gateways on one Redis, the session on one, the change
// made through the other. Revoke, delete, rotation without grace, scope removal and membership
// removal each end the session within 100 ms (measured from the change to the client's close),
// with a Realtime `error` event first and close code 1008; a token that expires during a session
// ends it at its expiry time, with no change at all.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";
import { startRealtimeUpstream, type RealtimeUpstream } from "../helpers/realtime-upstream.ts";
import { rotatedPat } from "../../src/tokens/issue.ts";
import type { PatRecord } from "../../src/store/types.ts";
import { ERRORS } from "../../src/errors.ts";

const REALTIME = [{ entityType: "models", entityId: "gpt-realtime", operation: "llm_realtime" }];
const BOUND_MS = 100;

interface Ended {
  readonly at: number;
  readonly code: number;
  readonly events: Array<Record<string, unknown>>;
}

/** Opens a session with `token`; `ended` resolves when the gateway closes it, with the events received. */
async function open(url: string, token: string): Promise<{ ws: WebSocket; ended: Promise<Ended> }> {
  const ws = new WebSocket(`${url}/proxy/d1/v1/realtime?model=gpt-realtime`, { headers: { authorization: `Bearer ${token}` } });
  const events: Array<Record<string, unknown>> = [];
  ws.on("message", (d: Buffer) => events.push(JSON.parse(d.toString("utf8")) as Record<string, unknown>));
  const ended = new Promise<Ended>((resolve) => ws.on("close", (code) => resolve({ at: performance.now(), code, events })));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  // The upstream's session.created has come through: the relay runs end to end.
  for (let i = 0; i < 100 && !events.some((e) => e["type"] === "session.created"); i++) await new Promise((r) => setTimeout(r, 10));
  return { ws, ended };
}

describe("realtime sessions end when their grant does, on every replica", () => {
  let redis: RedisHandle;
  let upstream: RealtimeUpstream;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startRealtimeUpstream();
    const common = { upstreamUrl: upstream.url, redisUrl: redis.url, keyPrefix: redis.keyPrefix, pepperHex: randomBytes(32).toString("hex") };
    a = await startGateway(common);
    b = await startGateway(common);
  }, 30_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await upstream?.close();
    await redis?.stop();
  });

  const changes: Array<[string, (rec: PatRecord, g: TestGateway) => Promise<unknown>, string]> = [
    ["revoke", (rec, g) => g.store.replacePat({ ...rec, revoked: true, revokedAt: Date.now() }, rec.version), "stream_revoked"],
    ["delete", (rec, g) => g.store.deletePat(rec.id), "stream_revoked"],
    ["rotate without grace", (rec, g) => g.store.replacePat(rotatedPat(g.pepper, rec, 3_600_000, 0).record, rec.version), "stream_revoked"],
    ["scope removal", (rec, g) => g.store.replacePat({ ...rec, scopes: [{ domainId: "d1", entityType: "models", entityId: "other", operation: "llm_realtime" }], updatedAt: Date.now() }, rec.version), "stream_revoked"],
    ["membership removal", (rec, g) => g.store.deleteMembership("d1", rec.userId), "stream_revoked"],
  ];

  it.each(changes)("%s on the other replica closes the session within 100 ms: an error event, then 1008", async (kind, change, code) => {
    const issued = await a.issue({ userId: `u-${kind.replace(/ /g, "-")}`, scopes: REALTIME });
    const s = await open(a.url, issued.token);
    const fake = await upstream.nextSession();
    const t0 = performance.now();
    await change(issued.record, b);
    const end = await s.ended;
    const ms = end.at - t0;
    console.info(`realtime cut after ${kind} on the other replica: ${ms.toFixed(1)} ms`);
    expect(ms, `${kind}: closed ${ms.toFixed(1)} ms after the change`).toBeLessThan(BOUND_MS);
    expect(end.code).toBe(1008);
    const last = end.events.at(-1);
    expect(last).toMatchObject({ type: "error", error: { code, type: ERRORS.stream_revoked.type, message: ERRORS.stream_revoked.message } });
    // The upstream session is closed too.
    expect((await fake.closed).code).toBe(1000);
    const line = a.logs.records().findLast((r) => r["msg"] === "access" && r["pat_id"] === issued.record.id);
    expect(line).toMatchObject({ route: "openai.realtime", status: 101, reason: code });
  });

  it("a token that expires during a session closes it at its expiry time", async () => {
    const issued = await a.issue({ userId: "u-expiry", scopes: REALTIME, lifetimeMs: 1500 });
    const s = await open(a.url, issued.token);
    await upstream.nextSession();
    const end = await s.ended;
    const late = Date.now() - issued.record.expiresAt;
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(BOUND_MS);
    expect(end.code).toBe(1008);
    expect(end.events.at(-1)).toMatchObject({ type: "error", error: { code: "stream_expired", message: ERRORS.stream_expired.message } });
  });

  it("a rotation with a grace period keeps the session to the end of the grace, then ends it there", async () => {
    const issued = await a.issue({ userId: "u-grace", scopes: REALTIME });
    const s = await open(a.url, issued.token);
    await upstream.nextSession();
    const rotated = rotatedPat(b.pepper, issued.record, 3_600_000, 800);
    expect(await b.store.replacePat(rotated.record, issued.record.version)).toBe("ok");
    const graceEnd = rotated.record.prevSecretExpiresAt as number;
    const end = await s.ended;
    const late = Date.now() - graceEnd;
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(BOUND_MS);
    expect(end.code).toBe(1008);
    expect(end.events.at(-1)).toMatchObject({ type: "error", error: { code: "stream_expired" } });
  });

  it("a session under an unchanged grant keeps running through other tokens' changes", async () => {
    const kept = await a.issue({ userId: "u-kept", scopes: REALTIME });
    const other = await a.issue({ userId: "u-other", scopes: REALTIME });
    const s = await open(a.url, kept.token);
    await upstream.nextSession();
    await b.store.replacePat({ ...other.record, revoked: true, revokedAt: Date.now() }, other.record.version);
    await new Promise((r) => setTimeout(r, 200));
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
    s.ws.send(JSON.stringify({ type: "response.create" }));
    await new Promise((r) => setTimeout(r, 200));
    s.ws.close();
    const end = await s.ended;
    expect(end.events.some((e) => e["type"] === "response.done")).toBe(true);
  });
});
