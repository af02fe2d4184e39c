// Redis killed mid-test: the gateway fails closed with 503 (it cannot verify),
// readiness goes down, nothing crashes; Redis back: requests succeed again
// without restarting the gateway.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";

describe("store outage", () => {
  let redis: RedisHandle;
  let upstream: FakeUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, redisUrl: redis.url, keyPrefix: redis.keyPrefix });
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
    await redis?.stop();
  });

  const chat = (token: string): Promise<Response> =>
    fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '{"model":"llama3","messages":[]}',
    });

  it("503 while Redis is down, recovers by itself when it is back", async ({ skip }) => {
    if (redis.external) skip("REDIS_URL is set: this test must kill its own redis-server");
    const { token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    expect((await chat(token)).status).toBe(200);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);

    await redis.kill();
    // The cached token is not trusted once events may be missed: fail closed.
    let res = await chat(token);
    for (let i = 0; res.status !== 503 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 50));
      res = await chat(token);
    }
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("store_unavailable");
    expect(body.error.message).toMatch(/unreachable/);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);

    await redis.restart();
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await chat(token)).status;
      if (status !== 503) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // The private server keeps nothing on disk: the PAT is gone, so recovery shows as a clean 401, not a 503.
    expect([200, 401]).toContain(status);
    const again = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    expect((await chat(again.token)).status).toBe(200);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);

    // Many requests failed meanwhile, and ioredis retried many times: one line each way, naming where and why.
    const records = gw.logs.records();
    const lost = records.filter((r) => typeof r["msg"] === "string" && r["msg"].startsWith("store lost"));
    const back = records.filter((r) => typeof r["msg"] === "string" && r["msg"].startsWith("store back"));
    expect(lost).toHaveLength(1);
    expect(back).toHaveLength(1);
    const address = `redis://${new URL(redis.url).host}`;
    expect(lost[0]?.["store"]).toContain(address);
    expect(lost[0]?.["msg"]).toContain(`Redis at ${address}`);
    expect(String(lost[0]?.["cause"])).toMatch(/connection (refused|closed|was reset)|ECONNREFUSED/);
    expect(records.filter((r) => r["msg"] === "management API dependency unavailable")).toHaveLength(0);
  });

  it("a management call while Redis is down names the address and the cause", async ({ skip }) => {
    if (redis.external) skip("REDIS_URL is set: this test must kill its own redis-server");
    await redis.kill();
    try {
      let problem = "";
      for (let i = 0; i < 40 && problem === ""; i++) {
        try {
          await gw.store.listDomains();
          await new Promise((r) => setTimeout(r, 50));
        } catch (err) {
          problem = (err as Error).message;
        }
      }
      expect(problem).toContain(`Redis at redis://${new URL(redis.url).host} is unavailable: `);
      expect(problem, problem).toMatch(/refused|closed|reset|connection is down/);
      expect(problem).not.toContain("enableOfflineQueue");
    } finally {
      await redis.restart();
    }
  });
});
