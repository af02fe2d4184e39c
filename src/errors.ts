/**
 * The one error catalogue: code → HTTP status → OpenAI error type → public message.
 * docs/errors.md is checked against this table by test/unit/errors-doc.test.ts.
 */
export interface ErrorSpec {
  readonly status: number;
  /** OpenAI envelope `type`, which SDKs map to exception classes. */
  readonly type: string;
  readonly message: string;
}

export const ERRORS = {
  // 400
  bad_path: { status: 400, type: "invalid_request_error", message: "The request path is not in canonical form (no '..', '//', encoded separators or control characters)." },
  bad_json: { status: 400, type: "invalid_request_error", message: "The request body is not valid JSON." },
  bad_multipart: { status: 400, type: "invalid_request_error", message: "The request body is not valid multipart/form-data." },
  entity_missing: { status: 400, type: "invalid_request_error", message: "The request does not name the entity it acts on." },
  entity_ambiguous: { status: 400, type: "invalid_request_error", message: "The request names its entity more than once; send it exactly once." },
  entity_invalid: { status: 400, type: "invalid_request_error", message: "The entity named by the request is not a valid identifier." },
  bad_request: { status: 400, type: "invalid_request_error", message: "The request is malformed." },
  // 401
  missing_token: { status: 401, type: "invalid_request_error", message: "Missing bearer token: send 'Authorization: Bearer <PAT>'." },
  invalid_token: { status: 401, type: "invalid_request_error", message: "The token is malformed or unknown." },
  expired_token: { status: 401, type: "invalid_request_error", message: "The token has expired." },
  revoked_token: { status: 401, type: "invalid_request_error", message: "The token has been revoked." },
  // 403
  insufficient_scope: { status: 403, type: "invalid_request_error", message: "The token's scopes do not allow this request." },
  not_a_member: { status: 403, type: "invalid_request_error", message: "The token's user is not a member of this domain." },
  role_denied: { status: 403, type: "invalid_request_error", message: "The token's user no longer holds this right in the domain." },
  // 404 / 405
  no_route: { status: 404, type: "invalid_request_error", message: "No route matches this method and path." },
  domain_not_found: { status: 404, type: "invalid_request_error", message: "The domain does not exist." },
  method_not_allowed: { status: 405, type: "invalid_request_error", message: "The path exists but not for this method." },
  // 413 / 415
  body_too_large: { status: 413, type: "invalid_request_error", message: "The request body is larger than this route allows." },
  unsupported_media_type: { status: 415, type: "invalid_request_error", message: "The request's Content-Type is not accepted by this route." },
  // 429
  rate_limited: { status: 429, type: "rate_limit_error", message: "Too many requests." },
  // 5xx
  internal_error: { status: 500, type: "api_error", message: "Internal gateway error." },
  upstream_error: { status: 502, type: "api_error", message: "The upstream failed or closed the connection." },
  upstream_unavailable: { status: 503, type: "api_error", message: "No upstream is available for this domain." },
  store_unavailable: { status: 503, type: "api_error", message: "The token store is unreachable; the request cannot be verified. Try again shortly." },
  upstream_timeout: { status: 504, type: "api_error", message: "The upstream did not answer in time." },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The OpenAI error envelope for a catalogue code, with an optional more specific message. */
export function errorBody(code: ErrorCode, message?: string, param?: string | null): string {
  const spec: ErrorSpec = ERRORS[code];
  return JSON.stringify({
    error: { message: message ?? spec.message, type: spec.type, code, param: param ?? null },
  });
}
