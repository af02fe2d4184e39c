// Web page sessions live in the store. With the embedded store, in its
// database: a session survives a gateway restart, is honoured by a second
// gateway process on the same file, and a sign-out through one is refused at
// once by the other; the database holds only keyed hashes of the cookies, and
// a backup holds none. With Redis, the same between two replicas.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import type { RedisStore } from "../../src/store/redis.ts";
import { DatabaseSync } from "../../src/store/sqlite.ts";
import { runCli } from "../helpers/cli.ts";
import { spawnGateway, startGateway, writeConfig } from "../helpers/gateway.ts";
import { startRedis } from "../helpers/redis.ts";

type Spawned = Awaited<ReturnType<typeof spawnGateway>>;

let upstream: FakeUpstream;
let cfg: Awaited<ReturnType<typeof writeConfig>>;
const running: Spawned[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  cfg = await writeConfig({ upstreamUrl: upstream.url });
});
afterAll(async () => {
  for (const g of running.splice(0)) await g.stop();
  await upstream?.close();
});

async function start(): Promise<Spawned> {
  const g = await spawnGateway(cfg.file);
  running.push(g);
  return g;
}

async function stop(g: Spawned): Promise<void> {
  running.splice(running.indexOf(g), 1);
  expect(await g.stop()).toBe(0);
}

/** Signs in with the admin key through `url`; the cookie as `name=value` and its bare value. */
async function signIn(url: string): Promise<{ cookie: string; value: string }> {
  const res = await fetch(`${url}/ui/auth/admin-key`, { method: "POST", headers: { "content-type": "application/json", origin: url }, body: JSON.stringify({ key: cfg.adminKey }) });
  expect(res.status).toBe(204);
  const cookie = (res.headers.getSetCookie().find((c) => c.startsWith("__Host-patgate_session=")) ?? "").split(";")[0] ?? "";
  return { cookie, value: cookie.split("=")[1] ?? "" };
}

const me = async (url: string, cookie: string): Promise<[number, string | null]> => {
  const res = await fetch(`${url}/me`, { headers: { cookie } });
  const body = (await res.json()) as { kind?: string; error?: { code: string } };
  return [res.status, body.error?.code ?? body.kind ?? null];
};

const dbFile = (): string => path.join(cfg.dir, "data", "patgate.db");

function sessionRows(file: string): { id: string; value: string }[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare("SELECT id, value FROM ui_sessions").all() as { id: string; value: string }[];
  } finally {
    db.close();
  }
}

describe("web sessions in the embedded store's database", () => {
  it("survive a restart, are honoured by a second process on the file, and a sign-out on one ends them on the other", { timeout: 90_000 }, async () => {
    const first = await start();
    const { cookie } = await signIn(first.url);
    expect(await me(first.url, cookie)).toEqual([200, "operator"]);

    // The gateway is restarted: the session is still there.
    await stop(first);
    const a = await start();
    expect(await me(a.url, cookie)).toEqual([200, "operator"]);

    // A second gateway process on the same database honours it too.
    const b = await start();
    expect(await me(b.url, cookie)).toEqual([200, "operator"]);

    // Signed out through b: a refuses the cookie on its very next request.
    const out = await fetch(`${b.url}/ui/auth/logout`, { method: "POST", headers: { cookie, "sec-fetch-site": "same-origin" } });
    expect(out.status).toBe(204);
    expect(await me(a.url, cookie)).toEqual([401, "session_invalid"]);
    expect(await me(b.url, cookie)).toEqual([401, "session_invalid"]);

    // Id rotation across processes: a sign-in on a with b's old cookie gives a fresh id, the old one stays dead.
    const again = await signIn(a.url);
    expect(again.cookie).not.toBe(cookie);
    expect(await me(b.url, again.cookie)).toEqual([200, "operator"]);
  });

  it("stores only a keyed hash of the cookie (not the cookie, not its plain SHA-256), and a backup carries no sessions", { timeout: 60_000 }, async () => {
    const g = running[0] ?? (await start());
    const { value } = await signIn(g.url);
    const rows = sessionRows(dbFile());
    expect(rows.length).toBeGreaterThan(0);
    const plain = createHash("sha256").update(value).digest("base64url");
    const file = await readFile(dbFile());
    for (const r of rows) {
      expect(r.id).toMatch(/^session\.[A-Za-z0-9_-]{43}$/);
      expect(r.id).not.toContain(value);
      expect(r.id).not.toBe(`session.${plain}`);
      expect(r.value).not.toContain(value);
    }
    expect(file.includes(value)).toBe(false);

    const backup = path.join(cfg.dir, "backup.db");
    const r = await runCli(["backup", backup, "--config", cfg.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(sessionRows(backup)).toEqual([]);
    // …while the live database still has them.
    expect(sessionRows(dbFile()).length).toBe(rows.length);
  });
});

describe("web sessions in Redis", () => {
  it("are shared by two replicas, a sign-out on one ends them on the other, and Redis holds only keyed hashes", { timeout: 60_000 }, async () => {
    const redis = await startRedis();
    const a = await startGateway({ upstreamUrl: upstream.url, redisUrl: redis.url, keyPrefix: redis.keyPrefix });
    const b = await spawnGateway(a.configFile);
    try {
      const res = await fetch(`${a.url}/ui/auth/admin-key`, { method: "POST", headers: { "content-type": "application/json", origin: a.url }, body: JSON.stringify({ key: a.adminKey }) });
      expect(res.status).toBe(204);
      const cookie = (res.headers.getSetCookie().find((c) => c.startsWith("__Host-patgate_session=")) ?? "").split(";")[0] ?? "";
      const value = cookie.split("=")[1] ?? "";
      expect(await me(b.url, cookie)).toEqual([200, "operator"]);

      const keys = await (a.store as RedisStore).redis.keys(`${redis.keyPrefix}{pg}:ui-session:*`);
      expect(keys).toHaveLength(1);
      const id = (keys[0] ?? "").slice(`${redis.keyPrefix}{pg}:ui-session:`.length);
      expect(id).toMatch(/^session\.[A-Za-z0-9_-]{43}$/);
      expect(id).not.toContain(value);
      expect(id).not.toBe(`session.${createHash("sha256").update(value).digest("base64url")}`);

      const out = await fetch(`${b.url}/ui/auth/logout`, { method: "POST", headers: { cookie, "sec-fetch-site": "same-origin" } });
      expect(out.status).toBe(204);
      expect(await me(a.url, cookie)).toEqual([401, "session_invalid"]);
    } finally {
      expect(await b.stop()).toBe(0);
      await a.close();
      await redis.stop();
    }
  });
});
