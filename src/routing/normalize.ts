/**
 * Request-target normalisation: one pass over `req.url`, run on every request.
 *
 * The rule is "reject, never guess": anything a server or proxy could read in
 * two ways (dot segments, `//`, encoded separators, control characters, path
 * parameters) is refused with 400 bad_path instead of being cleaned up, so the
 * path we match is the path the upstream sees. The raw path is what gets
 * forwarded; `segments` holds the same path percent-decoded, for matching.
 */

/** A request target split into its raw path, query and path segments. */
export interface Target {
  /** The path as received, e.g. `/proxy/acme/v1/models/a%3Ab`. */
  readonly rawPath: string;
  /** `''` or the raw query including its leading `?`. */
  readonly query: string;
  /** Percent-decoded segments, e.g. `["proxy","acme","v1","models","a:b"]`; `[]` for `/`. */
  readonly segments: string[];
  /** The same segments as received (still percent-encoded). */
  readonly rawSegments: string[];
  /**
   * Only when splitTarget was asked to accept encoded slashes and met one: the
   * index of the first segment holding a `%2F` (decoded to `/` in `segments`).
   */
  readonly slashedAt?: number;
}

const ENCODED_SLASH = /%2F/gi;

// Characters allowed unencoded in a path segment: RFC 3986 pchar minus ';'
// (some servers strip `;params` from segments, a classic auth-bypass) and with
// '%' only as the start of an escape. Built once at load.
const PCHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@%") {
  PCHAR[c.charCodeAt(0)] = 1;
}

// Hex digit value, or -1; indexed by char code < 128.
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

// Bytes that must never appear percent-encoded in a segment: controls, space,
// '/', '\' (separators an upstream may decode before routing) and '%' itself
// (double encoding: an upstream that decodes twice would see what we did not).
const BAD_ENCODED = new Uint8Array(256);
for (let b = 0; b <= 0x20; b++) BAD_ENCODED[b] = 1;
BAD_ENCODED[0x7f] = 1;
BAD_ENCODED[0x2f] = 1;
BAD_ENCODED[0x5c] = 1;
BAD_ENCODED[0x25] = 1;

// fatal: invalid UTF-8 is a rejection, not U+FFFD. ignoreBOM: keep a leading
// U+FEFF in the output instead of silently dropping bytes from the segment.
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Split and validate a request target; null means "not canonical" (→ 400 bad_path).
 * With `encodedSlashes`, a `%2F` inside a segment is decoded to `/` instead of
 * refused (when the parts it separates are clean segments themselves) and
 * `slashedAt` says where: only a `{name+}` parameter may take it (see
 * resolveRoute in request.ts). Never throws.
 */
export function splitTarget(rawUrl: string, encodedSlashes = false): Target | null {
  if (typeof rawUrl !== "string" || rawUrl.charCodeAt(0) !== 0x2f /* / */) return null;

  const q = rawUrl.indexOf("?");
  const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = q === -1 ? "" : rawUrl.slice(q);
  if (!queryIsClean(query)) return null;

  const segments: string[] = [];
  const rawSegments: string[] = [];
  if (rawPath.length === 1) return { rawPath, query, segments, rawSegments };
  let slashedAt = -1;

  const len = rawPath.length;
  let start = 1;
  let hasPercent = false;
  for (let i = 1; i <= len; i++) {
    const c = i === len ? 0x2f : rawPath.charCodeAt(i);
    if (c === 0x2f) {
      // Empty segment: `//` anywhere or a trailing slash. Neither is guessed at.
      if (i === start) return null;
      const raw = rawPath.slice(start, i);
      let decoded = hasPercent ? decodeSegment(raw, false) : raw;
      // Cold path: the segment may hold an encoded '/', which the caller accepts where a {name+} parameter is.
      if (decoded === null && hasPercent && encodedSlashes) {
        decoded = decodeSegment(raw, true);
        if (decoded === null || !cleanParts(decoded)) return null;
        if (slashedAt === -1) slashedAt = segments.length;
      }
      if (decoded === null || decoded === "." || decoded === "..") return null;
      rawSegments.push(raw);
      segments.push(decoded);
      start = i + 1;
      hasPercent = false;
    } else if (c >= 128 || PCHAR[c] !== 1) {
      return null;
    } else if (c === 0x25 /* % */) {
      hasPercent = true;
    }
  }
  return slashedAt === -1 ? { rawPath, query, segments, rawSegments } : { rawPath, query, segments, rawSegments, slashedAt };
}

/**
 * The raw path to forward. An encoded `/` (accepted only inside a `{name+}`
 * parameter: see resolveRoute) is forwarded as a plain `/`, the form such a
 * parameter matches and backends route (`meta-llama%2FLlama-3` →
 * `meta-llama/Llama-3`). `rawSegments` stay as received.
 */
export function forwardedPath(t: Target): string {
  return t.slashedAt === undefined ? t.rawPath : t.rawPath.replace(ENCODED_SLASH, "/");
}

/** A decoded segment holding `/`: each part it separates must be a segment splitTarget would accept on its own. */
function cleanParts(decoded: string): boolean {
  for (const part of decoded.split("/")) if (part === "" || part === "." || part === "..") return false;
  return true;
}

// The query is forwarded untouched and parsed by the upstream; we only refuse
// what cannot be part of a canonical target at all.
function queryIsClean(query: string): boolean {
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x23 /* # */) return false;
  }
  return true;
}

function decodeSegment(raw: string, slashOk: boolean): string | null {
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  let nonAscii = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      bytes[n++] = c;
      continue;
    }
    const hi = i + 1 < raw.length ? hexValue(raw.charCodeAt(i + 1)) : -1;
    const lo = i + 2 < raw.length ? hexValue(raw.charCodeAt(i + 2)) : -1;
    if (hi < 0 || lo < 0) return null;
    const b = hi * 16 + lo;
    if (BAD_ENCODED[b] === 1 && !(slashOk && b === 0x2f)) return null;
    if (b >= 0x80) nonAscii = true;
    bytes[n++] = b;
    i += 2;
  }
  let s: string;
  try {
    s = UTF8.decode(bytes.subarray(0, n));
  } catch {
    return null;
  }
  if (!nonAscii) return s;
  // C1 controls (U+0080–U+009F) are control characters too.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 && c <= 0x9f) return null;
  }
  return s;
}

function hexValue(c: number): number {
  return c < 128 ? (HEX[c] ?? -1) : -1;
}
