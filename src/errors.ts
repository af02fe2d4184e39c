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
  token_in_query: { status: 400, type: "invalid_request_error", message: "The query string holds a token; send it only in the Authorization header (and revoke it: URLs end up in logs)." },
  ambiguous_header: { status: 400, type: "invalid_request_error", message: "A header the gateway checks was sent more than once; send it once." },
  body_timeout: { status: 408, type: "invalid_request_error", message: "The request body did not arrive in time." },
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
  upstream_tls_error: { status: 502, type: "api_error", message: "The gateway could not make a trusted TLS connection to the upstream (certificate or handshake refused); the gateway's log says why." },
  upstream_unavailable: { status: 503, type: "api_error", message: "No upstream is available for this domain." },
  store_unavailable: { status: 503, type: "api_error", message: "The token store is unreachable; the request cannot be verified. Try again shortly." },
  upstream_timeout: { status: 504, type: "api_error", message: "The upstream did not answer in time." },
  // Management API (/pats, /domains, /roles)
  invalid_field: { status: 400, type: "invalid_request_error", message: "A request field is missing or invalid." },
  invalid_duration: { status: 400, type: "invalid_request_error", message: "The duration is not valid or is longer than the maximum token lifetime." },
  missing_credential: { status: 401, type: "invalid_request_error", message: "Missing credential: send 'Authorization: Bearer <OIDC token or admin key>'." },
  invalid_credential: { status: 401, type: "invalid_request_error", message: "The credential is not a valid admin key or OIDC token." },
  pat_not_accepted: { status: 401, type: "invalid_request_error", message: "A PAT cannot manage PATs; use an OIDC token or an admin key." },
  operator_only: { status: 403, type: "invalid_request_error", message: "Only an operator (admin key) may do this." },
  scope_not_held: { status: 403, type: "invalid_request_error", message: "You cannot grant a scope you do not hold in that domain." },
  pat_not_found: { status: 404, type: "invalid_request_error", message: "No such PAT." },
  member_not_found: { status: 404, type: "invalid_request_error", message: "The user is not a member of this domain." },
  role_not_found: { status: 404, type: "invalid_request_error", message: "No such role." },
  name_taken: { status: 409, type: "invalid_request_error", message: "This user already has a PAT with this name." },
  domain_exists: { status: 409, type: "invalid_request_error", message: "A domain with this id already exists." },
  pat_revoked: { status: 409, type: "invalid_request_error", message: "The PAT is revoked; a revoked PAT cannot be rotated. Create a new one." },
  role_in_config: { status: 409, type: "invalid_request_error", message: "The role is defined in the config file; change it there." },
  edit_conflict: { status: 409, type: "invalid_request_error", message: "The PAT kept changing while this edit was applied; try again." },
  invalid_scope: { status: 422, type: "invalid_request_error", message: "A scope does not fit the catalog: unknown entity type or operation, or an operation that does not apply to the type." },
  unknown_domain: { status: 422, type: "invalid_request_error", message: "A scope names a domain that does not exist." },
  unknown_role: { status: 422, type: "invalid_request_error", message: "A role is not defined." },
  unknown_operation: { status: 422, type: "invalid_request_error", message: "An operation is not in the catalog." },
  unknown_upstream: { status: 422, type: "invalid_request_error", message: "The upstream is not in the gateway's config." },
  idp_unavailable: { status: 503, type: "api_error", message: "The identity provider's signing keys could not be fetched; try again shortly." },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The OpenAI error envelope for a catalogue code, with an optional more specific message. */
export function errorBody(code: ErrorCode, message?: string, param?: string | null): string {
  const spec: ErrorSpec = ERRORS[code];
  return JSON.stringify({
    error: { message: message ?? spec.message, type: spec.type, code, param: param ?? null },
  });
}
