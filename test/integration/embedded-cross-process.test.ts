// Two gateway processes on one embedded store (one SQLite file on one
// machine): a change committed through one is enforced by the other within
// 100 ms, through the store's change table, as with Redis pub/sub.
import { afterAll, beforeAll, describe, expect } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { spawnGateway, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { propagationCases } from "../helpers/propagation.ts";

// As in cross-process.test.ts: a scheduling stall on a shared machine gets two more tries.
describe("cross-process propagation on the embedded store", { retry: 2 }, () => {
  let upstream: FakeUpstream;
  let a: TestGateway;
  let b: Awaited<ReturnType<typeof spawnGateway>>;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    a = await startGateway({ upstreamUrl: upstream.url });
    expect(a.store.kind).toBe("embedded");
    // The same config, so the same database file.
    b = await spawnGateway(a.configFile);
  });
  afterAll(async () => {
    const code = await b?.stop();
    expect(code).toBe(0);
    await a?.close();
    await upstream?.close();
  });

  propagationCases(() => ({ a, bUrl: b.url }));
});
