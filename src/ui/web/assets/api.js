// @ts-check
/**
 * The management API, called with the session cookie. Every URL is relative
 * to the page (/…/ui/), so the page works under any ingress path prefix.
 */

/** An API refusal, in the OpenAI error envelope the gateway uses. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {string | null} param
   */
  constructor(status, code, message, param) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

/** Called when the session has ended (401): the app shows the sign-in page. */
let onSignedOut = () => {};
/** @param {() => void} f */
export function whenSignedOut(f) {
  onSignedOut = f;
}

/**
 * @param {string} method
 * @param {string} path  relative to the gateway root, e.g. "pats?limit=100"
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {RequestInit} */
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" }, cache: "no-store" };
  if (body !== undefined) {
    init.headers = { accept: "application/json", "content-type": "application/json" };
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`../${path}`, init);
  } catch {
    throw new ApiError(0, "network", "The gateway did not answer. Check your connection and try again.", null);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  /** @type {any} */
  let data;
  try {
    data = text === "" ? null : JSON.parse(text);
  } catch {
    throw new ApiError(res.status, "bad_response", `The gateway answered ${res.status} without JSON.`, null);
  }
  if (!res.ok) {
    const e = data?.error ?? {};
    const err = new ApiError(res.status, e.code ?? "error", e.message ?? `Request failed (${res.status}).`, e.param ?? null);
    if (res.status === 401 && (e.code === "session_invalid" || e.code === "missing_credential")) onSignedOut();
    throw err;
  }
  return data;
}

/** Every page of a listing endpoint, concatenated (`key` names the array). */
export async function all(path, key) {
  const out = [];
  for (let offset = 0; ; ) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}offset=${offset}&limit=100`);
    out.push(...page[key]);
    offset += page[key].length;
    if (page[key].length === 0 || offset >= page.total) return out;
  }
}

/** Sign-in state of this browser: `{signed_in, oidc, kind?, user_id?, display?}`. */
export async function session() {
  const res = await fetch("auth/session", { credentials: "same-origin", cache: "no-store" });
  if (!res.ok) throw new ApiError(res.status, "session", "Could not read the sign-in state.", null);
  return res.json();
}

/** @param {string} key */
export async function signInWithKey(key) {
  const res = await fetch("auth/admin-key", { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" }, body: JSON.stringify({ key }) });
  if (res.status === 204) return;
  const data = await res.json().catch(() => ({}));
  const e = data?.error ?? {};
  throw new ApiError(res.status, e.code ?? "error", e.message ?? "Signing in failed.", e.param ?? "key");
}

export async function signOut() {
  await fetch("auth/logout", { method: "POST", credentials: "same-origin" });
}
