/**
 * The web page's sessions: an opaque random id in a cookie, the record in a
 * SessionStore under the id's HMAC-SHA256 with a key derived from the pepper.
 * So a store dump holds no usable cookie, and write access to the store alone
 * cannot plant a session (its row id could not be computed without the
 * pepper, which lives in the config or beside the database, not in it).
 * Idle and absolute lifetimes; a fresh id at every sign-in; sign-out deletes
 * the record, so the old cookie is dead everywhere at once. A session whose
 * grant has gone (`stillValid`: its admin key removed, the operator claim
 * changed) ends at its next use.
 *
 * Cookie-authenticated unsafe requests must come from the page's own origin
 * (Sec-Fetch-Site, else Origin): SameSite is the first line, this the second.
 */
import { createHmac, createSecretKey, randomBytes, type KeyObject } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { overTls, requestHost } from "../http/server.ts";
import type { UiSettings } from "../config/ui.ts";
import type { AuthResult, Caller, CookieAuth } from "../admin/auth.ts";
import { deny } from "../admin/reply.ts";
import type { SessionStore } from "../store/sessions.ts";

/** What a session holds: who, how they signed in, and its clock. */
export interface SessionRecord {
  readonly caller: Caller;
  /** `oidc` or `admin_key`. */
  readonly via: "oidc" | "admin_key";
  /** A name to show (the ID token's name or email); never used for decisions. */
  readonly display: string;
  /** An operator by OIDC claim: the rule (`claim=value`) that made them one, re-checked on use; else null. */
  readonly grant: string | null;
  readonly createdAt: number;
  readonly seenAt: number;
  readonly expiresAt: number;
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/;

/** Cookie names: `__Host-` (Secure, Path=/, no Domain) whenever the browser sees a secure origin. */
const SECURE_NAMES = { session: "__Host-patgate_session", login: "__Host-patgate_login" } as const;
// Plain http to a host that is not loopback: browsers refuse Secure cookies there.
const PLAIN_NAMES = { session: "patgate_session", login: "patgate_login" } as const;

export type CookieKind = keyof typeof SECURE_NAMES;

/** Whether a session's grant still holds (its admin key, its operator claim rule); checked on every use. */
export type SessionCheck = (rec: SessionRecord) => Promise<boolean>;

/** The page's sessions and cookies; also the management API's cookie credential. */
export class UiSessions implements CookieAuth {
  readonly #store: SessionStore;
  readonly #ui: UiSettings;
  readonly #idKey: KeyObject;
  readonly #stillValid: SessionCheck;
  readonly #now: () => number;

  /** `pepper` keys the store ids (see above). */
  constructor(store: SessionStore, ui: UiSettings, pepper: Buffer, stillValid: SessionCheck = () => Promise.resolve(true), now: () => number = Date.now) {
    this.#store = store;
    this.#ui = ui;
    // A key of its own (not the pepper itself): these hashes never coincide with a PAT's.
    this.#idKey = createSecretKey(createHmac("sha256", pepper).update("patgate web session ids, v1").digest());
    this.#stillValid = stillValid;
    this.#now = now;
  }

  /** The store id of a cookie value: its kind and keyed hash, so the store never holds a usable cookie and kinds never mix. */
  storeKey(kind: CookieKind, value: string): string {
    return `${kind}.${createHmac("sha256", this.#idKey).update(value).digest("base64url")}`;
  }

  get store(): SessionStore {
    return this.#store;
  }

  /** True when cookies for this request can be Secure (TLS, an https public URL, or a loopback host). */
  secure(req: IncomingMessage): boolean {
    if (overTls(req)) return true;
    if (this.#ui.publicUrl !== null) return this.#ui.publicUrl.protocol === "https:";
    return LOOPBACK_HOST.test(requestHost(req) ?? "");
  }

  cookieName(req: IncomingMessage, kind: CookieKind): string {
    return (this.secure(req) ? SECURE_NAMES : PLAIN_NAMES)[kind];
  }

  /** The origin the page is served from: the public URL's, else the request's own. */
  origin(req: IncomingMessage): string {
    if (this.#ui.publicUrl !== null) return this.#ui.publicUrl.origin;
    return `${overTls(req) ? "https" : "http"}://${requestHost(req) ?? "localhost"}`;
  }

  /** For cookie-authenticated unsafe methods: the request comes from the page's own origin. */
  sameOrigin(req: IncomingMessage): boolean {
    if (SAFE.has(req.method ?? "")) return true;
    const site = req.headers["sec-fetch-site"];
    if (typeof site === "string") return site === "same-origin";
    return req.headers.origin === this.origin(req);
  }

  /** The raw cookie value of `kind`, if well-formed. */
  read(req: IncomingMessage, kind: CookieKind): string | null {
    const header = req.headers.cookie;
    if (header === undefined) return null;
    const name = this.cookieName(req, kind);
    let found: string | null = null;
    for (const part of header.split(";")) {
      const eq = part.indexOf("=");
      if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
      // Two cookies of one name (one tossed in by a sibling host): trust neither.
      if (found !== null) return null;
      found = part.slice(eq + 1).trim();
    }
    return found !== null && COOKIE_VALUE.test(found) ? found : null;
  }

  /** `Set-Cookie` for a new value (ttl in ms) or, with value null, one that deletes it. */
  setCookie(res: ServerResponse, req: IncomingMessage, kind: CookieKind, value: string | null, ttlMs = 0): void {
    const secure = this.secure(req);
    const attrs = [`${this.cookieName(req, kind)}=${value ?? ""}`, "Path=/", "HttpOnly", `SameSite=${kind === "session" ? "Strict" : "Lax"}`];
    if (secure) attrs.push("Secure");
    attrs.push(value === null ? "Max-Age=0" : `Max-Age=${Math.floor(ttlMs / 1000)}`);
    const prior = res.getHeader("set-cookie");
    const list = Array.isArray(prior) ? prior : typeof prior === "string" ? [prior] : [];
    res.setHeader("set-cookie", [...list, attrs.join("; ")]);
  }

  /** Starts a session for `caller` (a fresh id: any session the browser had is deleted first). */
  async signIn(req: IncomingMessage, res: ServerResponse, caller: Caller, via: SessionRecord["via"], display: string, grant: string | null = null): Promise<void> {
    await this.signOut(req, res);
    const now = this.#now();
    const value = randomBytes(32).toString("base64url");
    const rec: SessionRecord = { caller, via, display, grant, createdAt: now, seenAt: now, expiresAt: now + this.#ui.sessionMaxMs };
    await this.#store.put(this.storeKey("session", value), JSON.stringify(rec), this.#ui.sessionIdleMs);
    this.setCookie(res, req, "session", value, this.#ui.sessionMaxMs);
  }

  /** Deletes the browser's session (if any) and its cookie. */
  async signOut(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const value = this.read(req, "session");
    if (value === null) return false;
    this.setCookie(res, req, "session", null);
    return this.#store.delete(this.storeKey("session", value));
  }

  /** The live session of this request, extending its idle lifetime; null when there is none. */
  async current(req: IncomingMessage): Promise<SessionRecord | null> {
    const value = this.read(req, "session");
    if (value === null) return null;
    const key = this.storeKey("session", value);
    const text = await this.#store.get(key);
    if (text === null) return null;
    const rec = JSON.parse(text) as SessionRecord;
    if (typeof rec.caller !== "object" || rec.caller === null) return null;
    const now = this.#now();
    if (now >= rec.expiresAt || now - rec.seenAt >= this.#ui.sessionIdleMs || !(await this.#stillValid(rec))) {
      await this.#store.delete(key);
      return null;
    }
    // Written back at most every minute (or quarter idle lifetime), not on every request.
    if (now - rec.seenAt >= Math.min(60_000, this.#ui.sessionIdleMs / 4)) {
      const next: SessionRecord = { ...rec, seenAt: now };
      await this.#store.put(key, JSON.stringify(next), Math.min(this.#ui.sessionIdleMs, rec.expiresAt - now));
      return next;
    }
    return rec;
  }

  /** The management API's cookie credential: null when the request carries no session cookie at all. */
  async authenticate(req: IncomingMessage): Promise<AuthResult | null> {
    if (this.read(req, "session") === null) return null;
    if (!this.sameOrigin(req)) return deny("cross_origin_refused");
    const rec = await this.current(req);
    if (rec === null) return deny("session_invalid");
    return { ok: true, caller: rec.caller };
  }
}
