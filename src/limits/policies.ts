/**
 * Which limit policies a request counts against, and under which subject key.
 * Subjects come only from the verified PAT (its id and user) and what the
 * route table made of the request (domain, model, operation); nothing a
 * client sends in a header. The data plane, `routes explain` and
 * `GET /me/limits` all ask these functions.
 */
import type { LimitPolicy, LimitSettings, LimitValues } from "../config/limits.ts";
import type { PatLimits, PatRecord } from "../store/types.ts";
import { RequestFactsCache } from "../util/request-facts-cache.ts";

/** A policy as it applies to one request: the policy and the subject's key. */
export interface Charge {
  readonly policy: LimitPolicy;
  readonly key: string;
}

/** The name a PAT's own limits (set at create or rotate) go by in 429s and headers. */
export const OWN_POLICY = "pat-own";

/** What a request is, as far as policies match it. */
export interface LimitFacts {
  readonly domainId: string;
  /** The model id when the route's entity is a model; "" otherwise. */
  readonly model: string;
  readonly operation: string;
}

/** Whether a policy's `match` holds for the request. */
export function policyMatches(p: LimitPolicy, f: LimitFacts): boolean {
  if (p.domains.size > 0 && !p.domains.has(f.domainId)) return false;
  if (p.operations.size > 0 && !p.operations.has(f.operation)) return false;
  if (p.models.size > 0 && !p.models.has(f.model)) return false;
  return true;
}

/** The policies of the config that apply to the request (for `routes explain`: no PAT needed). */
export function matchingPolicies(s: LimitSettings, f: LimitFacts): LimitPolicy[] {
  const out: LimitPolicy[] = [];
  for (const p of s.policies) if (policyMatches(p, f)) out.push(p);
  return out;
}

/** The subject key of a policy for a request by a PAT. Model-keyed subjects without a model use "*". */
export function subjectKey(p: LimitPolicy, f: LimitFacts, patId: string, userId: string): string {
  switch (p.subject) {
    case "pat": return `${p.name}|p:${patId}`;
    case "user": return `${p.name}|u:${userId}`;
    case "domain": return `${p.name}|d:${f.domainId}`;
    case "domain_model": return `${p.name}|dm:${f.domainId}:${f.model === "" ? "*" : f.model}`;
    case "pat_model": return `${p.name}|pm:${patId}:${f.model === "" ? "*" : f.model}`;
  }
}

/** Every charge a request makes: each matching policy, then the PAT's own limits. */
export function chargesFor(s: LimitSettings, f: LimitFacts, patId: string, userId: string, own: PatLimits | undefined): Charge[] {
  const out: Charge[] = [];
  for (const p of s.policies) if (policyMatches(p, f)) out.push({ policy: p, key: subjectKey(p, f, patId, userId) });
  if (own !== undefined) out.push({ policy: ownPolicy(own), key: `${OWN_POLICY}|p:${patId}` });
  return out;
}

/** chargesFor, built once per (PAT record, domain, model, operation): the subject keys are then the same string objects on every request, so the counters' Map lookups find them hashed. */
export function chargeCache(s: LimitSettings): RequestFactsCache<PatRecord, Charge[]> {
  return new RequestFactsCache((rec, domainId, model, operation) => chargesFor(s, { domainId, model, operation }, rec.id, rec.userId, rec.limits));
}

// A PAT's own limits are compiled once per distinct limits object (records are immutable).
const OWN = new WeakMap<PatLimits, LimitPolicy>();
const ANY: ReadonlySet<string> = new Set();

/** A PAT's own limits as a policy: subject the PAT, enforced, counted locally while Redis is down. */
export function ownPolicy(own: PatLimits): LimitPolicy {
  let p = OWN.get(own);
  if (p === undefined) {
    p = {
      name: OWN_POLICY, subject: "pat", domains: ANY, models: ANY, operations: ANY, mode: "enforce", onStoreDown: "local", clampMaxTokens: false,
      requestsPerMinute: own.requestsPerMinute ?? 0, tokensPerMinute: own.tokensPerMinute ?? 0, tokensPerDay: own.tokensPerDay ?? 0, concurrent: own.concurrent ?? 0,
    };
    OWN.set(own, p);
  }
  return p;
}

/** Whether any of the values limits tokens. */
export function limitsTokens(v: LimitValues): boolean {
  return v.tokensPerMinute > 0 || v.tokensPerDay > 0;
}

/**
 * The loosest value policy allows a PAT for each dimension: the tightest
 * policy with subject `pat` that matches every request (no `match`), or null
 * when none limits it. A PAT's own limits may not exceed it ("never looser").
 */
export function patCeiling(s: LimitSettings): { -readonly [K in keyof LimitValues]: { value: number; policy: string } | null } {
  const out: { -readonly [K in keyof LimitValues]: { value: number; policy: string } | null } = { requestsPerMinute: null, tokensPerMinute: null, tokensPerDay: null, concurrent: null };
  for (const p of s.policies) {
    if (p.subject !== "pat" || p.mode !== "enforce" || p.domains.size + p.models.size + p.operations.size > 0) continue;
    for (const k of ["requestsPerMinute", "tokensPerMinute", "tokensPerDay", "concurrent"] as const) {
      const v = p[k];
      const cur = out[k];
      if (v > 0 && (cur === null || v < cur.value)) out[k] = { value: v, policy: p.name };
    }
  }
  return out;
}
