import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { StoreUnavailableError } from "../../src/store/types.ts";
import type { Store } from "../../src/store/types.ts";
import { makePat, storeContract, waitUntil } from "./store.contract.ts";

storeContract("embedded", async () => {
  const dir = await mkdtemp(join(tmpdir(), "patgate-embedded-"));
  const file = join(dir, "store.json");
  let current: Store = await EmbeddedStore.open(file);
  return {
    store: current,
    reopen: async () => {
      await current.close();
      current = await EmbeddedStore.open(file);
      return current;
    },
    cleanup: async () => {
      await current.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** A pid that certainly belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  if (typeof r.pid !== "number") throw new Error("could not spawn a short-lived process");
  return r.pid;
}

describe("embedded store file and lock", () => {
  let dir: string;
  let file: string;
  const opened: Store[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "patgate-embedded-"));
    file = join(dir, "data", "store.json");
  });

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  const openStore = async (): Promise<EmbeddedStore> => {
    const s = await EmbeddedStore.open(file);
    opened.push(s);
    return s;
  };

  it("creates the directory and a 0600 file; no temp files remain", async () => {
    const s = await openStore();
    await s.insertPat(makePat());
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readdir(join(dir, "data"))).sort()).toEqual(["store.json", "store.json.lock"]);
  });

  it("refuses a second open of the same file while the first holds the lock", async () => {
    const s = await openStore();
    await expect(EmbeddedStore.open(file)).rejects.toThrow(/already open in this process/);
    await s.close();
    expect((await readdir(join(dir, "data"))).includes("store.json.lock")).toBe(false);
    await openStore();
  });

  it("takes over a lock left by a dead process", async () => {
    const s = await openStore();
    await s.putRole({ name: "r", operations: [] });
    await s.close();
    await writeFile(`${file}.lock`, `${deadPid()}\n`);
    const again = await openStore();
    expect(await again.getRole("r")).toEqual({ name: "r", operations: [] });
    expect((await readFile(`${file}.lock`, "utf8")).trim()).toBe(String(process.pid));
  });

  it("takes over a lock holding its own pid that it does not hold (a container restarted as pid 1)", async () => {
    const s = await openStore();
    await s.putRole({ name: "r", operations: [] });
    await s.close();
    await writeFile(`${file}.lock`, `${process.pid}\n`);
    const again = await openStore();
    expect(await again.getRole("r")).toEqual({ name: "r", operations: [] });
  });

  it("refuses a lock held by another live process", async () => {
    await openStore().then((s) => s.close());
    // pid 1 is always alive; it is not us (vitest workers are never pid 1).
    await writeFile(`${file}.lock`, "1\n");
    await expect(EmbeddedStore.open(file)).rejects.toThrow(/in use by process 1/);
  });

  it("refuses a lock file that holds no pid", async () => {
    await openStore().then((s) => s.close());
    await writeFile(`${file}.lock`, "garbage");
    await expect(EmbeddedStore.open(file)).rejects.toThrow(/holds no pid/);
  });

  it("refuses a corrupt file with an error naming it, and leaves it untouched", async () => {
    await openStore().then((s) => s.close());
    await writeFile(file, '{"format":"patgate-embedded-store","vers');
    const err = await EmbeddedStore.open(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/corrupt/);
    expect(await readFile(file, "utf8")).toBe('{"format":"patgate-embedded-store","vers');
    // The failed open released its lock.
    expect((await readdir(join(dir, "data"))).includes("store.json.lock")).toBe(false);
  });

  it("refuses a well-formed JSON file with a damaged record, naming the record", async () => {
    const s = await openStore();
    await s.insertPat(makePat());
    await s.close();
    const snapshot = JSON.parse(await readFile(file, "utf8")) as { pats: Record<string, unknown>[] };
    delete snapshot.pats[0]?.["scopes"];
    await writeFile(file, JSON.stringify(snapshot));
    await expect(EmbeddedStore.open(file)).rejects.toThrow(/store\.json is corrupt: pats\[0\]\.scopes/);
  });

  it("keeps every committed mutation after a crash (no close) and ignores a torn temp file", async () => {
    const p = makePat({ userId: "ivy", name: "keep" });
    const q = makePat({ userId: "ivy", name: "drop" });
    // The crash is real: another process commits the changes, then is SIGKILLed holding the lock.
    const script = `
      import { EmbeddedStore } from ${JSON.stringify(join(import.meta.dirname, "..", "..", "src", "store", "embedded.ts"))};
      const [p, q] = JSON.parse(process.env.PATS);
      const a = await EmbeddedStore.open(process.env.FILE);
      await a.insertPat(p);
      await a.insertPat(q);
      await a.replacePat({ ...p, revoked: true, revokedAt: 9 }, 1);
      await a.deletePat(q.id);
      await a.putDomain({ id: "d", name: "D", upstream: null, createdAt: 1 });
      await a.putMembership({ domainId: "d", userId: "ivy", roles: ["user"] });
      await a.putRole({ name: "user", operations: ["read"] });
      process.kill(process.pid, "SIGKILL");`;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, FILE: file, PATS: JSON.stringify([p, q]) }, encoding: "utf8" });
    expect(child.signal, child.stderr).toBe("SIGKILL");
    expect((await readdir(join(dir, "data"))).includes("store.json.lock")).toBe(true);
    await writeFile(`${file}.tmp-${deadPid()}-7`, '{"torn');

    const b = await openStore();
    expect(await b.getPat(p.id)).toEqual({ ...p, revoked: true, revokedAt: 9, version: 2 });
    expect(await b.getPat(q.id)).toBeNull();
    expect(await b.getDomain("d")).toEqual({ id: "d", name: "D", upstream: null, createdAt: 1 });
    expect(await b.getMembership("d", "ivy")).toEqual({ domainId: "d", userId: "ivy", roles: ["user"] });
    expect(await b.getRole("user")).toEqual({ name: "user", operations: ["read"] });
    expect((await readdir(join(dir, "data"))).sort()).toEqual(["store.json", "store.json.lock"]);
  });

  it("serializes concurrent mutations: all land, the file stays valid", async () => {
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

  it("persists coalesced last-used times on its own, without close()", async () => {
    const s = await openStore();
    const p = makePat();
    await s.insertPat(p);
    await s.touchPats(new Map([[p.id, 1_234_567]]));
    await waitUntil(async () => (await readFile(file, "utf8")).includes("1234567"), 5000, "the last-used flush");
  });

  it("rejects an invalid record without writing it", async () => {
    const s = await openStore();
    const p = makePat({ expiresAt: Number.NaN });
    await expect(s.insertPat(p)).rejects.toBeInstanceOf(TypeError);
    expect(await s.getPat(p.id)).toBeNull();
    expect(await readFile(file, "utf8")).not.toContain(p.id);
  });

  it("a failed write changes nothing and fails with StoreUnavailableError", async () => {
    const s = await openStore();
    const p = makePat();
    const events: unknown[] = [];
    s.subscribe((e) => events.push(e));
    // A non-empty directory where the file should be: the rename fails, even for root.
    await rm(file);
    await mkdir(join(file, "blocker"), { recursive: true });
    await expect(s.insertPat(p)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await s.getPat(p.id)).toBeNull();
    expect(events).toEqual([]);
    expect((await readdir(join(dir, "data"))).filter((n) => n.includes(".tmp-"))).toEqual([]);
    await rm(file, { recursive: true });
    expect(await s.insertPat(p)).toBe("ok");
    expect(events).toEqual([{ kind: "pat", id: p.id }]);
  });
});
