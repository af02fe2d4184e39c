// Rules of reading an entity from a query string (src/routing/entity.ts):
// entityFromQuery takes a parameter only when it is there exactly once and
// spelled exactly, and queryHasParam finds every spelling an upstream's query
// parser could read as the parameter, and nothing else.
import { describe, expect, it } from "vitest";
import { entityFromJson, entityFromQuery, jsonHasField, queryHasParam, validateEntityId, type EntityResult } from "../../src/routing/entity.ts";
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

// A refusal says which rule the request broke, so a client can fix it: the
// message names the rule (and the field). Each case breaks one rule only.
describe("each refusal names the rule that refused it", () => {
  const why = (r: EntityResult): string => (r.ok ? `ok:${r.id}` : `${r.code}: ${r.message}`);
  const json = (text: string | Buffer, fallback: string | null = null): string => why(entityFromJson(typeof text === "string" ? Buffer.from(text) : text, "model", fallback));

  it.each([
    ["an empty body", "", /^bad_json: The request body is empty/],
    ["a byte order mark", Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), /^bad_json: .*byte order mark/],
    ["two bytes of a byte order mark", Buffer.from([0xef, 0xbb, 0x7b, 0x7d]), /^bad_json: .*not valid UTF-8/],
    ["bytes that only start like one", Buffer.from([0xef, 0x7b, 0x7d]), /^bad_json: .*not valid UTF-8/],
    ["invalid UTF-8", Buffer.from([0x7b, 0xff, 0x7d]), /^bad_json: .*not valid UTF-8/],
    ["not JSON", "{", /^bad_json: The request body is not valid JSON\.$/],
    ["not an object", "[]", /^bad_json: .*must be a JSON object/],
    ["a duplicate", '{"model":"a","MODEL":"b"}', /^entity_ambiguous: The field "model" appears 2 times/],
    ["only another spelling", '{"Model":"a"}', /^entity_missing: The request body has no "model" field \(a differently spelled key such as "Model" is not accepted\)\.$/],
    ["no field", "{}", /^entity_missing: The request body has no "model" field\.$/],
    ["a number", '{"model":1}', /^entity_invalid: The field "model" must be a string\.$/],
  ])("JSON: %s", (_name, body, message) => {
    expect(json(body)).toMatch(message);
  });

  it.each([
    ["neither field", "{}", /^entity_missing: The request body has neither a "model" nor a "name" field\.$/],
    ["two entities", '{"model":"a","name":"b"}', /^entity_ambiguous: The fields "model" and "name" name different entities/],
    ["a second spelling of the fallback", '{"model":"a","NAME":"b"}', /^entity_ambiguous: The request body has no "name" field \(a differently spelled key such as "NAME" is not accepted\); it could name a second entity\.$/],
  ])("JSON with a fallback: %s", (_name, body, message) => {
    expect(json(body, "name")).toMatch(message);
  });

  it.each([
    ["?Model=a", /^entity_ambiguous: The query parameter "model" must be spelled exactly so\.$/],
    ["?x=1", /^entity_missing: The query string has no "model" parameter\.$/],
    ["?model=a&model=b", /^entity_ambiguous: The query parameter "model" appears 2 times/],
    ["?model=a;b", /^entity_ambiguous: The query parameter "model" appears under another spelling too, or holds a ";"/],
    ["?model=", /^entity_invalid: The query parameter "model" must not be empty\.$/],
  ])("query %j", (query, message) => {
    expect(why(entityFromQuery(query, "model"))).toMatch(message);
  });

  it.each([
    [5, /must be a string/],
    ["", /must not be empty/],
    ["a".repeat(257), /is longer than 256 characters/],
    ["a\u0001", /contains a control character/],
    ["a\ud800", /is not well-formed Unicode/],
    ["pat_" + "a".repeat(22) + "_" + "b".repeat(49), /looks like a token/],
  ])("validateEntityId(%j)", (value, message) => {
    expect(why(validateEntityId(value, "The id"))).toMatch(new RegExp(`^entity_invalid: The id ${message.source}`));
  });
});
