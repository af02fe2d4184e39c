// Two gateway processes share one Redis: a change committed through one is
// enforced by the other within 100 ms (pub/sub invalidation, not a cache TTL).
import { afterAll, beforeAll, describe, expect } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { spawnGateway, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";
import { propagationCases } from "../helpers/propagation.ts";

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

  propagationCases(() => ({ a, bUrl: b.url }));
});
