import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { Statements } from "../../src/store/embedded-rows.ts";
import { MIGRATIONS, migrate } from "../../src/store/schema.ts";
import { StoreUnavailableError } from "../../src/store/types.ts";
import type { ChangeEvent, Store } from "../../src/store/types.ts";
import { makePat, storeContract, waitUntil } from "./store.contract.ts";
import { transferContract } from "./store-transfer.contract.ts";

const embeddedFixture = async (withPeer: boolean) => {
  const dir = await mkdtemp(join(tmpdir(), "patgate-embedded-"));
  const file = join(dir, "store.db");
  const opened: Store[] = [];
  const open = async (): Promise<Store> => {
    const s = await EmbeddedStore.open(file);
    opened.push(s);
    return s;
  };
  let current = await open();
  return {
    store: current,
    reopen: async () => {
      await current.close();
      current = await open();
      return current;
    },
    // A second connection to the same file: what another process on the machine sees.
    ...(withPeer ? { peer: open } : {}),
    cleanup: async () => {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
};

storeContract("embedded", () => embeddedFixture(false));
storeContract("embedded, observed through a second connection", () => embeddedFixture(true));
transferContract("embedded", () => embeddedFixture(false));

describe("embedded store file", () => {
  let dir: string;
  let file: string;
  const opened: Store[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "patgate-embedded-"));
    file = join(dir, "data", "store.db");
  });

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  const openStore = async (opts?: Parameters<typeof EmbeddedStore.open>[1]): Promise<EmbeddedStore> => {
    const s = await EmbeddedStore.open(file, opts);
    opened.push(s);
    return s;
  };

  /** A plain SQLite connection to the same file, as another process would hold. */
  const raw = (): DatabaseSync => {
    const db = new DatabaseSync(file);
    db.exec("PRAGMA busy_timeout = 1000");
    return db;
  };

  it("creates the directory (0700) and a 0600 database in WAL mode at the current schema version", async () => {
    const s = await openStore();
    await s.insertPat(makePat());
    expect((await stat(join(dir, "data"))).mode & 0o777).toBe(0o700);
    for (const f of await readdir(join(dir, "data"))) expect((await stat(join(dir, "data", f))).mode & 0o777, f).toBe(0o600);
    const db = raw();
    try {
      expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
      expect(db.prepare("PRAGMA user_version").get()).toEqual({ user_version: 4 });
    } finally {
      db.close();
    }
    expect(await s.integrityCheck()).toEqual(["ok"]);
  });

  it("the lookups the interface makes are index searches, never a scan of all PATs or memberships", async () => {
    const s = await openStore();
    await s.insertPat(makePat());
    const db = raw();
    try {
      const q = new Statements(db);
      const plan = (stmt: { sourceSQL: string }, ...args: (string | number)[]): string =>
        (db.prepare(`EXPLAIN QUERY PLAN ${stmt.sourceSQL}`).all(...args) as { detail: string }[]).map((r) => r.detail).join("; ");
      expect(plan(q.getPat, "x")).toMatch(/SEARCH pats USING INDEX sqlite_autoindex_pats_1 \(id=\?\)/);
      // Listing a user's PATs (and so filtering them by status) costs that user's PATs, not all of them.
      expect(plan(q.patsOfUser, "u")).toMatch(/SEARCH pats USING INDEX sqlite_autoindex_pats_2 \(user_id=\?\)/);
      expect(plan(q.nameHolder, "u", "n")).toMatch(/SEARCH pats USING (COVERING )?INDEX sqlite_autoindex_pats_2 \(user_id=\? AND name=\?\)/);
      expect(plan(q.membersOf, "d")).toMatch(/SEARCH memberships USING PRIMARY KEY \(domain_id=\?\)/);
      expect(plan(q.membershipsOf, "u")).toMatch(/SEARCH memberships USING (COVERING )?INDEX memberships_by_user \(user_id=\?\)/);
      expect(plan(q.getMember, "d", "u")).toMatch(/SEARCH memberships USING PRIMARY KEY \(domain_id=\? AND user_id=\?\)/);
      expect(plan(q.changesAfter, 0, 10)).toMatch(/SEARCH changes USING INTEGER PRIMARY KEY \(rowid>\?\)/);
      const lookups: [{ sourceSQL: string }, ...string[]][] = [[q.getPat, "x"], [q.patsOfUser, "u"], [q.nameHolder, "u", "n"], [q.membersOf, "d"], [q.membershipsOf, "u"], [q.getMember, "d", "u"]];
      for (const [stmt, ...args] of lookups) expect(plan(stmt, ...args)).not.toMatch(/\bSCAN\b/);
    } finally {
      db.close();
    }
  });

  it("refuses a file that is not a database, naming it, and leaves it untouched", async () => {
    await mkdir(join(dir, "data"), { recursive: true });
    await writeFile(file, "this is not a database, it is a text file that happens to be long enough ".repeat(20));
    const err = await EmbeddedStore.open(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/not a SQLite database or is damaged/);
    expect(await readFile(file, "utf8")).toMatch(/^this is not a database/);
  });

  it("refuses a JSON store file of an earlier version at the database path, saying what to configure", async () => {
    const json = join(dir, "data", "patgate.json");
    await mkdir(join(dir, "data"), { recursive: true });
    await writeFile(json, JSON.stringify({ format: "patgate-embedded-store", version: 1, pats: [], domains: [], memberships: [], roles: [] }));
    const err = await EmbeddedStore.open(json).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/a JSON store file of an earlier patgate/);
    expect((err as Error).message).toContain(join(dir, "data", "patgate.db"));
  });

  it("refuses a database written by a newer schema version", async () => {
    await openStore().then((s) => s.close());
    const db = raw();
    db.exec("PRAGMA user_version = 99");
    db.close();
    await expect(EmbeddedStore.open(file)).rejects.toThrow(/schema version 99, newer than this patgate understands \(4\)/);
  });

  it("brings a database of schema version 1 (before the web sessions table) up to version 2 on open, keeping its records", async () => {
    await mkdir(join(dir, "data"), { recursive: true });
    const old = new DatabaseSync(file);
    migrate(old, file, MIGRATIONS.slice(0, 1));
    old.prepare("INSERT INTO domains (id, name, upstream, created_at) VALUES ('d', 'D', NULL, 1)").run();
    expect(old.prepare("PRAGMA user_version").get()).toEqual({ user_version: 1 });
    old.close();
    const s = await EmbeddedStore.open(file);
    opened.push(s);
    expect(await s.getDomain("d")).toEqual({ id: "d", name: "D", upstream: null, createdAt: 1 });
    await s.putSession("session.x", "{}", Date.now() + 60_000);
    expect(await s.getSession("session.x", Date.now())).toBe("{}");
    const db = raw();
    try {
      expect(db.prepare("PRAGMA user_version").get()).toEqual({ user_version: 4 });
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${new Statements(db).getSession.sourceSQL}`).all("x", 0) as { detail: string }[]).map((r) => r.detail).join("; ");
      expect(plan).toMatch(/SEARCH ui_sessions USING PRIMARY KEY \(id=\?\)/);
    } finally {
      db.close();
    }
  });

  it("keeps every committed change after a SIGKILL (no close)", async () => {
    const p = makePat({ userId: "ivy", name: "keep" });
    const q = makePat({ userId: "ivy", name: "drop" });
    // The crash is real: another process commits the changes, then is SIGKILLed with the database open.
    const script = `
      import { EmbeddedStore } from ${JSON.stringify(join(import.meta.dirname, "..", "..", "src", "store", "embedded.ts"))};
      const [p, q] = JSON.parse(process.env.PATS);
      const a = await EmbeddedStore.open(process.env.FILE);
      await a.insertPat(p);
      await a.insertPat(q);
      await a.replacePat({ ...p, revoked: true, revokedAt: 9 }, 1);
      await a.deletePat(q.id);
      await a.touchPats(new Map([[p.id, 1234]]));
      await a.putDomain({ id: "d", name: "D", upstream: null, createdAt: 1 });
      await a.putMembership({ domainId: "d", userId: "ivy", roles: ["user"] });
      await a.putRole({ name: "user", operations: ["read"] });
      process.kill(process.pid, "SIGKILL");`;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, FILE: file, PATS: JSON.stringify([p, q]) }, encoding: "utf8" });
    expect(child.signal, child.stderr).toBe("SIGKILL");
    // The log was not checkpointed into the file: recovery reads it.
    expect((await readdir(join(dir, "data"))).sort()).toEqual(["store.db", "store.db-shm", "store.db-wal"]);

    const b = await openStore();
    expect(await b.getPat(p.id)).toEqual({ ...p, revoked: true, revokedAt: 9, version: 2, lastUsedAt: 1234 });
    expect(await b.getPat(q.id)).toBeNull();
    expect(await b.getDomain("d")).toEqual({ id: "d", name: "D", upstream: null, createdAt: 1 });
    expect(await b.getMembership("d", "ivy")).toEqual({ domainId: "d", userId: "ivy", roles: ["user"] });
    expect(await b.getRole("user")).toEqual({ name: "user", operations: ["read"] });
    expect(await b.integrityCheck()).toEqual(["ok"]);
  });

  it("serializes concurrent mutations: all land", async () => {
    const s = await openStore();
    const pats = Array.from({ length: 40 }, (_, i) => makePat({ userId: `u${i % 4}` }));
    await Promise.all([
      ...pats.map((p) => s.insertPat(p)),
      ...Array.from({ length: 20 }, (_, i) => s.putRole({ name: `role${i}`, operations: ["read"] })),
    ]);
    await s.close();
    const again = await openStore();
    for (const p of pats) expect(await again.getPat(p.id)).toEqual(p);
    expect(await again.listRoles()).toHaveLength(20);
  });

  it("rejects an invalid record with a TypeError and writes nothing", async () => {
    const s = await openStore();
    for (const bad of [makePat({ expiresAt: Number.NaN }), makePat({ issuedAt: 1.5 }), { ...makePat(), scopes: [{ domainId: "d" }] } as never]) {
      await expect(s.insertPat(bad)).rejects.toBeInstanceOf(TypeError);
      expect(await s.getPat((bad as { id: string }).id)).toBeNull();
    }
    await expect(s.putMembership({ domainId: "d", userId: "u", roles: [7] } as never)).rejects.toThrow(/membership\.roles\[0\] is not a string/);
  });

  it("a large last-used flush is written in chunks, with the event loop served between them", async () => {
    const s = await openStore();
    const pats = Array.from({ length: 3000 }, (_, i) => makePat({ userId: `bulk${i % 50}` }));
    await s.bulkLoad({ domains: [], memberships: [], roles: [], adminKeys: [], pats });
    let turns = 0;
    let done = false;
    const tick = (): void => {
      if (done) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    await s.touchPats(new Map(pats.map((p, i) => [p.id, 1_000_000 + i])));
    done = true;
    // 3000 PATs are six transactions of 500: the loop turned between them.
    expect(turns).toBeGreaterThanOrEqual(5);
    expect((await s.getPat(pats[2999]?.id ?? ""))?.lastUsedAt).toBe(1_002_999);
  });

  it("waits for another process's write lock without blocking the event loop, and fails after lockTimeoutMs", async () => {
    const s = await openStore({ lockTimeoutMs: 400 });
    const other = raw();
    try {
      other.exec("BEGIN IMMEDIATE");
      let turns = 0;
      const timer = setInterval(() => turns++, 5);
      const put = s.putRole({ name: "waits", operations: [] });
      await new Promise((r) => setTimeout(r, 100));
      other.exec("COMMIT");
      await put;
      clearInterval(timer);
      expect(turns).toBeGreaterThan(5);
      expect(await s.getRole("waits")).toEqual({ name: "waits", operations: [] });

      other.exec("BEGIN IMMEDIATE");
      const err = await s.putRole({ name: "never", operations: [] }).catch((e: unknown) => e);
      other.exec("ROLLBACK");
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toMatch(/stayed locked by another process for 400 ms/);
      expect(await s.getRole("never")).toBeNull();
      // And the queue goes on.
      await s.putRole({ name: "after", operations: [] });
    } finally {
      if (other.isTransaction) other.exec("ROLLBACK");
      other.close();
    }
  });

  it("a second connection hears changes within the poll interval, in commit order, and a reset after it fell behind the pruned rows", async () => {
    const a = await openStore();
    const b = await openStore();
    const heard: ChangeEvent[] = [];
    b.subscribe((e) => heard.push(e));
    const p = makePat();
    await a.insertPat(p);
    await a.deletePat(p.id);
    await waitUntil(() => heard.length >= 2, 2000, "b to hear both changes");
    expect(heard).toEqual([{ kind: "pat", id: p.id }, { kind: "pat", id: p.id }]);

    // b's cursor is now behind rows another process pruned: it cannot know what it missed.
    const db = raw();
    db.prepare("INSERT INTO meta (key, value) VALUES ('pruned_through', '1000000') ON CONFLICT (key) DO UPDATE SET value = excluded.value").run();
    db.close();
    await waitUntil(() => heard.some((e) => e.kind === "reset"), 2000, "a reset");
    expect(b.eventsLive()).toBe(true);
  });

  it("a failed write changes nothing and fails with StoreUnavailableError", async () => {
    const s = await openStore();
    const events: unknown[] = [];
    s.subscribe((e) => events.push(e));
    // Another connection's trigger makes the next PAT insert fail inside SQLite.
    const db = raw();
    db.exec("CREATE TRIGGER no_inserts BEFORE INSERT ON pats BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    const p = makePat();
    const err = await s.insertPat(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/disk says no/);
    expect(await s.getPat(p.id)).toBeNull();
    expect(events).toEqual([]);
    db.exec("DROP TRIGGER no_inserts");
    db.close();
    expect(await s.insertPat(p)).toBe("ok");
    expect(events).toEqual([{ kind: "pat", id: p.id }]);
  });
});
