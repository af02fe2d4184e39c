/**
 * Who is calling the management API. Operators present an admin key; users an
 * OIDC JWT. A PAT is never a management credential. A refusal is data; only an
 * outage (store, identity provider) throws.
 */
import type { IncomingMessage } from "node:http";
import { bearerCredential } from "../tokens/bearer.ts";
import { parseToken } from "../tokens/format.ts";
import type { AdminKeys } from "./keys.ts";
import type { OidcVerifier } from "./oidc.ts";
import { deny, type Denial } from "./reply.ts";

export type Caller =
  | { readonly kind: "operator"; /** fingerprint of the admin key, for audit lines */ readonly keyId: string }
  | { readonly kind: "operator"; readonly keyId: null; /** an operator by OIDC claim (auth.oidc.operator_claim): their user id */ readonly subject: string }
  | { readonly kind: "user"; readonly userId: string };

export type AuthResult = { readonly ok: true; readonly caller: Caller } | Denial;

/**
 * A browser session as a credential (the web page, src/ui/): consulted only
 * when the request has no Authorization header; null when it has no session
 * cookie either. It refuses cross-origin unsafe requests itself.
 */
export interface CookieAuth {
  authenticate(req: IncomingMessage): Promise<AuthResult | null>;
}
// Three base64url parts: the only shape handed to the JWT verifier.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_CREDENTIAL_LENGTH = 16 * 1024;

export class Authenticator {
  readonly #keys: AdminKeys;
  readonly #oidc: OidcVerifier | null;

  constructor(keys: AdminKeys, oidc: OidcVerifier | null) {
    this.#keys = keys;
    this.#oidc = oidc;
  }

  async authenticate(header: string | undefined): Promise<AuthResult> {
    const credential = bearerCredential(header);
    if (credential === null || /\s/.test(credential)) return deny("missing_credential");
    if (credential.length > MAX_CREDENTIAL_LENGTH) return deny("invalid_credential");
    // Checked first and by prefix too, so even a mistyped PAT gets the clear answer.
    if (credential.startsWith("pat_") || parseToken(credential) !== null) return deny("pat_not_accepted");
    const keyId = await this.#keys.match(credential);
    if (keyId !== null) return { ok: true, caller: { kind: "operator", keyId } };
    if (!JWT_SHAPE.test(credential)) return deny("invalid_credential");
    if (this.#oidc === null) return deny("invalid_credential", "OIDC sign-in is not configured on this gateway; operators use an admin key.");
    const r = await this.#oidc.verify(credential);
    if (!r.ok) return deny("invalid_credential", `The OIDC token was refused: ${r.reason}.`);
    return { ok: true, caller: r.operator ? { kind: "operator", keyId: null, subject: r.userId } : { kind: "user", userId: r.userId } };
  }
}
