import type { Scope } from "../scopes/scope.ts";
import type { PatRecord } from "../store/types.ts";
import { generateToken, hashSecret } from "./format.ts";

export interface NewPat {
  readonly userId: string;
  readonly name: string;
  readonly description?: string;
  readonly scopes: readonly Scope[];
  readonly lifetimeMs: number;
  readonly now?: number;
}

/** A fresh PAT record and its token text. The token exists only in this return value. */
export function newPat(pepper: Buffer, spec: NewPat): { record: PatRecord; token: string } {
  const now = spec.now ?? Date.now();
  const { token, id, secret } = generateToken();
  const record: PatRecord = {
    id,
    userId: spec.userId,
    name: spec.name,
    description: spec.description ?? "",
    scopes: spec.scopes.map((s) => ({ domainId: s.domainId, entityType: s.entityType, entityId: s.entityId, operation: s.operation })),
    secretHash: hashSecret(pepper, id, secret),
    prevSecretHash: null,
    prevSecretExpiresAt: null,
    issuedAt: now,
    expiresAt: now + spec.lifetimeMs,
    updatedAt: now,
    lastUsedAt: null,
    revoked: false,
    revokedAt: null,
    version: 1,
  };
  return { record, token };
}

/** A new secret for an existing PAT; with a grace period the old one keeps working until min(grace end, old expiry). */
export function rotatedPat(pepper: Buffer, rec: PatRecord, lifetimeMs: number, graceMs: number, now = Date.now()): { record: PatRecord; token: string } {
  const { token, secret } = generateToken(rec.id);
  const graceEnd = Math.min(now + graceMs, rec.expiresAt);
  const record: PatRecord = {
    ...rec,
    secretHash: hashSecret(pepper, rec.id, secret),
    prevSecretHash: graceMs > 0 && graceEnd > now && !rec.revoked ? rec.secretHash : null,
    prevSecretExpiresAt: graceMs > 0 && graceEnd > now && !rec.revoked ? graceEnd : null,
    expiresAt: now + lifetimeMs,
    updatedAt: now,
  };
  return { record, token };
}
