// Audit events (issue 4, item 2): every management change, driven through the
// API, leaves exactly one `"msg":"audit"` log line naming the actor, the target
// and what it was before and after; with audit.redis_stream the same events
// are appended to a Redis Stream. No line and no stream entry holds a PAT, a
// secret hash or an admin key.
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.ts";
import { loadSettings } from "../../src/config/config.ts";
import { startFakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { AdminClient, scope, startAdminFixture, type AdminFixture, type PatJson } from "../helpers/admin.ts";
import { LogCapture, writeConfig } from "../helpers/gateway.ts";
import { startRedis, type RedisHandle } from "../helpers/redis.ts";

const CHAT = scope("d1", "models", "llama3", "llm_chat_completions");
const READ = scope("d1", "models", "*", "llm_read");
// pino's own fields and the ones the admin API adds to every audit line.
const ENVELOPE = ["level", "time", "pid", "hostname", "service", "msg", "audit", "req_id", "actor"];
const TOKEN = /pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{49}/;

type Rec = Record<string, unknown>;

/** What one audit line must say: its event, actor, target fields and before/after. */
interface Expected {
  readonly event: string;
  readonly actor: string;
  readonly fields: Rec;
}

interface Run {
  /** Every audit line the changes produced, in order. */
  readonly lines: Rec[];
  /** Every secret that went by: tokens, secret hashes, the admin key and its hash. */
  readonly secrets: string[];
}

/**
 * Makes every kind of management change once (some twice, to see a non-empty
 * "before"), checking after each that it produced exactly one audit line with
 * the expected actor, target and before/after.
 */
async function driveEveryChange(fx: AdminFixture): Promise<Run> {
  const ops = fx.ops;
  const alice = await fx.user("alice");
  const adminKey = fx.gw.adminKey ?? "";
  const adminKeyHash = createHash("sha256").update(adminKey).digest("hex");
  const operator = `admin:${adminKeyHash.slice(0, 12)}`;
  const secrets = [adminKey, adminKeyHash];
  const lines: Rec[] = [];
  let seen = auditLines(fx).length;

  /** Runs one change; it must answer `status` and leave exactly one audit line matching `expected`. */
  async function step<T>(call: () => Promise<{ status: number; text: string; body: T }>, status: number, expected: (body: T) => Expected): Promise<T> {
    const r = await call();
    expect(r.status, r.text).toBe(status);
    const all = auditLines(fx);
    const fresh = all.slice(seen);
    seen = all.length;
    const want = expected(r.body);
    expect(fresh.map((l) => l.audit), `audit lines for ${want.event}`).toEqual([want.event]);
    const line = fresh[0] as Rec;
    expect(line.actor).toBe(want.actor);
    expect(typeof line.req_id).toBe("string");
    expect(withoutEnvelope(line)).toEqual(want.fields);
    lines.push(line);
    return r.body;
  }

  /** Records the PAT's current secret hashes, so the final check can look for them. */
  async function keepHashes(id: string): Promise<void> {
    const rec = await fx.gw.store.getPat(id);
    if (rec === null) throw new Error(`PAT ${id} is gone`);
    secrets.push(rec.secretHash);
    if (rec.prevSecretHash !== null) secrets.push(rec.prevSecretHash);
  }

  // Domains.
  await step(() => ops.post("/domains", { id: "d1", name: "Domain one" }), 201, () => ({
    event: "domain.create", actor: operator,
    fields: { domain: "d1", upstream: null, before: null, after: { name: "Domain one", upstream: null } },
  }));
  await step(() => ops.patch("/domains/d1", { name: "Domain 1", upstream: "default" }), 200, () => ({
    event: "domain.update", actor: operator,
    fields: { domain: "d1", upstream: "default", before: { name: "Domain one", upstream: null }, after: { name: "Domain 1", upstream: "default" } },
  }));
  await step(() => ops.post("/domains", { id: "d2" }), 201, () => ({
    event: "domain.create", actor: operator,
    fields: { domain: "d2", upstream: null, before: null, after: { name: "d2", upstream: null } },
  }));

  // Members.
  await step(() => ops.put("/domains/d1/members/alice", { roles: ["viewer"] }), 201, () => ({
    event: "member.put", actor: operator,
    fields: { domain: "d1", user_id: "alice", roles: ["viewer"], before: null, after: { roles: ["viewer"] } },
  }));
  await step(() => ops.put("/domains/d1/members/alice", { roles: ["developer", "viewer"] }), 200, () => ({
    event: "member.put", actor: operator,
    fields: { domain: "d1", user_id: "alice", roles: ["developer", "viewer"], before: { roles: ["viewer"] }, after: { roles: ["developer", "viewer"] } },
  }));
  await step(() => ops.put("/domains/d2/members/bob", { roles: ["viewer"] }), 201, () => ({
    event: "member.put", actor: operator,
    fields: { domain: "d2", user_id: "bob", roles: ["viewer"], before: null, after: { roles: ["viewer"] } },
  }));

  // Roles: a new stored role, one overriding a config role, and their deletes.
  await step(() => ops.put("/roles/auditor", { operations: ["read"] }), 201, () => ({
    event: "role.put", actor: operator,
    fields: { role: "auditor", operations: ["read"], before: null, after: { operations: ["read"], source: "stored" } },
  }));
  await step(() => ops.put("/roles/auditor", { operations: ["read", "audit_log_read"] }), 200, () => ({
    event: "role.put", actor: operator,
    fields: { role: "auditor", operations: ["read", "audit_log_read"], before: { operations: ["read"], source: "stored" }, after: { operations: ["read", "audit_log_read"], source: "stored" } },
  }));
  await step(() => ops.put("/roles/viewer", { operations: ["read"] }), 201, () => ({
    event: "role.put", actor: operator,
    fields: { role: "viewer", operations: ["read"], before: { operations: ["read", "llm_read"], source: "config" }, after: { operations: ["read"], source: "stored" } },
  }));
  await step(() => ops.delete("/roles/viewer"), 204, () => ({
    event: "role.delete", actor: operator,
    fields: { role: "viewer", before: { operations: ["read"], source: "stored" }, after: { operations: ["read", "llm_read"], source: "config" } },
  }));
  await step(() => ops.delete("/roles/auditor"), 204, () => ({
    event: "role.delete", actor: operator,
    fields: { role: "auditor", before: { operations: ["read", "audit_log_read"], source: "stored" }, after: null },
  }));

  // PATs, by their owner (a user signed in with a JWT).
  const pat = await step(() => alice.post<PatJson>("/pats", { name: "ci", description: "for CI", duration: "30d", scopes: [CHAT] }), 201, (p) => ({
    event: "pat.create", actor: "user:alice",
    fields: {
      pat_id: p.id, user_id: "alice", scopes: [CHAT],
      before: null, after: { name: "ci", description: "for CI", scopes: [CHAT], expires_at: p.expires_at, revoked: false },
    },
  }));
  secrets.push(pat.token ?? "");
  await keepHashes(pat.id);
  const target = { pat_id: pat.id, user_id: "alice" };

  await step(() => alice.patch(`/pats/${pat.id}/name`, { name: "ci-2" }), 200, () => ({
    event: "pat.rename", actor: "user:alice", fields: { ...target, before: { name: "ci" }, after: { name: "ci-2" } },
  }));
  await step(() => alice.patch(`/pats/${pat.id}/description`, { description: "for the CI runners" }), 200, () => ({
    event: "pat.describe", actor: "user:alice", fields: { ...target, before: { description: "for CI" }, after: { description: "for the CI runners" } },
  }));
  await step(() => alice.patch(`/pats/${pat.id}/scope/add`, { scopes: [READ] }), 200, () => ({
    event: "pat.scope_add", actor: "user:alice", fields: { ...target, scopes: [READ], before: { scopes: [CHAT] }, after: { scopes: [CHAT, READ] } },
  }));
  await step(() => alice.patch(`/pats/${pat.id}/scope/remove`, { scopes: [CHAT] }), 200, () => ({
    event: "pat.scope_remove", actor: "user:alice", fields: { ...target, scopes: [CHAT], before: { scopes: [CHAT, READ] }, after: { scopes: [READ] } },
  }));
  await step(() => alice.delete(`/pats/${pat.id}/scope`), 204, () => ({
    event: "pat.scope_clear", actor: "user:alice", fields: { ...target, before: { scopes: [READ] }, after: { scopes: [] } },
  }));
  const rotated = await step(() => alice.patch<PatJson>(`/pats/${pat.id}/secret/reset`, { duration: "60d", grace_period: "1h" }), 200, (p) => ({
    event: "pat.rotate", actor: "user:alice",
    fields: {
      ...target, grace_ms: 3_600_000,
      before: { expires_at: pat.expires_at, previous_secret_expires_at: null },
      after: { expires_at: p.expires_at, previous_secret_expires_at: p.previous_secret_expires_at },
    },
  }));
  expect(rotated.previous_secret_expires_at).not.toBeNull();
  expect(rotated.expires_at).not.toBe(pat.expires_at);
  secrets.push(rotated.token ?? "");
  await keepHashes(pat.id);

  // An operator revokes and deletes it (?user_id= optional for them).
  const revoked = await step(() => ops.patch<PatJson>(`/pats/${pat.id}/secret/revoke`), 200, (p) => ({
    event: "pat.revoke", actor: operator,
    fields: { ...target, reason: null, before: { revoked: false, revoked_at: null }, after: { revoked: true, revoked_at: p.revoked_at } },
  }));
  expect(revoked.revoked_at).not.toBeNull();
  await step(() => ops.delete(`/pats/${pat.id}`), 204, () => ({
    event: "pat.delete", actor: operator,
    fields: { ...target, before: { name: "ci-2", description: "for the CI runners", scopes: [], expires_at: rotated.expires_at, revoked: true }, after: null },
  }));

  // Deleting all of a user's PATs names each one.
  const made: PatJson[] = [];
  for (const name of ["a", "b"]) {
    made.push(await step(() => ops.post<PatJson>("/pats?user_id=alice", { name, duration: "1d", scopes: [CHAT] }), 201, (p) => ({
      event: "pat.create", actor: operator,
      fields: { pat_id: p.id, user_id: "alice", scopes: [CHAT], before: null, after: { name, description: "", scopes: [CHAT], expires_at: p.expires_at, revoked: false } },
    })));
  }
  for (const p of made) {
    secrets.push(p.token ?? "");
    await keepHashes(p.id);
  }
  await step(() => ops.delete("/pats?user_id=alice"), 200, () => ({
    event: "pat.delete_all", actor: operator,
    fields: {
      user_id: "alice", deleted: 2,
      before: { pats: expect.arrayContaining(made.map((p) => ({ pat_id: p.id, name: p.name }))) as unknown },
      after: { pats: [] },
    },
  }));

  // Membership and domain deletes say what went.
  await step(() => ops.delete("/domains/d1/members/alice"), 204, () => ({
    event: "member.delete", actor: operator, fields: { domain: "d1", user_id: "alice", before: { roles: ["developer", "viewer"] }, after: null },
  }));
  await step(() => ops.delete("/domains/d2"), 204, () => ({
    event: "domain.delete", actor: operator,
    fields: { domain: "d2", before: { name: "d2", upstream: null, members: [{ user_id: "bob", roles: ["viewer"] }] }, after: null },
  }));

  // Refusals change nothing and leave no audit line.
  expect((await ops.delete("/domains/d2")).status).toBe(404);
  expect((await alice.patch(`/pats/${pat.id}/name`, { name: "x" })).status).toBe(404);
  expect(auditLines(fx).length).toBe(seen);

  for (const s of secrets) expect(s.length).toBeGreaterThanOrEqual(32);
  return { lines, secrets };
}

function auditLines(fx: AdminFixture): Rec[] {
  return fx.gw.logs.records().filter((r) => r.msg === "audit");
}

function withoutEnvelope(line: Rec): Rec {
  return Object.fromEntries(Object.entries(line).filter(([k]) => !ENVELOPE.includes(k)));
}

/** No secret, no token-shaped string and no secret-hash field anywhere in `texts`. */
function expectNoSecrets(texts: readonly string[], secrets: readonly string[]): void {
  expect(texts.length).toBeGreaterThan(0);
  for (const text of texts) {
    expect(text).not.toMatch(TOKEN);
    expect(text).not.toMatch(/secret_?hash/i);
    for (const s of secrets) expect(text.includes(s), `a secret (${s.slice(0, 8)}…) in: ${text.slice(0, 200)}`).toBe(false);
  }
}

describe("audit lines for management changes", () => {
  let fx: AdminFixture;
  beforeAll(async () => {
    fx = await startAdminFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("every change leaves exactly one line with actor, target, before and after; none holds a secret", async () => {
    const run = await driveEveryChange(fx);
    expect(new Set(run.lines.map((l) => l.audit))).toEqual(new Set([
      "domain.create", "domain.update", "domain.delete", "member.put", "member.delete", "role.put", "role.delete",
      "pat.create", "pat.rename", "pat.describe", "pat.scope_add", "pat.scope_remove", "pat.scope_clear",
      "pat.rotate", "pat.revoke", "pat.delete", "pat.delete_all",
    ]));
    // The whole log, not just the audit lines.
    expectNoSecrets(fx.gw.logs.lines, run.secrets);
  });
});

describe("audit events on a Redis Stream (audit.redis_stream)", () => {
  let redis: RedisHandle;
  let fx: AdminFixture;
  let raw: Redis;
  let stream: string;

  beforeAll(async () => {
    redis = await startRedis();
    stream = `${redis.keyPrefix}audit`;
    fx = await startAdminFixture({
      redisUrl: redis.url,
      keyPrefix: redis.keyPrefix,
      patch: (cfg) => {
        cfg["audit"] = { redis_stream: stream, stream_max_len: 10_000 };
      },
    });
    raw = new Redis(redis.url);
  });
  afterAll(async () => {
    raw?.disconnect();
    await fx?.close();
    await redis?.stop();
  });

  it("holds the same events as the log, in order, with the same fields; none holds a secret", async () => {
    const run = await driveEveryChange(fx);
    // Appends are fire-and-forget: wait for the last one.
    const deadline = Date.now() + 3000;
    while ((await raw.xlen(stream)) < run.lines.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const entries = await raw.xrange(stream, "-", "+");
    const events = entries.map(([, flat]) => {
      const e: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) e[flat[i] as string] = flat[i + 1] as string;
      return e;
    });
    // Actions first: on a mismatch they show which event is missing.
    expect(events.map((e) => e.action)).toEqual(run.lines.map((l) => l.audit));
    expect(events.map((e) => e.kind)).toEqual(run.lines.map(() => "change"));
    events.forEach((e, i) => {
      const line = run.lines[i] as Rec;
      expect(e.actor).toBe(line.actor);
      expect(e.req_id).toBe(line.req_id);
      expect(Number.isNaN(Date.parse(e.at ?? ""))).toBe(false);
      expect(JSON.parse(e.fields ?? "null")).toEqual(withoutEnvelope(line));
    });
    expectNoSecrets(entries.map(([, flat]) => flat.join("\n")), run.secrets);
    expectNoSecrets(fx.gw.logs.lines, run.secrets);
  });
});

/**
 * A TCP relay to Redis that holds each new connection for `delayMs(n)` (n: 0
 * for the first one accepted) before putting it through, as a slow network or
 * a busy server would.
 */
async function slowRelay(target: URL, delayMs: (n: number) => number): Promise<{ url: string; close(): Promise<void> }> {
  const open = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    open.add(client);
    client.on("error", () => client.destroy());
    client.pause();
    const timer = setTimeout(() => {
      const up = connect(Number(target.port || 6379), target.hostname);
      open.add(up);
      const end = (): void => {
        client.destroy();
        up.destroy();
      };
      client.on("close", end);
      up.on("error", end).on("close", end);
      client.pipe(up);
      up.pipe(client);
      client.resume();
    }, delayMs(accepted++));
    client.on("close", () => clearTimeout(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const url = new URL(target.href);
  url.host = `127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
  return {
    url: url.href,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("the audit stream's connection at start", () => {
  it("is up before the gateway serves: a change made at once is in the stream", async () => {
    const cleanup: Array<() => Promise<unknown> | void> = [];
    try {
      const redis = await startRedis();
      cleanup.push(() => redis.stop());
      const upstream = await startFakeUpstream();
      cleanup.push(() => upstream.close());
      // The first connection made (the audit stream's, opened before the store's) takes 800 ms to come up,
      // the store's 100 ms: the gateway must wait for the slower one before it serves.
      const relay = await slowRelay(new URL(redis.url), (n) => (n === 0 ? 800 : 100));
      cleanup.push(() => relay.close());
      const stream = `${redis.keyPrefix}audit`;
      const { file, dir, adminKey } = await writeConfig({
        upstreamUrl: upstream.url,
        redisUrl: relay.url,
        keyPrefix: redis.keyPrefix,
        patch: (cfg) => {
          cfg["audit"] = { redis_stream: stream, stream_max_len: 1000 };
        },
      });
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      const raw = new Redis(redis.url);
      cleanup.push(() => raw.disconnect());
      const app = await buildApp(loadSettings(file), { logger: pino({ level: "info" }, new LogCapture()) });
      cleanup.push(() => app.close());
      const port = await app.listen(0, "127.0.0.1");
      const res = await new AdminClient(`http://127.0.0.1:${port}`, adminKey ?? "").post("/domains", { id: "d1" });
      expect(res.status).toBe(201);
      const deadline = Date.now() + 3000;
      while ((await raw.xlen(stream)) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const entries = await raw.xrange(stream, "-", "+");
      expect(entries.map(([, flat]) => flat[flat.indexOf("action") + 1])).toEqual(["domain.create"]);
    } finally {
      for (const step of cleanup.reverse()) {
        try {
          await step();
        } catch {
          // keep closing the rest
        }
      }
    }
  });
});
