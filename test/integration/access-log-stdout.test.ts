// The shipped logger buffers stdout (one write per 4 KiB). At low traffic a
// request's access line must still reach stdout while the gateway runs, not
// only once 4 KiB have gathered or at shutdown.
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnGateway, writeConfig } from "../helpers/gateway.ts";

describe("access lines on stdout at low traffic", () => {
  let gw: Awaited<ReturnType<typeof spawnGateway>>;
  let dir = "";

  beforeAll(async () => {
    const cfg = await writeConfig({ upstreamUrl: "http://127.0.0.1:9" });
    dir = cfg.dir;
    gw = await spawnGateway(cfg.file);
  });

  afterAll(async () => {
    await gw.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a single request's line is written within the flush interval, with the process still running", async () => {
    const res = await fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { "x-request-id": "lonely-request-1" } });
    expect(res.status).toBe(401);
    const deadline = Date.now() + 10_000;
    while (!gw.stdout().includes('"req_id":"lonely-request-1"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(gw.child.exitCode).toBeNull();
    const line = gw.stdout().split("\n").find((l) => l.includes('"req_id":"lonely-request-1"'));
    expect(line, "the access line, before shutdown").toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ msg: "access", reason: "missing_token", status: 401, decision: "deny" });
  });
});
