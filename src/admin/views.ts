/**
 * What the management API shows of stored records. Fields are listed one by
 * one (never spread), so a secret hash can never slip into a response.
 */
import { scopeId, type Scope } from "../scopes/scope.ts";
import type { Domain, Membership, PatRecord } from "../store/types.ts";
import { patLimitsView } from "./pat-limits.ts";

export type PatStatus = "active" | "expired" | "revoked";
export const PAT_STATUSES: readonly PatStatus[] = ["active", "expired", "revoked"];

export interface ScopeView {
  readonly domain_id: string;
  readonly entity_type: string;
  readonly entity_id: string;
  readonly operation: string;
}

/** A scope as it sits on a PAT: with its stable id. */
export interface PatScopeView extends ScopeView {
  readonly id: string;
}

export interface PatView {
  readonly id: string;
  readonly user_id: string;
  readonly name: string;
  readonly description: string;
  readonly scopes: readonly ScopeView[];
  readonly issued_at: string;
  readonly expires_at: string;
  readonly updated_at: string;
  readonly last_used_at: string | null;
  readonly revoked: boolean;
  readonly revoked_at: string | null;
  readonly status: PatStatus;
  /** After a rotation with a grace period: until when the previous secret still works. */
  readonly previous_secret_expires_at: string | null;
  /** The PAT's own limits (docs/limits.md); null: only the policies apply. */
  readonly limits: Record<string, number> | null;
}

/** Revoked wins over expired: it is the more final state. */
export function patStatus(p: PatRecord, now: number): PatStatus {
  if (p.revoked) return "revoked";
  return p.expiresAt <= now ? "expired" : "active";
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}

export function scopeView(s: Scope): ScopeView {
  return { domain_id: s.domainId, entity_type: s.entityType, entity_id: s.entityId, operation: s.operation };
}

/** A PAT's scope with its id (scopeId), as GET /pats/{id}/scope shows it. */
export function patScopeView(patId: string, s: Scope): PatScopeView {
  return { id: scopeId(patId, s), ...scopeView(s) };
}

export function patView(p: PatRecord, now: number): PatView {
  const grace = p.prevSecretHash !== null && p.prevSecretExpiresAt !== null && p.prevSecretExpiresAt > now ? p.prevSecretExpiresAt : null;
  return {
    id: p.id,
    user_id: p.userId,
    name: p.name,
    description: p.description,
    scopes: p.scopes.map(scopeView),
    issued_at: iso(p.issuedAt),
    expires_at: iso(p.expiresAt),
    updated_at: iso(p.updatedAt),
    last_used_at: isoOrNull(p.lastUsedAt),
    revoked: p.revoked,
    revoked_at: isoOrNull(p.revokedAt),
    status: patStatus(p, now),
    previous_secret_expires_at: isoOrNull(grace),
    limits: patLimitsView(p.limits),
  };
}

export function domainView(d: Domain): { id: string; name: string; upstream: string | null; created_at: string } {
  return { id: d.id, name: d.name, upstream: d.upstream, created_at: iso(d.createdAt) };
}

export function memberView(m: Membership): { domain_id: string; user_id: string; roles: readonly string[] } {
  return { domain_id: m.domainId, user_id: m.userId, roles: [...m.roles] };
}
