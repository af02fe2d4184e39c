// An installation of an earlier version (the JSON store file data/patgate.json
// and its generated data/pepper) upgraded in place: the gateway, started as a
// process on the shipped layout, migrates the file into data/patgate.db once,
// keeps it as data/patgate.json.migrated, and every token keeps working.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { generateAdminKey, hashAdminKey } from "../../src/admin/keys.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { newPat, rotatedPat } from "../../src/tokens/issue.ts";
import type { PatRecord } from "../../src/store/types.ts";
import { spawnGateway, writeConfig } from "../helpers/gateway.ts";

const CHAT = { entityType: "models", entityId: "llama3", operation: "llm_chat_completions" };

/** What an earlier version wrote: its snapshot format, field for field. */
function legacySnapshot(over: Record<string, unknown>): string {
  return JSON.stringify({ format: "patgate-embedded-store", version: 1, pats: [], domains: [], memberships: [], roles: [], adminKeys: [], ...over });
}

describe("upgrading from the JSON store file", () => {
  let upstream: FakeUpstream;
  beforeAll(async () => {
    upstream = await startFakeUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it("a gateway started on data/patgate.json migrates it once; every PAT keeps working; the file is kept", { timeout: 60_000 }, async () => {
    const cfg = await writeConfig({ upstreamUrl: upstream.url, adminKey: null, patch: (c) => void (c.security.pepper = "") });
    try {
      const data = path.join(cfg.dir, "data");
      await mkdir(data, { recursive: true, mode: 0o700 });
      // The old install's generated pepper, kept beside its store.
      const pepper = randomBytes(32);
      await writeFile(path.join(data, "pepper"), pepper.toString("hex") + "\n", { mode: 0o600 });
      const now = Date.now();
      const issued: { token: string; record: PatRecord }[] = [];
      for (let i = 0; i < 40; i++) issued.push(newPat(pepper, { userId: `user${i % 7}`, name: `pat ${i}`, scopes: [{ domainId: "d1", ...CHAT }], lifetimeMs: 86_400_000, now }));
      // One revoked, one rotated with its old secret still in its grace period.
      const revoked = issued[5];
      if (revoked === undefined) throw new Error("no PAT 5");
      revoked.record = { ...revoked.record, revoked: true, revokedAt: now, version: 2 };
      const rotated = rotatedPat(pepper, issued[6]?.record as PatRecord, 86_400_000, 3_600_000, now);
      const oldSecret = issued[6]?.token ?? "";
      issued[6] = rotated;
      const adminKey = generateAdminKey();
      const snapshot = legacySnapshot({
        pats: issued.map((x) => x.record),
        domains: [{ id: "d1", name: "D1", upstream: null, createdAt: now }],
        memberships: Array.from({ length: 7 }, (_, u) => ({ domainId: "d1", userId: `user${u}`, roles: ["chatter"] })),
        roles: [{ name: "chatter", operations: ["llm_chat_completions"] }],
        adminKeys: [{ id: "first", hash: hashAdminKey(adminKey), createdAt: now }],
      });
      await writeFile(path.join(data, "patgate.json"), snapshot, { mode: 0o600 });
      // The old store's lock, left by a process that is gone.
      await writeFile(path.join(data, "patgate.json.lock"), "999999999\n");

      const chat = (url: string, token: string): Promise<number> =>
        fetch(`${url}/proxy/d1/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: '{"model":"llama3","messages":[]}' }).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        });

      const gw = await spawnGateway(cfg.file);
      try {
        expect(gw.stdout()).toMatch(/"pats":40,"domains":1[^\n]*"msg":"migrated the JSON store file of an earlier version/);
        for (const [i, { token }] of issued.entries()) expect(await chat(gw.url, token), `PAT ${i}`).toBe(i === 5 ? 401 : 200);
        expect(await chat(gw.url, oldSecret)).toBe(200);
        // The stored first-start key was migrated too, and no new one was made.
        expect(gw.stderr()).not.toMatch(/pgadm_/);
        const roles = await fetch(`${gw.url}/roles`, { headers: { authorization: `Bearer ${adminKey}` } });
        expect(roles.status).toBe(200);
      } finally {
        expect(await gw.stop()).toBe(0);
      }
      expect((await readdir(data)).sort()).toEqual(["patgate.db", "patgate.json.migrated", "pepper"]);
      expect(await readFile(path.join(data, "patgate.json.migrated"), "utf8")).toBe(snapshot);

      // Deleting a token after the migration and starting again: the old file is never read again.
      const db = new DatabaseSync(path.join(data, "patgate.db"));
      db.prepare("DELETE FROM pats WHERE id = ?").run(issued[0]?.record.id ?? "");
      db.close();
      const again = await spawnGateway(cfg.file);
      try {
        expect(again.stdout()).not.toMatch(/migrated the JSON store file/);
        expect(await chat(again.url, issued[0]?.token ?? "")).toBe(401);
        expect(await chat(again.url, issued[1]?.token ?? "")).toBe(200);
      } finally {
        expect(await again.stop()).toBe(0);
      }
    } finally {
      await rm(cfg.dir, { recursive: true, force: true });
    }
  });
});

describe("the JSON file's migration, refusals", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const layout = async (): Promise<{ db: string; json: string }> => {
    const cfg = await writeConfig({ upstreamUrl: "http://127.0.0.1:9" });
    dirs.push(cfg.dir);
    await mkdir(path.join(cfg.dir, "data"), { recursive: true });
    return { db: path.join(cfg.dir, "data", "patgate.db"), json: path.join(cfg.dir, "data", "patgate.json") };
  };
  const pat = newPat(randomBytes(32), { userId: "u", name: "n", scopes: [], lifetimeMs: 60_000 }).record;

  it("refuses a damaged file, naming the record, and writes nothing", async () => {
    const { db, json } = await layout();
    const bad = legacySnapshot({ pats: [{ ...pat, scopes: "none" }] });
    await writeFile(json, bad);
    await expect(EmbeddedStore.open(db)).rejects.toThrow(/patgate\.json \(an earlier version's\) is corrupt: pats\[0\]\.scopes is not an array/);
    expect(await readFile(json, "utf8")).toBe(bad);
    // The schema was rolled back with the data: the next open tries again.
    const raw = new DatabaseSync(db);
    expect(raw.prepare("PRAGMA user_version").get()).toEqual({ user_version: 0 });
    raw.close();
    await writeFile(json, legacySnapshot({ pats: [pat] }));
    const s = await EmbeddedStore.open(db);
    expect(await s.getPat(pat.id)).toEqual(pat);
    await s.close();
  });

  it("refuses while an earlier version still holds the file's lock", async () => {
    const { db, json } = await layout();
    await writeFile(json, legacySnapshot({ pats: [pat] }));
    // pid 1 is always alive and never this test.
    await writeFile(`${json}.lock`, "1\n");
    await expect(EmbeddedStore.open(db)).rejects.toThrow(/is in use by process 1 \(a patgate of an earlier version\?\)/);
  });

  it("refuses to merge the file into a database that already holds data", async () => {
    const { db, json } = await layout();
    const s = await EmbeddedStore.open(db);
    await s.putRole({ name: "r", operations: [] });
    await s.close();
    await writeFile(json, legacySnapshot({ pats: [pat] }));
    await expect(EmbeddedStore.open(db)).rejects.toThrow(/only into an empty database. Move one of them away/);
  });

  it("finishes a migration that committed but crashed before keeping the file as a backup", async () => {
    const { db, json } = await layout();
    await writeFile(json, legacySnapshot({ pats: [pat] }));
    await (await EmbeddedStore.open(db)).close();
    // As if the process died between the commit and the rename: the file is back in place.
    const snapshot = await readFile(`${json}.migrated`, "utf8");
    await rm(`${json}.migrated`);
    await writeFile(json, snapshot);
    const s = await EmbeddedStore.open(db);
    expect(s.migration).toBeNull();
    expect(await s.getPat(pat.id)).toEqual(pat);
    await s.close();
    expect((await readdir(path.dirname(db))).filter((f) => f.startsWith("patgate.json"))).toEqual(["patgate.json.migrated"]);
  });
});
