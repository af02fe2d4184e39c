/**
 * The PAT format (SPEC §3), pure and free of I/O:
 *
 *   pat_<ident:22>_<secret:43><checksum:6>   (76 chars, [A-Za-z0-9_] only)
 *
 * ident is the PAT id (a UUID v4) in base62, so lookup by id needs no search;
 * secret is 256 bits from the CSPRNG; checksum is CRC32 over everything before
 * it, so typos and truncations are rejected before any store lookup.
 * All base62 fields are fixed width and left-padded with '0'.
 */
import { createHmac, createSecretKey, randomBytes, randomUUID, timingSafeEqual, type KeyObject } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PREFIX = "pat_";
const IDENT_LEN = 22;
const SECRET_LEN = 43;
const CHECKSUM_LEN = 6;
const SECRET_BYTES = 32;
const IDENT_START = PREFIX.length; // 4
const SEPARATOR_AT = IDENT_START + IDENT_LEN; // 26
const SECRET_START = SEPARATOR_AT + 1; // 27
const BODY_LEN = SECRET_START + SECRET_LEN; // 70: what the checksum covers
const TOKEN_LEN = BODY_LEN + CHECKSUM_LEN; // 76

/** Published pattern for secret scanners: `pat_`, 22 base62, `_`, 49 base62 (not global, so `.test` is stateless). */
export const TOKEN_PATTERN = /\bpat_[0-9A-Za-z]{22}_[0-9A-Za-z]{49}\b/;

// Anything that looks like a PAT, also cut short (no checksum, part of the
// secret) or with its separators percent- or JSON-escaped: what redaction and
// the header policy remove. Longest legitimate ids stay far from it: it needs
// `pat`, a separator, 22 base62, a separator and at least 8 more.
const PAT_LIKE_SOURCE = "pat(?:_|%5[Ff]|\\\\u005[Ff])[0-9A-Za-z]{22}(?:_|%5[Ff]|\\\\u005[Ff])[0-9A-Za-z]{8,}";
const PAT_LIKE = new RegExp(PAT_LIKE_SOURCE);
const PAT_LIKE_ALL = new RegExp(PAT_LIKE_SOURCE, "g");
/** Shortest text PAT_LIKE can match. */
const PAT_LIKE_MIN = 35;

/** Whether `text` holds something that looks like a PAT (whole, cut short or with escaped separators); cheap when it does not. */
export function looksLikePat(text: string): boolean {
  // Cheap pre-checks that spare the regex on short or pat-free text; PAT_LIKE alone gives the same answer.
  // Stryker disable next-line ConditionalExpression,LogicalOperator,StringLiteral: equivalent, see above
  if (text.length < PAT_LIKE_MIN || !text.includes("pat")) return false;
  return PAT_LIKE.test(text);
}

/** `text` with everything that looks like a PAT replaced by `[redacted]`; the same string when there is none. */
export function redactPats(text: string): string {
  return looksLikePat(text) ? text.replace(PAT_LIKE_ALL, "[redacted]") : text;
}

/** The parts of a well-formed token: `id` is the lowercase UUID, `secret` the 43-char secret text. */
export interface ParsedToken {
  readonly id: string;
  readonly secret: string;
}

// char code → base62 digit, -1 for anything else; indexed only with codes < 128.
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;
const DIGIT_CODE = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));

function base62Encode(bytes: Uint8Array, width: number): string {
  // Schoolbook long division of a big-endian base-256 number by 62; only runs
  // when issuing tokens, so clarity beats speed here.
  const n = Uint8Array.from(bytes);
  let out = "";
  for (let i = 0; i < width; i++) {
    let rem = 0;
    for (let j = 0; j < n.length; j++) {
      const cur = rem * 256 + (n[j] ?? 0);
      n[j] = Math.floor(cur / 62);
      rem = cur % 62;
    }
    out = ALPHABET.charAt(rem) + out;
  }
  // No overflow check: the callers' widths always fit (62^22 > 2^128 for an id, 62^43 > 2^256 for a secret).
  return out;
}

// CRC-32 (IEEE, as zlib's crc32) of text[0, end) for text already known to be
// ASCII: on the hot path this beats slicing the token and crossing into zlib.
const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}

function crc32Ascii(text: string, end: number): number {
  let c = -1;
  for (let i = 0; i < end; i++) c = (CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function checksumText(body: string): string {
  let c = crc32Ascii(body, body.length);
  let out = "";
  for (let i = 0; i < CHECKSUM_LEN; i++) {
    out = ALPHABET.charAt(c % 62) + out;
    c = Math.floor(c / 62);
  }
  return out;
}

// Largest encodable secret; fixed-width base62 in this alphabet sorts like the
// numbers it encodes, so a string comparison is a range check.
const MAX_SECRET = base62Encode(new Uint8Array(SECRET_BYTES).fill(0xff), SECRET_LEN);

function isCanonicalUuidV4(id: string): boolean {
  if (id.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 0x2d) return false;
    } else if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) {
      return false;
    }
  }
  const variant = id.charCodeAt(19);
  // '8', '9', 'a', 'b': the RFC 9562 variant bits 10xx
  return id.charCodeAt(14) === 0x34 && (variant === 0x38 || variant === 0x39 || variant === 0x61 || variant === 0x62);
}

/** The 22-char base62 ident for a lowercase UUID v4; throws on anything else, since callers pass ids we minted. */
export function uuidToIdent(id: string): string {
  if (!isCanonicalUuidV4(id)) throw new TypeError("PAT id must be a lowercase UUID v4");
  return base62Encode(Buffer.from(id.replaceAll("-", ""), "hex"), IDENT_LEN);
}

// Decodes text[start, start+22) as a 128-bit number held in four 32-bit limbs
// (no BigInt or array per call: this runs on every request). Returns null on a
// non-base62 char, a value above 2^128-1, or a UUID that is not v4-shaped.
function decodeIdent(text: string, start: number): string | null {
  let l0 = 0; // most significant
  let l1 = 0;
  let l2 = 0;
  let l3 = 0;
  for (let i = start; i < start + IDENT_LEN; i++) {
    // Undefined past DIGIT's end (a code >= 128) or the text's (NaN): not a digit.
    const d = DIGIT[text.charCodeAt(i)] ?? -1;
    if (d < 0) return null;
    // limb * 62 + carry < 2^38: exact in a double.
    let v = l3 * 62 + d;
    l3 = v >>> 0;
    v = l2 * 62 + Math.floor(v / 0x1_0000_0000);
    l2 = v >>> 0;
    v = l1 * 62 + Math.floor(v / 0x1_0000_0000);
    l1 = v >>> 0;
    v = l0 * 62 + Math.floor(v / 0x1_0000_0000);
    l0 = v >>> 0;
    if (v >= 0x1_0000_0000) return null;
  }
  if ((l1 & 0xf000) !== 0x4000 || l2 >>> 30 !== 2) return null;
  // Written as bytes and read back in one go: a flat string (13 concatenations
  // would make a rope that every Map lookup by this id first has to flatten).
  const out = UUID_BYTES;
  hexInto(out, 0, l0, 8);
  hexInto(out, 9, l1 >>> 16, 4);
  hexInto(out, 14, l1 & 0xffff, 4);
  hexInto(out, 19, l2 >>> 16, 4);
  hexInto(out, 24, l2 & 0xffff, 4);
  hexInto(out, 28, l3, 8);
  return out.toString("latin1", 0, 36);
}

// The UUID being decoded; the hyphens never change.
const UUID_BYTES = Buffer.from("00000000-0000-0000-0000-000000000000", "latin1");
const HEX_CODE = Uint8Array.from("0123456789abcdef", (c) => c.charCodeAt(0));

/** Writes the low `digits` hex digits of `v` (lowercase) into `buf` at `at`. */
function hexInto(buf: Buffer, at: number, v: number, digits: number): void {
  for (let i = digits - 1; i >= 0; i--) {
    buf[at + i] = HEX_CODE[v & 0xf] as number;
    v >>>= 4;
  }
}

/** The lowercase UUID v4 an ident encodes, or null if it is not exactly a 22-char encoding of one. */
export function identToUuid(ident: string): string | null {
  if (typeof ident !== "string" || ident.length !== IDENT_LEN) return null;
  return decodeIdent(ident, 0);
}

/** A new token for `id` (a fresh UUID v4 when omitted; rotation passes the existing id). */
export function generateToken(id?: string): { token: string; id: string; secret: string } {
  const pid = id ?? randomUUID();
  const secret = base62Encode(randomBytes(SECRET_BYTES), SECRET_LEN);
  const body = PREFIX + uuidToIdent(pid) + "_" + secret;
  return { token: body + checksumText(body), id: pid, secret };
}

/** The id and secret of a well-formed token, or null for anything else; never throws, no I/O. */
export function parseToken(text: string): ParsedToken | null {
  // Length first: arbitrary garbage costs one comparison.
  if (typeof text !== "string" || text.length !== TOKEN_LEN) return null;
  if (
    text.charCodeAt(0) !== 0x70 || // p
    text.charCodeAt(1) !== 0x61 || // a
    text.charCodeAt(2) !== 0x74 || // t
    text.charCodeAt(3) !== 0x5f || // _
    text.charCodeAt(SEPARATOR_AT) !== 0x5f
  ) {
    return null;
  }
  for (let i = IDENT_START; i < TOKEN_LEN; i++) {
    if (i === SEPARATOR_AT) continue;
    const code = text.charCodeAt(i);
    if (code >= 128 || (DIGIT[code] ?? -1) < 0) return null;
  }
  let c = crc32Ascii(text, BODY_LEN);
  // Compare the checksum digits in place, least significant first.
  for (let i = TOKEN_LEN - 1; i >= BODY_LEN; i--) {
    if (text.charCodeAt(i) !== DIGIT_CODE[c % 62]) return null;
    c = Math.floor(c / 62);
  }
  const id = decodeIdent(text, IDENT_START);
  if (id === null) return null;
  const secret = text.slice(SECRET_START, BODY_LEN);
  if (secret > MAX_SECRET) return null;
  return { id, secret };
}

/** The stored form of a secret: HMAC-SHA256 keyed with the pepper over `id:secret`, lowercase hex. */
export function hashSecret(pepper: Buffer, id: string, secret: string): string {
  // Binding the id means a hash copied onto another PAT's row does not verify.
  return createHmac("sha256", pepperKey(pepper)).update(id + ":" + secret).digest("hex");
}

// createHmac with a raw Buffer key builds a KeyObject on every call, which costs
// several times the hash itself; the pepper never changes, so build it once.
const pepperKeys = new WeakMap<Buffer, KeyObject>();

function pepperKey(pepper: Buffer): KeyObject {
  let key = pepperKeys.get(pepper);
  if (key === undefined) {
    key = createSecretKey(pepper);
    pepperKeys.set(pepper, key);
  }
  return key;
}

/** True when `secret` hashes to `storedHashHex`, compared in constant time; malformed hashes give false. */
export function secretMatches(pepper: Buffer, id: string, secret: string, storedHashHex: string): boolean {
  if (typeof storedHashHex !== "string" || storedHashHex.length !== 64) return false;
  // Buffer.from stops at the first non-hex char, so any bad char shortens the result.
  const stored = Buffer.from(storedHashHex, "hex");
  if (stored.length !== 32) return false;
  const actual = createHmac("sha256", pepperKey(pepper)).update(id + ":" + secret).digest();
  return timingSafeEqual(actual, stored);
}
