import type { Scope } from "../scopes/scope.ts";

/** A stored PAT. `secretHash` never leaves the server; `version` bumps on every change. */
export interface PatRecord {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  readonly description: string;
  readonly scopes: readonly Scope[];
  /** Keyed hash (hex) of the current secret. */
  readonly secretHash: string;
  /** After a rotation with a grace period: the previous secret's hash and until when it works. */
  readonly prevSecretHash: string | null;
  readonly prevSecretExpiresAt: number | null;
  /** Epoch milliseconds. */
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly updatedAt: number;
  readonly lastUsedAt: number | null;
  readonly revoked: boolean;
  readonly revokedAt: number | null;
  readonly version: number;
  /** The PAT's own limits, set at create or rotate, never looser than policy (docs/limits.md); absent: none. */
  readonly limits?: PatLimits;
}

/** A PAT's own limits; an absent value is not limited by the PAT (policies still apply). */
export interface PatLimits {
  readonly requestsPerMinute?: number;
  readonly tokensPerMinute?: number;
  readonly tokensPerDay?: number;
  readonly concurrent?: number;
}

export interface Domain {
  readonly id: string;
  readonly name: string;
  /** Upstream id from config; null means the configured default upstream. */
  readonly upstream: string | null;
  readonly createdAt: number;
}

export interface Membership {
  readonly domainId: string;
  readonly userId: string;
  readonly roles: readonly string[];
}

export interface Role {
  readonly name: string;
  readonly operations: readonly string[];
}

/** An operator credential as stored: only the SHA-256 (hex) of the key, never the key. */
export interface AdminKeyRecord {
  readonly id: string;
  readonly hash: string;
  readonly createdAt: number;
}

/**
 * Pushed to every gateway process after a committed change, so caches drop
 * exactly what changed. `reset` means "events may have been missed: drop all".
 */
export type ChangeEvent =
  | { readonly kind: "pat"; readonly id: string }
  | { readonly kind: "member"; readonly domainId: string; readonly userId: string }
  | { readonly kind: "domain"; readonly id: string }
  | { readonly kind: "role"; readonly name: string }
  | { readonly kind: "reset" };

export type InsertResult = "ok" | "name_taken" | "id_taken";
export type ReplaceResult = "ok" | "conflict" | "name_taken" | "not_found";

/** Thrown when the backing store cannot be reached or answered with an error. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
}

/**
 * The one storage interface. Implementations: RedisStore (shared by replicas)
 * and EmbeddedStore (a local SQLite file). Both pass test/contract/store.contract.ts
 * and test/contract/store-transfer.contract.ts.
 *
 * Every mutating method publishes the matching ChangeEvent to all subscribers
 * (in every process sharing the store) once the change is committed.
 * Every method rejects with StoreUnavailableError when the store is unreachable.
 */
export interface Store {
  readonly kind: "redis" | "embedded";

  getPat(id: string): Promise<PatRecord | null>;
  listPatsByUser(userId: string): Promise<PatRecord[]>;
  /** Inserts a new PAT; its name must be unique for its user. */
  insertPat(pat: PatRecord): Promise<InsertResult>;
  /**
   * Replaces a PAT if its stored version is still `expectedVersion`; the stored
   * copy gets version `expectedVersion + 1` (the caller's `version` is ignored).
   */
  replacePat(pat: PatRecord, expectedVersion: number): Promise<ReplaceResult>;
  deletePat(id: string): Promise<boolean>;
  /** Coalesced last-used times; does not bump versions and publishes nothing. */
  touchPats(lastUsed: ReadonlyMap<string, number>): Promise<void>;
  /** Every PAT, a page at a time, in no set order: for export and checks, never the hot path. */
  allPats(pageSize?: number): AsyncIterable<PatRecord[]>;

  getDomain(id: string): Promise<Domain | null>;
  listDomains(): Promise<Domain[]>;
  putDomain(domain: Domain): Promise<void>;
  /**
   * Creates the domain only if no domain has its id, atomically (of two
   * concurrent creates of one id, exactly one gets true); false when it exists.
   */
  insertDomain(domain: Domain): Promise<boolean>;
  /** Deletes the domain and all its memberships. */
  deleteDomain(id: string): Promise<boolean>;

  getMembership(domainId: string, userId: string): Promise<Membership | null>;
  listMembers(domainId: string): Promise<Membership[]>;
  listMembershipsOfUser(userId: string): Promise<Membership[]>;
  putMembership(m: Membership): Promise<void>;
  deleteMembership(domainId: string, userId: string): Promise<boolean>;

  getRole(name: string): Promise<Role | null>;
  listRoles(): Promise<Role[]>;
  putRole(role: Role): Promise<void>;
  deleteRole(name: string): Promise<boolean>;

  /** Stored admin-key hashes (the first-start key); not cached, so no change events. */
  listAdminKeys(): Promise<AdminKeyRecord[]>;
  /**
   * Stores `key` only while the store holds no admin key at all, atomically, so
   * of several replicas starting at once exactly one creates the first key.
   * True when it was stored.
   */
  addFirstAdminKey(key: AdminKeyRecord): Promise<boolean>;
  /** Stores another admin key, or replaces the one with its id (recovery, import). */
  addAdminKey(key: AdminKeyRecord): Promise<void>;
  /** Removes a stored admin key; true when there was one with that id. */
  deleteAdminKey(id: string): Promise<boolean>;

  /**
   * Registers a listener for committed changes (from this and every other process).
   * `committedAt` (epoch ms, the committing process's clock) is given when known, for lag metrics.
   */
  subscribe(listener: (event: ChangeEvent, committedAt?: number) => void): () => void;
  /**
   * True while change events are known to arrive. When false, caches must not
   * be trusted (events may be missed) and reads go to the store.
   */
  eventsLive(): boolean;
  /** Round trip to the store; rejects with StoreUnavailableError when down. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
