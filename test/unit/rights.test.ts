import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Rights } from "../../src/policy/rights.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";

const OPERATIONS = new Set(["llm_chat_completions", "llm_embeddings", "llm_models", "admin_read"]);

let dir: string;
let store: EmbeddedStore;
let rights: Rights;
let unsubscribe: () => void;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "patgate-rights-"));
  store = await EmbeddedStore.open(join(dir, "store.db"));
  rights = new Rights(store, {
    maxEntries: 100,
    maxAgeMs: 60_000,
    negativeTtlMs: 5_000,
    configRoles: new Map([
      ["chat", ["llm_chat_completions"]],
      ["embed", ["llm_embeddings", "llm_models"]],
      ["owner", ["*"]],
    ]),
    operations: OPERATIONS,
  });
  // What app.ts does with the store's change events.
  unsubscribe = store.subscribe((e) => {
    if (e.kind === "member") rights.onMemberChanged(e.domainId, e.userId);
    else if (e.kind === "role") rights.onRoleChanged();
    else if (e.kind === "domain") rights.onDomainChanged(e.id);
    else if (e.kind === "reset") rights.clear();
  });
});

afterEach(async () => {
  unsubscribe();
  await store.close();
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

const held = async (userId: string): Promise<string[] | null> => {
  const r = await rights.rightsIn("acme", userId);
  return r === null ? null : [...r].sort();
};

describe("Rights.rightsIn", () => {
  it("is null for a non-member and the role's operations for a member", async () => {
    await store.putMembership({ domainId: "acme", userId: "ann", roles: ["chat"] });
    expect(await held("bob")).toBeNull();
    expect(await held("ann")).toEqual(["llm_chat_completions"]);
  });

  it("unions the operations of several roles, whatever their order", async () => {
    await store.putMembership({ domainId: "acme", userId: "ann", roles: ["chat", "embed"] });
    await store.putMembership({ domainId: "acme", userId: "bob", roles: ["embed", "chat"] });
    expect(await held("ann")).toEqual(["llm_chat_completions", "llm_embeddings", "llm_models"]);
    expect(await held("bob")).toEqual(["llm_chat_completions", "llm_embeddings", "llm_models"]);
  });

  it("gives unknown roles nothing and `*` every operation", async () => {
    await store.putMembership({ domainId: "acme", userId: "ann", roles: ["nonexistent"] });
    await store.putMembership({ domainId: "acme", userId: "bob", roles: ["nonexistent", "chat"] });
    await store.putMembership({ domainId: "acme", userId: "cat", roles: [] });
    await store.putMembership({ domainId: "acme", userId: "dan", roles: ["owner"] });
    expect(await held("ann")).toEqual([]);
    expect(await held("bob")).toEqual(["llm_chat_completions"]);
    expect(await held("cat")).toEqual([]);
    expect(await held("dan")).toEqual([...OPERATIONS].sort());
  });

  it("members with the same roles share one set, which a later role change does not touch", async () => {
    await store.putMembership({ domainId: "acme", userId: "ann", roles: ["chat", "embed"] });
    await store.putMembership({ domainId: "acme", userId: "bob", roles: ["chat", "embed"] });
    const a = await rights.rightsIn("acme", "ann");
    const b = await rights.rightsIn("acme", "bob");
    expect(a).toBe(b);

    // A stored role overrides the config role by name: held rights follow at once.
    await store.putRole({ name: "embed", operations: ["admin_read"] });
    expect(await held("ann")).toEqual(["admin_read", "llm_chat_completions"]);
    expect([...(a ?? [])].sort()).toEqual(["llm_chat_completions", "llm_embeddings", "llm_models"]);
  });

  it("follows a membership change without reloading the cached roles", async () => {
    await store.putMembership({ domainId: "acme", userId: "ann", roles: ["chat"] });
    expect(await held("ann")).toEqual(["llm_chat_completions"]);
    const listRoles = vi.spyOn(store, "listRoles");
    const getMembership = vi.spyOn(store, "getMembership");
    await store.putMembership({ domainId: "acme", userId: "ann", roles: ["embed"] });
    expect(await held("ann")).toEqual(["llm_embeddings", "llm_models"]);
    await store.putMembership({ domainId: "acme", userId: "bob", roles: ["chat"] });
    expect(await held("bob")).toEqual(["llm_chat_completions"]);
    expect(getMembership).toHaveBeenCalledTimes(2);
    expect(listRoles).not.toHaveBeenCalled();
  });
});
