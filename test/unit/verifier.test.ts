import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import type { PatRecord, Store } from "../../src/store/types.ts";
import { generateToken } from "../../src/tokens/format.ts";
import { newPat, rotatedPat } from "../../src/tokens/issue.ts";
import { Verifier, type VerifyResult } from "../../src/tokens/verifier.ts";

const T0 = 1_750_000_000_000;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const NEGATIVE_TTL = 5 * SECOND;
const MAX_AGE = 5 * MINUTE;

const SCOPE = { domainId: "acme", entityType: "models", entityId: "llama3", operation: "llm_chat_completions" };

let dir: string;
let store: EmbeddedStore;
let verifier: Verifier;
let pepper: Buffer;
let now: number;
let getPat: MockInstance<Store["getPat"]>;
let unsubscribe: (() => void) | null;
let seq = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "patgate-verifier-"));
  store = await EmbeddedStore.open(join(dir, "store.db"));
  pepper = randomBytes(32);
  now = T0;
  getPat = vi.spyOn(store, "getPat");
  unsubscribe = null;
  verifier = new Verifier(store, {
    pepper,
    maxEntries: 100,
    negativeTtlMs: NEGATIVE_TTL,
    maxAgeMs: MAX_AGE,
    // Long enough never to fire during a test: flushes are explicit.
    touchIntervalMs: HOUR,
    now: () => now,
  });
});

afterEach(async () => {
  unsubscribe?.();
  await verifier.close();
  await store.close();
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

/** What app.ts does: a PAT change event drops that PAT from the verifier's cache. */
function wireEvents(): void {
  unsubscribe = store.subscribe((e) => {
    if (e.kind === "pat") verifier.invalidate(e.id);
  });
}

/** A new PAT issued at the current clock, stored unless `store: false`. */
async function issue(opts: { lifetimeMs?: number; store?: boolean } = {}): Promise<{ record: PatRecord; token: string }> {
  const pat = newPat(pepper, { userId: "u1", name: `pat ${++seq}`, scopes: [SCOPE], lifetimeMs: opts.lifetimeMs ?? 30 * DAY, now });
  if (opts.store !== false) expect(await store.insertPat(pat.record)).toBe("ok");
  return pat;
}

/** Rotates the stored PAT at the current clock and returns the new token. */
async function rotate(id: string, graceMs: number, lifetimeMs = 30 * DAY): Promise<string> {
  const current = await store.getPat(id);
  if (current === null) throw new Error(`PAT ${id} is not stored`);
  const next = rotatedPat(pepper, current, lifetimeMs, graceMs, now);
  expect(await store.replacePat(next.record, current.version)).toBe("ok");
  return next.token;
}

async function reason(token: string): Promise<string> {
  const r: VerifyResult = await verifier.verify(token);
  return r.ok ? "ok" : r.reason;
}

describe("Verifier: decisions", () => {
  it("a valid token verifies, with its record and compiled scopes", async () => {
    const { record, token } = await issue();
    const r = await verifier.verify(token);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.pat.record.id).toBe(record.id);
    expect(r.pat.record.userId).toBe("u1");
    expect(r.pat.scopes.grants(SCOPE)).toBe(true);
    expect(r.pat.scopes.grants({ ...SCOPE, entityId: "gpt-4" })).toBe(false);
  });

  it("a malformed token is refused with no store call", async () => {
    const { token } = await issue();
    const flipped = token.slice(0, 40) + (token[40] === "a" ? "b" : "a") + token.slice(41);
    const malformed = [
      "",
      "pat_",
      "Bearer " + token,
      token + "x",
      token.slice(0, -1),
      " " + token.slice(1),
      flipped, // checksum no longer matches
      token.toUpperCase(),
      "sk-" + "a".repeat(73),
      "x".repeat(76),
    ];
    for (const t of malformed) expect(await reason(t), JSON.stringify(t)).toBe("malformed");
    expect(getPat).not.toHaveBeenCalled();
  });

  it("a well-formed token for an unknown id is refused as unknown", async () => {
    const { token } = await issue({ store: false });
    expect(await reason(token)).toBe("unknown");
    expect(getPat).toHaveBeenCalledTimes(1);
  });

  it("a wrong secret for a known id is refused as bad_secret", async () => {
    const { record } = await issue();
    const forged = generateToken(record.id).token;
    expect(await reason(forged)).toBe("bad_secret");
  });

  it("once a secret has been accepted and remembered, a wrong one for the same PAT is still refused", async () => {
    wireEvents();
    const { record, token } = await issue();
    expect(await reason(token)).toBe("ok");
    expect(await reason(token)).toBe("ok"); // recognised by its remembered digest
    expect(await reason(generateToken(record.id).token)).toBe("bad_secret");
    expect(await reason(token)).toBe("ok");
  });

  it("a revoked token is refused as revoked", async () => {
    wireEvents();
    const { record, token } = await issue();
    expect(await reason(token)).toBe("ok");
    now += MINUTE;
    expect(await store.replacePat({ ...record, revoked: true, revokedAt: now, updatedAt: now }, record.version)).toBe("ok");
    expect(await reason(token)).toBe("revoked");
  });

  it("expiry is re-checked on every use, including cache hits", async () => {
    // Expires within max_age, so the cached entry outlives the token.
    const { record, token } = await issue({ lifetimeMs: 2 * MINUTE });
    expect(await reason(token)).toBe("ok");
    now = record.expiresAt - 1;
    expect(await reason(token)).toBe("ok");
    now = record.expiresAt;
    expect(await reason(token)).toBe("expired");
    // Served from the cache: the decision did not need the store.
    expect(getPat).toHaveBeenCalledTimes(1);
  });

  it("a deleted PAT stops verifying once its change event arrives", async () => {
    wireEvents();
    const { record, token } = await issue();
    expect(await reason(token)).toBe("ok");
    expect(await store.deletePat(record.id)).toBe(true);
    expect(await reason(token)).toBe("unknown");
  });
});

describe("Verifier: caching", () => {
  it("a known PAT is read from the store once while events are live", async () => {
    const { token } = await issue();
    for (let i = 0; i < 5; i++) expect(await reason(token)).toBe("ok");
    expect(getPat).toHaveBeenCalledTimes(1);
    expect(verifier.cacheSize).toBe(1);
  });

  it("an unknown id is remembered for the negative TTL, then looked up again", async () => {
    const { token } = await issue({ store: false });
    expect(await reason(token)).toBe("unknown");
    now += NEGATIVE_TTL - 1;
    expect(await reason(token)).toBe("unknown");
    expect(getPat).toHaveBeenCalledTimes(1);
    now += 1;
    expect(await reason(token)).toBe("unknown");
    expect(getPat).toHaveBeenCalledTimes(2);
  });

  it("invalidate(id), as a create event does, ends the negative entry at once", async () => {
    const { record, token } = await issue({ store: false });
    expect(await reason(token)).toBe("unknown");
    expect(await store.insertPat(record)).toBe("ok");
    // No events wired here: the negative entry still answers, without a store call.
    expect(await reason(token)).toBe("unknown");
    expect(getPat).toHaveBeenCalledTimes(1);
    verifier.invalidate(record.id);
    expect(await reason(token)).toBe("ok");
    expect(getPat).toHaveBeenCalledTimes(2);
  });

  it("with events wired, a token created after a failed lookup works at once", async () => {
    wireEvents();
    const { record, token } = await issue({ store: false });
    expect(await reason(token)).toBe("unknown");
    expect(await store.insertPat(record)).toBe("ok");
    expect(await reason(token)).toBe("ok");
  });

  it("a cached PAT is looked up again after max_age even without events", async () => {
    const { token } = await issue();
    expect(await reason(token)).toBe("ok");
    now += MAX_AGE;
    expect(await reason(token)).toBe("ok");
    expect(getPat).toHaveBeenCalledTimes(2);
  });

  it("concurrent verifies of one token share one store read", async () => {
    const { token } = await issue();
    const results = await Promise.all(Array.from({ length: 10 }, () => reason(token)));
    expect(results).toEqual(Array<string>(10).fill("ok"));
    expect(getPat).toHaveBeenCalledTimes(1);
  });

  it("while events are not live nothing is served from the cache", async () => {
    const { record, token } = await issue();
    const unknown = (await issue({ store: false })).token;
    expect(await reason(token)).toBe("ok");
    expect(await reason(unknown)).toBe("unknown");
    expect(getPat).toHaveBeenCalledTimes(2);
    const size = verifier.cacheSize;

    vi.spyOn(store, "eventsLive").mockReturnValue(false);
    for (let i = 0; i < 3; i++) {
      expect(await reason(token)).toBe("ok");
      expect(await reason(unknown)).toBe("unknown");
    }
    expect(getPat).toHaveBeenCalledTimes(8);
    // A revoke whose event is lost is still seen, because the store is asked every time.
    expect(await store.replacePat({ ...record, revoked: true, revokedAt: now }, record.version)).toBe("ok");
    expect(await reason(token)).toBe("revoked");
    // Nothing read during the outage was cached.
    expect(verifier.cacheSize).toBe(size);
  });

  it("clear() drops every cached PAT (what a reset event does)", async () => {
    const { token } = await issue();
    expect(await reason(token)).toBe("ok");
    verifier.clear();
    expect(verifier.cacheSize).toBe(0);
    expect(await reason(token)).toBe("ok");
    expect(getPat).toHaveBeenCalledTimes(2);
  });
});

describe("Verifier: rotation", () => {
  it("with a grace period the old secret works until the grace ends, the new one at once", async () => {
    wireEvents();
    const { token: oldToken, record } = await issue({ lifetimeMs: 30 * DAY });
    now += DAY;
    const newToken = await rotate(record.id, HOUR);
    expect(newToken).not.toBe(oldToken);
    expect(await reason(newToken)).toBe("ok");
    expect(await reason(oldToken)).toBe("ok");
    now += HOUR - 1;
    expect(await reason(oldToken)).toBe("ok");
    now += 1;
    expect(await reason(oldToken)).toBe("bad_secret");
    expect(await reason(newToken)).toBe("ok");
  });

  it("the grace period never reaches past the old token's expiry", async () => {
    wireEvents();
    const { token: oldToken, record } = await issue({ lifetimeMs: 2 * HOUR });
    now += HOUR;
    const newToken = await rotate(record.id, DAY, 30 * DAY);
    now = record.expiresAt - 1;
    expect(await reason(oldToken)).toBe("ok");
    now = record.expiresAt;
    expect(await reason(oldToken)).toBe("bad_secret");
    // The new secret has its own, later expiry.
    expect(await reason(newToken)).toBe("ok");
    now += 10 * DAY;
    expect(await reason(newToken)).toBe("ok");
  });

  it("without a grace period the old secret fails at once", async () => {
    wireEvents();
    const { token: oldToken, record } = await issue();
    expect(await reason(oldToken)).toBe("ok");
    const newToken = await rotate(record.id, 0);
    expect(await reason(oldToken)).toBe("bad_secret");
    expect(await reason(newToken)).toBe("ok");
  });

  it("rotation extends the validity: the new expiry counts from the rotation", async () => {
    wireEvents();
    const { token, record } = await issue({ lifetimeMs: HOUR });
    now += 30 * MINUTE;
    const newToken = await rotate(record.id, 0, DAY);
    now = record.expiresAt + MINUTE;
    expect(await reason(newToken)).toBe("ok");
    expect(await reason(token)).toBe("bad_secret");
    now = T0 + 30 * MINUTE + DAY;
    expect(await reason(newToken)).toBe("expired");
  });
});

describe("Verifier: last-used times", () => {
  it("many verifies give one coalesced touchPats call with the latest time", async () => {
    const touch = vi.spyOn(store, "touchPats");
    const a = await issue();
    const b = await issue();
    for (let i = 0; i < 5; i++) {
      now += SECOND;
      expect(await reason(a.token)).toBe("ok");
    }
    const lastA = now;
    now += SECOND;
    expect(await reason(b.token)).toBe("ok");
    const lastB = now;
    expect(touch).not.toHaveBeenCalled();

    await verifier.flushUsage();
    expect(touch).toHaveBeenCalledTimes(1);
    expect(touch.mock.calls[0]?.[0]).toEqual(new Map([[a.record.id, lastA], [b.record.id, lastB]]));
    expect((await store.getPat(a.record.id))?.lastUsedAt).toBe(lastA);
    expect((await store.getPat(b.record.id))?.lastUsedAt).toBe(lastB);

    // Nothing new: no write.
    await verifier.flushUsage();
    expect(touch).toHaveBeenCalledTimes(1);
  });

  it("denied verifies are not recorded as use", async () => {
    const touch = vi.spyOn(store, "touchPats");
    const { record } = await issue();
    expect(await reason(generateToken(record.id).token)).toBe("bad_secret");
    await verifier.flushUsage();
    expect(touch).not.toHaveBeenCalled();
    expect((await store.getPat(record.id))?.lastUsedAt).toBeNull();
  });

  it("a failed write keeps the times for the next flush", async () => {
    const touch = vi.spyOn(store, "touchPats").mockRejectedValueOnce(new Error("store down"));
    const { record, token } = await issue();
    now += SECOND;
    expect(await reason(token)).toBe("ok");
    await verifier.flushUsage();
    expect(touch).toHaveBeenCalledTimes(1);
    await verifier.flushUsage();
    expect(touch).toHaveBeenCalledTimes(2);
    expect((await store.getPat(record.id))?.lastUsedAt).toBe(now);
  });

  it("close() writes what is pending", async () => {
    const { record, token } = await issue();
    now += SECOND;
    expect(await reason(token)).toBe("ok");
    await verifier.close();
    expect((await store.getPat(record.id))?.lastUsedAt).toBe(now);
  });
});
