import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { OidcSettings } from "../config/config.ts";
import type { OperatorClaim } from "../config/operators.ts";
import { isUserId } from "./validate.ts";

/** Why a JWT was refused: data for the 401 message, never the token. */
export type JwtResult = { readonly ok: true; readonly userId: string; /** holds auth.oidc.operator_claim */ readonly operator: boolean } | { readonly ok: false; readonly reason: string };

/** The identity provider's keys could not be fetched: an outage, not a bad token (→ 503). */
export class IdpUnavailableError extends Error {
  override readonly name = "IdpUnavailableError";
}

// JOSE errors that mean "we could not get the keys", as opposed to "this token is bad".
const OUTAGE_CODES = new Set(["ERR_JWKS_TIMEOUT", "ERR_JOSE_GENERIC", "ERR_JWKS_INVALID"]);

// Claims that are user ids only when the issuer vouches for them (OIDC Core §5.1).
const VERIFIED_BY: Readonly<Record<string, string>> = { email: "email_verified", phone_number: "phone_number_verified" };

/** Verifies OIDC access/ID tokens against the issuer's JWKS, with jose. */
export class OidcVerifier {
  readonly #cfg: OidcSettings;
  readonly #keys: JWTVerifyGetKey;

  constructor(cfg: OidcSettings) {
    this.#cfg = cfg;
    // jose caches the set, refetches on an unknown `kid` at most every 30 s, and times out fetches.
    this.#keys = createRemoteJWKSet(new URL(cfg.jwksUrl), { timeoutDuration: 3000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  }

  /** Checks signature (allowed algorithms only), issuer, audience and expiry; rejects only on an IdP outage. */
  async verify(token: string): Promise<JwtResult> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        issuer: this.#cfg.issuer,
        audience: [...this.#cfg.audiences],
        algorithms: [...this.#cfg.algorithms],
        clockTolerance: this.#cfg.clockToleranceSec,
        requiredClaims: ["exp"],
      }));
    } catch (err) {
      if (err instanceof errors.JOSEError && !OUTAGE_CODES.has(err.code)) return { ok: false, reason: describe(err) };
      throw new IdpUnavailableError("could not fetch the identity provider's signing keys", { cause: err });
    }
    const claim = this.#cfg.userClaim;
    const userId = payload[claim];
    if (typeof userId !== "string" || !isUserId(userId)) {
      return { ok: false, reason: `the token's "${claim}" claim is not a usable user id` };
    }
    // Many issuers let a user set any address; only one the issuer checked names the person.
    const verified = VERIFIED_BY[claim];
    if (verified !== undefined && payload[verified] !== true) {
      return { ok: false, reason: `the token's "${claim}" is not verified ("${verified}" is not true), so it cannot name the user` };
    }
    return { ok: true, userId, operator: this.#cfg.operator !== null && holdsOperatorClaim(this.#cfg.operator, payload) };
  }
}

/**
 * True when `claims` carry the operator claim: equal to its value, or a list
 * that contains it. The one rule for JWT callers and the web page's sign-in.
 */
export function holdsOperatorClaim(rule: OperatorClaim, claims: Readonly<Record<string, unknown>>): boolean {
  let v: unknown = Object.hasOwn(claims, rule.claim) ? claims[rule.claim] : undefined;
  if (v === undefined && rule.path.length > 1) {
    v = claims;
    for (const seg of rule.path) v = typeof v === "object" && v !== null && !Array.isArray(v) && Object.hasOwn(v, seg) ? (v as Record<string, unknown>)[seg] : undefined;
  }
  if (typeof v === "string") return v === rule.value;
  return Array.isArray(v) && v.includes(rule.value);
}

function describe(err: errors.JOSEError): string {
  if (err instanceof errors.JWTExpired) return "the token has expired";
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's "${err.claim}" claim is not accepted`;
  if (err instanceof errors.JOSEAlgNotAllowed) return "the token's signing algorithm is not allowed";
  if (err instanceof errors.JWKSNoMatchingKey) return "the token is signed with a key the issuer does not publish";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  return "the token is not a valid JWT";
}
