/**
 * A PAT's own limits in the management API (`limits` on create and rotate):
 * whole numbers per dimension, each no looser than what policy already allows
 * every PAT (src/limits/policies.ts patCeiling), since a PAT's limits only
 * ever add to the policies.
 */
import type { LimitSettings } from "../config/limits.ts";
import { MAX_LIMIT_VALUE } from "../config/limits.ts";
import { patCeiling } from "../limits/policies.ts";
import type { PatLimits } from "../store/types.ts";
import { deny, type Result } from "./reply.ts";

const FIELDS = [
  ["requests_per_minute", "requestsPerMinute"],
  ["tokens_per_minute", "tokensPerMinute"],
  ["tokens_per_day", "tokensPerDay"],
  ["concurrent", "concurrent"],
] as const;

/** The limits in a request body's `limits` field: undefined for none (absent, null or `{}`). */
export function patLimitsField(v: unknown, settings: LimitSettings): Result<PatLimits | undefined> {
  if (v === undefined || v === null) return { ok: true, value: undefined };
  if (typeof v !== "object" || Array.isArray(v)) return deny("invalid_field", `The field "limits" must be an object with any of ${FIELDS.map(([k]) => k).join(", ")}.`, "limits");
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!FIELDS.some(([name]) => name === k)) return deny("invalid_field", `Unknown field "limits.${k}" (known: ${FIELDS.map(([name]) => name).join(", ")}).`, `limits.${k}`);
  }
  const ceiling = patCeiling(settings);
  const out: { -readonly [K in keyof PatLimits]: number } = {};
  for (const [name, key] of FIELDS) {
    const x = o[name];
    if (x === undefined || x === null) continue;
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 1 || x > MAX_LIMIT_VALUE) return deny("invalid_field", `limits.${name} must be a whole number from 1 to ${MAX_LIMIT_VALUE}.`, `limits.${name}`);
    const c = ceiling[key];
    if (c !== null && x > c.value) return deny("invalid_field", `limits.${name} (${x}) would be looser than policy "${c.policy}" (${c.value}); a PAT's own limits can only be tighter.`, `limits.${name}`);
    out[key] = x;
  }
  return { ok: true, value: Object.keys(out).length === 0 ? undefined : Object.freeze(out) };
}

/** The limits as the API shows them; null for none. */
export function patLimitsView(l: PatLimits | undefined): Record<string, number> | null {
  if (l === undefined) return null;
  const out: Record<string, number> = {};
  for (const [name, key] of FIELDS) if (l[key] !== undefined) out[name] = l[key];
  return out;
}
