/**
 * Where a request presents its credential: the `Authorization: Bearer` header
 * only. One parser for the data plane and the management API.
 */
import { Denial } from "../errors.ts";
import { TOKEN_PATTERN, looksLikePat } from "./format.ts";

const MISSING = new Denial("missing_token");
const IN_QUERY = new Denial("token_in_query");
const IN_PATH = new Denial("token_in_path");

/**
 * The credential of an `Authorization: Bearer <credential>` header (RFC 6750:
 * the scheme is case-insensitive, spaces or tabs separate it), or null when
 * there is none. A credential with whitespace inside is returned as sent, so
 * the caller refuses it as malformed rather than as missing.
 */
export function bearerCredential(header: string | undefined): string | null {
  if (header === undefined || header.length < 8) return null;
  const scheme = header.slice(0, 6);
  if (scheme !== "Bearer" && scheme.toLowerCase() !== "bearer") return null;
  let start = 6;
  let c = header.charCodeAt(start);
  if (c !== 0x20 && c !== 0x09) return null;
  while (c === 0x20 || c === 0x09) c = header.charCodeAt(++start);
  let end = header.length;
  c = header.charCodeAt(end - 1);
  while (end > start && (c === 0x20 || c === 0x09)) c = header.charCodeAt(--end - 1);
  return end > start ? header.slice(start, end) : null;
}

/** The data plane's token: from the header, or the refusal when none is sent. */
export function bearerToken(header: string | undefined): string | Denial {
  return bearerCredential(header) ?? MISSING;
}

/**
 * A PAT in the URL would be forwarded and logged upstream: such a request is
 * refused outright, a whole token in the query as token_in_query, anything
 * PAT-shaped anywhere in the path or query (cut short, `%5F` separators) as token_in_path.
 */
export function tokenInUrl(rawPath: string, query: string): Denial | null {
  if (query.includes("pat_") && TOKEN_PATTERN.test(query)) return IN_QUERY;
  return looksLikePat(rawPath) || looksLikePat(query) ? IN_PATH : null;
}
