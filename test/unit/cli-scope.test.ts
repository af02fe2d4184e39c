// The CLI's scope syntax (DOMAIN:TYPE:ID:OP, ids may hold ":") and its output helpers.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/command.ts";
import { fields, relative, table } from "../../src/cli/format.ts";
import { formatScope, parseScope } from "../../src/cli/scope-arg.ts";

const scope = (domain_id: string, entity_type: string, entity_id: string, operation: string) => ({ domain_id, entity_type, entity_id, operation });

describe("parseScope", () => {
  it.each([
    ["demo:models:llama3:llm_chat_completions", scope("demo", "models", "llama3", "llm_chat_completions")],
    ["demo:models:llama3:8b:llm_chat_completions", scope("demo", "models", "llama3:8b", "llm_chat_completions")],
    ["demo:models:hf.co/org/m:Q4_K_M:llm_read", scope("demo", "models", "hf.co/org/m:Q4_K_M", "llm_read")],
    ["demo:models:*:llm_read", scope("demo", "models", "*", "llm_read")],
    ["demo:domains:demo:llm_read", scope("demo", "domains", "demo", "llm_read")],
  ])("%s", (text, want) => {
    expect(parseScope(text)).toEqual(want);
  });

  it("with --domain, reads TYPE:ID:OP (the id may still hold colons)", () => {
    expect(parseScope("models:llama3:8b:llm_chat_completions", "demo")).toEqual(scope("demo", "models", "llama3:8b", "llm_chat_completions"));
    expect(parseScope("models:llama3:llm_read", "demo")).toEqual(scope("demo", "models", "llama3", "llm_read"));
  });

  it.each([
    ["models:llama3:llm_read", undefined, /the domain is missing: DOMAIN:models:llama3:llm_read, or pass --domain DOMAIN$/],
    ["demo:llama3:llm_read", undefined, /the entity type is missing: demo:TYPE:llama3:llm_read \(TYPE is models, datasets, domains/],
    ["demo:models:llm_read", undefined, /the entity id is missing: demo:models:ID:llm_read \(ID "\*" is every entity of the type\)$/],
    ["demo:models", undefined, /is not DOMAIN:TYPE:ID:OP/],
    ["llama3:llm_read", "demo", /is not TYPE:ID:OP \(with --domain\)/],
    ["demo::llama3:llm_read", undefined, /empty entity type/],
    ["demo:models::llm_read", undefined, /empty entity id/],
    ["demo:models:llama3:", undefined, /empty operation/],
    [":models:llama3:llm_read", undefined, /empty domain id/],
  ])("refuses %s", (text, domain, message) => {
    expect(() => parseScope(text, domain)).toThrow(UsageError);
    expect(() => parseScope(text, domain)).toThrow(message);
  });

  it("round-trips what it prints: the output of `pat show` is valid --scope input", () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,15}$/);
    const id = fc.string({ minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(name, name, id, name, (d, t, e, o) => {
        const s = scope(d, t, e, o);
        expect(parseScope(formatScope(s))).toEqual(s);
      }),
    );
  });
});

describe("output for people", () => {
  it("aligns table columns, two spaces apart, without trailing spaces", () => {
    expect(table(["ID", "NAME"], [["a", "laptop"], ["bbbb", "ci"]])).toBe("ID    NAME\na     laptop\nbbbb  ci\n");
    expect(table(["A", "B", "C"], [["x", "", "z"]])).toBe("A  B  C\nx     z\n");
  });

  it("keeps each row on one line", () => {
    expect(table(["ID", "DESC"], [["1", "two\nlines\tand tab"]])).toBe("ID  DESC\n1   two lines and tab\n");
  });

  it("indents continuation lines of a field", () => {
    expect(fields([["id", "1"], ["scopes", "a\nb"]])).toBe("id      1\nscopes  a\n        b\n");
  });

  it("says times relative to now", () => {
    const now = Date.parse("2025-05-01T10:00:00.000Z");
    expect(relative("2025-05-31T10:00:00.000Z", now)).toBe("in 30d");
    expect(relative("2025-05-01T07:00:00.000Z", now)).toBe("3h ago");
    expect(relative("2025-05-01T10:00:00.500Z", now)).toBe("now");
    expect(relative("2026-06-01T10:00:00.000Z", now)).toBe("in 1y");
    expect(relative(null, now)).toBe("never");
  });
});
