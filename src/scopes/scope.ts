import { createHash } from "node:crypto";

/** A grant on a PAT: one operation on one entity (or `*`) of one type in one domain. */
export interface Scope {
  readonly domainId: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly operation: string;
}

/** What one request needs, derived from its route, path and body. */
export interface Need {
  readonly domainId: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly operation: string;
  /** The body field that names the entity, when it is not the route's own (entity.also), for refusals. */
  readonly field?: string;
}

export const WILDCARD = "*";
export const DOMAINS = "domains";

// NUL cannot occur in an id (ids are validated), so joined keys cannot collide.
const SEP = "\u0000";

function key(domainId: string, entityType: string, entityId: string, operation: string): string {
  return domainId + SEP + entityType + SEP + entityId + SEP + operation;
}

/**
 * Scopes compiled once per PAT load into a set, so a check is four set lookups.
 * A scope grants (D, T, E, O) when its domain is D, its operation is O, and either
 * its type is T with id E or `*`, or its type is `domains` with id D or `*`.
 */
export class CompiledScopes {
  readonly #keys: Set<string>;
  readonly #domainOps: Set<string>;

  constructor(scopes: readonly Scope[]) {
    this.#keys = new Set(scopes.map((s) => key(s.domainId, s.entityType, s.entityId, s.operation)));
    this.#domainOps = new Set(scopes.map((s) => s.domainId + SEP + s.operation));
  }

  /** Whether any scope could grant `operation` in the domain: lets a request be refused before its body is read. */
  mayGrant(domainId: string, operation: string): boolean {
    return this.#domainOps.has(domainId + SEP + operation);
  }

  grants(need: Need): boolean {
    const { domainId: d, entityType: t, entityId: e, operation: o } = need;
    const k = this.#keys;
    return (
      k.has(key(d, t, e, o)) ||
      k.has(key(d, t, WILDCARD, o)) ||
      k.has(key(d, DOMAINS, d, o)) ||
      k.has(key(d, DOMAINS, WILDCARD, o))
    );
  }
}

/** The scope a denied request was missing, in the `type:id:operation` form people type. */
export function formatNeed(need: Need): string {
  return `${need.entityType}:${need.entityId}:${need.operation}`;
}

/** `type:id:operation` for display and the CLI. */
export function formatScope(s: Scope): string {
  return `${s.entityType}:${s.entityId}:${s.operation}`;
}

export function sameScope(a: Scope, b: Scope): boolean {
  return (
    a.domainId === b.domainId &&
    a.entityType === b.entityType &&
    a.entityId === b.entityId &&
    a.operation === b.operation
  );
}

/**
 * A scope's stable id on one PAT (what `PATCH /pats/{id}/scope/remove` takes as
 * `scopes_id`): derived from the PAT id and the scope itself, so it needs no
 * storage, is the same on every read and replica, and differs between PATs.
 */
export function scopeId(patId: string, s: Scope): string {
  return createHash("sha256").update(key(patId, s.domainId, s.entityType, s.entityId) + SEP + s.operation).digest("hex").slice(0, 24);
}
