// Crash safety of the embedded store: a gateway process is SIGKILLed 20 times
// at random moments while it creates and revokes PATs (management API) and
// flushes last-used times (data-plane traffic, flushed every 20 ms). After
// every kill the next gateway starts on the same file, and every change that
// was acknowledged before the kill (a 201 or 200 received) is there, tokens
// answer as they should, and SQLite's integrity check passes.
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { ROOT, spawnGateway, writeConfig } from "../helpers/gateway.ts";

const KILLS = 20;
const ENTRY = path.join(ROOT, "test", "helpers", "crash-gateway.ts");
const USERS = 5;

interface Issued {
  readonly id: string;
  readonly user: string;
  readonly token: string;
  revoked: boolean;
  /** A revoke was sent and never answered: it may or may not have committed. */
  unsure: boolean;
}

describe("SIGKILL during writes, embedded store", () => {
  let upstream: FakeUpstream;
  let dir = "";
  beforeAll(async () => {
    upstream = await startFakeUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it(`never loses an acknowledged change or corrupts the database over ${KILLS} kills`, { timeout: 180_000 }, async () => {
    const cfg = await writeConfig({ upstreamUrl: upstream.url });
    dir = cfg.dir;
    const dbFile = path.join(cfg.dir, "data", "patgate.db");
    const admin = { authorization: `Bearer ${cfg.adminKey ?? ""}`, "content-type": "application/json" };
    const issued: Issued[] = [];
    let kills = 0;
    let unanswered = 0;

    const checkAcknowledged = async (url: string): Promise<void> => {
      // Another connection to the file, beside the new gateway: what is committed.
      const s = await EmbeddedStore.open(dbFile);
      try {
        expect(await s.integrityCheck()).toEqual(["ok"]);
        for (const p of issued) {
          const rec = await s.getPat(p.id);
          expect(rec, `PAT ${p.id}, acknowledged before kill ${kills}`).not.toBeNull();
          if (p.revoked) expect(rec?.revoked, `revocation of ${p.id}, acknowledged before kill ${kills}`).toBe(true);
          else if (!p.unsure) expect(rec?.revoked, `${p.id}, never revoked`).toBe(false);
          // A revoke that got no answer may have committed; from here on it counts as what it turned out to be.
          if (p.unsure) {
            p.revoked = rec?.revoked === true;
            p.unsure = false;
          }
        }
      } finally {
        await s.close();
      }
      const raw = new DatabaseSync(dbFile, { readOnly: true });
      try {
        expect(raw.prepare("PRAGMA integrity_check").all()).toEqual([{ integrity_check: "ok" }]);
      } finally {
        raw.close();
      }
      // And the gateway answers for them: the newest ones and a random sample of the rest.
      const sample = [...issued.slice(-10), ...Array.from({ length: 20 }, () => issued[Math.floor(Math.random() * issued.length)]).filter((p) => p !== undefined)];
      for (const p of sample) expect(await chat(url, p.token), `token of ${p.id}`).toBe(p.revoked ? 401 : 200);
    };

    const chat = (url: string, token: string): Promise<number> =>
      fetch(`${url}/proxy/d1/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: '{"model":"llama3","messages":[]}' }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      });

    for (let round = 0; round <= KILLS; round++) {
      const gw = await spawnGateway(cfg.file, [ENTRY]);
      try {
        if (round === 0) {
          const dom = await fetch(`${gw.url}/domains`, { method: "POST", headers: admin, body: JSON.stringify({ id: "d1" }) });
          expect(dom.status).toBe(201);
          for (let u = 0; u < USERS; u++) {
            const m = await fetch(`${gw.url}/domains/d1/members/user${u}`, { method: "PUT", headers: admin, body: JSON.stringify({ roles: ["developer"] }) });
            expect(m.status).toBeLessThan(300);
          }
        }
        await checkAcknowledged(gw.url);
        if (round === KILLS) break;

        let running = true;
        const create = async (): Promise<void> => {
          for (let n = 0; running; n++) {
            const user = `user${(round + n) % USERS}`;
            const body = JSON.stringify({ name: `r${round}-n${n}-${Math.random().toString(36).slice(2, 8)}`, duration: "1d", scopes: [{ domain_id: "d1", entity_type: "models", entity_id: "llama3", operation: "llm_chat_completions" }] });
            const r = await fetch(`${gw.url}/pats?user_id=${user}`, { method: "POST", headers: admin, body });
            const j = (await r.json()) as { id: string; token: string };
            // Only what was answered counts as acknowledged.
            if (r.status === 201) issued.push({ id: j.id, user, token: j.token, revoked: false, unsure: false });
          }
        };
        const revoke = async (): Promise<void> => {
          while (running) {
            const open = issued.filter((p) => !p.revoked && !p.unsure);
            const p = open[Math.floor(Math.random() * open.length)];
            if (p === undefined) {
              await new Promise((r) => setTimeout(r, 5));
              continue;
            }
            p.unsure = true;
            const r = await fetch(`${gw.url}/pats/${p.id}/secret/revoke?user_id=${p.user}`, { method: "PATCH", headers: admin });
            await r.arrayBuffer();
            if (r.status === 200) p.revoked = true;
            p.unsure = false;
          }
        };
        const use = async (): Promise<void> => {
          while (running) {
            const p = issued[Math.floor(Math.random() * issued.length)];
            if (p === undefined) await new Promise((r) => setTimeout(r, 5));
            else await chat(gw.url, p.token);
          }
        };
        const work = Promise.all([create(), create(), revoke(), use(), use()].map((w) => w.catch(() => void unanswered++)));
        // Kill at a random moment of the traffic.
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
        const exited = new Promise((r) => gw.child.once("exit", r));
        gw.child.kill("SIGKILL");
        await exited;
        kills++;
        running = false;
        await work;
      } finally {
        if (gw.child.exitCode === null && gw.child.signalCode === null) await gw.stop();
      }
    }
    expect(kills).toBe(KILLS);
    // The kills landed in the middle of requests, and there was plenty acknowledged to check.
    expect(unanswered).toBeGreaterThan(0);
    expect(issued.length).toBeGreaterThan(KILLS * 5);
    expect(issued.filter((p) => p.revoked).length).toBeGreaterThan(KILLS);
  });
});
