// Finding (review, item 9): readiness going down while draining was not
// tested in a form that fails when it is broken: a replica that keeps saying
// "ready" while it drains keeps getting new traffic from its load balancer.
// During close(), with a stream still in flight, readiness must report
// "draining" and not ready, and the ops listener must stop answering.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

describe("readiness goes down while draining", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ sseMode: "manual" });
    gw = await startGateway({ upstreamUrl: upstream.url });
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "m", operation: "llm_chat_completions" }] }));
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it("ready before; during close() with a stream in flight: not ready, draining, ops port closed; the stream still completes", async () => {
    const opsPort = gw.app.opsPort();
    expect((await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status).toBe(200);
    expect(await gw.app.ready()).toMatchObject({ ok: true, checks: { draining: "ok" } });

    const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '{"model":"m","stream":true,"messages":[]}',
    });
    expect(res.status).toBe(200);
    const stream = await upstream.nextStream();

    const closed = gw.close();
    const during = await gw.app.ready();
    expect(during.ok).toBe(false);
    expect(during.checks.draining).toBe("draining");
    expect(await refused(opsPort)).toBe(true);

    await stream.releaseAll();
    expect(await res.text()).toContain("[DONE]");
    await closed;
  });
});
