// Finding (SPEC §8): "services that start open when auth is not configured".
// A gateway started with no admin key and no OIDC issuer does not serve the
// management API to anyone: its first start creates an admin key, prints it
// once (to stderr, never to the log), stores only its hash, and every request
// without that key is 401. A restart prints nothing new.
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENDPOINTS } from "../../src/admin/api.ts";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { spawnGateway, writeConfig } from "../helpers/gateway.ts";

describe("the management API with no auth configured", () => {
  let upstream: FakeUpstream;
  let cfg: Awaited<ReturnType<typeof writeConfig>>;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    cfg = await writeConfig({ upstreamUrl: upstream.url, adminKey: null });
  });
  afterAll(async () => {
    await upstream?.close();
    if (cfg !== undefined) await rm(cfg.dir, { recursive: true, force: true });
  });

  it("refuses everyone but the holder of the key the first start printed once", async () => {
    const first = await spawnGateway(cfg.file);
    const printed = (): string[] => [...first.stderr().matchAll(/pgadm_[A-Za-z0-9_-]{43}/g)].map((m) => m[0]);
    // stderr and stdout are separate pipes: the key may arrive just after the "listening" line.
    for (let i = 0; i < 100 && printed().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const key = printed()[0] ?? "";
    try {
      expect(printed()).toHaveLength(1);

      for (const e of ENDPOINTS) {
        const p = e.path.replace("{id}", "00000000-0000-4000-8000-000000000000").replace(/\{[a-z_]+\}/g, "x");
        const r = await fetch(first.url + p, { method: e.method });
        expect(r.status, `${e.method} ${e.path}`).toBe(401);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe("missing_credential");
      }
      const wrong = await fetch(`${first.url}/roles`, { headers: { authorization: `Bearer pgadm_${"A".repeat(43)}` } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${first.url}/roles`, { headers: { authorization: `Bearer ${key}` } });
      expect(right.status).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // Never in the log (stdout), and only its hash in the store file.
    expect(first.stdout()).not.toContain(key);
    const data = await readFile(path.join(cfg.dir, "data", "patgate.db"), "latin1");
    expect(data).not.toContain(key);
    expect(data).toContain(createHash("sha256").update(key).digest("hex"));

    const second = await spawnGateway(cfg.file);
    try {
      expect(second.stderr()).not.toMatch(/pgadm_/);
      const again = await fetch(`${second.url}/roles`, { headers: { authorization: `Bearer ${key}` } });
      expect(again.status).toBe(200);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});
