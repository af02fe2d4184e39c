/**
 * Validates a JSON body and finds one top-level key in it, without building
 * the parsed value.
 *
 * Accepts exactly what JSON.parse accepts of valid UTF-8 text (the caller
 * checks the UTF-8 first). The grammar between tokens is checked byte by
 * byte; string contents are not: the scanner jumps from quote to quote with
 * memchr (Buffer#indexOf), checks each escape it meets, and leaves control
 * bytes to `controlBytes` (WebAssembly SIMD), which counts tabs, LFs and CRs
 * against the ones seen between tokens. A 64 KiB chat body is then a few
 * dozen steps instead of a JSON.parse that copies and decodes every string.
 * test/unit/json-scan.test.ts compares it with JSON.parse on generated and
 * mutated bodies.
 */
import { controlBytes } from "../util/control-bytes.ts";
import { foldEquals } from "./fold.ts";

/** What the scan found about the field among the top-level keys of a JSON object. */
export interface FieldScan {
  /** Top-level keys equal to the field after unescaping and simple case folding. */
  matches: number;
  /** Of those, keys spelled exactly as the field. */
  exact: number;
  /** A matching key that is not exact (for the error message). */
  other: string;
  /** The exact key's value: [start, end) in the body, and whether it is a string literal (quotes included). */
  valueStart: number;
  valueEnd: number;
  valueIsString: boolean;
}

export type JsonScan = "invalid" | "not_object" | FieldScan;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OBJECT = 1;
const ARRAY = 2;

// Scanner states.
const VALUE = 0;
const AFTER_VALUE = 1;
const KEY = 2;

/** Open containers, innermost last; reused by every scan (scans are synchronous). */
let stack = new Uint8Array(256);
/**
 * The first quote and the first backslash at or after the scan position, when
 * known (else below it): each stretch of the body is searched once for each,
 * however many strings and escapes it holds.
 */
let nextQuote = -1;
let nextBackslash = -1;
/** Tabs, LFs and CRs seen between tokens. */
let between = 0;

/**
 * Scans `body` (valid UTF-8): "invalid" unless JSON.parse would accept it,
 * "not_object" when it is valid JSON but not an object, else what the object
 * holds under `field` at its top level.
 */
export function scanJson(body: Buffer, field: string): JsonScan {
  const ctl = controlBytes(body);
  if (ctl < 0) return "invalid";
  const n = body.length;
  nextQuote = -1;
  nextBackslash = -1;
  between = 0;
  // A body nested millions deep grew the stack: do not keep that much for the next ones.
  if (stack.length > 65_536) stack = new Uint8Array(256);
  const out: FieldScan = { matches: 0, exact: 0, other: "", valueStart: -1, valueEnd: -1, valueIsString: false };
  let depth = 0;
  let i = skipSpace(body, 0, n);
  const isObject = body[i] === 0x7b;
  let state = VALUE;
  /** The next value is the field's (its key matched exactly at the top level). */
  let capture = false;
  for (;;) {
    if (state === AFTER_VALUE && capture && depth === 1) {
      // The value that just ended sits directly in the top-level object: it is the field's.
      out.valueEnd = i;
      capture = false;
    }
    i = skipSpace(body, i, n);
    if (state === AFTER_VALUE) {
      if (depth === 0) return i === n && between === ctl ? (isObject ? out : "not_object") : "invalid";
      if (i >= n) return "invalid";
      const c = body[i] as number;
      const top = stack[depth - 1];
      if (c === 0x2c /* , */) {
        i++;
        state = top === OBJECT ? KEY : VALUE;
      } else if ((c === 0x7d /* } */ && top === OBJECT) || (c === 0x5d /* ] */ && top === ARRAY)) {
        depth--;
        i++;
      } else return "invalid";
      continue;
    }
    if (i >= n) return "invalid";
    const c = body[i] as number;
    if (state === KEY) {
      if (c !== QUOTE) return "invalid";
      const end = stringEnd(body, i + 1, n);
      if (end < 0) return "invalid";
      if (depth === 1) {
        const key = keyIfFolds(body, i + 1, end, field);
        if (key === undefined) return "invalid";
        if (key !== null) {
          out.matches++;
          if (key === field) {
            out.exact++;
            capture = true;
          } else out.other = key;
        }
      }
      i = skipSpace(body, end + 1, n);
      if (body[i] !== 0x3a /* : */) return "invalid";
      i++;
      state = VALUE;
      continue;
    }
    // state === VALUE
    if (capture && depth === 1) {
      out.valueStart = i;
      out.valueIsString = c === QUOTE;
    }
    if (c === QUOTE) {
      const end = stringEnd(body, i + 1, n);
      if (end < 0) return "invalid";
      i = end + 1;
      state = AFTER_VALUE;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth === stack.length) {
        const grown = new Uint8Array(stack.length * 2);
        grown.set(stack);
        stack = grown;
      }
      stack[depth++] = c === 0x7b ? OBJECT : ARRAY;
      i = skipSpace(body, i + 1, n);
      if (body[i] === (c === 0x7b ? 0x7d : 0x5d)) {
        // {} or []
        depth--;
        i++;
        state = AFTER_VALUE;
      } else state = c === 0x7b ? KEY : VALUE;
    } else if (c === 0x74 /* t */) {
      if (!literal(body, i, TRUE)) return "invalid";
      i += 4;
      state = AFTER_VALUE;
    } else if (c === 0x66 /* f */) {
      if (!literal(body, i, FALSE)) return "invalid";
      i += 5;
      state = AFTER_VALUE;
    } else if (c === 0x6e /* n */) {
      if (!literal(body, i, NULL)) return "invalid";
      i += 4;
      state = AFTER_VALUE;
    } else {
      i = numberEnd(body, i, n);
      if (i < 0) return "invalid";
      state = AFTER_VALUE;
    }
  }
}

/** Past spaces, tabs, LFs and CRs from `i` (counting the last three). */
function skipSpace(b: Buffer, i: number, n: number): number {
  while (i < n) {
    const c = b[i] as number;
    if (c === 0x20) i++;
    else if (c === 0x0a || c === 0x0d || c === 0x09) {
      between++;
      i++;
    } else break;
  }
  return i;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function literal(b: Buffer, i: number, word: readonly number[]): boolean {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return false;
  return true;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

/** The end of the number at `i` (-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?), or -1. */
function numberEnd(b: Buffer, i: number, n: number): number {
  if (b[i] === 0x2d /* - */) i++;
  if (b[i] === 0x30) i++;
  else if (isDigit(b[i])) while (i < n && isDigit(b[i])) i++;
  else return -1;
  if (b[i] === 0x2e /* . */) {
    i++;
    if (!isDigit(b[i])) return -1;
    while (i < n && isDigit(b[i])) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45 /* e E */) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    if (!isDigit(b[i])) return -1;
    while (i < n && isDigit(b[i])) i++;
  }
  return i;
}

/**
 * How far a string is read byte by byte before the scanner jumps with memchr.
 * Measured on S1's body and on batches of ~90-character strings, a jump
 * (Buffer#indexOf, ~25 ns) pays past a dozen bytes of this loop: 16 keeps the
 * usual keys ("model", "messages", "content") in the loop, and sends longer
 * values to memchr (S1's scan: 1.0 µs with 256, 0.59 µs with 16).
 */
const WINDOW = 16;

/**
 * The index of the quote that closes the string whose contents start at
 * `start`, or -1 (unterminated, or an escape JSON does not have). Control
 * bytes are not looked at here (see scanJson).
 */
function stringEnd(b: Buffer, start: number, n: number): number {
  // Short strings (most keys and values), byte by byte.
  const j = readBytes(b, start, Math.min(n, start + WINDOW), n);
  if (j < 0 || j >= n) return -1;
  if (b[j] === QUOTE) return j;
  // A long one: jump to the next quote.
  if (nextQuote < j) nextQuote = found(b.indexOf(QUOTE, j), n);
  if (nextBackslash < j) nextBackslash = found(b.indexOf(BACKSLASH, j), n);
  let end = nextQuote;
  if (end === n) return -1;
  // No backslash before that quote: nothing escapes it, and nothing in between needs checking.
  if (nextBackslash > end) return end;
  // Escapes: the string ends at the first quote after an even run of backslashes (if its
  // escapes are valid), and V8's own JSON parser checks the escapes, faster than a loop here.
  // Many escaped quotes would make that a jump per quote: past a few, read on byte by byte.
  const firstEscape = nextBackslash;
  for (let hops = 0; escaped(b, end, start); hops++) {
    if (hops === MAX_QUOTE_HOPS) {
      const close = readBytes(b, firstEscape, n, n);
      return close < n ? close : -1;
    }
    end = found(b.indexOf(QUOTE, end + 1), n);
    if (end === n) return -1;
  }
  nextQuote = end;
  try {
    JSON.parse(b.toString("latin1", start - 1, end + 1));
  } catch {
    return -1;
  }
  return end;
}

/** Escaped quotes skipped with memchr before a string is read byte by byte instead. */
const MAX_QUOTE_HOPS = 8;

/**
 * Reads a string's contents byte by byte from `j` (not inside an escape) up to
 * `stop`: the index of the closing quote, else where it stopped (a quote there
 * is unescaped, so it closes the string too), or -1 for an escape JSON does not have.
 */
function readBytes(b: Buffer, j: number, stop: number, n: number): number {
  while (j < stop) {
    const c = b[j] as number;
    if (c === QUOTE) return j;
    if (c === BACKSLASH) {
      j = escapeEnd(b, j, n);
      if (j < 0) return -1;
    } else j++;
  }
  return j;
}

/** -1 (not found) as the body's length, so a cached position compares past every index. */
function found(at: number, n: number): number {
  return at === -1 ? n : at;
}

/** Whether the quote at `at` follows an odd run of backslashes (that begins at or after `from`). */
function escaped(b: Buffer, at: number, from: number): boolean {
  let k = at - 1;
  while (k >= from && b[k] === BACKSLASH) k--;
  return ((at - 1 - k) & 1) === 1;
}

/** Past the escape whose backslash is at `j`, or -1 when JSON has no such escape. */
function escapeEnd(b: Buffer, j: number, n: number): number {
  const e = b[j + 1];
  if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) return j + 2;
  if (e !== 0x75 /* u */ || j + 6 > n) return -1;
  for (let k = j + 2; k < j + 6; k++) if (!isHex(b[k] as number)) return -1;
  return j + 6;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/**
 * The key whose contents are body[start, end) when it folds to `field`, null
 * when it does not, undefined when it cannot be decoded (a raw control byte:
 * the body is then invalid).
 */
function keyIfFolds(b: Buffer, start: number, end: number, field: string): string | null | undefined {
  const len = end - start;
  // A UTF-16 unit takes 1 to 3 bytes raw, 2 or 6 escaped.
  if (len < field.length || len > 6 * field.length) return null;
  let plain = true;
  for (let k = start; k < end; k++) {
    const c = b[k] as number;
    if (c === BACKSLASH || c >= 0x80 || c < 0x20) {
      plain = false;
      break;
    }
  }
  let key: string;
  if (plain) {
    if (len !== field.length) return null;
    key = b.toString("latin1", start, end);
  } else {
    try {
      key = JSON.parse(b.toString("utf8", start - 1, end + 1)) as string;
    } catch {
      return undefined;
    }
  }
  return foldEquals(key, field) ? key : null;
}
