// @ts-check
/**
 * A PAT's own limits on the page: the collapsed "Limits" part of the Create and
 * Rotate forms, the words a token's row and page use for them, and the
 * current-use meters from GET me/limits. The API decides what is allowed (never
 * looser than policy); the page only checks that a value is a whole number.
 */
import { Field, html } from "./ui.js";

/** The API's fields (src/admin/pat-limits.ts), in the order the form shows them. */
export const LIMIT_FIELDS = [
  { key: "requests_per_minute", label: "Requests per minute", unit: "requests/min" },
  { key: "tokens_per_minute", label: "Tokens per minute", unit: "tokens/min" },
  { key: "tokens_per_day", label: "Tokens per day", unit: "tokens/day" },
  { key: "concurrent", label: "Concurrent requests", unit: "at once" },
];

// The API's own bound (MAX_LIMIT_VALUE); above it the API would refuse anyway.
const MAX = 1_000_000_000_000;
const number = new Intl.NumberFormat("en-US");

/** Whole numbers with thousands separators: 1,200,000. @param {number} n */
export function count(n) {
  return number.format(n);
}

/** The form's text per field, from a PAT's `limits` (or empty). @param {Record<string, number> | null | undefined} limits @returns {Record<string, string>} */
export function limitTexts(limits) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const f of LIMIT_FIELDS) out[f.key] = limits?.[f.key] === undefined ? "" : String(limits[f.key]);
  return out;
}

/**
 * What the form holds, as the API reads it: `value` null for "no limits of its
 * own"; `errors` per field for text that is not a whole number from 1.
 * @param {Record<string, string>} texts
 * @returns {{value: Record<string, number> | null, errors: Record<string, string>}}
 */
export function readLimits(texts) {
  /** @type {Record<string, number>} */
  const value = {};
  /** @type {Record<string, string>} */
  const errors = {};
  for (const f of LIMIT_FIELDS) {
    const t = (texts[f.key] ?? "").trim().replaceAll(/[,_\s]/g, "");
    if (t === "") continue;
    const n = /^\d+$/.test(t) ? Number(t) : NaN;
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX) errors[f.key] = `Enter a whole number from 1 to ${count(MAX)}, or leave it empty.`;
    else value[f.key] = n;
  }
  return { value: Object.keys(value).length === 0 ? null : value, errors };
}

/** The field an API refusal names (`limits.tokens_per_day`), or null when it is not one of the limits. @param {any} err */
export function limitErrorField(err) {
  const p = typeof err?.param === "string" ? err.param : "";
  const m = /^limits\.([a-z_]+)$/.exec(p);
  if (m !== null && LIMIT_FIELDS.some((f) => f.key === m[1])) return /** @type {string} */ (m[1]);
  return p === "limits" ? "limits" : null;
}

/**
 * An API refusal of a limit in words for the form: "looser than policy" says
 * what the policy allows; anything else is the API's own message.
 * @param {any} err @param {string} field
 */
export function limitRefusalText(err, field) {
  const m = /would be looser than policy "([^"]+)" \((\d+)\)/.exec(String(err?.message ?? ""));
  const f = LIMIT_FIELDS.find((x) => x.key === field);
  if (m === null || f === undefined) return String(err?.message ?? "Refused.");
  return `At most ${count(Number(m[2]))}: the gateway's policy “${m[1]}” allows ${count(Number(m[2]))} ${dimensionWords(f.key)}, and a token's own limits can only be tighter.`;
}

/** "30 requests/min · 100,000 tokens/day", or null for none. @param {Record<string, number> | null | undefined} limits */
export function limitsWords(limits) {
  if (limits === null || limits === undefined) return null;
  const parts = LIMIT_FIELDS.filter((f) => limits[f.key] !== undefined).map((f) => `${count(limits[f.key])} ${f.unit}`);
  return parts.length === 0 ? null : parts.join(" · ");
}

/**
 * The collapsed "Limits" part of a form. `open` is the caller's, so a refusal
 * from the API can open it to show its error.
 * @param {{id: string, texts: Record<string, string>, errors: Record<string, string | undefined>, open: boolean, onOpen: (open: boolean) => void, onChange: (texts: Record<string, string>) => void, lede?: any}} props
 */
export function LimitsFields({ id, texts, errors, open, onOpen, onChange, lede }) {
  const set = readLimits(texts).value;
  const words = limitsWords(set);
  const anyError = LIMIT_FIELDS.some((f) => errors[f.key]) || Boolean(errors.limits);
  return html`<details class=${anyError ? "limits has-error" : "limits"} open=${open} onToggle=${(/** @type {any} */ e) => onOpen(e.currentTarget.open)}>
    <summary>
      <span class="limits-title">Limits</span> <span class="muted">(optional)</span>
      <span class="limits-now muted small">${words ?? "none of its own: the gateway's policies apply"}</span>
    </summary>
    <div class="limits-body">
      <p class="hint">${lede ?? "Tighter limits for this token alone, on top of the gateway's policies. They can only be tighter: a value looser than a policy is refused."}</p>
      <div class="limits-grid">
        ${LIMIT_FIELDS.map((f) => html`<${Field} id=${`${id}-${f.key}`} label=${f.label} error=${errors[f.key] ?? null}>
          <input id=${`${id}-${f.key}`} inputmode="numeric" autocomplete="off" placeholder="No limit" value=${texts[f.key] ?? ""}
            aria-invalid=${errors[f.key] ? "true" : "false"} aria-describedby=${`${id}-${f.key}-error`}
            onInput=${(/** @type {any} */ e) => onChange({ ...texts, [f.key]: e.currentTarget.value })} />
        </${Field}>`)}
      </div>
      <p class="error" role=${errors.limits ? "alert" : undefined}>${errors.limits ?? ""}</p>
    </div>
  </details>`;
}

const DIMENSION_WORDS = {
  requests_per_minute: "requests per minute",
  tokens_per_minute: "tokens per minute",
  tokens_per_day: "tokens per day",
  concurrent: "concurrent requests",
};

/** @param {string} d */
export function dimensionWords(d) {
  return /** @type {Record<string, string>} */ (DIMENSION_WORDS)[d] ?? d.replaceAll("_", " ");
}

/**
 * A used-of-limit meter: an SVG bar (the CSP allows no inline styles) and the numbers.
 * @param {{used: number, limit: number, label: string}} props
 */
export function Meter({ used, limit, label }) {
  const share = limit > 0 ? Math.min(1, used / limit) : 0;
  const tone = share >= 0.9 ? "meter-high" : share >= 0.6 ? "meter-mid" : "meter-low";
  return html`<span class="meter">
    <svg class="meter-bar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label=${`${label}: ${count(used)} of ${count(limit)} used`}>
      <rect class="meter-track" x="0" y="0" width="100" height="8" rx="4" />
      <rect class=${`meter-fill ${tone}`} x="0" y="0" width=${(share * 100).toFixed(2)} height="8" rx="4" />
    </svg>
    <span class="meter-text">${count(used)} / ${count(limit)}</span>
  </span>`;
}
