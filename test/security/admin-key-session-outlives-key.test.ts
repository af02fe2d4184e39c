// Finding: a web session made with an admin key kept its operator powers for
// its whole lifetime (up to ui.session_max, 12 h) after that key was removed:
// from the config (and the gateway restarted, the session kept in the store),
// or from the store (`patgate admin-key create` replacing a leaked first-start
// key). The session now records the key's fingerprint and re-checks it on
// every use; a removed key ends it.
import { readFile, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { runCli } from "../helpers/cli.ts";
import { spawnGateway, startGateway, writeConfig } from "../helpers/gateway.ts";

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

async function signIn(url: string, key: string): Promise<string> {
  const res = await fetch(`${url}/ui/auth/admin-key`, { method: "POST", headers: { "content-type": "application/json", origin: url }, body: JSON.stringify({ key }) });
  expect(res.status).toBe(204);
  return (res.headers.getSetCookie().find((c) => c.startsWith("__Host-patgate_session=")) ?? "").split(";")[0] ?? "";
}

/** What the operator's session can do: list every user's PATs. */
async function operatorCall(url: string, cookie: string): Promise<[number, string | null]> {
  const res = await fetch(`${url}/admin/pats?user_id=alice`, { headers: { cookie } });
  const body = (await res.json()) as { error?: { code: string } };
  return [res.status, body.error?.code ?? null];
}

describe("a web session made with an admin key ends when the key is removed", () => {
  it("from the config: after the restart that applies it, the session is refused while one made with a kept key works", { timeout: 60_000 }, async () => {
    const kept = `pgadm_kept_${randomBytes(24).toString("hex")}`;
    const cfg = await writeConfig({ upstreamUrl: upstream.url, patch: (c) => ((c.auth as { admin_keys: string[] }).admin_keys.push(kept)) });
    const removed = cfg.adminKey ?? "";
    let g = await spawnGateway(cfg.file);
    try {
      const old = await signIn(g.url, removed);
      const other = await signIn(g.url, kept);
      expect(await operatorCall(g.url, old)).toEqual([200, null]);
      expect(await g.stop()).toBe(0);

      const yaml = parse(await readFile(cfg.file, "utf8")) as { auth: { admin_keys: string[] } };
      yaml.auth.admin_keys = [kept];
      await writeFile(cfg.file, stringify(yaml));
      g = await spawnGateway(cfg.file);
      expect(await operatorCall(g.url, old)).toEqual([401, "session_invalid"]);
      expect(await operatorCall(g.url, other)).toEqual([200, null]);
      const state = (await (await fetch(`${g.url}/ui/auth/session`, { headers: { cookie: old } })).json()) as { signed_in: boolean };
      expect(state.signed_in).toBe(false);
    } finally {
      await g.stop();
    }
  });

  it("from the store: `patgate admin-key create` replacing the first-start key ends that key's sessions at once", { timeout: 60_000 }, async () => {
    const gw = await startGateway({ upstreamUrl: upstream.url, adminKey: null });
    try {
      const first = gw.printedAdminKeys[0] ?? "";
      expect(first).toMatch(/^pgadm_/);
      const cookie = await signIn(gw.url, first);
      expect(await operatorCall(gw.url, cookie)).toEqual([200, null]);

      const r = await runCli(["admin-key", "create", "--config", gw.configFile]);
      expect(r.code, r.stderr).toBe(0);
      const fresh = r.stdout.trim();
      // No restart: the running gateway refuses the old key's session on its next use…
      expect(await operatorCall(gw.url, cookie)).toEqual([401, "session_invalid"]);
      // …and a session made with the new key works.
      expect(await operatorCall(gw.url, await signIn(gw.url, fresh))).toEqual([200, null]);
    } finally {
      await gw.close();
    }
  });
});
