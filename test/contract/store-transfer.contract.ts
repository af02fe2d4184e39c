import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AdminKeyRecord, PatRecord, Store } from "../../src/store/types.ts";
import { makePat, type StoreFixture } from "./store.contract.ts";

/**
 * The Store methods that export, import and `patgate admin-key create` use
 * (beside the main contract in store.contract.ts), against every implementation.
 */
export function transferContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`${name} store: export and admin-key methods`, () => {
    let fx: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fx = await makeStore();
      store = fx.store;
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    const collect = async (pageSize?: number): Promise<PatRecord[]> => {
      const out: PatRecord[] = [];
      for await (const page of store.allPats(pageSize)) {
        expect(page.length).toBeGreaterThan(0);
        out.push(...page);
      }
      return out.sort((a, b) => (a.id < b.id ? -1 : 1));
    };

    it("allPats yields every PAT exactly once, over many pages, with last-used times", async () => {
      expect(await collect()).toEqual([]);
      const pats = Array.from({ length: 230 }, (_, i) => makePat({ userId: `user${i % 17}` }));
      for (const p of pats) expect(await store.insertPat(p)).toBe("ok");
      await store.touchPats(new Map([[pats[3]?.id ?? "", 1_750_000_000_000]]));
      const want = pats.map((p, i) => (i === 3 ? { ...p, lastUsedAt: 1_750_000_000_000 } : p)).sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(await collect(50)).toEqual(want);
      expect(await collect()).toEqual(want);
      // Deleted PATs are gone from it; nothing else is ever in it.
      await store.deletePat(pats[0]?.id ?? "");
      await store.putDomain({ id: "d", name: "d", upstream: null, createdAt: 1 });
      await store.putMembership({ domainId: "d", userId: "user1", roles: [] });
      expect((await collect(7)).map((p) => p.id)).toEqual(want.map((p) => p.id).filter((id) => id !== pats[0]?.id));
    });

    it("addAdminKey adds beside existing keys or replaces one by id; deleteAdminKey removes one", async () => {
      const key = (id: string): AdminKeyRecord => ({ id, hash: randomBytes(32).toString("hex"), createdAt: 1_700_000_000_000 });
      const first = key("k1");
      expect(await store.addFirstAdminKey(first)).toBe(true);
      const second = key("k2");
      await store.addAdminKey(second);
      expect(await store.listAdminKeys()).toEqual([first, second]);
      const replaced = { ...key("k2"), createdAt: 5 };
      await store.addAdminKey(replaced);
      expect(await store.listAdminKeys()).toEqual([first, replaced]);
      expect(await store.deleteAdminKey("k1")).toBe(true);
      expect(await store.deleteAdminKey("k1")).toBe(false);
      expect(await store.listAdminKeys()).toEqual([replaced]);
      // The first-start key is only ever created into an empty set.
      expect(await store.addFirstAdminKey(key("k3"))).toBe(false);
    });
  });
}
