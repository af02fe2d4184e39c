/**
 * The decision: may this token do this route's operation, on this entity, in
 * this domain, now? The data plane's second and fourth steps, the re-check of
 * running streams and (through them) every later caller use these functions
 * and nothing else, so a rule is written once.
 *
 * Effective right = the PAT's scopes ∧ the user's current rights in the domain.
 */
import { Denial } from "../errors.ts";
import type { RequestContext } from "../http/context.ts";
import { entityFromJson, jsonHasField } from "../routing/entity.ts";
import type { Route } from "../routing/table.ts";
import { formatNeed, type Need } from "../scopes/scope.ts";
import type { Domain } from "../store/types.ts";
import type { Verifier, VerifiedPat, VerifyResult } from "../tokens/verifier.ts";
import type { DomainRights, Rights } from "./rights.ts";

/** What a decision reads: tokens and rights, both cached in front of the store. */
export interface Deciders {
  readonly verifier: Verifier;
  readonly rights: Rights;
}

/** What a request holds once its token and its user's rights are checked. */
export interface Granted {
  readonly pat: VerifiedPat;
  /** The operations the user holds in the domain now. */
  readonly held: ReadonlySet<string>;
  /** When the token's own validity ends (VerifyResult.until). */
  readonly until: number;
  /** The domain as it was when this was decided (its upstream). */
  readonly domain: Domain;
}

const TOKEN_DENIAL: Record<Exclude<VerifyResult, { ok: true }>["reason"], Denial> = {
  malformed: new Denial("invalid_token"),
  unknown: new Denial("invalid_token"),
  bad_secret: new Denial("invalid_token"),
  expired: new Denial("expired_token"),
  revoked: new Denial("revoked_token"),
};
const NOT_A_MEMBER = new Denial("not_a_member");
const NO_DOMAIN = new Denial("domain_not_found");
/** Needs beyond the route's own: none, for most routes. */
export const NO_MORE_NEEDS: readonly Need[] = Object.freeze([]);

/**
 * Token, then the user's current rights in the domain, then whether any scope
 * could allow the operation here (so a body no scope allows is never read),
 * then the domain record. Synchronous on cache hits. Records the verified PAT
 * on `ctx` (the access line names it, even when a later check refuses).
 */
export function authorize(d: Deciders, ctx: RequestContext, token: string, route: Route): Granted | Denial | Promise<Granted | Denial> {
  const pv = d.verifier.verify(token);
  if (pv instanceof Promise) return pv.then((v) => rightsOf(d, ctx, route, v));
  return rightsOf(d, ctx, route, pv);
}

function rightsOf(d: Deciders, ctx: RequestContext, route: Route, v: VerifyResult): Granted | Denial | Promise<Granted | Denial> {
  if (!v.ok) return TOKEN_DENIAL[v.reason];
  const pat = (ctx.pat = v.pat);
  const until = (ctx.until = v.until);
  const ph = d.rights.rightsIn(ctx.domainId, pat.record.userId);
  if (ph instanceof Promise) return ph.then((held) => heldAllows(d, ctx.domainId, route, pat, until, held));
  return heldAllows(d, ctx.domainId, route, pat, until, ph);
}

function heldAllows(d: Deciders, domainId: string, route: Route, pat: VerifiedPat, until: number, held: DomainRights): Granted | Denial | Promise<Granted | Denial> {
  if (held === null) return NOT_A_MEMBER;
  if (!held.has(route.operation)) return roleDenied(route.operation, domainId);
  if (!pat.scopes.mayGrant(domainId, route.operation)) return scopeMissing({ domainId, entityType: route.entityType, entityId: "*", operation: route.operation });
  const pd = d.rights.domain(domainId);
  if (pd instanceof Promise) return pd.then((domain) => granted(pat, held, until, domain));
  return granted(pat, held, until, pd);
}

function granted(pat: VerifiedPat, held: ReadonlySet<string>, until: number, domain: Domain | null): Granted | Denial {
  return domain === null ? NO_DOMAIN : { pat, held, until, domain };
}

/**
 * How many store changes (PATs, memberships, domains, roles) the caches have
 * applied, or -1 while they may be missing changes (the store's events are not
 * flowing). A decision taken at one mark still stands at the same mark, until
 * its `until`: while events flow the caches are exact, and nothing else goes
 * into it. (Cache entries reaching cache.max_age_ms, the backstop against
 * lost events, are not looked at within one request: a decision is reused
 * for at most server.body_timeout.)
 */
export function changeMark(d: Deciders): number {
  return d.verifier.exact ? d.verifier.changes + d.rights.changes : -1;
}

/** Whether a decision taken at `mark` still stands now (else it is taken again, e.g. after a slow body). */
export function stillCurrent(d: Deciders, mark: number, g: Granted): boolean {
  return mark !== -1 && changeMark(d) === mark && Date.now() < g.until;
}

/**
 * The further needs a read body adds (routes.yaml `entity.also`): each field
 * that makes the upstream read, copy, fetch or proxy something besides the main
 * entity, such as Ollama create's `from` (read, or pulled when it is not local),
 * with every operation it really performs; a field no scope could name what it
 * reaches (Ollama's `files`: blobs by digest) is refused outright.
 */
export function alsoNeeds(route: Route, domainId: string, body: Buffer | null): readonly Need[] | Denial {
  if (route.also.length === 0 || body === null) return NO_MORE_NEEDS;
  const needs: Need[] = [];
  for (const also of route.also) {
    if (also.refuse !== null) {
      if (jsonHasField(body, also.field)) return new Denial("field_refused", { param: also.field, message: `The field "${also.field}" is not accepted through the gateway: ${also.refuse}` });
      continue;
    }
    const e = entityFromJson(body, also.field);
    if (!e.ok && e.code === "entity_missing") {
      // Absent, unless under another spelling that Go's encoding/json reads as the field (`FROM`).
      if (!jsonHasField(body, also.field)) continue;
      return new Denial("entity_invalid", { param: also.field, message: `${e.message} Spell "${also.field}" exactly so.` });
    }
    if (!e.ok) return new Denial(e.code, { message: e.message, param: also.field });
    for (const operation of also.operations) needs.push({ domainId, entityType: route.entityType, entityId: e.id, operation, field: also.field });
  }
  return needs;
}

/**
 * The scope check: one of the token's scopes must grant the route's operation on
 * the entity, and each further need must be both held by the user and granted.
 */
export function scopeDenial(g: Granted, route: Route, domainId: string, entityId: string, also: readonly Need[]): Denial | null {
  const need: Need = { domainId, entityType: route.entityType, entityId, operation: route.operation };
  if (!g.pat.scopes.grants(need)) return scopeMissing(need);
  for (const n of also) {
    if (!g.held.has(n.operation)) return roleDenied(n.operation, domainId, n.field);
    if (!g.pat.scopes.grants(n)) return scopeMissing(n, n.field);
  }
  return null;
}

/**
 * Whether a request already being served (a running stream) is still allowed
 * now: the same decision, taken afresh. Null when it is; the denial when not.
 * Rejects only when the store fails.
 */
export async function decideAgain(d: Deciders, ctx: RequestContext): Promise<Denial | null> {
  return decideFor(d, ctx, ctx.entityId, ctx.also);
}

/**
 * Whether a request already being served may act on `entityId` (and the
 * further needs `also`) now: a Realtime session whose `session.update` names
 * a model. The same decision as at the start, on the new entity. Synchronous
 * on cache hits; rejects only when the store fails.
 */
export function decideFor(d: Deciders, ctx: RequestContext, entityId: string, also: readonly Need[]): Denial | null | Promise<Denial | null> {
  const route = ctx.route;
  if (route === null || ctx.token === "") return new Denial("missing_token");
  const pg = authorize(d, ctx, ctx.token, route);
  if (pg instanceof Promise) return pg.then((g) => (g instanceof Denial ? g : scopeDenial(g, route, ctx.domainId, entityId, also)));
  return pg instanceof Denial ? pg : scopeDenial(pg, route, ctx.domainId, entityId, also);
}

function roleDenied(operation: string, domainId: string, field?: string): Denial {
  const why = field === undefined ? "" : ` (needed for "${field}")`;
  return new Denial("role_denied", { param: field, message: `The token's user does not hold "${operation}" in domain "${domainId}"${why}.` });
}

function scopeMissing(need: Need, field?: string): Denial {
  const scope = formatNeed(need);
  const why = field === undefined ? "" : `, needed for "${field}"`;
  return new Denial("insufficient_scope", { scope, param: field, message: `The token lacks the scope "${need.domainId}:${scope}" (DOMAIN:TYPE:ID:OP, as \`patgate pat scope add\` takes it${why}).` });
}
