/**
 * Store records read from untrusted shapes: a caller's object on its way into
 * the embedded store, a line of an export file, a record of the old JSON
 * store file. Each is rebuilt field by field (no foreign property is kept)
 * and checked, so a NaN, a missing field or a wrong type is refused with the
 * path of the offending field instead of being written and read back wrong.
 */
import type { Scope } from "../scopes/scope.ts";
import type { AdminKeyRecord, Domain, Membership, PatLimits, PatRecord, Role } from "./types.ts";

/** The error class a decoder throws: TypeError for a caller's mistake, a file's own for a damaged file. */
export type ErrorCtor = new (message: string) => Error;

/** Reads typed fields out of an untrusted object, naming the offending path on failure. */
export class Fields {
  readonly #o: Record<string, unknown>;
  readonly #where: string;
  readonly #Err: ErrorCtor;

  constructor(v: unknown, where: string, Err: ErrorCtor) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Err(`${where} is not an object`);
    this.#o = v as Record<string, unknown>;
    this.#where = where;
    this.#Err = Err;
  }

  #fail(k: string, what: string): never {
    throw new this.#Err(`${this.#where}.${k} is not ${what}`);
  }

  has(k: string): boolean {
    return this.#o[k] !== undefined;
  }

  str(k: string): string {
    const v = this.#o[k];
    return typeof v === "string" ? v : this.#fail(k, "a string");
  }

  /** Times (epoch ms) and versions: whole numbers, as every store keeps them. */
  int(k: string): number {
    const v = this.#o[k];
    return typeof v === "number" && Number.isSafeInteger(v) ? v : this.#fail(k, "a whole number");
  }

  bool(k: string): boolean {
    const v = this.#o[k];
    return typeof v === "boolean" ? v : this.#fail(k, "a boolean");
  }

  strOrNull(k: string): string | null {
    return this.#o[k] === null ? null : this.str(k);
  }

  intOrNull(k: string): number | null {
    return this.#o[k] === null ? null : this.int(k);
  }

  list(k: string): readonly unknown[] {
    const v = this.#o[k];
    return Array.isArray(v) ? (v as unknown[]) : this.#fail(k, "an array");
  }

  strs(k: string): string[] {
    return this.list(k).map((x, i) => (typeof x === "string" ? x : this.#fail(`${k}[${i}]`, "a string")));
  }

  /** A PAT's own limits (optional): `{}` when absent or null, else `{ limits }` with whole numbers only. */
  patLimits(k: string): { limits?: PatLimits } {
    const v = this.#o[k];
    if (v === undefined || v === null) return {};
    const f = new Fields(v, `${this.#where}.${k}`, this.#Err);
    const out: { -readonly [K in keyof PatLimits]: number } = {};
    for (const n of PAT_LIMIT_KEYS) if (f.has(n)) out[n] = f.int(n);
    return { limits: out };
  }
}

const PAT_LIMIT_KEYS = ["requestsPerMinute", "tokensPerMinute", "tokensPerDay", "concurrent"] as const satisfies readonly (keyof PatLimits)[];

export function decodeScope(v: unknown, where: string, Err: ErrorCtor): Scope {
  const f = new Fields(v, where, Err);
  return { domainId: f.str("domainId"), entityType: f.str("entityType"), entityId: f.str("entityId"), operation: f.str("operation") };
}

export function decodePat(v: unknown, where: string, Err: ErrorCtor): PatRecord {
  const f = new Fields(v, where, Err);
  return {
    id: f.str("id"),
    userId: f.str("userId"),
    name: f.str("name"),
    description: f.str("description"),
    scopes: f.list("scopes").map((s, i) => decodeScope(s, `${where}.scopes[${i}]`, Err)),
    secretHash: f.str("secretHash"),
    prevSecretHash: f.strOrNull("prevSecretHash"),
    prevSecretExpiresAt: f.intOrNull("prevSecretExpiresAt"),
    issuedAt: f.int("issuedAt"),
    expiresAt: f.int("expiresAt"),
    updatedAt: f.int("updatedAt"),
    lastUsedAt: f.intOrNull("lastUsedAt"),
    revoked: f.bool("revoked"),
    revokedAt: f.intOrNull("revokedAt"),
    version: f.int("version"),
    ...f.patLimits("limits"),
  };
}

export function decodeDomain(v: unknown, where: string, Err: ErrorCtor): Domain {
  const f = new Fields(v, where, Err);
  return { id: f.str("id"), name: f.str("name"), upstream: f.strOrNull("upstream"), createdAt: f.int("createdAt") };
}

export function decodeMembership(v: unknown, where: string, Err: ErrorCtor): Membership {
  const f = new Fields(v, where, Err);
  return { domainId: f.str("domainId"), userId: f.str("userId"), roles: f.strs("roles") };
}

export function decodeRole(v: unknown, where: string, Err: ErrorCtor): Role {
  const f = new Fields(v, where, Err);
  return { name: f.str("name"), operations: f.strs("operations") };
}

export function decodeAdminKey(v: unknown, where: string, Err: ErrorCtor): AdminKeyRecord {
  const f = new Fields(v, where, Err);
  return { id: f.str("id"), hash: f.str("hash"), createdAt: f.int("createdAt") };
}

/** A caller's PAT as the embedded store will keep it (TypeError on a bad field), with `version` set. */
export function checkedPat(p: PatRecord, version: number): PatRecord {
  return decodePat({ ...p, version }, "PAT", TypeError);
}
