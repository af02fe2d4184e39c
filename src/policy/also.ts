/**
 * The route's `also` fields (routes.yaml `entity.also`): body fields that make
 * the upstream read, copy, fetch or proxy something besides the main entity,
 * such as Ollama create's `from` (read, or pulled when it is not local) or its
 * `files` (blobs by digest). Each one present is authorized as the operations
 * it really performs, or refused when no scope could name what it reaches.
 */
import type { ErrorCode } from "../errors.ts";
import { entityFromJson, jsonHasField } from "../routing/entity.ts";
import type { Route } from "../routing/table.ts";
import { formatNeed, type CompiledScopes, type Need } from "../scopes/scope.ts";

/** Why a request is refused, in the shape the pipeline's deny takes. */
export interface AlsoDenial {
  readonly code: ErrorCode;
  readonly message: string;
  readonly param: string;
  readonly scope?: string;
}

/** The first `also` field of `route` that `body` names and the token may not use, or null when all are allowed. */
export function alsoDenial(route: Route, body: Buffer, need: Need, held: ReadonlySet<string>, scopes: CompiledScopes): AlsoDenial | null {
  for (const also of route.also) {
    if (also.refuse !== null) {
      if (jsonHasField(body, also.field)) return { code: "field_refused", param: also.field, message: `The field "${also.field}" is not accepted through the gateway: ${also.refuse}` };
      continue;
    }
    const e = entityFromJson(body, also.field);
    if (!e.ok && e.code === "entity_missing") {
      // Absent, unless under another spelling that Go's encoding/json reads as the field (`FROM`).
      if (!jsonHasField(body, also.field)) continue;
      return { code: "entity_invalid", param: also.field, message: `${e.message} Spell "${also.field}" exactly so.` };
    }
    if (!e.ok) return { code: e.code, message: e.message, param: also.field };
    for (const operation of also.operations) {
      if (!held.has(operation)) return { code: "role_denied", param: also.field, message: `The token's user does not hold "${operation}" in domain "${need.domainId}" (needed for "${also.field}").` };
      const other = { ...need, entityId: e.id, operation };
      if (!scopes.grants(other)) {
        const scope = formatNeed(other);
        return { code: "insufficient_scope", param: also.field, scope, message: `The token lacks the scope "${scope}" in domain "${need.domainId}" (needed for "${also.field}").` };
      }
    }
  }
  return null;
}
