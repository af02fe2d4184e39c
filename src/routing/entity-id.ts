/** What an entity lookup yields, and the one check every entity id passes. */
import type { ErrorCode } from "../errors.ts";
import { looksLikePat } from "../tokens/format.ts";

/** The catalogue codes an entity lookup can fail with. */
export type EntityErrorCode = Extract<
  ErrorCode,
  "bad_json" | "bad_multipart" | "entity_missing" | "entity_ambiguous" | "entity_invalid"
>;

/** The entity id, or why the request does not name exactly one valid entity. */
export type EntityResult =
  | { readonly ok: true; readonly id: string }
  | { readonly ok: false; readonly code: EntityErrorCode; readonly message: string };

/** Longest entity id accepted, in UTF-16 code units. */
export const MAX_ENTITY_ID_LENGTH = 256;

/** A refusal with its catalogue code. */
export function fail(code: EntityErrorCode, message: string): EntityResult {
  return { ok: false, code, message };
}

/** Check that a value is usable as an entity id: a non-empty, well-formed string of at most 256 chars without control characters. */
export function validateEntityId(value: unknown, what: string): EntityResult {
  if (typeof value !== "string") return fail("entity_invalid", `${what} must be a string.`);
  if (value.length === 0) return fail("entity_invalid", `${what} must not be empty.`);
  if (value.length > MAX_ENTITY_ID_LENGTH) return fail("entity_invalid", `${what} is longer than ${MAX_ENTITY_ID_LENGTH} characters.`);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return fail("entity_invalid", `${what} contains a control character.`);
  }
  // A lone surrogate survives JSON.parse but is not a name any upstream stores.
  if (!value.isWellFormed()) return fail("entity_invalid", `${what} is not well-formed Unicode.`);
  // A token pasted as a model id would be forwarded and logged: no entity is named like one.
  if (looksLikePat(value)) return fail("entity_invalid", `${what} looks like a token; send tokens only in the Authorization header (and revoke this one).`);
  return { ok: true, id: value };
}

