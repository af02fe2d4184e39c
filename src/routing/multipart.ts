/**
 * Reading the entity id from a buffered multipart/form-data body.
 *
 * The gateway must read the same parts, under the same names, as any parser
 * behind it. Parsers disagree on everything RFC 7578 leaves open: RFC 2231
 * continuations (`name*0`, `name*1`: Go's mime and python-multipart join them,
 * busboy misreads them, undici refuses them), charset-encoded values
 * (`name*=utf-8''…`, RFC 2047 `=?utf-8?…?=` words), duplicate parameters
 * (first or last wins), backslash escapes in quoted strings, `name=` found by a
 * regular expression inside another parameter's quoted value (formidable), and
 * whether `filename=""` makes a part a file. So only one plain form is
 * accepted, which every parser reads the same way, and everything else is
 * refused (bad_multipart) rather than interpreted:
 *
 * - Content-Type: `multipart/form-data`, one `boundary` and at most a
 *   `charset=utf-8`; no other parameter.
 * - Each part: exactly one `Content-Disposition: form-data` with exactly one
 *   `name` and at most one `filename`; no other parameter. The entity's part
 *   is a plain field: no filename and no Content-Type (formidable takes any
 *   part with one for a file).
 * - Every parameter: a plain key (no `*`), written once (case-insensitively),
 *   its value a token or a quoted string without `\ " ; =` or control
 *   characters; `name` and `boundary` printable ASCII.
 * - No preamble, no text after a delimiter, no folded header lines, a closing
 *   delimiter followed by nothing or one CRLF, at most MAX_PARTS parts.
 *
 * test/security/multipart-parameter-forms.test.ts checks this against
 * busboy, undici and formidable on generated bodies.
 */
import { foldEquals } from "./fold.ts";
import { fail, MAX_ENTITY_ID_LENGTH, validateEntityId, type EntityResult } from "./entity-id.ts";

/**
 * Most parts a form may have. Audio uploads carry a file and a dozen fields;
 * without a bound, a body of hundreds of thousands of empty parts would keep
 * the event loop busy for a second.
 */
export const MAX_PARTS = 256;

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// RFC 9110 tchar, minus '*': a '*' in a parameter name is RFC 2231 syntax (an
// encoded value or a continuation), which parsers apply or not.
const KEYCHAR = new Uint8Array(128);
for (const c of "!#$%&'+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") KEYCHAR[c.charCodeAt(0)] = 1;
// RFC 9110 tchar, for header names and unquoted values.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
// RFC 2046 bchars (space allowed, but not last).
const BCHAR = new Uint8Array(128);
for (const c of "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=? ") BCHAR[c.charCodeAt(0)] = 1;

const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Bytes of the matching part's value we keep; an id is at most 256 chars. */
const MAX_VALUE_BYTES = 4 * MAX_ENTITY_ID_LENGTH;

const CONTENT_TYPE_PARAMS: ReadonlySet<string> = new Set(["boundary", "charset"]);
const DISPOSITION_PARAMS: ReadonlySet<string> = new Set(["name", "filename"]);

/**
 * Read `field` from a multipart/form-data body: exactly one part may carry
 * that name, as a plain text field. The body is parsed strictly (see above)
 * so that no multipart parser upstream can see other parts or other names.
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
  if (typeof boundary !== "string" || boundary === "") {
    return fail("bad_multipart", boundary === "" ? "The Content-Type must be multipart/form-data with one valid boundary parameter." : boundary.problem);
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
    return fail("entity_invalid", `${what} must be a plain field: no Content-Type header (some parsers take any part with one for a file) and no transfer encoding.`);
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
  /** the `name` parameter (printable ASCII) */
  readonly name: string;
  /** has a filename parameter */
  readonly isFile: boolean;
  /** no Content-Type and no transfer encoding but identity */
  readonly plainText: boolean;
  readonly value: Buffer;
}

/** The boundary of a `multipart/form-data` Content-Type; "" when it is not one; a problem for parameters refused. */
function multipartBoundary(contentType: string): string | { problem: string } {
  if (typeof contentType !== "string") return "";
  const semi = contentType.indexOf(";");
  if (semi === -1) return "";
  if (trimOws(contentType.slice(0, semi)).toLowerCase() !== "multipart/form-data") return "";
  const params = parseParams(contentType, semi, CONTENT_TYPE_PARAMS);
  if (typeof params === "string") return { problem: `The Content-Type's parameters are not accepted: ${params}` };
  const charset = params.get("charset");
  if (charset !== undefined && !isUtf8Charset(charset)) return { problem: "The Content-Type's charset must be utf-8." };
  const b = params.get("boundary");
  // An empty boundary comes back as "" itself: "not one" to the caller.
  if (b === undefined || b.length > 70 || b.endsWith(" ")) return "";
  // BCHAR[c] is undefined for c >= 128: not a bchar.
  for (let i = 0; i < b.length; i++) if (BCHAR[b.charCodeAt(i)] !== 1) return "";
  return b;
}

/**
 * `; key=value` parameters from `s[from]` on, keys lowercased, or what is
 * wrong with them. Only keys in `allowed` are accepted, each once, each a
 * plain name (no RFC 2231 `*`); a value is a token or a quoted string without
 * a backslash (parsers disagree on whether it escapes the next quote, and so
 * on where the value ends), a quote, `;` or `=` (which regex-based parsers
 * take for the next parameter; `=` also opens RFC 2047 encoded words) or
 * control characters.
 */
function parseParams(s: string, from: number, allowed: ReadonlySet<string>): Map<string, string> | string {
  const out = new Map<string, string>();
  let i = from;
  const len = s.length;
  // Past the end charCodeAt is NaN, which is no character class: the scans below stop there.
  const skipOws = (): void => {
    while (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09) i++;
  };
  for (;;) {
    skipOws();
    if (i >= len) return out;
    if (s.charCodeAt(i) !== 0x3b /* ; */) return "parameters must be separated by ';'";
    i++;
    skipOws();
    if (i >= len) return out; // tolerate one trailing ';'
    const k0 = i;
    while (isKeyChar(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) === 0x2a /* * */) return `"${s.slice(k0, i + 1)}…" is an RFC 2231 encoded or continued parameter`;
    if (i === k0 || s.charCodeAt(i) !== 0x3d /* = */) return "a parameter is not written key=value";
    const key = s.slice(k0, i).toLowerCase();
    if (!allowed.has(key)) return `the parameter "${key}" is not accepted (only ${[...allowed].join(", ")})`;
    i++;
    let value: string;
    if (s.charCodeAt(i) === 0x22) {
      const end = s.indexOf('"', i + 1);
      if (end === -1) return "a quoted parameter value is not closed";
      value = s.slice(i + 1, end);
      for (let k = 0; k < value.length; k++) {
        const c = value.charCodeAt(k);
        // A boundary may hold '=' (Python's email module makes such boundaries); it names no parameter.
        if ((c < 0x20 && c !== 0x09) || c === 0x7f || c === 0x5c || c === 0x3b || (c === 0x3d && key !== "boundary")) {
          return `the value of "${key}" holds a character parsers read differently (\\ ; = or a control character)`;
        }
      }
      i = end + 1;
    } else {
      const v0 = i;
      while (isTchar(s.charCodeAt(i))) i++;
      if (i === v0) return `the parameter "${key}" has no value`;
      value = s.slice(v0, i);
    }
    if (out.has(key)) return `the parameter "${key}" is given twice`;
    out.set(key, value);
  }
}

// Undefined (so false) for c >= 128 and for NaN.
function isKeyChar(c: number): boolean {
  return KEYCHAR[c] === 1;
}

function isTchar(c: number): boolean {
  return TCHAR[c] === 1;
}

function isPrintableAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/**
 * Split a buffered multipart body, refusing anything two parsers could split
 * or label differently (see the module comment). Returns the parts or a
 * description of the problem.
 */
function parseMultipart(body: Buffer, boundary: string): Part[] | string {
  const first = Buffer.from("--" + boundary, "latin1");
  const delim = Buffer.from("\r\n--" + boundary, "latin1");
  // A shorter body gives a shorter subarray, which is not equal either.
  if (!body.subarray(0, first.length).equals(first)) {
    return "The body must start with the boundary delimiter.";
  }
  const parts: Part[] = [];
  let pos = first.length;
  for (;;) {
    // After a delimiter: "--" closes the body, CRLF opens a part; anything else is refused.
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) {
      // Parsers ignore an epilogue, or do not: only a final CRLF may follow.
      const rest = body.length - pos - 2;
      if (rest === 0 || (rest === 2 && body[pos + 2] === 0x0d && body[pos + 3] === 0x0a)) return parts;
      return "Nothing but one CRLF may follow the closing boundary delimiter.";
    }
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) return "A boundary delimiter must be followed by CRLF or \"--\".";
    if (parts.length === MAX_PARTS) return `The form has more than ${MAX_PARTS} parts.`;
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
    // An empty value when the header block's final CRLF is also the delimiter's (valueStart > next: subarray is empty).
    const value = body.subarray(valueStart, next);
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
  const params = semi === -1 ? new Map<string, string>() : parseParams(disp, semi, DISPOSITION_PARAMS);
  if (typeof params === "string") return `A part's Content-Disposition parameters are not accepted: ${params}.`;
  const name = params.get("name");
  if (name === undefined) return "Each part's Content-Disposition needs a name.";
  // Raw non-ASCII bytes are latin1 to busboy and UTF-8 to Go: a name must mean one thing.
  if (!isPrintableAscii(name)) return "A part's name must be printable ASCII.";
  const isFile = params.has("filename");

  let plainText = true;
  for (const h of ["content-type", "content-transfer-encoding"]) {
    const list = headers.get(h);
    if (list !== undefined && list.length > 1) return `A part has more than one ${h} header.`;
  }
  // Any Content-Type, even text/plain, makes a part a file to formidable (and so the model missing).
  if (headers.has("content-type")) plainText = false;
  const cte = headers.get("content-transfer-encoding")?.[0]?.toLowerCase();
  if (cte !== undefined && cte !== "7bit" && cte !== "8bit" && cte !== "binary") plainText = false;

  return { name, isFile, plainText, value };
}

// Only SP and HTAB: String#trim would also eat NBSP and friends, which HTTP
// parsers keep.
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09) a++;
  // All OWS: b passes a, and slice(a, b) is "" as it should be.
  while (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09) b--;
  return s.slice(a, b);
}

function isUtf8Charset(v: string): boolean {
  const cs = v.toLowerCase();
  return cs === "utf-8" || cs === "utf8" || cs === "us-ascii";
}
