// @ts-check
/** Times in the browser's zone (exact UTC on hover), operation names in words, scope summaries. */

const DAY = 86_400_000;
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const abs = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

/** @param {string | number | Date} t */
export function utc(t) {
  return new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** "in 3 days", "2 hours ago", "just now". @param {string | number | Date} t @param {number} [now] */
export function relative(t, now = Date.now()) {
  const ms = new Date(t).getTime() - now;
  const a = Math.abs(ms);
  if (a < 45_000) return "just now";
  /** @type {Array<[number, Intl.RelativeTimeFormatUnit]>} */
  const units = [[365 * DAY, "year"], [30 * DAY, "month"], [7 * DAY, "week"], [DAY, "day"], [3_600_000, "hour"], [60_000, "minute"]];
  for (const [size, unit] of units) {
    if (a >= size || unit === "minute") return rtf.format(Math.round(ms / size), unit);
  }
  return "just now";
}

/** @param {string | number | Date} t */
export function local(t) {
  return abs.format(new Date(t));
}

/** @param {string | number | Date} t */
export function localDate(t) {
  return dateOnly.format(new Date(t));
}

/** The user's time zone name, for "times are shown in …". */
export function zone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** Words for the seed's operations; anything else is shown as its name with spaces. */
const OPERATIONS = {
  read: "Read",
  update: "Update",
  delete: "Delete",
  enable: "Enable",
  disable: "Disable",
  manage_role: "Manage role",
  add_role_users: "Add role users",
  remove_role_users: "Remove role users",
  view_role_users: "View role users",
  llm_create: "Create LLM config",
  llm_update: "Update LLM config",
  llm_read: "Read LLM info",
  llm_delete: "Delete LLM",
  llm_chat_completions: "Chat completions",
  llm_completions: "Completions",
  llm_embeddings: "Embeddings",
  llm_transcription: "Transcription",
  llm_translation: "Translation",
  llm_utility: "Utility (tokenize…)",
  llm_pooling: "Pooling",
  llm_classification: "Classification",
  llm_scoring: "Scoring",
  llm_rerank: "Rerank",
  llm_realtime: "Realtime sessions",
  audit_log_read: "Read audit log",
  audit_log_export: "Export audit log",
};

/** @param {string} op */
export function opLabel(op) {
  return /** @type {Record<string, string>} */ (OPERATIONS)[op] ?? op.replaceAll("_", " ");
}

/** @param {string} type */
export function typeLabel(type) {
  return { domains: "Domain", models: "Model", datasets: "Dataset" }[type] ?? type.replaceAll("_", " ");
}

/**
 * One scope in plain words: "Chat completions with model llama3 in demo".
 * @param {{domain_id: string, entity_type: string, entity_id: string, operation: string}} s
 */
export function scopeWords(s) {
  const what = s.entity_type === "domains" ? "anything in the domain" : s.entity_id === "*" ? `any ${typeLabel(s.entity_type).toLowerCase()}` : `${typeLabel(s.entity_type).toLowerCase()} ${s.entity_id}`;
  return `${opLabel(s.operation)} — ${what} in ${s.domain_id}`;
}

/** The compact form people type: `models:llama3:llm_chat_completions`. @param {{entity_type: string, entity_id: string, operation: string}} s */
export function scopeCode(s) {
  return `${s.entity_type}:${s.entity_id}:${s.operation}`;
}

const SOON_MS = 7 * DAY;

/**
 * What a person wants to know: active, expires soon (within 7 days), expired, revoked.
 * @param {{status: string, expires_at: string}} p @param {number} [now]
 */
export function displayStatus(p, now = Date.now()) {
  if (p.status === "active" && new Date(p.expires_at).getTime() - now < SOON_MS) return "expiring";
  return p.status;
}

export const STATUS_LABEL = { active: "Active", expiring: "Expires soon", expired: "Expired", revoked: "Revoked" };

/** A duration in ms as the API reads it ("30d", "12h"). @param {number} ms */
export function durationText(ms) {
  if (ms % DAY === 0) return `${ms / DAY}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  return `${Math.round(ms / 60_000)}m`;
}

/** "30 days", "1 year", "12 hours". @param {number} ms */
export function durationWords(ms) {
  if (ms % (365 * DAY) === 0) return ms === 365 * DAY ? "1 year" : `${ms / (365 * DAY)} years`;
  if (ms % DAY === 0) return ms === DAY ? "1 day" : `${ms / DAY} days`;
  const h = Math.round(ms / 3_600_000);
  return h === 1 ? "1 hour" : `${h} hours`;
}
