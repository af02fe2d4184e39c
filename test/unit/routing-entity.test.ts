import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { entityFromJson, entityFromMultipart, jsonHasField, queryHasParam, validateEntityId } from "../../src/routing/entity.ts";
import type { EntityResult } from "../../src/routing/entity.ts";

const json = (text: string, field = "model"): EntityResult => entityFromJson(Buffer.from(text, "utf8"), field);
const code = (r: EntityResult): string => (r.ok ? `ok:${r.id}` : r.code);

describe("entityFromJson: accepted bodies", () => {
  it("reads a top-level string field", () => {
    expect(json('{"model":"llama3:8b","messages":[]}')).toEqual({ ok: true, id: "llama3:8b" });
  });

  it("ignores nested keys with the same name", () => {
    expect(code(json('{"model":"a","tools":[{"model":"b"}],"x":{"model":"c","y":{"MODEL":"d"}}}'))).toBe("ok:a");
  });

  it("ignores the field name inside string values, escaped or not", () => {
    expect(code(json('{"model":"a","messages":[{"role":"user","content":"\\"model\\": \\"b\\""}]}'))).toBe("ok:a");
    expect(code(json('{"prompt":"\\"model\\"","model":"a","suffix":"\\u0022model\\u0022"}'))).toBe("ok:a");
    expect(code(json('{"model":"a","k":"model","model2":"b"}'))).toBe("ok:a");
  });

  it("reads a field whose key is spelled with escapes", () => {
    expect(code(json('{"mod\\u0065l":"a"}'))).toBe("ok:a");
  });

  it("unescapes the value", () => {
    expect(code(json('{"model":"org\\/m\\u00e9"}'))).toBe("ok:org/mé");
  });

  it("reads other fields (Ollama /api/copy source)", () => {
    expect(code(json('{"source":"a","destination":"b"}', "source"))).toBe("ok:a");
  });

  it("is not fooled by a key that only starts like the field", () => {
    expect(code(json('{"model":"a","models":"b","Model_x":"c","mode":"d"}'))).toBe("ok:a");
  });

  it("takes the slow path correctly when escapes are present elsewhere", () => {
    expect(code(json('{"a":"\\u0041","model":"m","b":{"model":"x"},"c":["model",{"model":1}]}'))).toBe("ok:m");
  });
});

describe("entityFromJson: rejected bodies", () => {
  it.each([
    ["empty", ""],
    ["not JSON", "model=a"],
    ["truncated", '{"model":"a"'],
    ["trailing data", '{"model":"a"}{"model":"b"}'],
    ["array", '[{"model":"a"}]'],
    ["string", '"model"'],
    ["null", "null"],
    ["NaN (Python json would accept it)", '{"model":"a","t":NaN}'],
  ])("bad_json: %s", (_name, text) => {
    expect(code(json(text))).toBe("bad_json");
  });

  it("bad_json: a UTF-8 byte order mark", () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"model":"a"}')]);
    expect(code(entityFromJson(body, "model"))).toBe("bad_json");
  });

  it("bad_json: invalid UTF-8", () => {
    const body = Buffer.concat([Buffer.from('{"model":"a'), Buffer.from([0xff]), Buffer.from('"}')]);
    expect(code(entityFromJson(body, "model"))).toBe("bad_json");
  });

  it("bad_json: UTF-16 (which Python would decode)", () => {
    expect(code(entityFromJson(Buffer.from('{"model":"a"}', "utf16le"), "model"))).toBe("bad_json");
  });

  it.each([
    ["plain duplicate", '{"model":"a","model":"b"}'],
    ["duplicate with the same value", '{"model":"a","model":"a"}'],
    ["escaped duplicate", '{"model":"a","mod\\u0065l":"b"}'],
    ["fully escaped duplicate", '{"\\u006d\\u006f\\u0064\\u0065\\u006c":"b","model":"a"}'],
    ["upper-case escape", '{"model":"a","MOD\\u0045L":"b"}'],
    ["differently cased (Go's encoding/json matches case-insensitively)", '{"model":"a","Model":"b"}'],
    ["upper case", '{"MODEL":"b","model":"a"}'],
    ["duplicate after nested objects", '{"model":"a","x":{"y":[1,{"z":"}"}]},"model":"b"}'],
    ["duplicate with whitespace", '{ "model" : "a" ,\n "model" : "b" }'],
  ])("entity_ambiguous: %s", (_name, text) => {
    expect(code(json(text))).toBe("entity_ambiguous");
  });

  it("entity_ambiguous: Unicode letters Go folds to ASCII (KELVIN SIGN, LONG S)", () => {
    expect(code(json('{"source":"a","\u017Fource":"b"}', "source"))).toBe("entity_ambiguous");
    expect(code(json('{"kind":"a","\u212Aind":"b"}', "kind"))).toBe("entity_ambiguous");
    expect(code(json('{"source":"a","\\u017fource":"b"}', "source"))).toBe("entity_ambiguous");
  });

  it.each([
    ["absent", '{"messages":[]}'],
    ["only nested", '{"x":{"model":"a"}}'],
    ["only a differently cased key", '{"Model":"a"}'],
    ["empty object", "{}"],
  ])("entity_missing: %s", (_name, text) => {
    expect(code(json(text))).toBe("entity_missing");
  });

  it("entity_missing: inherited properties do not count", () => {
    expect(code(json('{"a":1}', "constructor"))).toBe("entity_missing");
    expect(code(json('{"a":1}', "__proto__"))).toBe("entity_missing");
    expect(code(json('{"__proto__":"x"}', "__proto__"))).toBe("ok:x");
  });

  it.each([
    ["null", '{"model":null}'],
    ["number", '{"model":1}'],
    ["array", '{"model":["a"]}'],
    ["object", '{"model":{"id":"a"}}'],
    ["empty string", '{"model":""}'],
    ["too long", `{"model":"${"a".repeat(257)}"}`],
    ["NUL", '{"model":"a\\u0000"}'],
    ["newline", '{"model":"a\\nb"}'],
    ["DEL", '{"model":"a\\u007f"}'],
    ["C1 control", '{"model":"a\\u0085"}'],
    ["lone surrogate", '{"model":"a\\ud800"}'],
  ])("entity_invalid: %s", (_name, text) => {
    expect(code(json(text))).toBe("entity_invalid");
  });

  it("accepts exactly 256 characters", () => {
    expect(code(json(`{"model":"${"a".repeat(256)}"}`))).toBe(`ok:${"a".repeat(256)}`);
  });
});

describe("entityFromJson: robustness", () => {
  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom("model", "source", "a/b", ""), (bytes, field) => {
        entityFromJson(Buffer.from(bytes), field);
      }),
      { numRuns: 3000 },
    );
  });

  it("never throws on arbitrary JSON, and agrees with JSON.parse when no key repeats", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 4 }), (text) => {
        const r = entityFromJson(Buffer.from(text), "model");
        const v: unknown = JSON.parse(text);
        if (r.ok) {
          expect(typeof v === "object" && v !== null && (v as Record<string, unknown>)["model"]).toBe(r.id);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("an escape elsewhere in the body does not change the answer", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("model", "Model", "x", "messages", "mode"), fc.jsonValue(), { maxKeys: 4 }), (obj) => {
        const text = JSON.stringify(obj);
        const slow = text === "{}" ? '{"zz":"\\u0041"}' : `{"zz":"\\u0041",${text.slice(1)}`;
        expect(code(json(slow))).toBe(code(json(text)));
      }),
      { numRuns: 1000 },
    );
  });

  it("finds a duplicate however the rest of the object looks", () => {
    const key = fc.constantFrom('"model"', '"mod\\u0065l"', '"MODEL"', '"Model"', '"\\u006Dodel"');
    fc.assert(
      fc.property(fc.dictionary(fc.string().filter((k) => k.toLowerCase() !== "model"), fc.jsonValue(), { maxKeys: 4 }), key, key, (rest, k1, k2) => {
        const inner = JSON.stringify(rest).slice(1, -1);
        const text = `{${k1}:"a",${inner}${inner === "" ? "" : ","}${k2}:"b"}`;
        expect(code(json(text))).toBe("entity_ambiguous");
      }),
      { numRuns: 500 },
    );
  });

  it("handles a large body without escapes", () => {
    const big = Buffer.from(JSON.stringify({ model: "m", messages: [{ role: "user", content: "x".repeat(8 * 1024 * 1024) }] }));
    expect(code(entityFromJson(big, "model"))).toBe("ok:m");
  });

  it("handles a large body full of escapes and non-ASCII text", () => {
    const big = Buffer.from(JSON.stringify({ model: "m", messages: [{ content: "\u00e9 \\u \"model\" ".repeat(200_000) }], x: { model: "n" } }));
    expect(code(entityFromJson(big, "model"))).toBe("ok:m");
  });
});

// ------------------------------------------------------------------ multipart

const B = "----patgate7MA4YWxkTrZu0gW";
const CT = `multipart/form-data; boundary=${B}`;

function field(name: string, value: string, headers = ""): string {
  return `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n${headers}\r\n${value}\r\n`;
}
function file(name: string, filename: string, data = "RIFF\u0000\u0001binary"): string {
  return `--${B}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: audio/wav\r\n\r\n${data}\r\n`;
}
const end = `--${B}--\r\n`;
const mp = async (body: string, field = "model", contentType = CT): Promise<string> =>
  code(await entityFromMultipart(Buffer.from(body, "latin1"), contentType, field));

describe("entityFromMultipart: accepted forms", () => {
  it("reads the model field next to an audio file", async () => {
    expect(await mp(file("file", "a.wav") + field("model", "whisper-1") + field("language", "en") + end)).toBe("ok:whisper-1");
  });

  it("accepts a quoted boundary and 8bit", async () => {
    const body = field("model", "m", "Content-Transfer-Encoding: 8bit\r\n") + end;
    expect(await mp(body, "model", `multipart/form-data; boundary="${B}"`)).toBe("ok:m");
  });

  it("decodes the value as UTF-8", async () => {
    const body = Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\n`), Buffer.from("modèle"), Buffer.from(`\r\n${end}`)]);
    expect(code(await entityFromMultipart(body, CT, "model"))).toBe("ok:modèle");
  });

  it("accepts a case-insensitive header name, and a closing delimiter without its CRLF", async () => {
    const body = `--${B}\r\ncontent-disposition: FORM-DATA; NAME="model"\r\n\r\nm\r\n--${B}--`;
    expect(await mp(body)).toBe("ok:m");
  });

  it("keeps binary file content that contains the field name", async () => {
    const data = `\r\nContent-Disposition: form-data; name="model"\r\n\r\nother`;
    expect(await mp(file("file", "a.wav", data) + field("model", "m") + end)).toBe("ok:m");
  });
});

describe("entityFromMultipart: rejected forms", () => {
  it.each([
    ["no boundary", "multipart/form-data"],
    ["JSON content type", "application/json"],
    ["urlencoded", "application/x-www-form-urlencoded; boundary=x"],
    ["two boundaries", `multipart/form-data; boundary=${B}; boundary=other`],
    ["empty boundary", "multipart/form-data; boundary="],
    ["boundary too long", `multipart/form-data; boundary=${"a".repeat(71)}`],
    ["boundary with a bad character", "multipart/form-data; boundary=a<b"],
    ["encoded boundary", `multipart/form-data; boundary*=utf-8''${B}`],
  ])("bad_multipart: %s", async (_name, ct) => {
    expect(await mp(field("model", "m") + end, "model", ct)).toBe("bad_multipart");
  });

  it.each([
    ["garbage", "hello world"],
    ["empty body", ""],
    ["a preamble", `preamble\r\n${field("model", "m")}${end}`],
    ["no closing delimiter", field("model", "m")],
    ["a delimiter followed by junk (a prefix match)", `${field("model", "m")}--${B}X\r\n\r\n${end}`],
    ["transport padding after a delimiter", `--${B}  \r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n${end}`],
    ["a part without headers", `--${B}\r\n\r\nm\r\n${end}`],
    ["a part without Content-Disposition", `--${B}\r\nContent-Type: text/plain\r\n\r\nm\r\n${end}`],
    ["two Content-Disposition headers", `--${B}\r\nContent-Disposition: form-data; name="x"\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n${end}`],
    ["a folded header", `--${B}\r\nContent-Disposition: form-data;\r\n name="model"\r\n\r\nm\r\n${end}`],
    ["a malformed header line", `--${B}\r\nContent-Disposition: form-data; name="x"\r\ngarbage\r\n\r\nm\r\n${end}`],
    ["a bare LF in a header", `--${B}\r\nContent-Disposition: form-data; name="x"\nX: y\r\n\r\nm\r\n${end}`],
    ["a non-form-data disposition", `--${B}\r\nContent-Disposition: attachment; name="model"\r\n\r\nm\r\n${end}`],
    ["a part without a name", `--${B}\r\nContent-Disposition: form-data\r\n\r\nm\r\n${end}`],
    ["two name parameters", `--${B}\r\nContent-Disposition: form-data; name="x"; name="model"\r\n\r\nm\r\n${end}`],
    ["an RFC 2231 name*", `--${B}\r\nContent-Disposition: form-data; name*=utf-8''model\r\n\r\nm\r\n${end}`],
    ["a backslash in a quoted parameter", `--${B}\r\nContent-Disposition: form-data; filename="a\\"; name="model"\r\n\r\nm\r\n${end}`],
    ["an unterminated quoted parameter", `--${B}\r\nContent-Disposition: form-data; name="model\r\n\r\nm\r\n${end}`],
    ["a filename* parameter", `--${B}\r\nContent-Disposition: form-data; name="model"; filename*=utf-8''x\r\n\r\nm\r\n${end}`],
    ["an epilogue", `${field("model", "m")}${end}epilogue --${B}\r\n`],
    ["headers that run into the next delimiter", `--${B}\r\nContent-Disposition: form-data; name="model"\r\n--${B}--\r\n`],
  ])("bad_multipart: %s", async (_name, body) => {
    expect(await mp(body)).toBe("bad_multipart");
  });

  it.each([
    ["two model fields", field("model", "a") + field("model", "b") + end],
    ["two model fields with the same value", field("model", "a") + field("model", "a") + end],
    ["a field and a file named model", field("model", "a") + file("model", "m.bin") + end],
    ["differently cased names", field("model", "a") + field("MODEL", "b") + end],
  ])("entity_ambiguous: %s", async (_name, body) => {
    expect(await mp(body)).toBe("entity_ambiguous");
  });

  it.each([
    ["no model field", file("file", "a.wav") + field("language", "en") + end],
    ["no parts at all", end],
    ["only a differently cased field", field("Model", "m") + end],
  ])("entity_missing: %s", async (_name, body) => {
    expect(await mp(body)).toBe("entity_missing");
  });

  it.each([
    ["a file part", file("model", "whisper-1") + end],
    ["an empty value", field("model", "") + end],
    ["a value with a newline", field("model", "a\r\nb") + end],
    ["a base64 transfer encoding", field("model", "bQ==", "Content-Transfer-Encoding: base64\r\n") + end],
    ["a non-text content type", field("model", "m", "Content-Type: application/json\r\n") + end],
    ["a non-UTF-8 charset", field("model", "m", "Content-Type: text/plain; charset=utf-16le\r\n") + end],
    ["even text/plain (formidable reads such a part as a file)", field("model", "m", "Content-Type: text/plain\r\n") + end],
    ["a value that is too long", field("model", "a".repeat(5000)) + end],
  ])("entity_invalid: %s", async (_name, body) => {
    expect(await mp(body)).toBe("entity_invalid");
  });

  it("entity_invalid: invalid UTF-8 in the value", async () => {
    const body = Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\n`), Buffer.from([0xc3, 0x28]), Buffer.from(`\r\n${end}`)]);
    expect(code(await entityFromMultipart(body, CT, "model"))).toBe("entity_invalid");
  });

  it("never throws or hangs on arbitrary bodies", async () => {
    const piece = fc.constantFrom(`--${B}`, "\r\n", "--", "Content-Disposition: form-data; ", 'name="model"', "filename=\"x\"", "\r\n\r\n", "m", ";", '"', "\\", ":");
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 30 }), async (pieces) => {
        const r = await entityFromMultipart(Buffer.from(pieces.join("")), CT, "model");
        expect(typeof r.ok).toBe("boolean");
      }),
      { numRuns: 2000 },
    );
  });
});

describe("validateEntityId", () => {
  it("accepts ordinary model ids", () => {
    for (const id of ["gpt-4o", "llama3:8b", "meta-llama/Llama-3.1-8B-Instruct", "modèle", "a b"]) {
      expect(validateEntityId(id, "id").ok).toBe(true);
    }
  });
});

describe("queryHasParam", () => {
  it.each([
    ["?model=a", true],
    ["?x=1&model=a", true],
    ["?x=1;model=a", true],
    ["?model", true],
    ["?model=", true],
    ["?MODEL=a", true],
    ["?%6dodel=a", true],
    ["?mo%64el=a", true],
    ["?%4D%4F%44%45%4C=a", true],
    ["?x=model", false],
    ["?models=a", false],
    ["?x=1&y=model%3Da", false],
    ["?mode=l", false],
    ["?model%5B%5D=a", true],
    ["?+model=a", true],
    ["?model[]=a", true],
    ["?model[0]=a", true],
    ["?Model[x]=a", true],
    ["?model%5b0%5d=a", true],
    ["?model.x=a", true],
    ["?%20model=a", true],
    ["?model%00junk=a", true],
    ["?%4dODEL[]=a", true],
    ["?models[]=a", false],
    ["?xmodel[]=a", false],
    ["?[model]=a", false],
    ["", false],
    ["?", false],
    ["?&&", false],
  ])("%j → %s", (query, expected) => {
    expect(queryHasParam(query, "model")).toBe(expected);
  });

  it("decodes '+' as space", () => {
    expect(queryHasParam("?a+b=1", "a b")).toBe(true);
  });

  it("maps '.' and ' ' in a key to '_' as PHP does", () => {
    expect(queryHasParam("?model.id=1", "model_id")).toBe(true);
    expect(queryHasParam("?model+id=1", "model_id")).toBe(true);
    expect(queryHasParam("?modelid=1", "model_id")).toBe(false);
  });

  it("never throws", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 100 }), (q) => {
        queryHasParam(q, "model");
        queryHasParam("?" + q, "model");
      }),
      { numRuns: 2000 },
    );
  });
});

describe("entityFromJson with a fallback field (Ollama's model/name)", () => {
  const j = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
  it.each([
    [{ model: "a" }, "ok:a"],
    [{ name: "a" }, "ok:a"],
    [{ model: "a", name: "a" }, "ok:a"],
    [{ model: "a", name: "b" }, "entity_ambiguous"],
    [{ model: "a", NAME: "b" }, "entity_ambiguous"],
    [{ model: "a", name: 1 }, "entity_invalid"],
    [{ model: "", name: "a" }, "entity_invalid"],
    [{}, "entity_missing"],
    [{ Name: "a" }, "entity_missing"],
  ])("%j → %s", (body, want) => {
    expect(code(entityFromJson(j(body), "model", "name"))).toBe(want);
  });
});

describe("validateEntityId boundaries", () => {
  it.each([
    ["a 256-character id", "a".repeat(256), true],
    ["a 257-character id", "a".repeat(257), false],
    ["DEL", "a\u007fb", false],
    ["a C1 control", "a\u0085b", false],
    ["the last C1 control", "a\u009fb", false],
    ["the first character after C1", "a\u00a0b", true],
    ["a space", "a b", true],
    ["a unit separator", "a\u001fb", false],
    ["a lone surrogate", "a\ud800", false],
    ["a number", 5, false],
    ["empty", "", false],
  ])("%s → %s", (_name, value, ok) => {
    expect(validateEntityId(value, "x").ok).toBe(ok);
  });
});

describe("jsonHasField", () => {
  it.each([
    ['{"from":"a"}', true],
    ['{"FROM":"a"}', true],
    ['{"x":{"from":"a"}}', false],
    ['{"x":"from"}', false],
    ["[1]", false],
    ["not json", false],
    ["", false],
  ])("%s → %s", (body, expected) => {
    expect(jsonHasField(Buffer.from(body), "from")).toBe(expected);
  });
  it("is false for invalid UTF-8", () => {
    expect(jsonHasField(Buffer.from([0x7b, 0xff, 0x7d]), "from")).toBe(false);
  });
});
