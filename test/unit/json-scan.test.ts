import { execFileSync } from "node:child_process";
import { isUtf8 } from "node:buffer";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { stripTypeScriptTypes } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { scanJson } from "../../src/routing/json-scan.ts";
import { entityFromJson } from "../../src/routing/entity.ts";
import { foldEquals } from "../../src/routing/fold.ts";
import { controlBytes, controlBytesPlain, controlBytesSimd } from "../../src/util/control-bytes.ts";

/**
 * The scanner must accept exactly what JSON.parse accepts and find the same
 * top-level keys. The oracle below is deliberately the plain way: JSON.parse
 * for validity and values, and a character walk over the already-valid text
 * for the top-level keys (JSON.parse merges duplicates, so it cannot count them).
 */
interface Expected {
  readonly verdict: "invalid" | "not_object" | "object";
  readonly matches?: number;
  readonly exact?: number;
  readonly value?: unknown;
}

function oracle(body: Buffer, field: string): Expected {
  const text = body.toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { verdict: "invalid" };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return { verdict: "not_object" };
  let matches = 0;
  let exact = 0;
  for (const key of topLevelKeys(text)) {
    if (!foldEquals(key, field)) continue;
    matches++;
    if (key === field) exact++;
  }
  return { verdict: "object", matches, exact, value: exact === 1 ? (parsed as Record<string, unknown>)[field] : undefined };
}

/** The top-level keys of a valid JSON object text, in order, duplicates kept. */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      expectKey = false;
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = depth === 1 ? c === "{" : expectKey;
    } else if (c === "}" || c === "]") depth--;
    else if (c === "," && depth === 1) expectKey = true;
  }
  return keys;
}

function check(body: Buffer, field: string): void {
  if (!isUtf8(body) || body.length === 0) return; // the caller refuses these before scanning
  const want = oracle(body, field);
  const got = scanJson(body, field);
  if (want.verdict !== "object") {
    expect({ body: body.toString("utf8"), got }).toEqual({ body: body.toString("utf8"), got: want.verdict });
    return;
  }
  expect(typeof got, body.toString("utf8")).toBe("object");
  if (typeof got !== "object") return;
  expect({ body: body.toString("utf8"), matches: got.matches, exact: got.exact }).toEqual({ body: body.toString("utf8"), matches: want.matches, exact: want.exact });
  if (got.exact === 1) {
    const literal = body.toString("utf8", got.valueStart, got.valueEnd);
    expect(JSON.parse(literal)).toEqual(want.value);
    expect(got.valueIsString).toBe(typeof want.value === "string");
  }
}

// Strings with what makes scanning hard: escapes (valid and not), quotes, control characters, non-ASCII, long runs.
const hardChar = fc.constantFrom('"', "\\", "/", "\n", "\t", "\r", "\u0000", "\u001f", "\u007f", "é", "\u212a", "ſ", "😀", "\ud800", " ", "a", "model", "MODEL");
const hardString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.array(hardChar, { maxLength: 20 }).map((a) => a.join("")),
  fc.tuple(fc.integer({ min: 0, max: 200 }), fc.array(hardChar, { maxLength: 6 })).map(([n, a]) => "x".repeat(n) + a.join("") + "y".repeat(n >> 1)),
  // Long strings (far past the scanner's byte-by-byte window), with escapes anywhere in them.
  fc.tuple(fc.integer({ min: 250, max: 700 }), fc.array(fc.tuple(fc.nat({ max: 700 }), hardChar), { maxLength: 6 })).map(([n, marks]) => {
    let t = "z".repeat(n);
    for (const [at, c] of marks) t = t.slice(0, at % (t.length + 1)) + c + t.slice(at % (t.length + 1));
    return t;
  }),
);
const key = fc.oneof(fc.constantFrom("model", "Model", "MODEL", "mode", "models", "\u212aey", "messages"), hardString);
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    hardString,
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.constantFrom(true, false, null),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.array(fc.tuple(key, tie("v")), { maxLength: 4 }).map((kv) => Object.fromEntries(kv)),
  ),
})).v;

/** JSON text with keys that may repeat (JSON.stringify cannot write those) and random whitespace. */
const body = fc
  .tuple(fc.array(fc.tuple(key, value), { maxLength: 6 }), fc.array(fc.constantFrom("", " ", "\n", "\t", "\r\n  "), { minLength: 8, maxLength: 8 }), fc.boolean())
  .map(([entries, ws, escapeKeys]) => {
    const k = (s: string): string => (escapeKeys ? JSON.stringify(s).replace(/[a-z]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`) : JSON.stringify(s));
    const inner = entries.map(([name, v], i) => `${ws[i % 8]}${k(name)}${ws[(i + 1) % 8]}:${ws[(i + 2) % 8]}${JSON.stringify(v, null, i % 2 === 0 ? undefined : "\t")}`).join(",");
    return `${ws[7]}{${inner}${ws[6]}}${ws[5]}`;
  });

/** What JSON.parse is strictest about, for mutations. */
const nasty = fc.constantFrom('"', "\\", "\\u", "\\u00", "\\x", "{", "}", "[", "]", ",", ":", "-", "0", "01", ".", "e", "E+", "1e", "tru", "nul", "fals", "\u0000", "\u0001", "\u001f", "\t", "\n", "\r", "\u000b", "\u00a0", "\u2028", "//", "'");
const mutated = fc.tuple(body, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), nasty), { minLength: 1, maxLength: 3 })).map(([text, edits]) => {
  let s = text;
  for (const [at, del, ins] of edits) {
    const p = s.length === 0 ? 0 : at % (s.length + 1);
    s = s.slice(0, p) + ins + s.slice(p + del);
  }
  return s;
});

describe("scanJson agrees with JSON.parse", () => {
  it("on generated objects (duplicate, escaped and folded keys; every kind of value)", () => {
    fc.assert(
      fc.property(body, fc.constantFrom("model", "messages", "\u212aey"), (text, field) => check(Buffer.from(text), field)),
      { numRuns: 4000 },
    );
  });

  it("on mutated objects, valid or not", () => {
    fc.assert(
      fc.property(mutated, (text) => check(Buffer.from(text), "model")),
      { numRuns: 20_000 },
    );
  });

  it("on arbitrary JSON values and on arbitrary strings", () => {
    fc.assert(fc.property(fc.json({ maxDepth: 5 }), (text) => check(Buffer.from(text), "model")), { numRuns: 3000 });
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (text) => check(Buffer.from(text), "model")), { numRuns: 3000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => check(Buffer.from(bytes), "model")), { numRuns: 3000 });
  });

  it("on the grammar's edges", () => {
    const cases = [
      '{"model":"m"}', ' {"model":"m"} ', '{"model":"m"}x', '{"model":"m",}', '{,"model":"m"}', '{"model" "m"}', '{"model":}', '{"model"}',
      '{"model":"m"', '"model"', "[]", "{}", "[{}]", "null", "0", "-0", "01", "1.", ".5", "1e", "1e+", "1E-2", "-", "--1", "+1", "0x1", "Infinity", "NaN",
      "tru", "true", "truex", "[true,false,null]", "[1,]", "[,1]", "[1 2]", '{"a":[1,{"b":[[]]}]}', '{"a":{"model":"n"},"model":"m"}',
      '{"model":"a\\"b"}', '{"model":"a\\\\"}', '{"model":"a\\\\\\"b"}', '{"model":"\\u00e9"}', '{"model":"\\u00G9"}', '{"model":"\\u00"}', '{"model":"\\x41"}',
      '{"model":"\\/"}', '{"model":"a\tb"}', '{"model":"a\nb"}', '{\n\t"model" :\r\n"m"\n}', '{"model":"m"}\u0000', '\u000b{"model":"m"}', '{"model":"m"}\u00a0',
      '{"mo\\u0064el":"m"}', '{"model":"a","MODEL":"b"}', '{"model":"a","mod\\u0065l":"b"}', '{"\u212aey":1}', '{"model":1}', '{"model":{"model":"m"}}',
      '{"model":"m","x":"' + "y".repeat(100) + '\\', '{"x":"' + "a".repeat(100) + '\\"' + "b".repeat(100) + '","model":"m"}',
      '{"x":"' + "a\\n".repeat(500) + '","model":"m"}', '{"x":"' + "a".repeat(70) + '\\q","model":"m"}', '{"x":"' + "a".repeat(70) + "\u0001" + '","model":"m"}',
      '{"x":"' + "a".repeat(70) + "\n" + '","model":"m"}', '{"x":"' + "é".repeat(70) + '","model":"m"}',
      // Long strings (past the byte-by-byte window) whose escapes are checked by the quote-parity path.
      '{"x":"' + "a".repeat(300) + '\\\\","model":"m"}', '{"x":"' + "a".repeat(300) + '\\\\\\","model":"m"}', '{"x":"' + "a".repeat(300) + '\\"\\"","model":"m"}',
      '{"x":"' + "a".repeat(300) + '\\x","model":"m"}', '{"x":"' + "a".repeat(300) + '\\u12","model":"m"}', '{"x":"' + "a".repeat(300) + '\\u12"}', '{"x":"' + "a".repeat(300) + "\\",
      '{"x":"' + "\\n".repeat(200) + "b".repeat(300) + '\\t","model":"m"}', '{"x":"' + "a".repeat(300) + "\\\u0001" + '","model":"m"}',
      // More escaped quotes than the scanner jumps over with memchr: the rest is read byte by byte.
      '{"x":"' + "a".repeat(300) + 'b\\"'.repeat(20) + '","model":"m"}', '{"x":"' + "a".repeat(300) + 'b\\"'.repeat(20) + '\\x","model":"m"}',
      '{"x":"' + "a".repeat(300) + 'b\\"'.repeat(20) + '\\\\","model":"m"}', '{"x":"' + "a".repeat(300) + 'b\\"'.repeat(20), '{"x":"' + "a".repeat(300) + '\\"'.repeat(9) + '","model":"m"}',
      '{"x":"' + "a".repeat(300) + "\\x" + 'b\\"'.repeat(20) + '","model":"m"}', '{"x":"' + "a".repeat(300) + "\\u00" + 'b\\"'.repeat(20) + '","model":"m"}',
    ];
    for (const text of cases) check(Buffer.from(text), "model");
  });

  it("on deep nesting", () => {
    check(Buffer.from(`{"model":"m","x":${"[".repeat(5000)}${"]".repeat(5000)}}`), "model");
    check(Buffer.from(`{"model":"m","x":${"[".repeat(5000)}${"]".repeat(4999)}}`), "model");
    // Deep enough to grow the scanner's stack past what it keeps; the next body scans as usual.
    check(Buffer.from(`{"model":"m","x":${"[{\"a\":".repeat(50_000)}1${"}]".repeat(50_000)}}`), "model");
    check(Buffer.from('{"x":[[{"model":"n"}]],"model":"m"}'), "model");
  });

  it("on bodies longer than one WebAssembly scan (256 KiB), with a control byte in each part", () => {
    const pad = "p".repeat(300 * 1024);
    for (const at of [0, 100, 262_143, 262_144, 262_145, 300 * 1024 - 1]) {
      const withTab = pad.slice(0, at) + "\t" + pad.slice(at);
      check(Buffer.from(`{"x":"${withTab}","model":"m"}`), "model");
      check(Buffer.from(`{"x":"${pad.slice(0, at)}\u0002${pad.slice(at)}","model":"m"}`), "model");
    }
    // A tab between tokens far into the body is allowed.
    check(Buffer.from(`{"x":"${pad}",\t"model":"m"}`), "model");
  });
});

describe("entityFromJson on large bodies", () => {
  it("reads the model from a 64 KiB chat body and refuses it with one raw control byte in the content", () => {
    const content = "Summarise the following text in three sentences please. ".repeat(1150);
    const ok = Buffer.from(JSON.stringify({ model: "bench-model", messages: [{ role: "user", content }], max_tokens: 256 }));
    expect(entityFromJson(ok, "model")).toEqual({ ok: true, id: "bench-model" });
    const bad = Buffer.from(ok.toString().replace("sentences please. Summarise", "sentences please.\nSummarise"));
    expect(entityFromJson(bad, "model")).toMatchObject({ ok: false, code: "bad_json" });
  });
});

describe("controlBytes", () => {
  it("runs on WebAssembly SIMD here, and agrees with the plain loop", () => {
    expect(controlBytesSimd).toBe(true);
    const bytes = fc.array(fc.oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x20, max: 0xff }), fc.constantFrom(9, 10, 13)), { maxLength: 100 });
    fc.assert(
      fc.property(bytes, fc.nat({ max: 40 }), (b, lead) => {
        const buf = Buffer.concat([Buffer.alloc(lead, 0x61), Buffer.from(b)]);
        expect(controlBytes(buf)).toBe(controlBytesPlain(buf));
      }),
      { numRuns: 5000 },
    );
    const big = Buffer.alloc(600_000, 0x61);
    big[599_999] = 10;
    big[262_144] = 13;
    expect(controlBytes(big)).toBe(2);
    big[300_000] = 0;
    expect(controlBytes(big)).toBe(-1);
  });

  it("falls back to the plain loop where WebAssembly is off (node --jitless)", async () => {
    // Node strips TypeScript with WebAssembly, so the module runs there as plain JavaScript.
    const source = await readFile(path.resolve(import.meta.dirname, "..", "..", "src", "util", "control-bytes.ts"), "utf8");
    const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-jitless-"));
    try {
      const file = path.join(dir, "control-bytes.mjs");
      await writeFile(file, stripTypeScriptTypes(source));
      const code = `const m = await import(${JSON.stringify(pathToFileURL(file).href)}); console.log(JSON.stringify([m.controlBytesSimd, m.controlBytes(Buffer.from("a\\tb\\n")), m.controlBytes(Buffer.from("a\\u0001"))]));`;
      const out = execFileSync(process.execPath, ["--jitless", "--input-type=module", "-e", code], { encoding: "utf8" });
      expect(JSON.parse(out)).toEqual([false, 2, -1]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
