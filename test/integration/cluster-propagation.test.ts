// cross-process.test.ts on a Redis Cluster: two gateway processes share a
// private 3-master cluster (store.redis_mode: cluster); a change committed
// through one is enforced by the other within 100 ms. The change is published
// on whichever master owns the data's slot; each gateway's feed listens on one
// node of its choosing, so this also proves cluster-wide delivery.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "ioredis";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { spawnGateway, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedisCluster, type RedisClusterHandle } from "../helpers/redis-cluster.ts";
import { propagationCases } from "../helpers/propagation.ts";


// Retried like cross-process.test.ts: one scheduling stall on a shared machine must not fail the run.
describe("cross-process propagation over Redis Cluster", { retry: 2 }, () => {
  let cluster: RedisClusterHandle;
  let upstream: FakeUpstream;
  let a: TestGateway;
  let b: Awaited<ReturnType<typeof spawnGateway>>;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    upstream = await startFakeUpstream();
    a = await startGateway({
      upstreamUrl: upstream.url,
      redisMode: "cluster",
      redisNodes: cluster.seeds,
      keyPrefix: cluster.keyPrefix,
      patch: (cfg) => {
        cfg["audit"] = { redis_stream: `${cluster.keyPrefix}audit` };
      },
    });
    b = await spawnGateway(a.configFile);
  });
  afterAll(async () => {
    const code = await b?.stop();
    expect(code).toBe(0);
    await a?.close();
    await upstream?.close();
    await cluster?.stop();
  });

  propagationCases(() => ({ a, bUrl: b.url }));

  it("both gateways run on the cluster store and report ready", async () => {
    expect(a.store.kind).toBe("redis");
    expect(await a.app.ready()).toMatchObject({ ok: true });
    const r = await fetch(`${b.url}/readyz`);
    expect(r.status).toBe(200);
  });

  it("the audit stream is written through a cluster client", async () => {
    const key = `${cluster.keyPrefix}audit`;
    const res = await fetch(`${a.url}/domains`, {
      method: "POST",
      headers: { authorization: `Bearer ${a.adminKey ?? ""}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "cluster-audit" }),
    });
    expect(res.status).toBe(201);
    const raw = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })));
    try {
      let entries: [string, string[]][] = [];
      for (let i = 0; i < 100 && entries.length === 0; i++) {
        entries = await raw.xrange(key, "-", "+");
        if (entries.length === 0) await new Promise((r) => setTimeout(r, 20));
      }
      const actions = entries.map(([, f]) => f[f.indexOf("action") + 1]);
      expect(actions).toContain("domain.create");
    } finally {
      raw.disconnect();
    }
  });
});
