/**
 * `auth.oidc.operator_claim` and `auth.oidc.operator_value`: the OIDC claim
 * that makes a signed-in person an operator (e.g. `groups` containing
 * `patgate-operators`), for the web page's sign-in and for JWT callers of the
 * management API alike. Parsed here so config.ts only calls it.
 */
import type { Checker } from "./config.ts";

/** The rule: the claim at `path` equals `value`, or is a list that contains it. */
export interface OperatorClaim {
  /** As configured, e.g. `groups` or `realm_access.roles`. */
  readonly claim: string;
  /**
   * Where to look: the whole name as one claim first (namespaced claims such
   * as `https://example.com/roles` hold dots), else these segments as a path.
   */
  readonly path: readonly string[];
  readonly value: string;
  /** `claim=value`: what a session made by this rule records, to notice a changed rule. */
  readonly describe: string;
}

type Obj = Record<string, unknown>;

/** Validates the two keys (both or neither); null when unset. */
export function parseOperatorClaim(c: Checker, o: Obj): OperatorClaim | null {
  const claim = c.str(o.operator_claim, "auth.oidc.operator_claim", "").trim();
  const value = c.str(o.operator_value, "auth.oidc.operator_value", "").trim();
  if (claim === "" && value === "") return null;
  if (claim === "") {
    c.fail("auth.oidc.operator_claim", "is required with auth.oidc.operator_value (the claim to look in, e.g. groups)");
    return null;
  }
  if (value === "") {
    c.fail("auth.oidc.operator_value", "is required with auth.oidc.operator_claim (e.g. patgate-operators): without it anyone with the claim would be an operator");
    return null;
  }
  if (claim.split(".").some((s) => s === "")) c.fail("auth.oidc.operator_claim", `"${claim}" is not a claim name or a dotted path to one`);
  return { claim, path: claim.split("."), value, describe: `${claim}=${value}` };
}
