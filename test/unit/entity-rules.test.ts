// Rules of reading an entity from a query string (src/routing/entity.ts):
// entityFromQuery takes a parameter only when it is there exactly once and
// spelled exactly, and queryHasParam finds every spelling an upstream's query
// parser could read as the parameter, and nothing else.
import { describe, expect, it } from "vitest";
import { entityFromJson, entityFromQuery, jsonHasField, queryHasParam, type EntityResult } from "../../src/routing/entity.ts";
import { generateToken } from "../../src/tokens/format.ts";

const code = (r: EntityResult): string => (r.ok ? `ok:${r.id}` : r.code);

describe("entityFromQuery", () => {
  it.each([
    ["?model=gpt-4o", "ok:gpt-4o"],
    ["model=gpt-4o", "ok:gpt-4o"],
    ["?x=1&model=a", "ok:a"],
    ["?xmodel=1&model=a&modelx=2", "ok:a"],
    ["?model=a%20b", "ok:a b"],
    ["?model=a+b", "ok:a b"],
    ["?model=org%2Fm", "ok:org/m"],
  ])("%j → %s", (query, want) => {
    expect(code(entityFromQuery(query, "model"))).toBe(want);
  });

  it.each([
    ["", "entity_missing"],
    ["?", "entity_missing"],
    ["?x=1", "entity_missing"],
    ["?models=a", "entity_missing"],
    // Another spelling alone: an upstream may read it, the gateway does not guess.
    ["?Model=a", "entity_ambiguous"],
    ["?model[]=a", "entity_ambiguous"],
    ["?%6dodel=a", "entity_ambiguous"],
    // Twice, or beside another spelling.
    ["?model=a&model=b", "entity_ambiguous"],
    ["?model=a&model=a", "entity_ambiguous"],
    ["?model=a&Model=b", "entity_ambiguous"],
    ["?Model=b&model=a", "entity_ambiguous"],
    ["?model=a&model[]=b", "entity_ambiguous"],
    ["?model=a;Model=b", "entity_ambiguous"],
    ["?model=a&x=1;model.y=b", "entity_ambiguous"],
    // "a;b" to a parser that splits on '&' only, "a" to one that splits on ';' too.
    ["?model=a;b", "entity_ambiguous"],
    ["?model=a;x=1", "entity_ambiguous"],
    // Present but not a usable id.
    ["?model", "entity_invalid"],
    ["?model=", "entity_invalid"],
    ["?model=a%00b", "entity_invalid"],
    [`?model=${"a".repeat(257)}`, "entity_invalid"],
  ])("%j → %s", (query, want) => {
    expect(code(entityFromQuery(query, "model"))).toBe(want);
  });

  it("refuses a token passed as the entity", () => {
    expect(code(entityFromQuery(`?model=${generateToken().token}`, "model"))).toBe("entity_invalid");
  });

  it("reads other parameter names the same way", () => {
    expect(code(entityFromQuery("?intent=transcription", "intent"))).toBe("ok:transcription");
    expect(code(entityFromQuery("?intent=a&INTENT=b", "intent"))).toBe("entity_ambiguous");
  });
});

describe("queryHasParam", () => {
  it.each([
    // With or without the leading '?'.
    ["model=a", true],
    ["x=1&model", true],
    ["?x=1&y=2", false],
    ["x=1&odel=2", false],
    // Only the first '=' ends the key.
    ["?model=a=b", true],
    ["?x=model=a", false],
    // Empty keys name nothing.
    ["?=model&=", false],
    ["?&model&", true],
    // Leading spaces are trimmed (PHP), however they are written.
    ["?%20%20model=a", true],
    ["?++model=a", true],
    ["?x%20model=a", false],
    // Cut at a NUL; a NUL before the name leaves nothing.
    ["?model%00=a", true],
    ["?%00model=a", false],
    // A suffix only after the whole name.
    ["?model[=a", true],
    ["?mode[l]=a", false],
    ["?model.=a", true],
    ["?mode.l=a", false],
  ])("%j → %s", (query, expected) => {
    expect(queryHasParam(query, "model")).toBe(expected);
  });

  it("maps every ' ', '.' and unmatched '[' in a key to '_', as PHP does", () => {
    expect(queryHasParam("?model[id=1", "model_id")).toBe(true);
    expect(queryHasParam("?a.b c[d=1", "a_b_c_d")).toBe(true);
    expect(queryHasParam("?a.b.c=1", "a_b_c")).toBe(true);
    expect(queryHasParam("?a-b=1", "a_b")).toBe(false);
  });

  it("matches Unicode letters Go folds, written raw in the key", () => {
    expect(queryHasParam("?ma\u017Fk=1", "mask")).toBe(true);
    expect(queryHasParam("?\u212Aey=1", "key")).toBe(true);
  });

  it("decodes every hex digit in either case", () => {
    for (let c = 0x21; c < 0x7f; c++) {
      const ch = String.fromCharCode(c);
      if ("&;=%+#".includes(ch)) continue;
      const hex = c.toString(16);
      for (const h of [hex.toLowerCase(), hex.toUpperCase()]) expect(queryHasParam(`?%${h}x=1`, `${ch}x`), `%${h}`).toBe(true);
    }
  });

  it("keeps a '%' before anything that is not two hex digits as it is", () => {
    for (const d of ["/", ":", "@", "G", "`", "g"]) {
      expect(queryHasParam(`?%${d}1x=1`, `%${d}1x`), d).toBe(true);
      expect(queryHasParam(`?%1${d}x=1`, `%1${d}x`), d).toBe(true);
    }
    expect(queryHasParam("?x%=1", "x%")).toBe(true);
    expect(queryHasParam("?x%4=1", "x%4")).toBe(true);
  });
});

describe("entityFromJson with a fallback", () => {
  const j = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

  it("reads the fallback alone, and a body that is not JSON is refused as such", () => {
    expect(code(entityFromJson(j({ name: "a" }), "model", "name"))).toBe("ok:a");
    expect(code(entityFromJson(Buffer.from("nope"), "model", "name"))).toBe("bad_json");
    expect(code(entityFromJson(j({ model: "a", name: "" }), "model", "name"))).toBe("entity_invalid");
    expect(code(entityFromJson(j({ model: "a", name: "a", NAME: "a" }), "model", "name"))).toBe("entity_ambiguous");
  });
});

describe("jsonHasField", () => {
  it("is false for a body that is not UTF-8, even when the key is plain", () => {
    expect(jsonHasField(Buffer.concat([Buffer.from('{"from":"a'), Buffer.from([0xff]), Buffer.from('"}')]), "from")).toBe(false);
    expect(jsonHasField(Buffer.from('{"from":"a\u00ff"}'), "from")).toBe(true);
  });
});
