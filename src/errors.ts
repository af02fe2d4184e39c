/**
 * The one error catalogue: code → HTTP status → OpenAI error type → public message.
 * docs/errors.md is checked against this table by test/unit/errors-doc.test.ts.
 */
export interface ErrorSpec {
  readonly status: number;
  /** OpenAI envelope `type`, which SDKs map to exception classes. */
  readonly type: string;
  readonly message: string;
  /**
   * What an SDK should do about a retry (the openai SDK obeys these headers):
   * a number is the wait in ms sent as `Retry-After` and `retry-after-ms`;
   * "never" sends `x-should-retry: false` (the same request cannot succeed
   * until something else changes); absent leaves the SDK to its own rules.
   */
  readonly retry?: number | "never";
}

export const ERRORS = {
  // 400
  bad_path: { status: 400, type: "invalid_request_error", message: "The request path is not in canonical form (no '..', '//', encoded separators or control characters).", retry: "never" },
  bad_json: { status: 400, type: "invalid_request_error", message: "The request body is not valid JSON.", retry: "never" },
  bad_multipart: { status: 400, type: "invalid_request_error", message: "The request body is not valid multipart/form-data.", retry: "never" },
  entity_missing: { status: 400, type: "invalid_request_error", message: "The request does not name the entity it acts on.", retry: "never" },
  entity_ambiguous: { status: 400, type: "invalid_request_error", message: "The request names its entity more than once; send it exactly once.", retry: "never" },
  entity_invalid: { status: 400, type: "invalid_request_error", message: "The entity named by the request is not a valid identifier.", retry: "never" },
  bad_request: { status: 400, type: "invalid_request_error", message: "The request is malformed.", retry: "never" },
  token_in_query: { status: 400, type: "invalid_request_error", message: "The query string holds a token; send it only in the Authorization header (and revoke it: URLs end up in logs).", retry: "never" },
  ambiguous_header: { status: 400, type: "invalid_request_error", message: "A header the gateway checks was sent more than once; send it once.", retry: "never" },
  body_timeout: { status: 408, type: "invalid_request_error", message: "The request body did not arrive in time." },
  // 401
  missing_token: { status: 401, type: "invalid_request_error", message: "Missing bearer token: send 'Authorization: Bearer <PAT>'.", retry: "never" },
  invalid_token: { status: 401, type: "invalid_request_error", message: "The token is malformed or unknown.", retry: "never" },
  expired_token: { status: 401, type: "invalid_request_error", message: "The token has expired.", retry: "never" },
  revoked_token: { status: 401, type: "invalid_request_error", message: "The token has been revoked.", retry: "never" },
  // 403
  insufficient_scope: { status: 403, type: "invalid_request_error", message: "The token's scopes do not allow this request.", retry: "never" },
  not_a_member: { status: 403, type: "invalid_request_error", message: "The token's user is not a member of this domain.", retry: "never" },
  role_denied: { status: 403, type: "invalid_request_error", message: "The token's user no longer holds this right in the domain.", retry: "never" },
  // 404 / 405
  no_route: { status: 404, type: "invalid_request_error", message: "No route matches this method and path.", retry: "never" },
  domain_not_found: { status: 404, type: "invalid_request_error", message: "The domain does not exist.", retry: "never" },
  method_not_allowed: { status: 405, type: "invalid_request_error", message: "The path exists but not for this method.", retry: "never" },
  // 413 / 415
  body_too_large: { status: 413, type: "invalid_request_error", message: "The request body is larger than this route allows.", retry: "never" },
  unsupported_media_type: { status: 415, type: "invalid_request_error", message: "The request's Content-Type is not accepted by this route.", retry: "never" },
  // 429
  // Limits and quotas (docs/limits.md); the message names the policy
  rate_limit_exceeded: { status: 429, type: "rate_limit_error", message: "A rate limit was reached; retry after the time in Retry-After." },
  quota_exceeded: { status: 429, type: "insufficient_quota", message: "A token quota is used up; it refills as its window moves on (see Retry-After)." },
  limits_unavailable: { status: 503, type: "api_error", message: "The shared limit counters are unreachable and this limit refuses requests then; try again shortly.", retry: 1000 },
  // 5xx
  internal_error: { status: 500, type: "api_error", message: "Internal gateway error." },
  upstream_error: { status: 502, type: "api_error", message: "The upstream failed or closed the connection." },
  upstream_tls_error: { status: 502, type: "api_error", message: "The gateway could not make a trusted TLS connection to the upstream (certificate or handshake refused); the gateway's log says why." },
  upstream_unavailable: { status: 503, type: "api_error", message: "No upstream is available for this domain.", retry: "never" },
  store_unavailable: { status: 503, type: "api_error", message: "The token store is unreachable; the request cannot be verified. Try again shortly.", retry: 1000 },
  upstream_timeout: { status: 504, type: "api_error", message: "The upstream did not answer in time." },
  // A running stream the gateway ended (in-band: an SSE `error` event or an NDJSON error line, then the end)
  stream_revoked: { status: 403, type: "invalid_request_error", message: "The token, or the rights this stream was allowed under, were revoked, deleted or narrowed while it ran; the stream was ended.", retry: "never" },
  stream_expired: { status: 401, type: "invalid_request_error", message: "The token expired (or its old secret's grace period ended) while this stream ran; the stream was ended.", retry: "never" },
  shutting_down: { status: 503, type: "api_error", message: "The gateway is shutting down and ended this stream; retry and another replica will answer.", retry: 1000 },
  // Realtime sessions over WebSocket (docs/realtime.md): a plain request to an upgrade route, and the ends of a session
  upgrade_required: { status: 426, type: "invalid_request_error", message: "This route is a WebSocket endpoint: connect with a WebSocket upgrade (GET, Upgrade: websocket).", retry: "never" },
  session_idle: { status: 408, type: "invalid_request_error", message: "The realtime session sent and received nothing for longer than the gateway allows (realtime.idle_timeout); it was closed.", retry: "never" },
  session_too_long: { status: 408, type: "invalid_request_error", message: "The realtime session reached the longest time the gateway allows (realtime.max_session); it was closed. Open a new one.", retry: "never" },
  // Hardening (issue 13): fields, encodings and bodies the gateway will not pass on, and the body memory budget
  token_in_path: { status: 400, type: "invalid_request_error", message: "The URL holds something that looks like a token; send a token only in the Authorization header (and revoke it: URLs end up in logs).", retry: "never" },
  field_refused: { status: 400, type: "invalid_request_error", message: "The request has a field the gateway does not pass on.", retry: "never" },
  body_not_accepted: { status: 400, type: "invalid_request_error", message: "This route takes no request body.", retry: "never" },
  unsupported_encoding: { status: 415, type: "invalid_request_error", message: "The request body's Content-Encoding or charset is not accepted; send identity-encoded UTF-8.", retry: "never" },
  busy_bodies: { status: 503, type: "api_error", message: "The gateway is holding as many request bodies as its memory budget allows; retry shortly.", retry: 1000 },
  // Management API (/pats, /domains, /roles)
  invalid_field: { status: 400, type: "invalid_request_error", message: "A request field is missing or invalid.", retry: "never" },
  invalid_duration: { status: 400, type: "invalid_request_error", message: "The duration is not valid or is longer than the maximum token lifetime.", retry: "never" },
  missing_credential: { status: 401, type: "invalid_request_error", message: "Missing credential: send 'Authorization: Bearer <OIDC token or admin key>'.", retry: "never" },
  invalid_credential: { status: 401, type: "invalid_request_error", message: "The credential is not a valid admin key or OIDC token.", retry: "never" },
  pat_not_accepted: { status: 401, type: "invalid_request_error", message: "A PAT cannot manage PATs; use an OIDC token or an admin key.", retry: "never" },
  operator_only: { status: 403, type: "invalid_request_error", message: "Only an operator (admin key) may do this.", retry: "never" },
  scope_not_held: { status: 403, type: "invalid_request_error", message: "You cannot grant a scope you do not hold in that domain.", retry: "never" },
  pat_not_found: { status: 404, type: "invalid_request_error", message: "No such PAT.", retry: "never" },
  member_not_found: { status: 404, type: "invalid_request_error", message: "The user is not a member of this domain.", retry: "never" },
  role_not_found: { status: 404, type: "invalid_request_error", message: "No such role.", retry: "never" },
  name_taken: { status: 409, type: "invalid_request_error", message: "This user already has a PAT with this name.", retry: "never" },
  domain_exists: { status: 409, type: "invalid_request_error", message: "A domain with this id already exists.", retry: "never" },
  pat_revoked: { status: 409, type: "invalid_request_error", message: "The PAT is revoked; a revoked PAT cannot be rotated. Create a new one.", retry: "never" },
  role_in_config: { status: 409, type: "invalid_request_error", message: "The role is defined in the config file; change it there.", retry: "never" },
  edit_conflict: { status: 409, type: "invalid_request_error", message: "The PAT kept changing while this edit was applied; try again." },
  invalid_scope: { status: 422, type: "invalid_request_error", message: "A scope does not fit the catalog: unknown entity type or operation, or an operation that does not apply to the type.", retry: "never" },
  unknown_domain: { status: 422, type: "invalid_request_error", message: "A scope names a domain that does not exist.", retry: "never" },
  unknown_role: { status: 422, type: "invalid_request_error", message: "A role is not defined.", retry: "never" },
  unknown_operation: { status: 422, type: "invalid_request_error", message: "An operation is not in the catalog.", retry: "never" },
  unknown_upstream: { status: 422, type: "invalid_request_error", message: "The upstream is not in the gateway's config.", retry: "never" },
  // Web page sessions (src/ui/)
  session_invalid: { status: 401, type: "invalid_request_error", message: "The web session has ended (signed out or expired); sign in again.", retry: "never" },
  cross_origin_refused: { status: 403, type: "invalid_request_error", message: "A cookie-authenticated change must come from the gateway's own page (Origin / Sec-Fetch-Site).", retry: "never" },
  login_failed: { status: 400, type: "invalid_request_error", message: "Signing in did not complete; start again.", retry: "never" },
  idp_unavailable: { status: 503, type: "api_error", message: "The identity provider's signing keys could not be fetched; try again shortly.", retry: 1000 },
  sign_in_throttled: { status: 429, type: "rate_limit_error", message: "Too many failed sign-ins; wait as long as Retry-After says, then try again." },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * How an error body is shaped, chosen per route (routes.yaml `errors:`): OpenAI's
 * `{"error":{message,type,code,param}}`, or Ollama's `{"error":"<message>"}`,
 * which the ollama clients show as the message.
 */
export type ErrorEnvelope = "openai" | "ollama";
export const ERROR_ENVELOPES: readonly ErrorEnvelope[] = ["openai", "ollama"];

/** The error body for a catalogue code in an envelope (OpenAI's by default), with an optional more specific message. */
export function errorBody(code: ErrorCode, message?: string, param?: string | null, envelope: ErrorEnvelope = "openai"): string {
  const spec: ErrorSpec = ERRORS[code];
  if (envelope === "ollama") return JSON.stringify({ error: message ?? spec.message });
  return JSON.stringify({
    error: { message: message ?? spec.message, type: spec.type, code, param: param ?? null },
  });
}

/** What a refusal says beyond its catalogue entry. */
export interface DenialDetail {
  readonly message?: string | undefined;
  readonly param?: string | undefined;
  /** The missing scope, for a 403's WWW-Authenticate. */
  readonly scope?: string | undefined;
  /** The methods the path has, for a 405's Allow. */
  readonly allow?: readonly string[] | undefined;
  /** Response headers the refusal adds (a 429's Retry-After and RateLimit headers). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** The error shape when no route decides it (a request no route takes): else the route's. */
  readonly envelope?: ErrorEnvelope | undefined;
}

/**
 * A refusal as data: a catalogue code and, when it helps, a precise message,
 * the field at fault, the missing scope. Each step of the data plane and each
 * management handler returns one instead of answering; only the room that owns
 * the response sends it. Failures (a store outage) are thrown, never denied.
 */
export class Denial {
  readonly ok = false as const;
  readonly error: ErrorCode;
  readonly message: string | undefined;
  readonly param: string | undefined;
  readonly scope: string | undefined;
  readonly allow: readonly string[] | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly envelope: ErrorEnvelope | undefined;

  constructor(error: ErrorCode, detail: DenialDetail = {}) {
    this.error = error;
    this.message = detail.message;
    this.param = detail.param;
    this.scope = detail.scope;
    this.allow = detail.allow;
    this.headers = detail.headers;
    this.envelope = detail.envelope;
  }
}
/** The retry headers an SDK obeys for a code (name, value pairs), empty when the code leaves retries to the SDK. */
export function retryHeaders(code: ErrorCode): readonly string[] {
  return RETRY_HEADERS[code];
}

const RETRY_HEADERS = Object.fromEntries(
  Object.entries(ERRORS).map(([code, spec]: [string, ErrorSpec]) => {
    const r = spec.retry;
    const h = r === undefined ? [] : r === "never" ? ["x-should-retry", "false"] : ["retry-after", String(Math.ceil(r / 1000)), "retry-after-ms", String(r)];
    return [code, Object.freeze(h)];
  }),
) as Record<ErrorCode, readonly string[]>;
