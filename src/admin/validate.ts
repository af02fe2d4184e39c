/**
 * Request fields of the management API: shapes, ids and scopes. Every check
 * returns a Denial naming the field (`param`) instead of throwing.
 */
import type { Catalog } from "../config/catalog.ts";
import { applies, validOperations } from "../config/catalog.ts";
import { DOMAINS, WILDCARD, type Scope } from "../scopes/scope.ts";
import { deny, type Denial, type Result } from "./reply.ts";

const USER_ID = /^[A-Za-z0-9._@:|+=~-]{1,256}$/;
const DOMAIN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ROLE_NAME = /^[a-z][a-z0-9_]{0,63}$/;
// C0 and C1 controls and DEL; descriptions may still hold tabs and newlines.
const CONTROL = /\p{Cc}/u;
const CONTROL_EXCEPT_WS = /[^\P{Cc}\t\n]/u;

export const MAX_NAME_LENGTH = 100;
export const MAX_DESCRIPTION_LENGTH = 1000;
export const MAX_SCOPES = 256;
export const MAX_ENTITY_ID_LENGTH = 256;

/** User ids as they appear in JWT claims and paths: no spaces, slashes or controls. */
export function isUserId(v: string): boolean {
  return USER_ID.test(v);
}

export function isDomainId(v: string): boolean {
  return DOMAIN_ID.test(v);
}

export function isRoleName(v: string): boolean {
  return ROLE_NAME.test(v);
}

const USER_ID_RULE = "1–256 of A–Z a–z 0–9 . _ @ : | + = ~ -";
const DOMAIN_ID_RULE = "1–128 of A–Z a–z 0–9 . _ -, starting with a letter or digit";

/** A body field reader that keeps the first problem; read every field, then check `problem`. */
export class BodyFields {
  #problem: Denial | null = null;
  readonly #body: Readonly<Record<string, unknown>>;

  constructor(body: Readonly<Record<string, unknown>>, allowed: readonly string[]) {
    this.#body = body;
    for (const k of Object.keys(body)) {
      if (!allowed.includes(k)) {
        const known = allowed.length === 0 ? "this request takes no fields" : `known fields: ${allowed.join(", ")}`;
        this.fail(deny("invalid_field", `Unknown field "${k}" (${known}).`, k));
        break;
      }
    }
  }

  get problem(): Denial | null {
    return this.#problem;
  }

  fail(d: Denial): void {
    this.#problem ??= d;
  }

  has(k: string): boolean {
    return this.#body[k] !== undefined;
  }

  raw(k: string): unknown {
    return this.#body[k];
  }

  /** A required (or, with `optional`, possibly absent) string; `null` only when `nullable`. */
  string(k: string, opts: { optional?: boolean; nullable?: boolean } = {}): string | null | undefined {
    const v = this.#body[k];
    if (v === undefined) {
      if (opts.optional !== true) this.fail(deny("invalid_field", `The field "${k}" is required.`, k));
      return undefined;
    }
    if (v === null && opts.nullable === true) return null;
    if (typeof v !== "string") {
      this.fail(deny("invalid_field", `The field "${k}" must be a string${opts.nullable === true ? " or null" : ""}.`, k));
      return undefined;
    }
    return v;
  }

  /** Takes a Result computed from a field: its value, or records its denial. */
  take<T>(r: Result<T>): T | undefined {
    if (r.ok) return r.value;
    this.fail(r);
    return undefined;
  }
}

/** A PAT name: trimmed, 1–100 characters, no control characters. */
export function patName(v: string, param = "name"): Result<string> {
  const name = v.trim();
  if (name === "") return deny("invalid_field", `The field "${param}" must not be empty.`, param);
  if (name.length > MAX_NAME_LENGTH) return deny("invalid_field", `The field "${param}" is longer than ${MAX_NAME_LENGTH} characters.`, param);
  if (CONTROL.test(name)) return deny("invalid_field", `The field "${param}" contains a control character.`, param);
  return { ok: true, value: name };
}

export function description(v: string, param = "description"): Result<string> {
  if (v.length > MAX_DESCRIPTION_LENGTH) return deny("invalid_field", `The field "${param}" is longer than ${MAX_DESCRIPTION_LENGTH} characters.`, param);
  if (CONTROL_EXCEPT_WS.test(v)) return deny("invalid_field", `The field "${param}" contains a control character.`, param);
  return { ok: true, value: v };
}

export function userId(v: string, param: string): Result<string> {
  return isUserId(v) ? { ok: true, value: v } : deny("invalid_field", `"${param}" is not a valid user id (${USER_ID_RULE}).`, param);
}

export function domainId(v: string, param: string): Result<string> {
  return isDomainId(v) ? { ok: true, value: v } : deny("invalid_field", `"${param}" is not a valid domain id (${DOMAIN_ID_RULE}).`, param);
}

/** A list of strings (roles, operations), deduplicated, order kept. */
export function stringList(v: unknown, param: string, opts: { min: number; max: number }): Result<string[]> {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) return deny("invalid_field", `The field "${param}" must be a list of strings.`, param);
  const list = [...new Set(v as string[])];
  if (list.length < opts.min) return deny("invalid_field", `The field "${param}" must list at least ${opts.min}.`, param);
  if (list.length > opts.max) return deny("invalid_field", `The field "${param}" lists more than ${opts.max}.`, param);
  return { ok: true, value: list };
}

const SCOPE_FIELDS = ["domain_id", "entity_type", "entity_id", "operation"] as const;

/**
 * `[{domain_id, entity_type, entity_id, operation}, …]` → scopes, checked against
 * the catalog (unless it is null: shape only): shape problems are 400, catalog
 * mismatches 422. Duplicates collapse.
 */
export function scopeList(v: unknown, catalog: Catalog | null, opts: { param: string; min: number }): Result<Scope[]> {
  const param = opts.param;
  if (!Array.isArray(v)) return deny("invalid_field", `The field "${param}" must be a list of scopes ({"domain_id","entity_type","entity_id","operation"}).`, param);
  if (v.length < opts.min) return deny("invalid_field", `The field "${param}" must hold at least ${opts.min} scope.`, param);
  if (v.length > MAX_SCOPES) return deny("invalid_field", `The field "${param}" holds more than ${MAX_SCOPES} scopes.`, param);
  const out: Scope[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < v.length; i++) {
    const r = scope(v[i], catalog, `${param}[${i}]`);
    if (!r.ok) return r;
    const key = JSON.stringify([r.value.domainId, r.value.entityType, r.value.entityId, r.value.operation]);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r.value);
  }
  return { ok: true, value: out };
}

function scope(v: unknown, catalog: Catalog | null, param: string): Result<Scope> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return deny("invalid_field", `${param} must be an object with domain_id, entity_type, entity_id and operation.`, param);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(SCOPE_FIELDS as readonly string[]).includes(k)) return deny("invalid_field", `${param} has an unknown field "${k}" (known: ${SCOPE_FIELDS.join(", ")}).`, `${param}.${k}`);
  }
  for (const k of SCOPE_FIELDS) {
    if (typeof o[k] !== "string" || o[k] === "") return deny("invalid_field", `${param}.${k} must be a non-empty string.`, `${param}.${k}`);
  }
  const s: Scope = { domainId: o.domain_id as string, entityType: o.entity_type as string, entityId: o.entity_id as string, operation: o.operation as string };
  const d = domainId(s.domainId, `${param}.domain_id`);
  if (!d.ok) return d;
  if (s.entityId.length > MAX_ENTITY_ID_LENGTH || CONTROL.test(s.entityId) || !s.entityId.isWellFormed()) {
    return deny("invalid_field", `${param}.entity_id must be "*" or an id of at most ${MAX_ENTITY_ID_LENGTH} characters without control characters.`, `${param}.entity_id`);
  }
  if (catalog === null) return { ok: true, value: s };
  if (!catalog.entityTypes.has(s.entityType)) {
    return deny("invalid_scope", `${param}: unknown entity type "${s.entityType}" (known: ${[...catalog.entityTypes.keys()].join(", ")}).`, `${param}.entity_type`);
  }
  if (!catalog.operations.has(s.operation)) {
    return deny("invalid_scope", `${param}: unknown operation "${s.operation}"; valid for "${s.entityType}": ${validOperations(catalog, s.entityType).join(", ")} (GET /catalog).`, `${param}.operation`);
  }
  if (!applies(catalog, s.entityType, s.operation)) {
    return deny("invalid_scope", `${param}: the operation "${s.operation}" does not apply to "${s.entityType}"; valid for it: ${validOperations(catalog, s.entityType).join(", ")} (GET /catalog).`, `${param}.operation`);
  }
  // A domain-level grant only ever matches its own domain: anything else would be a scope that grants nothing.
  if (s.entityType === DOMAINS && s.entityId !== WILDCARD && s.entityId !== s.domainId) {
    return deny("invalid_scope", `${param}: a "domains" scope names its own domain ("${s.domainId}") or "*" as entity_id.`, `${param}.entity_id`);
  }
  return { ok: true, value: s };
}
