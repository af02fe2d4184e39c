// Scope matching and formatting (src/scopes/scope.ts), the pure core of every decision.
import { describe, expect, it } from "vitest";
import { CompiledScopes, formatNeed, formatScope, sameScope, type Scope } from "../../src/scopes/scope.ts";

const s = (domainId: string, entityType: string, entityId: string, operation: string): Scope => ({ domainId, entityType, entityId, operation });

describe("CompiledScopes", () => {
  it("grants exactly, by wildcard, and by a domain-level grant; nothing else", () => {
    const c = new CompiledScopes([s("d", "models", "m", "read"), s("d", "models", "*", "chat"), s("d", "domains", "d", "embed"), s("d", "domains", "*", "score")]);
    const need = (t: string, e: string, o: string, d = "d"): boolean => c.grants({ domainId: d, entityType: t, entityId: e, operation: o });
    expect(need("models", "m", "read")).toBe(true);
    expect(need("models", "other", "read")).toBe(false);
    expect(need("datasets", "m", "read")).toBe(false);
    expect(need("models", "any", "chat")).toBe(true);
    expect(need("datasets", "any", "chat")).toBe(false);
    expect(need("models", "x", "embed")).toBe(true);
    expect(need("datasets", "x", "score")).toBe(true);
    expect(need("models", "m", "write")).toBe(false);
    // A literal "*" entity is only what a wildcard grant covers, not a way around an exact one.
    expect(new CompiledScopes([s("d", "models", "m", "read")]).grants({ domainId: "d", entityType: "models", entityId: "*", operation: "read" })).toBe(false);
    expect(new CompiledScopes([]).grants({ domainId: "d", entityType: "models", entityId: "m", operation: "read" })).toBe(false);
    expect(new CompiledScopes([]).mayGrant("d", "read")).toBe(false);
  });

  it("keys cannot collide across fields (ids may contain ':')", () => {
    const c = new CompiledScopes([s("d", "models", "a:read", "x")]);
    expect(c.grants({ domainId: "d", entityType: "models", entityId: "a", operation: "read:x" })).toBe(false);
  });
});

describe("formatting and comparing scopes", () => {
  it("formatNeed and formatScope write type:id:operation", () => {
    expect(formatNeed({ domainId: "d", entityType: "models", entityId: "m", operation: "read" })).toBe("models:m:read");
    expect(formatScope(s("d", "models", "*", "chat"))).toBe("models:*:chat");
  });

  it("sameScope compares every field", () => {
    const a = s("d", "models", "m", "read");
    expect(sameScope(a, { ...a })).toBe(true);
    for (const k of ["domainId", "entityType", "entityId", "operation"] as const) expect(sameScope(a, { ...a, [k]: "other" })).toBe(false);
  });
});
