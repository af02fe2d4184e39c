// Two gateway processes share one Redis: a change committed through one is
// enforced by the other within 100 ms (pub/sub invalidation, not a cache TTL).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { spawnGateway, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";

// Measured in the test, asserted with margin over the 100 ms goal for a shared, noisy machine.
const BOUND_MS = 100;

// A lag measurement on a shared 2-core machine can catch a scheduling stall
// (another process, GC, a CI neighbour): a case is retried up to twice, so one
// stall does not fail the run while a TTL-bound propagation (minutes) always does.
describe("cross-process propagation over Redis", { retry: 2 }, () => {
  let redis: RedisHandle;
  let upstream: FakeUpstream;
  let a: TestGateway;
  let b: Awaited<ReturnType<typeof spawnGateway>>;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startFakeUpstream();
    a = await startGateway({ upstreamUrl: upstream.url, redisUrl: redis.url, keyPrefix: redis.keyPrefix });
    b = await spawnGateway(a.configFile);
  });
  afterAll(async () => {
    const code = await b?.stop();
    expect(code).toBe(0);
    await a?.close();
    await upstream?.close();
    await redis?.stop();
  });

  const chatOnB = (token: string): Promise<number> =>
    fetch(`${b.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '{"model":"llama3","messages":[]}',
    }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });

  /** Polls B until it answers `status`; returns the ms from `since` to the first such answer. */
  async function until(token: string, status: number, since: number): Promise<number> {
    for (;;) {
      const s = await chatOnB(token);
      const t = performance.now() - since;
      if (s === status) return t;
      if (t > 5_000) throw new Error(`still ${s} after 5 s`);
    }
  }

  async function warm(): Promise<{ token: string; record: Awaited<ReturnType<TestGateway["issue"]>>["record"] }> {
    const issued = await a.issue({ userId: `u${Math.random()}`, scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    // Twice: B has the PAT and membership cached before the change.
    expect(await chatOnB(issued.token)).toBe(200);
    expect(await chatOnB(issued.token)).toBe(200);
    return issued;
  }

  it("a revoke through process A is refused by process B within 100 ms", async () => {
    const { token, record } = await warm();
    const t0 = performance.now();
    expect(await a.store.replacePat({ ...record, revoked: true, revokedAt: Date.now() }, record.version)).toBe("ok");
    const lag = await until(token, 401, t0);
    expect(lag).toBeLessThan(BOUND_MS);
  });

  it("a delete is refused within 100 ms", async () => {
    const { token, record } = await warm();
    const t0 = performance.now();
    expect(await a.store.deletePat(record.id)).toBe(true);
    expect(await until(token, 401, t0)).toBeLessThan(BOUND_MS);
  });

  it("a scope removal is refused within 100 ms", async () => {
    const { token, record } = await warm();
    const t0 = performance.now();
    expect(await a.store.replacePat({ ...record, scopes: [{ domainId: "d1", entityType: "models", entityId: "other", operation: "llm_chat_completions" }] }, record.version)).toBe("ok");
    expect(await until(token, 403, t0)).toBeLessThan(BOUND_MS);
  });

  it("a membership removal is refused within 100 ms", async () => {
    const { token, record } = await warm();
    const t0 = performance.now();
    expect(await a.store.deleteMembership("d1", record.userId)).toBe(true);
    expect(await until(token, 403, t0)).toBeLessThan(BOUND_MS);
  });

  it("a token created after B cached its id as unknown works at once", async () => {
    const issued = await a.issue({ userId: "late", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    expect(await chatOnB(issued.token)).toBe(200);
  });
});
