/**
 * Reading the entity id (usually the model) from a buffered request body.
 *
 * The rule is "authorize exactly what is forwarded": when the upstream could
 * read a different value than we do, the request is refused, not guessed at.
 * Upstreams differ: Python's json keeps the last duplicate key, some parsers
 * the first, and Go's encoding/json (Ollama) matches keys case-insensitively,
 * so `{"model":"a","MODEL":"b"}` is model "b" there. Any second key that any of
 * them would read as the field makes the request ambiguous.
 */
import { isUtf8 } from "node:buffer";
import { foldEquals } from "./fold.ts";
import { scanJson } from "./json-scan.ts";
import { fail, validateEntityId, type EntityResult } from "./entity-id.ts";

export { MAX_ENTITY_ID_LENGTH, validateEntityId, type EntityErrorCode, type EntityResult } from "./entity-id.ts";
export { entityFromMultipart, MAX_PARTS } from "./multipart.ts";

// ------------------------------------------------------------------- JSON

/**
 * Read `field` from a JSON object body. The field must be a top-level key
 * exactly once (no duplicate, escaped or differently-cased twin) and a valid id.
 * The body is validated as JSON.parse would, without being parsed (json-scan.ts).
 *
 * With a `fallback` (Ollama's older `name`, which it reads as `cmp.Or(model,
 * name)`), the id is whichever of the two is present; a body with both must
 * name the same entity in both, or the upstream might act on the other one.
 */
export function entityFromJson(body: Buffer, field: string, fallback: string | null = null): EntityResult {
  const main = readJsonField(body, field);
  if (fallback === null || (!main.ok && main.code !== "entity_missing")) return main;
  const alt = readJsonField(body, fallback);
  if (!alt.ok && alt.code === "entity_missing") {
    // A differently spelled key (`NAME`) is one Go's encoding/json would read: refused, not skipped.
    if (main.ok && jsonHasField(body, fallback)) return fail("entity_ambiguous", `${alt.message.replace(/\.$/, "")}; it could name a second entity.`);
    return main.ok ? main : fail("entity_missing", `The request body has neither a "${field}" nor a "${fallback}" field.`);
  }
  if (!main.ok) return alt;
  if (!alt.ok) return alt;
  if (alt.id !== main.id) return fail("entity_ambiguous", `The fields "${field}" and "${fallback}" name different entities; send one of them (or the same value in both).`);
  return main;
}

/** Whether a JSON object body has `field` as a top-level key, in any spelling a parser would read as it; false for a body that is not a JSON object. */
export function jsonHasField(body: Buffer, field: string): boolean {
  // An empty body scans as "invalid".
  if (!isUtf8(body)) return false;
  const seen = scanJson(body, field);
  return typeof seen !== "string" && seen.matches > 0;
}

function readJsonField(body: Buffer, field: string): EntityResult {
  if (body.length === 0) return fail("bad_json", "The request body is empty; expected a JSON object.");
  // Rejected rather than stripped: JSON forbids a BOM and Go and Node refuse
  // one, while Python's json.loads(bytes) skips it. Refusing is the only
  // choice that cannot disagree with an upstream.
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) {
    return fail("bad_json", "The request body starts with a byte order mark; send JSON without one.");
  }
  if (!isUtf8(body)) return fail("bad_json", "The request body is not valid UTF-8.");
  const seen = scanJson(body, field);
  if (seen === "invalid") return fail("bad_json", "The request body is not valid JSON.");
  if (seen === "not_object") return fail("bad_json", "The request body must be a JSON object.");
  if (seen.matches > 1) {
    return fail("entity_ambiguous", `The field "${field}" appears ${seen.matches} times (keys are compared case-insensitively and after unescaping); send it exactly once.`);
  }
  if (seen.exact === 0) {
    const hint = seen.matches === 1 ? ` (a differently spelled key such as "${seen.other}" is not accepted)` : "";
    return fail("entity_missing", `The request body has no "${field}" field${hint}.`);
  }
  // Only the value's literal is decoded: its escapes, exactly as JSON.parse reads them.
  const value: unknown = seen.valueIsString ? JSON.parse(body.toString("utf8", seen.valueStart, seen.valueEnd)) : null;
  return validateEntityId(value, `The field "${field}"`);
}

// ----------------------------------------------------------------- query

/**
 * The value of `name` in a raw query string, which must hold it exactly once
 * and spelled exactly: any other parameter an upstream's parser could read as
 * it (another case, `;`-separated, `name[]`, percent-encoded) makes the
 * request ambiguous, as a duplicate JSON key does. Cold path (upgrades only).
 */
export function entityFromQuery(query: string, name: string): EntityResult {
  const raw = query.charCodeAt(0) === 0x3f /* ? */ ? query.slice(1) : query;
  const values = new URLSearchParams(raw).getAll(name);
  if (values.length === 0) {
    return queryHasParam(query, name) ? fail("entity_ambiguous", `The query parameter "${name}" must be spelled exactly so.`) : fail("entity_missing", `The query string has no "${name}" parameter.`);
  }
  if (values.length > 1) return fail("entity_ambiguous", `The query parameter "${name}" appears ${values.length} times; send it exactly once.`);
  // A second spelling beside the exact one (`Model=`, `model[]=`, or after a `;`, which some parsers split on):
  // drop the exact pair, split as those parsers split, and look again.
  const pairs = raw.split(/[&;]/);
  const at = pairs.findIndex((pair) => pair.startsWith(`${name}=`) || pair === name);
  // `model=a;b`: "a;b" to a parser that splits on `&` only, "a" to one that splits on `;` too.
  const value = at === -1 ? null : new URLSearchParams(pairs.splice(at, 1)[0]).get(name);
  if (value !== values[0] || queryHasParam(pairs.join("&"), name)) return fail("entity_ambiguous", `The query parameter "${name}" appears under another spelling too, or holds a ";"; send it exactly once.`);
  return validateEntityId(values[0], `The query parameter "${name}"`);
}

/**
 * True when a raw query string (`''` or `?…`) names `name` as a parameter,
 * in any spelling an upstream's query parser could map onto it:
 * percent-encoded, `+` for space, any ASCII letter case (and the Unicode
 * letters Go folds), `&` or `;` separated, with or without `=`; with an array
 * or object suffix (`model[]`, `model[0]`, `model[x]`, `model%5B%5D`: PHP,
 * Rails, `qs`), a dotted one (`model.x`: `qs` allowDots), leading spaces or
 * `.`/space for `_` (PHP), or cut at a NUL (C parsers).
 */
export function queryHasParam(query: string, name: string): boolean {
  const len = query.length;
  let start = query.charCodeAt(0) === 0x3f /* ? */ ? 1 : 0;
  let eq = -1;
  for (let i = start; i <= len; i++) {
    const c = i === len ? 0x26 : query.charCodeAt(i);
    if (c === 0x3d /* = */) {
      if (eq === -1) eq = i;
      continue;
    }
    if (c !== 0x26 /* & */ && c !== 0x3b /* ; */) continue;
    // An empty key (`&&`, `=x`) names nothing: keyNames("") is false for any name.
    if (keyNames(query.slice(start, eq === -1 ? i : eq), name)) return true;
    start = i + 1;
    eq = -1;
  }
  return false;
}

// Keys with nothing to decode, trim or split: the common case, compared as they are.
const PLAIN_KEY = /^[A-Za-z0-9_-]*$/;

function keyNames(rawKey: string, name: string): boolean {
  if (PLAIN_KEY.test(rawKey)) return foldEquals(rawKey, name);
  let key = decodeKey(rawKey);
  const nul = key.indexOf("\u0000");
  if (nul !== -1) key = key.slice(0, nul);
  let a = 0;
  while (key.charCodeAt(a) === 0x20) a++; // NaN past the end
  key = key.slice(a);
  // `name[…]` / `name.…`: the part before the suffix is the parameter (NaN past the key's end).
  const next = key.charCodeAt(name.length);
  if ((next === 0x5b /* [ */ || next === 0x2e /* . */) && foldEquals(key.slice(0, name.length), name)) return true;
  // The key as it is, or as PHP reads it: PHP turns ' ', '.' and an unmatched '[' into '_'
  // (a key equal to the name stays equal after that on both sides).
  return foldEquals(phpKey(key), phpKey(name));
}

function phpKey(s: string): string {
  return s.replace(/[ .[]/g, "_");
}

function decodeKey(rawKey: string): string {
  if (!rawKey.includes("%") && !rawKey.includes("+")) return rawKey;
  const bytes: number[] = [];
  for (let i = 0; i < rawKey.length; i++) {
    const c = rawKey.charCodeAt(i);
    if (c === 0x2b) {
      bytes.push(0x20);
    } else if (c === 0x25 && isHex(rawKey.charCodeAt(i + 1)) && isHex(rawKey.charCodeAt(i + 2))) {
      // Past the end charCodeAt is NaN, which is not hex: a '%' near the end stays literal.
      bytes.push(Number.parseInt(rawKey.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      // Lenient like most query parsers: a stray '%' stays literal.
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
