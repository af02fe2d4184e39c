// The retry hints the openai SDK obeys, seen by the real client: it waits the
// gateway's Retry-After / retry-after-ms on a 503 before retrying, and it does not
// retry at all where the gateway says x-should-retry: false.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { ensureMember, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";
import { newPat } from "../../src/tokens/issue.ts";

/** A fetch for the SDK that notes when each request went out. */
function countingFetch(sent: number[]): typeof fetch {
  return (input, init) => {
    sent.push(performance.now());
    return fetch(input, init);
  };
}

describe("the openai SDK's retries", () => {
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

  it("stops at once on x-should-retry: false (a domain whose upstream this gateway does not have)", async () => {
    await ensureMember(gw.store, "ghostly", "alice", "admin");
    const dom = await gw.store.getDomain("ghostly");
    await gw.store.putDomain({ ...dom!, upstream: "not-configured-here" });
    const { record, token } = newPat(gw.pepper, { userId: "alice", name: "ghost", scopes: [{ domainId: "ghostly", entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }], lifetimeMs: 3_600_000 });
    expect(await gw.store.insertPat(record)).toBe("ok");
    const sent: number[] = [];
    const client = new OpenAI({ baseURL: `${gw.url}/proxy/ghostly/v1`, apiKey: token, maxRetries: 3, fetch: countingFetch(sent) });
    const err = await client.chat.completions.create({ model: "llama3", messages: [] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get("x-should-retry")).toBe("false");
    // Without the header the SDK retries a 503 three times here.
    expect(sent).toHaveLength(1);
  });

  it("waits the gateway's Retry-After on a 503 store_unavailable before its retry", async ({ skip }) => {
    if (redis.external) skip("REDIS_URL is set: this test must kill its own redis-server");
    const issued = await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] });
    await redis.kill();
    try {
      // Until the gateway has noticed that the change feed is gone.
      for (let i = 0; i < 50; i++) {
        const r = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${issued.token}`, "content-type": "application/json" }, body: '{"model":"llama3","messages":[]}' });
        if (r.status === 503) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const sent: number[] = [];
      const client = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: issued.token, maxRetries: 1, fetch: countingFetch(sent) });
      const err = await client.chat.completions.create({ model: "llama3", messages: [] }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
      const headers = (err as InstanceType<typeof OpenAI.APIError>).headers;
      expect(headers?.get("retry-after")).toBe("1");
      expect(headers?.get("retry-after-ms")).toBe("1000");
      expect(headers?.get("x-should-retry")).toBeNull();
      expect(sent).toHaveLength(2);
      // The SDK's own backoff for a first retry is under a second: this gap is the gateway's hint.
      expect((sent[1] ?? 0) - (sent[0] ?? 0)).toBeGreaterThanOrEqual(950);
    } finally {
      await redis.restart();
    }
  });
});
