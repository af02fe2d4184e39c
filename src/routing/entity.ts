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
import type { ErrorCode } from "../errors.ts";

/** The catalogue codes an entity lookup can fail with. */
export type EntityErrorCode = Extract<
  ErrorCode,
  "bad_json" | "bad_multipart" | "entity_missing" | "entity_ambiguous" | "entity_invalid"
>;

/** The entity id, or why the request does not name exactly one valid entity. */
export type EntityResult =
  | { readonly ok: true; readonly id: string }
  | { readonly ok: false; readonly code: EntityErrorCode; readonly message: string };

/** Longest entity id accepted, in UTF-16 code units. */
export const MAX_ENTITY_ID_LENGTH = 256;

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function fail(code: EntityErrorCode, message: string): EntityResult {
  return { ok: false, code, message };
}

/** Check that a value is usable as an entity id: a non-empty, well-formed string of at most 256 chars without control characters. */
export function validateEntityId(value: unknown, what: string): EntityResult {
  if (typeof value !== "string") return fail("entity_invalid", `${what} must be a string.`);
  if (value.length === 0) return fail("entity_invalid", `${what} must not be empty.`);
  if (value.length > MAX_ENTITY_ID_LENGTH) return fail("entity_invalid", `${what} is longer than ${MAX_ENTITY_ID_LENGTH} characters.`);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return fail("entity_invalid", `${what} contains a control character.`);
  }
  // A lone surrogate survives JSON.parse but is not a name any upstream stores.
  if (!value.isWellFormed()) return fail("entity_invalid", `${what} is not well-formed Unicode.`);
  return { ok: true, id: value };
}

// ------------------------------------------------------------------- JSON

/**
 * Read `field` from a JSON object body. The field must be a top-level key
 * exactly once (no duplicate, escaped or differently-cased twin) and a valid id.
 */
export function entityFromJson(body: Buffer, field: string): EntityResult {
  if (body.length === 0) return fail("bad_json", "The request body is empty; expected a JSON object.");
  // Rejected rather than stripped: JSON forbids a BOM and Go and Node refuse
  // one, while Python's json.loads(bytes) skips it. Refusing is the only
  // choice that cannot disagree with an upstream.
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) {
    return fail("bad_json", "The request body starts with a byte order mark; send JSON without one.");
  }
  // isUtf8 + toString is several times faster than a fatal TextDecoder on
  // large bodies, with the same result.
  if (!isUtf8(body)) return fail("bad_json", "The request body is not valid UTF-8.");
  const text = body.toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail("bad_json", "The request body is not valid JSON.");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return fail("bad_json", "The request body must be a JSON object.");
  }

  if (!duplicateImpossible(body, field)) {
    const seen = scanTopLevelKeys(text, field);
    if (seen.matches > 1) {
      return fail("entity_ambiguous", `The field "${field}" appears ${seen.matches} times (keys are compared case-insensitively and after unescaping); send it exactly once.`);
    }
    if (seen.matches === 1 && seen.exact === 0) {
      return fail("entity_missing", `The request body has no "${field}" field (a differently spelled key such as "${seen.other}" is not accepted).`);
    }
  }
  if (!Object.hasOwn(parsed, field)) return fail("entity_missing", `The request body has no "${field}" field.`);
  return validateEntityId((parsed as Record<string, unknown>)[field], `The field "${field}"`);
}

/**
 * Cheap proof that no second key can spell `field`: without `\u` escapes or
 * the two non-ASCII letters Go folds to ASCII (K, ſ), any such key appears in
 * the bytes as `"field"` in some letter case, and that appears at most once.
 */
function duplicateImpossible(body: Buffer, field: string): boolean {
  for (let i = 0; i < field.length; i++) {
    const c = field.charCodeAt(i);
    // Only [A-Za-z0-9_.-] cannot be spelled with a short escape such as \/.
    if (!(isAsciiAlnum(c) || c === 0x5f || c === 0x2e || c === 0x2d)) return false;
  }
  if (field.length === 0) return false;
  if (body.indexOf("\\u") !== -1) return false;
  if (body.indexOf(KELVIN) !== -1 || body.indexOf(LONG_S) !== -1) return false;

  let count = 0;
  const f0 = field.charCodeAt(0);
  const firsts = isAsciiLetter(f0) ? [f0 | 0x20, f0 & ~0x20] : [f0];
  for (const first of firsts) {
    const needle = '"' + String.fromCharCode(first);
    for (let pos = body.indexOf(needle); pos !== -1; pos = body.indexOf(needle, pos + 2)) {
      if (quotedFieldAt(body, pos + 1, field) && ++count > 1) return false;
    }
  }
  return true;
}

const KELVIN = Buffer.from("\u212a", "utf8");
const LONG_S = Buffer.from("\u017f", "utf8");

function quotedFieldAt(body: Buffer, at: number, field: string): boolean {
  for (let k = 0; k < field.length; k++) {
    const b = body[at + k];
    if (b === undefined || foldCode(b) !== foldCode(field.charCodeAt(k))) return false;
  }
  return body[at + field.length] === 0x22;
}

interface KeyScan {
  /** top-level keys equal to the field under case folding */
  matches: number;
  /** of those, spelled exactly as the field */
  exact: number;
  /** a matching key that is not exact, for the error message */
  other: string;
}

/**
 * Walk a JSON text that JSON.parse has already accepted and count the
 * top-level keys that equal `field` after unescaping and case folding.
 * Only depth and string boundaries are tracked: nested keys and string
 * contents are skipped.
 */
function scanTopLevelKeys(text: string, field: string): KeyScan {
  const out: KeyScan = { matches: 0, exact: 0, other: "" };
  let depth = 0;
  let expectKey = false;
  const len = text.length;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      // The text is valid JSON, so a closing quote exists; a quote preceded by
      // an odd run of backslashes is escaped.
      for (;;) {
        j = text.indexOf('"', j);
        if (j === -1) return out;
        let bs = 0;
        while (text.charCodeAt(j - 1 - bs) === 0x5c) bs++;
        if ((bs & 1) === 0) break;
        j++;
      }
      if (depth === 1 && expectKey) {
        expectKey = false;
        const raw = text.slice(i + 1, j);
        const key = raw.includes("\\") ? unescapeJsonString(text.slice(i, j + 1)) : raw;
        if (key !== null && foldEquals(key, field)) {
          out.matches++;
          if (key === field) out.exact++;
          else out.other = key;
        }
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return out;
}

function unescapeJsonString(literal: string): string | null {
  try {
    const v: unknown = JSON.parse(literal);
    return typeof v === "string" ? v : null;
  } catch {
    return null;
  }
}

// Simple case folding as Go's encoding/json applies it to ASCII names: ASCII
// letters fold together, and so do K (U+212A KELVIN SIGN) with k and ſ (U+017F
// LONG S) with s.
function foldCode(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c | 0x20;
  if (c === 0x212a) return 0x6b;
  if (c === 0x17f) return 0x73;
  return c;
}

function foldEquals(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (foldCode(a.charCodeAt(i)) !== foldCode(b.charCodeAt(i))) return false;
  }
  return true;
}

function isAsciiLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isAsciiAlnum(c: number): boolean {
  return isAsciiLetter(c) || (c >= 0x30 && c <= 0x39);
}

// -------------------------------------------------------------- multipart

// RFC 7230 tchar.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
// RFC 2046 bchars (space allowed, but not last).
const BCHAR = new Uint8Array(128);
for (const c of "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=? ") BCHAR[c.charCodeAt(0)] = 1;

const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Bytes of the matching part's value we keep; an id is at most 256 chars. */
const MAX_VALUE_BYTES = 4 * MAX_ENTITY_ID_LENGTH;

/**
 * Read `field` from a multipart/form-data body: exactly one part may carry
 * that name, as a plain text field. The body is parsed strictly (see
 * parseMultipart) so that no multipart parser upstream can see other parts.
 */
export function entityFromMultipart(body: Buffer, contentType: string, field: string): Promise<EntityResult> {
  // A Promise so a streaming parser can replace the buffered one without
  // touching callers; the parse itself is synchronous and never throws.
  let r: EntityResult;
  try {
    r = readMultipart(body, contentType, field);
  } catch {
    r = fail("bad_multipart", "The request body is not valid multipart/form-data.");
  }
  return Promise.resolve(r);
}

function readMultipart(body: Buffer, contentType: string, field: string): EntityResult {
  const boundary = multipartBoundary(contentType);
  if (boundary === null) {
    return fail("bad_multipart", "The Content-Type must be multipart/form-data with one valid boundary parameter.");
  }
  const parts = parseMultipart(body, boundary);
  if (typeof parts === "string") return fail("bad_multipart", parts);

  let found: Part | null = null;
  let matches = 0;
  let other = "";
  for (const part of parts) {
    if (!foldEquals(part.name, field)) continue;
    matches++;
    if (part.name === field) found = part;
    else other = part.name;
  }
  if (matches > 1) {
    return fail("entity_ambiguous", `The form field "${field}" appears ${matches} times (names are compared case-insensitively); send it exactly once.`);
  }
  if (found === null) {
    const hint = matches === 1 ? ` (a differently spelled field "${other}" is not accepted)` : "";
    return fail("entity_missing", `The form has no "${field}" field${hint}.`);
  }
  const what = `The form field "${field}"`;
  if (found.isFile) return fail("entity_invalid", `${what} must be a plain field, not a file.`);
  if (!found.plainText) {
    return fail("entity_invalid", `${what} must be plain UTF-8 text (no Content-Type other than text/plain; charset=utf-8, no transfer encoding).`);
  }
  if (found.value.length > MAX_VALUE_BYTES) return fail("entity_invalid", `${what} is longer than ${MAX_ENTITY_ID_LENGTH} characters.`);
  let text: string;
  try {
    text = UTF8.decode(found.value);
  } catch {
    return fail("entity_invalid", `${what} is not valid UTF-8.`);
  }
  return validateEntityId(text, what);
}

interface Part {
  /** the `name` parameter, decoded as UTF-8 */
  readonly name: string;
  /** has a filename or filename* parameter */
  readonly isFile: boolean;
  /** no Content-Type other than text/plain (utf-8/us-ascii) and no transfer encoding */
  readonly plainText: boolean;
  readonly value: Buffer;
}

/** The boundary of a `multipart/form-data` Content-Type, or null. */
function multipartBoundary(contentType: string): string | null {
  if (typeof contentType !== "string") return null;
  const semi = contentType.indexOf(";");
  if (semi === -1) return null;
  if (trimOws(contentType.slice(0, semi)).toLowerCase() !== "multipart/form-data") return null;
  const params = parseParams(contentType, semi);
  if (params === null || params.has("boundary*")) return null;
  const b = params.get("boundary");
  if (b === undefined || b.length === 0 || b.length > 70 || b.endsWith(" ")) return null;
  for (let i = 0; i < b.length; i++) {
    const c = b.charCodeAt(i);
    if (c >= 128 || BCHAR[c] !== 1) return null;
  }
  return b;
}

/**
 * `; key=value` parameters from `s[from]` on: keys lowercased, values a token
 * or a quoted string. Null on any syntax error or repeated key. A backslash in
 * a quoted string is refused, because parsers disagree on whether it escapes
 * the next quote, and so on where the parameter ends.
 */
function parseParams(s: string, from: number): Map<string, string> | null {
  const out = new Map<string, string>();
  let i = from;
  const len = s.length;
  const skipOws = (): void => {
    while (i < len && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  };
  for (;;) {
    skipOws();
    if (i >= len) return out;
    if (s.charCodeAt(i) !== 0x3b /* ; */) return null;
    i++;
    skipOws();
    if (i >= len) return out; // tolerate one trailing ';'
    const k0 = i;
    while (i < len && isTchar(s.charCodeAt(i))) i++;
    if (i === k0 || s.charCodeAt(i) !== 0x3d /* = */) return null;
    const key = s.slice(k0, i).toLowerCase();
    i++;
    let value: string;
    if (s.charCodeAt(i) === 0x22) {
      const end = s.indexOf('"', i + 1);
      if (end === -1) return null;
      value = s.slice(i + 1, end);
      if (value.includes("\\")) return null;
      for (let k = 0; k < value.length; k++) {
        const c = value.charCodeAt(k);
        if ((c < 0x20 && c !== 0x09) || c === 0x7f) return null;
      }
      i = end + 1;
    } else {
      const v0 = i;
      while (i < len && isTchar(s.charCodeAt(i))) i++;
      if (i === v0) return null;
      value = s.slice(v0, i);
    }
    if (out.has(key)) return null;
    out.set(key, value);
  }
}

function isTchar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

/**
 * Split a buffered multipart body, refusing anything two parsers could split
 * or label differently: no preamble, no transport padding after a delimiter,
 * no folded or malformed header lines, exactly one form-data
 * Content-Disposition with exactly one `name` (no `name*`) per part, and a
 * closing delimiter. Returns the parts or a description of the problem.
 */
function parseMultipart(body: Buffer, boundary: string): Part[] | string {
  const first = Buffer.from("--" + boundary, "latin1");
  const delim = Buffer.from("\r\n--" + boundary, "latin1");
  if (body.length < first.length || !body.subarray(0, first.length).equals(first)) {
    return "The body must start with the boundary delimiter.";
  }
  const parts: Part[] = [];
  let pos = first.length;
  for (;;) {
    // After a delimiter: "--" closes the body (the epilogue is ignored by
    // every parser), CRLF opens a part; anything else is refused.
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts;
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) return "A boundary delimiter must be followed by CRLF or \"--\".";
    pos += 2;
    const next = body.indexOf(delim, pos);
    if (next === -1) return "The body ends without a closing boundary delimiter.";
    let headerEnd: number;
    let valueStart: number;
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) {
      headerEnd = pos;
      valueStart = pos + 2;
    } else {
      headerEnd = body.indexOf(CRLFCRLF, pos);
      if (headerEnd === -1 || headerEnd + 2 > next) return "A part's headers are not terminated by an empty line.";
      valueStart = headerEnd + 4;
    }
    // An empty value: the header block's final CRLF is also the delimiter's.
    const value = valueStart > next ? body.subarray(next, next) : body.subarray(valueStart, next);
    const part = readPart(body.toString("latin1", pos, headerEnd), value);
    if (typeof part === "string") return part;
    parts.push(part);
    pos = next + delim.length;
  }
}

function readPart(headerBlock: string, value: Buffer): Part | string {
  const headers = new Map<string, string[]>();
  if (headerBlock.length > 0) {
    for (const line of headerBlock.split("\r\n")) {
      if (line.includes("\r") || line.includes("\n")) return "A part header contains a bare CR or LF.";
      const colon = line.indexOf(":");
      if (colon <= 0) return "A part header line is malformed (folded lines are not accepted).";
      for (let i = 0; i < colon; i++) {
        if (!isTchar(line.charCodeAt(i))) return "A part header name is malformed.";
      }
      const name = line.slice(0, colon).toLowerCase();
      const v = trimOws(line.slice(colon + 1));
      const list = headers.get(name);
      if (list === undefined) headers.set(name, [v]);
      else list.push(v);
    }
  }
  const cd = headers.get("content-disposition");
  if (cd === undefined || cd.length !== 1 || cd[0] === undefined) {
    return "Each part needs exactly one Content-Disposition header.";
  }
  const disp = cd[0];
  const semi = disp.indexOf(";");
  const type = trimOws(semi === -1 ? disp : disp.slice(0, semi)).toLowerCase();
  if (type !== "form-data") return "Each part's Content-Disposition must be form-data.";
  const params = semi === -1 ? new Map<string, string>() : parseParams(disp, semi);
  if (params === null) return "A part's Content-Disposition parameters are malformed.";
  // RFC 2231 / 5987 encoded names are decoded by some parsers and not others.
  if (params.has("name*")) return "Encoded field names (name*=) are not accepted.";
  const rawName = params.get("name");
  if (rawName === undefined) return "Each part's Content-Disposition needs a name.";
  const isFile = params.has("filename") || params.has("filename*");

  let plainText = true;
  for (const h of ["content-type", "content-transfer-encoding"]) {
    const list = headers.get(h);
    if (list !== undefined && list.length > 1) return `A part has more than one ${h} header.`;
  }
  const ct = headers.get("content-type")?.[0];
  if (ct !== undefined) plainText = isPlainUtf8Text(ct);
  const cte = headers.get("content-transfer-encoding")?.[0]?.toLowerCase();
  if (cte !== undefined && cte !== "7bit" && cte !== "8bit" && cte !== "binary") plainText = false;

  return { name: Buffer.from(rawName, "latin1").toString("utf8"), isFile, plainText, value };
}

// Only SP and HTAB: String#trim would also eat NBSP and friends, which HTTP
// parsers keep.
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return s.slice(a, b);
}

function isPlainUtf8Text(ct: string): boolean {
  const semi = ct.indexOf(";");
  if (trimOws(semi === -1 ? ct : ct.slice(0, semi)).toLowerCase() !== "text/plain") return false;
  if (semi === -1) return true;
  const params = parseParams(ct, semi);
  if (params === null) return false;
  for (const [k, v] of params) {
    if (k !== "charset") return false;
    const cs = v.toLowerCase();
    if (cs !== "utf-8" && cs !== "utf8" && cs !== "us-ascii") return false;
  }
  return true;
}

// ----------------------------------------------------------------- query

/**
 * True when a raw query string (`''` or `?…`) names `name` as a parameter,
 * in any spelling an upstream could decode to it: percent-encoded, `+` for
 * space, any ASCII letter case, `&` or `;` separated, with or without `=`.
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
    const keyEnd = eq === -1 ? i : eq;
    if (keyEnd > start && keyNames(query.slice(start, keyEnd), name)) return true;
    start = i + 1;
    eq = -1;
  }
  return false;
}

function keyNames(rawKey: string, name: string): boolean {
  if (!rawKey.includes("%") && !rawKey.includes("+")) return foldEquals(rawKey, name);
  const bytes: number[] = [];
  for (let i = 0; i < rawKey.length; i++) {
    const c = rawKey.charCodeAt(i);
    if (c === 0x2b) {
      bytes.push(0x20);
    } else if (c === 0x25 && i + 2 < rawKey.length && isHex(rawKey.charCodeAt(i + 1)) && isHex(rawKey.charCodeAt(i + 2))) {
      bytes.push(Number.parseInt(rawKey.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      // Lenient like most query parsers: a stray '%' stays literal.
      bytes.push(c & 0xff);
    }
  }
  return foldEquals(Buffer.from(bytes).toString("utf8"), name);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
