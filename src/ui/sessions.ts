/**
 * The web page's sessions: an opaque random id in a cookie, the record in a
 * SessionStore under the id's SHA-256 (a store dump holds no usable cookie).
 * Idle and absolute lifetimes; a fresh id at every sign-in; sign-out deletes
 * the record, so the old cookie is dead everywhere at once.
 *
 * Cookie-authenticated unsafe requests must come from the page's own origin
 * (Sec-Fetch-Site, else Origin): SameSite is the first line, this the second.
 */
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
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

/** The page's sessions and cookies; also the management API's cookie credential. */
export class UiSessions implements CookieAuth {
  readonly #store: SessionStore;
  readonly #ui: UiSettings;
  readonly #now: () => number;

  constructor(store: SessionStore, ui: UiSettings, now: () => number = Date.now) {
    this.#store = store;
    this.#ui = ui;
    this.#now = now;
  }

  get store(): SessionStore {
    return this.#store;
  }

  /** True when cookies for this request can be Secure (TLS, an https public URL, or a loopback host). */
  secure(req: IncomingMessage): boolean {
    if ((req.socket as TLSSocket).encrypted === true) return true;
    if (this.#ui.publicUrl !== null) return this.#ui.publicUrl.protocol === "https:";
    return LOOPBACK_HOST.test(req.headers.host ?? "");
  }

  cookieName(req: IncomingMessage, kind: CookieKind): string {
    return (this.secure(req) ? SECURE_NAMES : PLAIN_NAMES)[kind];
  }

  /** The origin the page is served from: the public URL's, else the request's own. */
  origin(req: IncomingMessage): string {
    if (this.#ui.publicUrl !== null) return this.#ui.publicUrl.origin;
    const tls = (req.socket as TLSSocket).encrypted === true;
    return `${tls ? "https" : "http"}://${req.headers.host ?? "localhost"}`;
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
  async signIn(req: IncomingMessage, res: ServerResponse, caller: Caller, via: SessionRecord["via"], display: string): Promise<void> {
    await this.signOut(req, res);
    const now = this.#now();
    const value = randomBytes(32).toString("base64url");
    const rec: SessionRecord = { caller, via, display, createdAt: now, seenAt: now, expiresAt: now + this.#ui.sessionMaxMs };
    await this.#store.put(storeKey("session", value), JSON.stringify(rec), this.#ui.sessionIdleMs);
    this.setCookie(res, req, "session", value, this.#ui.sessionMaxMs);
  }

  /** Deletes the browser's session (if any) and its cookie. */
  async signOut(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const value = this.read(req, "session");
    if (value === null) return false;
    this.setCookie(res, req, "session", null);
    return this.#store.delete(storeKey("session", value));
  }

  /** The live session of this request, extending its idle lifetime; null when there is none. */
  async current(req: IncomingMessage): Promise<SessionRecord | null> {
    const value = this.read(req, "session");
    if (value === null) return null;
    const key = storeKey("session", value);
    const text = await this.#store.get(key);
    if (text === null) return null;
    const rec = JSON.parse(text) as SessionRecord;
    if (typeof rec.caller !== "object" || rec.caller === null) return null;
    const now = this.#now();
    if (now >= rec.expiresAt || now - rec.seenAt >= this.#ui.sessionIdleMs) {
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

/** The store key of a cookie value: its kind and SHA-256, so the store never holds a usable cookie and kinds never mix. */
export function storeKey(kind: CookieKind, value: string): string {
  return `${kind}.${createHash("sha256").update(value).digest("base64url")}`;
}
