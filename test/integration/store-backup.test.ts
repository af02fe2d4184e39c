// `patgate backup FILE` while a gateway is busy writing (domains, roles,
// members and PATs created through its API): each backup is one consistent
// snapshot. Restored, it holds every change acknowledged before the backup
// began, and for every PAT in it, the domain, role and membership created
// before that PAT: nothing torn. A gateway started on a restored copy
// authenticates its tokens.
import { copyFile, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { runCli } from "../helpers/cli.ts";
import { spawnGateway, writeConfig } from "../helpers/gateway.ts";

describe("online backup of the embedded store", () => {
  let upstream: FakeUpstream;
  const dirs: string[] = [];
  beforeAll(async () => {
    upstream = await startFakeUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("backups taken under write load restore to consistent stores", { timeout: 120_000 }, async () => {
    const cfg = await writeConfig({ upstreamUrl: upstream.url });
    dirs.push(cfg.dir);
    const gw = await spawnGateway(cfg.file);
    const admin = { authorization: `Bearer ${cfg.adminKey ?? ""}`, "content-type": "application/json" };
    const call = async (method: string, p: string, body: unknown): Promise<Record<string, unknown>> => {
      const r = await fetch(gw.url + p, { method, headers: admin, body: JSON.stringify(body) });
      const text = await r.text();
      if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${text}`);
      return text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
    };
    const scopeOf = (i: number) => ({ domain_id: `dom${i}`, entity_type: "models", entity_id: `model${i}`, operation: "llm_chat_completions" });
    // Step i, in this order, each acknowledged before the next: domain, role, membership, PAT.
    const tokens: string[] = [];
    let acked = 0;
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        await call("POST", "/domains", { id: `dom${i}`, name: `Domain ${i}` });
        await call("PUT", `/roles/role${i}`, { operations: ["llm_chat_completions", "llm_read"] });
        await call("PUT", `/domains/dom${i}/members/user${i}`, { roles: [`role${i}`] });
        const pat = await call("POST", `/pats?user_id=user${i}`, { name: `pat${i}`, duration: "1d", scopes: [scopeOf(i)] });
        tokens.push(String(pat.token));
        acked = i + 1;
      }
    })();

    const backups: { file: string; ackedBefore: number }[] = [];
    try {
      for (let b = 0; b < 4; b++) {
        await new Promise((r) => setTimeout(r, 300));
        const file = path.join(cfg.dir, `backup-${b}.db`);
        const ackedBefore = acked;
        const r = await runCli(["backup", file, "--config", cfg.file]);
        expect(r.stderr).toMatch(/^Backed up \d+ domains?, \d+ members?, \d+ roles?, 0 admin keys and \d+ PATs? of the embedded store .* to .*backup-\d\.db; SQLite's integrity check of the copy: ok\.\n$/);
        expect(r.code).toBe(0);
        backups.push({ file, ackedBefore });
      }
      // An existing file is not overwritten.
      const again = await runCli(["backup", backups[0]?.file ?? "", "--config", cfg.file]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/exists; pass --force to replace it/);
    } finally {
      stop = true;
      await writer;
      expect(await gw.stop()).toBe(0);
    }
    expect(acked).toBeGreaterThan(backups[0]?.ackedBefore ?? 0);

    for (const [n, b] of backups.entries()) {
      // Restore as the docs say: the file becomes data/patgate.db of a stopped gateway.
      const restored = await writeConfig({ upstreamUrl: upstream.url });
      dirs.push(restored.dir);
      const db = path.join(restored.dir, "data", "patgate.db");
      await mkdir(path.dirname(db), { recursive: true });
      await copyFile(b.file, db);
      const s = await EmbeddedStore.open(db);
      try {
        expect(await s.integrityCheck()).toEqual(["ok"]);
        const pats = new Map<string, { userId: string; scopes: unknown }>();
        for await (const page of s.allPats()) for (const p of page) pats.set(p.name, p);
        expect(pats.size, `backup ${n}`).toBeGreaterThanOrEqual(b.ackedBefore);
        for (let i = 0; i < b.ackedBefore; i++) expect(pats.has(`pat${i}`), `backup ${n}: pat${i}, acknowledged before it began`).toBe(true);
        for (const [name, p] of pats) {
          const i = Number(name.slice(3));
          expect(p.userId).toBe(`user${i}`);
          expect(p.scopes).toEqual([{ domainId: `dom${i}`, entityType: "models", entityId: `model${i}`, operation: "llm_chat_completions" }]);
          expect(await s.getDomain(`dom${i}`), `backup ${n}: the domain of ${name}`).not.toBeNull();
          expect(await s.getRole(`role${i}`), `backup ${n}: the role of ${name}`).toEqual({ name: `role${i}`, operations: ["llm_chat_completions", "llm_read"] });
          expect(await s.getMembership(`dom${i}`, `user${i}`), `backup ${n}: the membership of ${name}`).toEqual({ domainId: `dom${i}`, userId: `user${i}`, roles: [`role${i}`] });
        }
      } finally {
        await s.close();
      }
      if (n !== backups.length - 1) continue;
      // The same pepper as the source; a gateway on the restored copy takes the tokens.
      const same = await writeConfig({ upstreamUrl: upstream.url, pepperHex: cfg.pepper.toString("hex"), patch: (c) => void (c.store.embedded_path = db) });
      dirs.push(same.dir);
      const back = await spawnGateway(same.file);
      try {
        for (let i = 0; i < b.ackedBefore; i++) {
          const r = await fetch(`${back.url}/proxy/dom${i}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${tokens[i] ?? ""}`, "content-type": "application/json" }, body: JSON.stringify({ model: `model${i}`, messages: [] }) });
          await r.arrayBuffer();
          expect(r.status, `token ${i}`).toBe(200);
        }
      } finally {
        expect(await back.stop()).toBe(0);
      }
    }
  });
});
