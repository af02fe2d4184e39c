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
 * The body is validated as JSON.parse would, without being parsed (json-scan.ts).
 */
export function entityFromJson(body: Buffer, field: string): EntityResult {
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
