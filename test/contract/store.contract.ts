import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/store/types.ts";
import type { AdminKeyRecord, ChangeEvent, Domain, Membership, PatRecord, Role, Store } from "../../src/store/types.ts";
import type { Scope } from "../../src/scopes/scope.ts";

/** One store under test, as built by an implementation's test file. */
export interface StoreFixture {
  readonly store: Store;
  /** Closes the current instance and opens a new one over the same data. */
  readonly reopen?: () => Promise<Store>;
  /**
   * Opens another instance over the same data while `store` stays open: the
   * cross-process path. Absent (embedded): events are observed on `store` itself.
   */
  readonly peer?: () => Promise<Store>;
  /** Closes every instance it opened and removes its data. */
  readonly cleanup: () => Promise<void>;
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const uid = (): string => randomBytes(6).toString("hex");

let seq = 0;
/** A complete PAT record with unique id and name; override what a test cares about. */
export function makePat(over: Partial<PatRecord> = {}): PatRecord {
  const n = ++seq;
  return {
    id: `pat${n}x${uid()}`,
    userId: "user-1",
    name: `token ${n}`,
    description: `description ${n}`,
    scopes: [
      { domainId: "dom-a", entityType: "models", entityId: "llama-3", operation: "llm_chat_completions" },
      { domainId: "dom-a", entityType: "domains", entityId: "*", operation: "llm_read" },
    ],
    secretHash: "a1".repeat(32),
    prevSecretHash: null,
    prevSecretExpiresAt: null,
    issuedAt: 1_700_000_000_000,
    expiresAt: 1_800_000_000_000,
    updatedAt: 1_700_000_000_000,
    lastUsedAt: null,
    revoked: false,
    revokedAt: null,
    version: 1,
    ...over,
  };
}

/**
 * Collects the change events one store instance hears. `settle()` proves
 * "nothing else was published": it makes a marker change through the source
 * store and returns what arrived before the marker. Events from one source
 * arrive in commit order, so anything missing from that list was never sent.
 */
class Recorder {
  events: ChangeEvent[] = [];
  resets = 0;
  readonly #source: Store;
  readonly off: () => void;

  constructor(source: Store, observer: Store) {
    this.#source = source;
    this.off = observer.subscribe((e) => {
      if (e.kind === "reset") this.resets++;
      else this.events.push(e);
    });
  }

  async settle(): Promise<ChangeEvent[]> {
    const name = `zz-marker-${uid()}`;
    const isMarker = (e: ChangeEvent): boolean => e.kind === "role" && e.name === name;
    // put + delete, so the marker leaves no role behind.
    await this.#source.putRole({ name, operations: [] });
    await this.#source.deleteRole(name);
    await waitUntil(() => this.events.filter(isMarker).length >= 2, 3000, "the marker events");
    const at = this.events.findIndex(isMarker);
    const before = this.events.slice(0, at);
    this.events = this.events.slice(at).filter((e) => !isMarker(e));
    return before;
  }
}

const byKey = <T>(key: (x: T) => string) => (a: T, b: T): number => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/** The one contract every Store implementation passes. */
export function storeContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`${name} store contract`, () => {
    let fx: StoreFixture;
    let store: Store;
    let observer: Store;

    beforeEach(async () => {
      fx = await makeStore();
      store = fx.store;
      observer = fx.peer ? await fx.peer() : store;
      await waitUntil(() => store.eventsLive() && observer.eventsLive(), 5000, "events to be live");
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    // Starts recording after draining what earlier mutations still have in flight.
    const record = async (): Promise<Recorder> => {
      const rec = new Recorder(store, observer);
      await rec.settle();
      return rec;
    };

    describe("PATs", () => {
      it("inserts a PAT and reads it back exactly; unknown ids are null", async () => {
        const p = makePat();
        expect(await store.insertPat(p)).toBe("ok");
        expect(await store.getPat(p.id)).toEqual(p);
        expect(await store.getPat("no-such-pat")).toBeNull();
      });

      it("keeps every field, nulls and all", async () => {
        const p = makePat({
          prevSecretHash: "b2".repeat(32),
          prevSecretExpiresAt: 1_700_000_500_000,
          lastUsedAt: 1_700_000_100_000,
          revoked: true,
          revokedAt: 1_700_000_200_000,
          version: 7,
          description: "",
        });
        expect(await store.insertPat(p)).toBe("ok");
        expect(await store.getPat(p.id)).toEqual(p);
      });

      it("lists PATs by user, and only that user's", async () => {
        const a = makePat({ userId: "alice" });
        const b = makePat({ userId: "alice" });
        const c = makePat({ userId: "bob" });
        for (const p of [a, b, c]) expect(await store.insertPat(p)).toBe("ok");
        const sort = byKey<PatRecord>((p) => p.id);
        expect((await store.listPatsByUser("alice")).sort(sort)).toEqual([a, b].sort(sort));
        expect(await store.listPatsByUser("bob")).toEqual([c]);
        expect(await store.listPatsByUser("nobody")).toEqual([]);
      });

      it("keeps names unique per user; another user may reuse a name", async () => {
        const a = makePat({ userId: "alice", name: "ci" });
        expect(await store.insertPat(a)).toBe("ok");
        const dup = makePat({ userId: "alice", name: "ci" });
        expect(await store.insertPat(dup)).toBe("name_taken");
        expect(await store.getPat(dup.id)).toBeNull();
        expect(await store.insertPat(makePat({ userId: "bob", name: "ci" }))).toBe("ok");
      });

      it("refuses a taken id", async () => {
        const p = makePat();
        expect(await store.insertPat(p)).toBe("ok");
        expect(await store.insertPat({ ...p, name: "other name", description: "changed" })).toBe("id_taken");
        expect(await store.getPat(p.id)).toEqual(p);
      });

      it("lets exactly one of many concurrent inserts of one name win", async () => {
        const ps = Array.from({ length: 12 }, () => makePat({ userId: "carol", name: "race" }));
        const results = await Promise.all(ps.map((p) => store.insertPat(p)));
        expect(results.filter((r) => r === "ok")).toHaveLength(1);
        expect(results.filter((r) => r === "name_taken")).toHaveLength(11);
        expect(await store.listPatsByUser("carol")).toHaveLength(1);
      });

      it("replaces with compare-and-set on version and bumps it", async () => {
        const p = makePat({ version: 1 });
        await store.insertPat(p);
        // The caller's own version field is ignored: the store writes expected + 1.
        expect(await store.replacePat({ ...p, description: "v2", version: 99 }, 1)).toBe("ok");
        expect(await store.getPat(p.id)).toEqual({ ...p, description: "v2", version: 2 });

        expect(await store.replacePat({ ...p, description: "stale" }, 1)).toBe("conflict");
        expect((await store.getPat(p.id))?.description).toBe("v2");

        expect(await store.replacePat({ ...p, description: "v3", revoked: true, revokedAt: 5 }, 2)).toBe("ok");
        expect(await store.getPat(p.id)).toEqual({ ...p, description: "v3", revoked: true, revokedAt: 5, version: 3 });
      });

      it("lets exactly one of two concurrent replaces at one version win", async () => {
        const p = makePat();
        await store.insertPat(p);
        const results = await Promise.all([
          store.replacePat({ ...p, description: "one" }, 1),
          store.replacePat({ ...p, description: "two" }, 1),
        ]);
        expect(results.sort()).toEqual(["conflict", "ok"]);
        expect((await store.getPat(p.id))?.version).toBe(2);
      });

      it("renames keeping names unique, and frees the old name", async () => {
        const a = makePat({ userId: "dave", name: "one" });
        const b = makePat({ userId: "dave", name: "two" });
        await store.insertPat(a);
        await store.insertPat(b);
        expect(await store.replacePat({ ...b, name: "one" }, 1)).toBe("name_taken");
        expect(await store.getPat(b.id)).toEqual(b);

        expect(await store.replacePat({ ...b, name: "three" }, 1)).toBe("ok");
        expect((await store.getPat(b.id))?.name).toBe("three");
        // "two" is free again; "three" is now taken.
        expect(await store.insertPat(makePat({ userId: "dave", name: "two" }))).toBe("ok");
        expect(await store.insertPat(makePat({ userId: "dave", name: "three" }))).toBe("name_taken");
        // Keeping one's own name is not a clash.
        expect(await store.replacePat({ ...a, description: "same name" }, 1)).toBe("ok");
      });

      it("answers not_found when replacing an unknown PAT", async () => {
        expect(await store.replacePat(makePat(), 1)).toBe("not_found");
      });

      it("refuses to move a PAT to another user", async () => {
        const p = makePat({ userId: "erin" });
        await store.insertPat(p);
        await expect(store.replacePat({ ...p, userId: "mallory" }, 1)).rejects.toBeInstanceOf(TypeError);
        expect(await store.getPat(p.id)).toEqual(p);
        expect(await store.listPatsByUser("mallory")).toEqual([]);
      });

      it("deletes a PAT and frees its name", async () => {
        const p = makePat({ userId: "frank", name: "gone" });
        await store.insertPat(p);
        expect(await store.deletePat(p.id)).toBe(true);
        expect(await store.getPat(p.id)).toBeNull();
        expect(await store.listPatsByUser("frank")).toEqual([]);
        expect(await store.deletePat(p.id)).toBe(false);
        expect(await store.insertPat(makePat({ userId: "frank", name: "gone" }))).toBe("ok");
        expect(await store.replacePat(p, 1)).toBe("not_found");
      });

      it("touchPats keeps the latest time, never bumps the version, publishes nothing", async () => {
        const p = makePat();
        const q = makePat({ lastUsedAt: 5000 });
        await store.insertPat(p);
        await store.insertPat(q);
        const rec = await record();

        await store.touchPats(new Map([[p.id, 1000], [q.id, 4000], ["no-such-pat", 9000]]));
        expect(await store.getPat(p.id)).toEqual({ ...p, lastUsedAt: 1000 });
        expect((await store.getPat(q.id))?.lastUsedAt).toBe(5000);
        expect(await store.getPat("no-such-pat")).toBeNull();

        await store.touchPats(new Map([[p.id, 500]]));
        expect((await store.getPat(p.id))?.lastUsedAt).toBe(1000);
        await store.touchPats(new Map([[p.id, 2000]]));
        const after = await store.getPat(p.id);
        expect(after?.lastUsedAt).toBe(2000);
        expect(after?.version).toBe(p.version);
        expect((await store.listPatsByUser(p.userId)).find((x) => x.id === p.id)?.lastUsedAt).toBe(2000);

        // A replace carrying an older lastUsedAt does not move it backwards.
        expect(await store.replacePat({ ...p, description: "x" }, p.version)).toBe("ok");
        expect((await store.getPat(p.id))?.lastUsedAt).toBe(2000);
        await store.touchPats(new Map());

        expect(await rec.settle()).toEqual([{ kind: "pat", id: p.id }]);
      });

      it("round-trips scopes exactly: order, wildcards, unicode, none, many", async () => {
        const odd: Scope[] = [
          { domainId: "dom-z", entityType: "datasets", entityId: "*", operation: "read" },
          { domainId: "dom-a", entityType: "models", entityId: "qwen2.5:7b-instruct", operation: "llm_completions" },
          { domainId: "dömäin-ü", entityType: "models", entityId: "модель/😀", operation: "llm_embeddings" },
          { domainId: "dom-a", entityType: "domains", entityId: "dom-a", operation: "manage_role" },
          { domainId: "dom-a", entityType: "models", entityId: "with \"quotes\" and \\ backslash", operation: "llm_read" },
        ];
        const many: Scope[] = Array.from({ length: 300 }, (_, i) => ({
          domainId: `d${i % 7}`,
          entityType: "models",
          entityId: `m${i}`,
          operation: "llm_chat_completions",
        }));
        for (const scopes of [odd, [], many]) {
          const p = makePat({ scopes });
          await store.insertPat(p);
          expect((await store.getPat(p.id))?.scopes).toEqual(scopes);
          expect(await store.replacePat({ ...p, scopes: [...scopes].reverse() }, 1)).toBe("ok");
          expect((await store.getPat(p.id))?.scopes).toEqual([...scopes].reverse());
        }
      });
    });

    describe("domains, memberships, roles", () => {
      const dom = (id: string, over: Partial<Domain> = {}): Domain => ({ id, name: `Domain ${id}`, upstream: null, createdAt: 1_700_000_000_000, ...over });

      it("puts, gets, lists, updates and deletes domains", async () => {
        const a = dom("dom-a");
        const b = dom("dom-b", { upstream: "vllm-1" });
        await store.putDomain(a);
        await store.putDomain(b);
        expect(await store.getDomain("dom-a")).toEqual(a);
        expect(await store.getDomain("dom-b")).toEqual(b);
        expect(await store.getDomain("dom-x")).toBeNull();
        expect((await store.listDomains()).sort(byKey((d) => d.id))).toEqual([a, b]);

        const a2 = { ...a, name: "Renamed", upstream: "ollama" };
        await store.putDomain(a2);
        expect(await store.getDomain("dom-a")).toEqual(a2);

        expect(await store.deleteDomain("dom-a")).toBe(true);
        expect(await store.getDomain("dom-a")).toBeNull();
        expect(await store.deleteDomain("dom-a")).toBe(false);
        expect(await store.listDomains()).toEqual([b]);
      });

      it("insertDomain creates a domain only once: of concurrent creates of one id, exactly one wins", async () => {
        expect(await store.insertDomain(dom("dom-new"))).toBe(true);
        expect(await store.insertDomain(dom("dom-new", { name: "Other" }))).toBe(false);
        expect((await store.getDomain("dom-new"))?.name).toBe("Domain dom-new");
        // Racing creates, from this instance and (where the store has one) a second over the same data.
        const other = fx.peer === undefined ? store : await fx.peer();
        const racers = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? store : other).insertDomain(dom("dom-race", { name: `racer ${i}` })));
        const won = (await Promise.all(racers)).filter((x) => x);
        expect(won).toHaveLength(1);
        expect((await store.getDomain("dom-race"))?.name).toMatch(/^racer \d$/);
      });

      it("keeps memberships by domain and by user", async () => {
        const m1: Membership = { domainId: "dom-a", userId: "alice", roles: ["admin", "user"] };
        const m2: Membership = { domainId: "dom-a", userId: "bob", roles: ["user"] };
        const m3: Membership = { domainId: "dom-b", userId: "alice", roles: [] };
        for (const m of [m1, m2, m3]) await store.putMembership(m);

        expect(await store.getMembership("dom-a", "alice")).toEqual(m1);
        expect(await store.getMembership("dom-b", "bob")).toBeNull();
        expect((await store.listMembers("dom-a")).sort(byKey((m) => m.userId))).toEqual([m1, m2]);
        expect((await store.listMembershipsOfUser("alice")).sort(byKey((m) => m.domainId))).toEqual([m1, m3]);
        expect(await store.listMembers("dom-x")).toEqual([]);
        expect(await store.listMembershipsOfUser("nobody")).toEqual([]);

        const m1b = { ...m1, roles: ["user"] };
        await store.putMembership(m1b);
        expect(await store.getMembership("dom-a", "alice")).toEqual(m1b);
        expect((await store.listMembershipsOfUser("alice")).sort(byKey((m) => m.domainId))).toEqual([m1b, m3]);

        expect(await store.deleteMembership("dom-a", "alice")).toBe(true);
        expect(await store.deleteMembership("dom-a", "alice")).toBe(false);
        expect(await store.getMembership("dom-a", "alice")).toBeNull();
        expect(await store.listMembers("dom-a")).toEqual([m2]);
        expect(await store.listMembershipsOfUser("alice")).toEqual([m3]);
      });

      it("deleting a domain deletes its memberships, and only its", async () => {
        await store.putDomain(dom("dom-a"));
        await store.putDomain(dom("dom-b"));
        await store.putMembership({ domainId: "dom-a", userId: "alice", roles: ["user"] });
        await store.putMembership({ domainId: "dom-a", userId: "bob", roles: ["user"] });
        const keep: Membership = { domainId: "dom-b", userId: "alice", roles: ["admin"] };
        await store.putMembership(keep);

        expect(await store.deleteDomain("dom-a")).toBe(true);
        expect(await store.listMembers("dom-a")).toEqual([]);
        expect(await store.getMembership("dom-a", "bob")).toBeNull();
        expect(await store.listMembershipsOfUser("alice")).toEqual([keep]);
        expect(await store.listMembershipsOfUser("bob")).toEqual([]);
        expect(await store.listMembers("dom-b")).toEqual([keep]);
      });

      it("puts, gets, lists, updates and deletes roles", async () => {
        const admin: Role = { name: "admin", operations: ["read", "update", "llm_chat_completions"] };
        const viewer: Role = { name: "viewer", operations: [] };
        await store.putRole(admin);
        await store.putRole(viewer);
        expect(await store.getRole("admin")).toEqual(admin);
        expect(await store.getRole("nope")).toBeNull();
        expect((await store.listRoles()).sort(byKey((r) => r.name))).toEqual([admin, viewer]);
        const admin2 = { ...admin, operations: ["read"] };
        await store.putRole(admin2);
        expect(await store.getRole("admin")).toEqual(admin2);
        expect(await store.deleteRole("admin")).toBe(true);
        expect(await store.deleteRole("admin")).toBe(false);
        expect(await store.listRoles()).toEqual([viewer]);
      });
    });

    describe("admin keys", () => {
      const key = (id: string): AdminKeyRecord => ({ id, hash: randomBytes(32).toString("hex"), createdAt: 1_700_000_000_000 });

      it("stores the first admin key only while there is none", async () => {
        expect(await store.listAdminKeys()).toEqual([]);
        const first = key("k1");
        expect(await store.addFirstAdminKey(first)).toBe(true);
        expect(await store.addFirstAdminKey(key("k2"))).toBe(false);
        expect(await store.listAdminKeys()).toEqual([first]);
      });

      it("lets exactly one of many concurrent first keys win (replicas starting at once)", async () => {
        const keys = Array.from({ length: 8 }, (_, i) => key(`race-${i}`));
        const results = await Promise.all(keys.map((k) => store.addFirstAdminKey(k)));
        expect(results.filter((r) => r)).toHaveLength(1);
        expect(await store.listAdminKeys()).toEqual([keys[results.indexOf(true)]]);
      });

      it("keeps the admin key across a reopen", async (ctx) => {
        if (!fx.reopen) {
          ctx.skip();
          return;
        }
        const first = key("kept");
        expect(await store.addFirstAdminKey(first)).toBe(true);
        const again = await fx.reopen();
        expect(await again.listAdminKeys()).toEqual([first]);
        expect(await again.addFirstAdminKey(key("late"))).toBe(false);
      });
    });

    describe("change events", () => {
      it("every committed mutation delivers its event", async () => {
        const rec = await record();
        const p = makePat();
        await store.insertPat(p);
        await store.replacePat({ ...p, name: "renamed" }, 1);
        await store.deletePat(p.id);
        await store.putDomain({ id: "dom-e", name: "E", upstream: null, createdAt: 1 });
        await store.putMembership({ domainId: "dom-e", userId: "alice", roles: ["user"] });
        await store.deleteMembership("dom-e", "alice");
        await store.putRole({ name: "r1", operations: ["read"] });
        await store.deleteRole("r1");
        expect(await rec.settle()).toEqual([
          { kind: "pat", id: p.id },
          { kind: "pat", id: p.id },
          { kind: "pat", id: p.id },
          { kind: "domain", id: "dom-e" },
          { kind: "member", domainId: "dom-e", userId: "alice" },
          { kind: "member", domainId: "dom-e", userId: "alice" },
          { kind: "role", name: "r1" },
          { kind: "role", name: "r1" },
        ]);
      });

      it("deleteDomain announces each removed membership and the domain", async () => {
        await store.putDomain({ id: "dom-f", name: "F", upstream: null, createdAt: 1 });
        await store.putMembership({ domainId: "dom-f", userId: "alice", roles: [] });
        await store.putMembership({ domainId: "dom-f", userId: "bob", roles: [] });
        const rec = await record();
        await store.deleteDomain("dom-f");
        const events = await rec.settle();
        expect(events).toHaveLength(3);
        expect(events).toEqual(
          expect.arrayContaining([
            { kind: "member", domainId: "dom-f", userId: "alice" },
            { kind: "member", domainId: "dom-f", userId: "bob" },
            { kind: "domain", id: "dom-f" },
          ]),
        );
      });

      it("a mutation that changed nothing announces nothing", async () => {
        const p = makePat({ userId: "gina", name: "n" });
        await store.insertPat(p);
        const rec = await record();
        expect(await store.insertPat(p)).toBe("id_taken");
        expect(await store.insertPat(makePat({ userId: "gina", name: "n" }))).toBe("name_taken");
        expect(await store.replacePat(p, 41)).toBe("conflict");
        expect(await store.replacePat(makePat(), 1)).toBe("not_found");
        expect(await store.deletePat("no-such-pat")).toBe(false);
        expect(await store.deleteDomain("no-such-domain")).toBe(false);
        expect(await store.deleteMembership("no-such-domain", "gina")).toBe(false);
        expect(await store.deleteRole("no-such-role")).toBe(false);
        expect(await rec.settle()).toEqual([]);
      });

      it("unsubscribe stops delivery to that listener only", async () => {
        const gone: ChangeEvent[] = [];
        const off = observer.subscribe((e) => gone.push(e));
        const rec = await record();
        await store.putRole({ name: "before", operations: [] });
        await waitUntil(() => gone.some((e) => e.kind === "role" && e.name === "before"), 3000, "the first event");
        off();
        off(); // idempotent
        const seen = gone.length;
        await store.putRole({ name: "after", operations: [] });
        expect(await rec.settle()).toEqual([
          { kind: "role", name: "before" },
          { kind: "role", name: "after" },
        ]);
        expect(gone).toHaveLength(seen);
      });
    });

    describe("lifecycle", () => {
      it("ping resolves and events are live while open", async () => {
        await expect(store.ping()).resolves.toBeUndefined();
        expect(store.eventsLive()).toBe(true);
      });

      it("after close, calls reject with StoreUnavailableError and close is idempotent", async () => {
        await store.close();
        await expect(store.getPat("x")).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.insertPat(makePat())).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(store.eventsLive()).toBe(false);
        await expect(store.close()).resolves.toBeUndefined();
      });

      it("keeps every committed change across a reopen", async (ctx) => {
        if (!fx.reopen) {
          ctx.skip();
          return;
        }
        const p = makePat({ userId: "henry", name: "keep" });
        const q = makePat({ userId: "henry", name: "drop" });
        await store.insertPat(p);
        await store.insertPat(q);
        await store.replacePat({ ...p, description: "edited" }, 1);
        await store.deletePat(q.id);
        await store.touchPats(new Map([[p.id, 1_750_000_000_000]]));
        const d: Domain = { id: "dom-r", name: "R", upstream: "u1", createdAt: 42 };
        const m: Membership = { domainId: "dom-r", userId: "henry", roles: ["user"] };
        const r: Role = { name: "user", operations: ["llm_chat_completions"] };
        await store.putDomain(d);
        await store.putMembership(m);
        await store.putRole(r);

        const again = await fx.reopen();
        expect(await again.getPat(p.id)).toEqual({ ...p, description: "edited", version: 2, lastUsedAt: 1_750_000_000_000 });
        expect(await again.getPat(q.id)).toBeNull();
        expect(await again.listPatsByUser("henry")).toHaveLength(1);
        expect(await again.insertPat(makePat({ userId: "henry", name: "keep" }))).toBe("name_taken");
        expect(await again.insertPat(makePat({ userId: "henry", name: "drop" }))).toBe("ok");
        expect(await again.getDomain("dom-r")).toEqual(d);
        expect(await again.getMembership("dom-r", "henry")).toEqual(m);
        expect(await again.listMembershipsOfUser("henry")).toEqual([m]);
        expect(await again.getRole("user")).toEqual(r);
      });
    });
  });
}
