// `patgate admin-key create`: the operator's way back in when the first-start
// admin key is lost, run on the machine against the configured store, with or
// without a gateway. The key is printed once, only its hash is stored, the
// keys stored before stop working (unless --keep), and it is audit-logged.
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { hashAdminKey } from "../../src/admin/keys.ts";
import { runCli } from "../helpers/cli.ts";
import { spawnGateway, writeConfig } from "../helpers/gateway.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";

const KEY_LINE = /^(pgadm_[A-Za-z0-9_-]{43})\n$/;

describe("patgate admin-key create", () => {
  let upstream: FakeUpstream;
  let redis: RedisHandle;
  const dirs: string[] = [];
  beforeAll(async () => {
    [upstream, redis] = await Promise.all([startFakeUpstream(), startRedis()]);
  });
  afterAll(async () => {
    await upstream?.close();
    await redis?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const roles = (url: string, key: string): Promise<number> =>
    fetch(`${url}/roles`, { headers: { authorization: `Bearer ${key}` } }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });

  it("recovers a first-start key that was lost, with no gateway running", { timeout: 60_000 }, async () => {
    // (A busy port no longer loses the key: ports are checked before anything is created; see busy-ports.test.ts.)
    const cfg = await writeConfig({ upstreamUrl: upstream.url, adminKey: null });
    dirs.push(cfg.dir);
    const first = await spawnGateway(cfg.file);
    // Its key went to a terminal nobody kept; only the hash is in the store.
    await expect.poll(() => first.stderr(), { timeout: 5000 }).toMatch(/only its hash is stored/);
    expect(await first.stop(), first.stderr()).toBe(0);
    const created = await runCli(["admin-key", "create", "--config", cfg.file]);
    expect(created.code).toBe(0);
    const key = KEY_LINE.exec(created.stdout)?.[1] ?? "";
    expect(key).not.toBe("");
    expect(created.stderr).toMatch(/It is shown ONCE and only its hash is stored; running gateways accept it now\. 1 stored key made before no longer works/);
    // Only its hash reached the database.
    const data = await readFile(path.join(cfg.dir, "data", "patgate.db"), "latin1");
    expect(data).not.toContain(key);
    expect(data).toContain(hashAdminKey(key));

    const ok = await writeConfig({ upstreamUrl: upstream.url, adminKey: null, patch: (c) => void (c.store = { ...c.store, embedded_path: path.join(cfg.dir, "data", "patgate.db") }) });
    dirs.push(ok.dir);
    const gw = await spawnGateway(ok.file);
    try {
      expect(await roles(gw.url, key)).toBe(200);
      // A key is stored now, so this start printed none.
      expect(gw.stderr()).not.toMatch(/pgadm_/);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  it("beside a running gateway: the new key works at once, the old one stops; --keep keeps it; audit line", { timeout: 60_000 }, async () => {
    const cfg = await writeConfig({ upstreamUrl: upstream.url, adminKey: null });
    dirs.push(cfg.dir);
    const gw = await spawnGateway(cfg.file);
    try {
      await expect.poll(() => gw.stderr(), { timeout: 5000 }).toMatch(/only its hash is stored/);
      const first = /^ {2}(pgadm_[A-Za-z0-9_-]{43})$/m.exec(gw.stderr())?.[1] ?? "";
      expect(await roles(gw.url, first)).toBe(200);

      const kept = await runCli(["admin-key", "create", "--keep", "--config", cfg.file]);
      expect(kept.code).toBe(0);
      const second = KEY_LINE.exec(kept.stdout)?.[1] ?? "";
      expect(kept.stderr).toMatch(/No stored key was removed\./);
      expect(await roles(gw.url, first)).toBe(200);
      expect(await roles(gw.url, second)).toBe(200);

      const replaced = await runCli(["admin-key", "create", "--json", "--config", cfg.file]);
      expect(replaced.code).toBe(0);
      const out = JSON.parse(replaced.stdout) as { key: string; id: string; fingerprint: string; removed: { fingerprint: string }[] };
      expect(out.removed.map((r) => r.fingerprint).sort()).toEqual([hashAdminKey(first).slice(0, 12), hashAdminKey(second).slice(0, 12)].sort());
      expect(await roles(gw.url, out.key)).toBe(200);
      expect(await roles(gw.url, first)).toBe(401);
      expect(await roles(gw.url, second)).toBe(401);

      // The audit line: the gateway's shape, naming the key by fingerprint only.
      const line = replaced.stderr.split("\n").find((l) => l.startsWith("{")) ?? "";
      const audit = JSON.parse(line) as Record<string, unknown>;
      expect(audit).toMatchObject({ msg: "audit", audit: "admin_key.create", key_id: out.id, fingerprint: out.fingerprint, service: "patgate" });
      expect(String(audit.actor)).toMatch(/^local:.+@.+/);
      expect(replaced.stderr).not.toContain(out.key);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  it("works on a Redis store too, and appends the audit entry to the configured stream", async () => {
    const stream = `${redis.keyPrefix}audit`;
    const cfg = await writeConfig({ upstreamUrl: upstream.url, redisUrl: redis.url, keyPrefix: redis.keyPrefix, adminKey: null, patch: (c) => void (c.audit = { redis_stream: stream }) });
    dirs.push(cfg.dir);
    const created = await runCli(["admin-key", "create", "--config", cfg.file]);
    expect(created.code, created.stderr).toBe(0);
    const key = KEY_LINE.exec(created.stdout)?.[1] ?? "";
    const gw = await spawnGateway(cfg.file);
    try {
      expect(gw.stderr()).not.toMatch(/pgadm_/);
      expect(await roles(gw.url, key)).toBe(200);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
    const { Redis } = await import("ioredis");
    const raw = new Redis(redis.url);
    try {
      const entries = await raw.xrange(stream, "-", "+");
      const fields = entries.map(([, f]) => Object.fromEntries(f.flatMap((v, i, a) => (i % 2 === 0 ? [[v, a[i + 1]]] : []))) as Record<string, string>);
      const mine = fields.find((f) => f.action === "admin_key.create");
      expect(mine?.kind).toBe("change");
      expect(JSON.parse(mine?.fields ?? "{}")).toMatchObject({ fingerprint: hashAdminKey(key).slice(0, 12) });
    } finally {
      raw.disconnect();
    }
  });

  it("is refused while admin keys are configured (the gateway would ignore a stored one)", async () => {
    const cfg = await writeConfig({ upstreamUrl: upstream.url });
    dirs.push(cfg.dir);
    const r = await runCli(["admin-key", "create", "--config", cfg.file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^patgate: admin keys are configured .* add the new key there instead\n$/);
  });
});
