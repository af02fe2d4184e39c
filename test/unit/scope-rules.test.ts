// Rules of src/scopes/scope.ts beyond plain matching: mayGrant (the refusal
// before a body is read) answers per domain and operation; no two different
// scopes share a key however their fields split a string; a scope's id
// (scopes_id) is stable, short hex, and tied to both its PAT and every field.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CompiledScopes, scopeId, type Scope } from "../../src/scopes/scope.ts";

const s = (domainId: string, entityType: string, entityId: string, operation: string): Scope => ({ domainId, entityType, entityId, operation });

describe("mayGrant", () => {
  const c = new CompiledScopes([s("d1", "models", "m", "chat"), s("d2", "domains", "*", "embed")]);

  it("is true exactly for a domain and operation some scope has, whatever its entity", () => {
    expect(c.mayGrant("d1", "chat")).toBe(true);
    expect(c.mayGrant("d2", "embed")).toBe(true);
    expect(c.mayGrant("d1", "embed")).toBe(false);
    expect(c.mayGrant("d2", "chat")).toBe(false);
    expect(c.mayGrant("d3", "chat")).toBe(false);
  });

  it("cannot be fooled by moving text between the domain and the operation", () => {
    expect(new CompiledScopes([s("d", "models", "m", "1chat")]).mayGrant("d1", "chat")).toBe(false);
  });
});

describe("scope keys", () => {
  it("a scope grants nothing to a need whose fields join to the same text", () => {
    const c = new CompiledScopes([s("d", "models", "ab", "x")]);
    expect(c.grants({ domainId: "d", entityType: "modelsa", entityId: "b", operation: "x" })).toBe(false);
    expect(c.grants({ domainId: "dm", entityType: "odels", entityId: "ab", operation: "x" })).toBe(false);
    expect(c.grants({ domainId: "d", entityType: "models", entityId: "a", operation: "bx" })).toBe(false);
    expect(c.grants({ domainId: "d", entityType: "models", entityId: "ab", operation: "x" })).toBe(true);
  });

  it("a domain grant covers only its own domain id, not one that shares a prefix", () => {
    const c = new CompiledScopes([s("d", "domains", "d", "chat")]);
    expect(c.grants({ domainId: "d", entityType: "models", entityId: "m", operation: "chat" })).toBe(true);
    expect(new CompiledScopes([s("d", "domains", "dx", "chat")]).grants({ domainId: "d", entityType: "models", entityId: "m", operation: "chat" })).toBe(false);
  });
});

describe("scopeId", () => {
  const a = s("d1", "models", "llama3", "llm_chat_completions");
  const pat = "0b0e1c9e-8d5c-4f7a-9b1e-2a3c4d5e6f70";

  it("is 24 lowercase hex characters, the same on every call", () => {
    expect(scopeId(pat, a)).toMatch(/^[0-9a-f]{24}$/);
    expect(scopeId(pat, { ...a })).toBe(scopeId(pat, a));
  });

  it("is the SHA-256 prefix of the PAT id and the four fields, NUL-separated (ids survive a restart or another replica)", () => {
    const want = createHash("sha256").update(["p", "d", "t", "e", "o"].join("\u0000")).digest("hex").slice(0, 24);
    expect(scopeId("p", s("d", "t", "e", "o"))).toBe(want);
  });

  it("differs between PATs and when any one field differs", () => {
    const ids = new Set([
      scopeId(pat, a),
      scopeId("1b0e1c9e-8d5c-4f7a-9b1e-2a3c4d5e6f70", a),
      scopeId(pat, { ...a, domainId: "d2" }),
      scopeId(pat, { ...a, entityType: "datasets" }),
      scopeId(pat, { ...a, entityId: "*" }),
      scopeId(pat, { ...a, operation: "llm_read" }),
      // The same text split differently between fields.
      scopeId(pat, s("d1m", "odels", "llama3", "llm_chat_completions")),
      scopeId(pat, s("d1", "models", "llama", "3llm_chat_completions")),
    ]);
    expect(ids.size).toBe(8);
  });
});
