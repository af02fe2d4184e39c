// Moving an installation from the embedded store to a Redis Cluster with
// `patgate export` and `patgate import`, as an operator would: export while
// the old gateway runs, import into the cluster, start a gateway there, and
// every token issued before still authenticates (no re-issuing).
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { pepperCheck } from "../../src/store/transfer.ts";
import { runCli } from "../helpers/cli.ts";
import { spawnGateway, startGateway, writeConfig, type TestGateway } from "../helpers/gateway.ts";
import { startRedisCluster, type RedisClusterHandle } from "../helpers/redis-cluster.ts";

const CHAT = { entityType: "models", entityId: "llama3", operation: "llm_chat_completions" };

describe("export from the embedded store, import into a Redis Cluster", () => {
  let upstream: FakeUpstream;
  let cluster: RedisClusterHandle;
  let source: TestGateway;
  const dirs: string[] = [];

  beforeAll(async () => {
    [upstream, cluster] = await Promise.all([startFakeUpstream(), startRedisCluster()]);
    // No admin key configured: the first start makes one, which must move too.
    source = await startGateway({ upstreamUrl: upstream.url, adminKey: null });
  });
  afterAll(async () => {
    await source?.close();
    await cluster?.stop();
    await upstream?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const chat = (url: string, token: string): Promise<number> =>
    fetch(`${url}/proxy/d1/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: '{"model":"llama3","messages":[]}' }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });

  it("every PAT authenticates on the cluster; no secret is in the export; a non-empty target and a wrong pepper are refused", { timeout: 90_000 }, async () => {
    const adminKey = source.printedAdminKeys[0] ?? "";
    expect(adminKey).toMatch(/^pgadm_/);
    const tokens: { token: string; id: string; revoked: boolean }[] = [];
    for (let i = 0; i < 60; i++) {
      const { token, record } = await source.issue({ userId: `user${i % 9}`, role: "developer", scopes: [CHAT] });
      tokens.push({ token, id: record.id, revoked: false });
    }
    // Some revoked through the API, a role through the API.
    for (const t of tokens.slice(0, 5)) {
      const r = await fetch(`${source.url}/pats/${t.id}/secret/revoke?user_id=${encodeURIComponent((await source.store.getPat(t.id))?.userId ?? "")}`, { method: "PATCH", headers: { authorization: `Bearer ${adminKey}` } });
      expect(r.status).toBe(200);
      t.revoked = true;
    }
    const role = await fetch(`${source.url}/roles/auditor`, { method: "PUT", headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" }, body: JSON.stringify({ operations: ["read"] }) });
    expect(role.status).toBe(201);
    for (const t of tokens) expect(await chat(source.url, t.token)).toBe(t.revoked ? 401 : 200);

    // Export while the gateway runs.
    const file = path.join(path.dirname(source.configFile), "export.jsonl");
    const exported = await runCli(["export", file, "--config", source.configFile]);
    expect(exported.stderr).toMatch(/^Exported 1 domain, 9 members, 1 role, 1 admin key and 60 PATs from the embedded store /);
    expect(exported.code).toBe(0);
    const text = await readFile(file, "utf8");
    for (const t of tokens) {
      expect(text).not.toContain(t.token);
      expect(text).not.toContain(t.token.split("_")[2]);
    }
    expect(text).not.toContain(adminKey);
    expect(text).not.toContain(source.pepper.toString("hex"));
    expect(text).not.toContain(source.pepper.toString("base64"));
    expect(JSON.parse(text.split("\n")[0] ?? "")).toMatchObject({ kind: "patgate-export", source: "embedded", pepperCheck: pepperCheck(source.pepper) });

    // A target with another pepper is refused before anything is written.
    const wrong = await writeConfig({ upstreamUrl: upstream.url, redisMode: "cluster", redisNodes: cluster.seeds, keyPrefix: `${cluster.keyPrefix}wrong:`, adminKey: null });
    dirs.push(wrong.dir);
    const refusedPepper = await runCli(["import", file, "--config", wrong.file]);
    expect(refusedPepper.code).toBe(1);
    expect(refusedPepper.stderr).toMatch(/the target's pepper is not the one the export was made with/);

    const target = await writeConfig({ upstreamUrl: upstream.url, redisMode: "cluster", redisNodes: cluster.seeds, keyPrefix: cluster.keyPrefix, pepperHex: source.pepper.toString("hex"), adminKey: null });
    dirs.push(target.dir);
    const imported = await runCli(["import", file, "--config", target.file]);
    expect(imported.stderr).toMatch(/^Imported 1 domain, 9 members, 1 role, 1 admin key and 60 PATs into the Redis store \(cluster, .*\)\. The pepper matches the source's/);
    expect(imported.code).toBe(0);
    // Once there, the same file again is refused: the target is not empty.
    const again = await runCli(["import", file, "--config", target.file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is not empty: import loads only into an empty store \(pass --force/);

    const gw = await spawnGateway(target.file);
    try {
      expect(gw.stdout()).toMatch(/"store":"redis"/);
      for (const [i, t] of tokens.entries()) expect(await chat(gw.url, t.token), `PAT ${i}`).toBe(t.revoked ? 401 : 200);
      // The first-start key moved with the data: it works there, and no new one was made.
      expect(gw.stderr()).not.toMatch(/pgadm_/);
      const roles = await fetch(`${gw.url}/roles/auditor`, { headers: { authorization: `Bearer ${adminKey}` } });
      expect(roles.status).toBe(200);
      // The cluster's export is the same data.
      const back = await runCli(["export", "-", "--config", target.file]);
      expect(back.code).toBe(0);
      // Header and trailer aside, line for line; last-used times moved on with the traffic, the rest did not.
      const records = (t: string): string[] =>
        t.trim().split("\n").slice(1, -1).map((l) => JSON.stringify({ ...(JSON.parse(l) as object), lastUsedAt: null })).sort();
      expect(records(back.stdout)).toHaveLength(72);
      expect(records(back.stdout)).toEqual(records(text));
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });
});
