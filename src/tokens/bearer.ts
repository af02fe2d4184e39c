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

/** The subprotocol prefix the browser Realtime SDK carries its key in (browsers cannot set Authorization on a WebSocket). */
export const KEY_PROTOCOL_PREFIX = "openai-insecure-api-key.";
// Subprotocols that carry the caller's credential or its account routing: never passed on (the gateway injects its own).
const CREDENTIAL_PROTOCOLS = [KEY_PROTOCOL_PREFIX, "openai-organization.", "openai-project."];

/** What a WebSocket upgrade offers in Sec-WebSocket-Protocol: the key subprotocol's token, and the others. */
export interface OfferedProtocols {
  /** The token in `openai-insecure-api-key.<token>`, null when absent; "" when offered more than once. */
  readonly token: string | null;
  /** Every offered subprotocol, in order, minus the credential-bearing ones (safe to select or pass on). */
  readonly others: readonly string[];
}

/** Splits a Sec-WebSocket-Protocol header (a comma-separated list, RFC 6455 §4.1). */
export function offeredProtocols(header: string | undefined): OfferedProtocols {
  if (header === undefined || header === "") return { token: null, others: [] };
  let token: string | null = null;
  const others: string[] = [];
  for (const raw of header.split(",")) {
    const p = raw.trim();
    if (p === "") continue;
    if (p.startsWith(KEY_PROTOCOL_PREFIX)) token = token === null ? p.slice(KEY_PROTOCOL_PREFIX.length) : "";
    else if (!CREDENTIAL_PROTOCOLS.some((c) => p.startsWith(c))) others.push(p);
  }
  return { token, others };
}

const TWO_TOKENS = new Denial("ambiguous_header", { message: "Send the token once: in Authorization: Bearer or in the openai-insecure-api-key subprotocol, not two different ones." });

/**
 * An upgrade's token: `Authorization: Bearer` (the Node SDK, any server-side
 * client) or the key subprotocol (the browser SDK). Both may be sent only
 * when they are the same token.
 */
export function upgradeToken(authorization: string | undefined, offered: OfferedProtocols): string | Denial {
  const header = bearerCredential(authorization);
  const sub = offered.token;
  if (sub === "") return TWO_TOKENS;
  if (header !== null && sub !== null && header !== sub) return TWO_TOKENS;
  return header ?? sub ?? MISSING;
}
