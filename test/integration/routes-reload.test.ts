// The route table is validated at start (refuse to start, naming file, line and
// problem) and hot-reloaded, keeping the last good table when the new one is invalid.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { ROOT, runMain, startGateway, writeConfig, type TestGateway } from "../helpers/gateway.ts";

describe("route table validation and reload", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let routesFile: string;
  let good: string;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    good = await readFile(path.join(ROOT, "routes.yaml"), "utf8");
    const { dir } = await writeConfig({ upstreamUrl: upstream.url });
    routesFile = path.join(dir, "routes.yaml");
    await writeFile(routesFile, good);
    gw = await startGateway({ upstreamUrl: upstream.url, routesFile });
    ({ token } = await gw.issue({ scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_read" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("refuses to start on an invalid routes.yaml, naming the file, line and problem", async () => {
    const { dir, file } = await writeConfig({ upstreamUrl: upstream.url, routesFile: "PLACEHOLDER" });
    const bad = path.join(dir, "bad-routes.yaml");
    await writeFile(bad, good.replace("operation: llm_chat_completions", "operation: llm_chatt"));
    await writeFile(file, (await readFile(file, "utf8")).replace("PLACEHOLDER", bad));
    const { code, stderr } = await runMain(file);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/bad-routes\.yaml:\d+:\d+/);
    expect(stderr).toContain("llm_chatt");
  });

  it("refuses to start on an invalid config, naming the key", async () => {
    const { file } = await writeConfig({ upstreamUrl: upstream.url, patch: (cfg) => (cfg.server.prot = 1) });
    const { code, stderr } = await runMain(file);
    expect(code).not.toBe(0);
    expect(stderr).toContain("server.prot");
  });

  it("keeps serving the old table when the new file is invalid, and picks up a valid one", async () => {
    const models = (): Promise<number> => fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await models()).toBe(200);

    await writeFile(routesFile, "routes: [ this is: not valid");
    expect(gw.app.routes.reload().ok).toBe(false);
    expect(await models()).toBe(200);

    // A valid table without the models list route: picked up by the file watcher.
    const without = good.replace(/path: \/v1\/models\n/, "path: /v1/models-gone\n");
    expect(without).not.toBe(good);
    await writeFile(routesFile, without);
    const deadline = Date.now() + 5_000;
    let status = 200;
    while (Date.now() < deadline && status === 200) {
      await new Promise((r) => setTimeout(r, 50));
      status = await models();
    }
    expect(status).toBe(404);
  });
});
