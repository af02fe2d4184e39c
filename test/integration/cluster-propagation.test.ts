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

const BOUND_MS = 100;
const CHAT = { entityType: "models", entityId: "llama3", operation: "llm_chat_completions" };

describe("cross-process propagation over Redis Cluster", () => {
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

  async function warm(): Promise<Awaited<ReturnType<TestGateway["issue"]>>> {
    const issued = await a.issue({ userId: `u${Math.random()}`, scopes: [CHAT] });
    // Twice: B has the PAT and membership cached before the change.
    expect(await chatOnB(issued.token)).toBe(200);
    expect(await chatOnB(issued.token)).toBe(200);
    return issued;
  }

  it("both gateways run on the cluster store and report ready", async () => {
    expect(a.store.kind).toBe("redis");
    expect(await a.app.ready()).toMatchObject({ ok: true });
    const r = await fetch(`${b.url}/readyz`);
    expect(r.status).toBe(200);
  });

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
    const issued = await a.issue({ userId: "late", scopes: [CHAT] });
    expect(await chatOnB(issued.token)).toBe(200);
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
