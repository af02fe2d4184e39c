/**
 * The web page at /ui/ (SPEC §9): its files, sign-in and sign-out, and the
 * sessions the management API accepts as a credential. The page itself only
 * calls the management API (`../pats`, `../me`…), like the CLI does.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Settings } from "../config/config.ts";
import type { AdminApi } from "../admin/api.ts";
import { readJsonBody, sendDenial } from "../admin/http.ts";
import { deny, type Denial } from "../admin/reply.ts";
import { AdminKeys } from "../admin/keys.ts";
import { EmbeddedStore } from "../store/embedded.ts";
import type { RedisStore } from "../store/redis.ts";
import type { SessionStore } from "../store/sessions.ts";
import { EmbeddedSessionStore } from "../store/sessions-embedded.ts";
import { RedisSessionStore } from "../store/sessions-redis.ts";
import type { Store } from "../store/types.ts";
import { OidcLogin, type LoginOutcome } from "./login.ts";
import { UiSessions, type SessionCheck } from "./sessions.ts";
import { SECURITY_HEADERS, loadAssets, type Asset } from "./static.ts";
import { SignInThrottle, clientAddress, trustedProxyList } from "./throttle.ts";

export interface Ui {
  /** True for the paths the page owns (`/ui`, `/ui/…`). */
  owns(url: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, requestId: string): void;
}

/** The sessions, kept where the store keeps its records: Redis beside it, or a table in the embedded database. */
export function uiSessions(settings: Settings, store: Store, pepper: Buffer): UiSessions | null {
  if (!settings.ui.enabled) return null;
  let backing: SessionStore;
  if (store instanceof EmbeddedStore) backing = new EmbeddedSessionStore(store);
  else if (store.kind === "redis") backing = new RedisSessionStore((store as RedisStore).redis, settings.store.keyPrefix);
  else throw new Error(`the web page keeps its sessions in the Redis or the embedded store, not in a "${store.kind}" store`);
  return new UiSessions(backing, settings.ui, pepper, grantCheck(settings, store));
}

/**
 * A session lasts only while what made it holds: an admin key still in force
 * (in the config, or the store's when none is configured), an operator claim
 * rule unchanged. A user's session needs nothing more: their rights are read
 * per request.
 */
function grantCheck(settings: Settings, store: Store): SessionCheck {
  const keys = new AdminKeys(settings.auth.adminKeyHashes, store);
  const rule = settings.auth.oidc?.operator?.describe ?? null;
  return async (rec) => {
    const c = rec.caller;
    if (c.kind === "user") return true;
    if (c.keyId !== null) return keys.holds(c.keyId);
    return rule !== null && rec.grant === rule;
  };
}

/** Builds the page's handler once: assets read, sign-in configured. */
export function createUi(settings: Settings, sessions: UiSessions, admin: Pick<AdminApi, "authenticate">, log: Logger): Ui {
  const assets = loadAssets();
  const login = settings.ui.login === null ? null : new OidcLogin(settings.ui.login, settings.ui, settings.auth.oidc?.operator ?? null, sessions, log);
  const throttle = new SignInThrottle(settings.ui.signInLimit);
  const proxies = trustedProxyList(settings.ui.trustedProxies);

  const send = (res: ServerResponse, status: number, headers: Record<string, string>, body?: Buffer | string): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, ...headers });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    send(res, status, { "content-type": "application/json", "cache-control": "no-store", "content-length": String(Buffer.byteLength(text)) }, text);
  };
  const refuse = (res: ServerResponse, requestId: string, d: Denial): void => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    sendDenial(res, requestId, d);
  };
  const serveAsset = (req: IncomingMessage, res: ServerResponse, a: Asset, html: boolean): void => {
    // The page is no-store (it decides what the browser sees next); files revalidate by ETag.
    const headers: Record<string, string> = { "content-type": a.type, "cache-control": html ? "no-store" : "no-cache", etag: a.etag };
    if (!html && req.headers["if-none-match"] === a.etag) return send(res, 304, headers);
    send(res, 200, { ...headers, "content-length": String(a.body.length) }, req.method === "HEAD" ? undefined : a.body);
  };
  // After /ui/auth/…: back to the page, with what went wrong in the query (never a secret).
  const backToPage = (res: ServerResponse, r: LoginOutcome): void => {
    if (res.headersSent) return;
    send(res, 303, { location: r.ok ? "../" : `../?login_error=${r.code}`, "cache-control": "no-store" });
  };

  async function route(req: IncomingMessage, res: ServerResponse, requestId: string, path: string, query: string): Promise<void> {
    const method = req.method ?? "GET";
    const read = method === "GET" || method === "HEAD";
    if (path === "/ui") return send(res, 308, { location: "ui/" });
    if (read && path === "/ui/") return serveAsset(req, res, assets.get("index.html") as Asset, true);
    if (read && path.startsWith("/ui/") && !path.startsWith("/ui/auth/")) {
      const a = assets.get(path.slice("/ui/".length));
      if (a !== undefined && path !== "/ui/index.html") return serveAsset(req, res, a, false);
      return refuse(res, requestId, deny("no_route"));
    }
    switch (`${method} ${path}`) {
      case "GET /ui/auth/session": {
        const s = await sessions.current(req);
        return json(res, 200, {
          signed_in: s !== null,
          oidc: login !== null,
          ...(s === null ? {} : { kind: s.caller.kind, user_id: s.caller.kind === "user" ? s.caller.userId : null, display: s.display, via: s.via, expires_at: new Date(s.expiresAt).toISOString() }),
        });
      }
      case "GET /ui/auth/login":
        if (login === null) return backToPage(res, { ok: false, code: "login_failed", detail: "" });
        return backToPage(res, await login.start(req, res));
      case "GET /ui/auth/callback":
        if (login === null) return backToPage(res, { ok: false, code: "login_failed", detail: "" });
        return backToPage(res, await login.callback(req, res, query));
      case "POST /ui/auth/admin-key":
        return adminKey(req, res, requestId);
      case "POST /ui/auth/logout": {
        if (!sessions.sameOrigin(req)) return refuse(res, requestId, deny("cross_origin_refused"));
        await sessions.signOut(req, res);
        return send(res, 204, { "cache-control": "no-store" });
      }
    }
    return refuse(res, requestId, path.startsWith("/ui/auth/") ? deny("method_not_allowed") : deny("no_route"));
  }

  /**
   * The operator's admin key, exchanged once for a session; the browser keeps
   * only the cookie. Failed attempts are throttled (throttle.ts) and audited,
   * never with what was typed.
   */
  async function adminKey(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    if (!sessions.sameOrigin(req)) return refuse(res, requestId, deny("cross_origin_refused"));
    const body = await readJsonBody(req);
    if (!body.ok) return refuse(res, requestId, body);
    const key = body.body.key;
    if (typeof key !== "string" || key.trim() === "") return refuse(res, requestId, deny("invalid_field", 'Send {"key": "<admin key>"}.', "key"));
    const client = clientAddress(req, proxies);
    const turn = throttle.admit(client);
    if (!turn.ok) {
      const seconds = Math.ceil(turn.retryAfterMs / 1000);
      if (turn.first) log.warn({ audit: "ui.sign_in_throttled", req_id: requestId, client, scope: turn.scope, retry_after_s: seconds }, "audit");
      res.setHeader("retry-after", String(seconds));
      const whose = turn.scope === "address" ? "from your address" : "on this gateway";
      return refuse(res, requestId, deny("sign_in_throttled", `Too many failed sign-ins ${whose}. Try again in ${waitWords(seconds)}.`, "key"));
    }
    let outcome: "success" | "failure" | "error" = "error";
    try {
      const who = await admin.authenticate(`Bearer ${key.trim()}`);
      const operator = who.ok && who.caller.kind === "operator" && who.caller.keyId !== null ? { keyId: who.caller.keyId } : null;
      if (operator === null) {
        outcome = "failure";
        const pat = !who.ok && who.error === "pat_not_accepted";
        log.warn({ audit: "ui.sign_in_failed", req_id: requestId, client, via: "admin_key", reason: pat ? "pat" : who.ok ? "oidc_token" : "not_an_admin_key" }, "audit");
        if (pat) return refuse(res, requestId, deny("pat_not_accepted", "That is a PAT: PATs only work on /proxy/…. Operators sign in with an admin key.", "key"));
        if (who.ok) return refuse(res, requestId, deny("login_failed", "Only admin keys sign in here; users sign in with their identity provider.", "key"));
        return refuse(res, requestId, deny("login_failed", "That is not an admin key of this gateway.", "key"));
      }
      outcome = "success";
      await sessions.signIn(req, res, { kind: "operator", keyId: operator.keyId }, "admin_key", `Operator (key ${operator.keyId.slice(0, 8)})`);
      log.info({ audit: "ui.sign_in", req_id: requestId, actor: `admin:${operator.keyId}`, via: "admin_key", client }, "audit");
      send(res, 204, { "cache-control": "no-store" });
    } finally {
      turn.settle(outcome);
    }
  }

  return {
    owns: (url) => url === "/ui" || url.startsWith("/ui/") || url.startsWith("/ui?"),
    handle(req, res, requestId) {
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      const path = q < 0 ? url : url.slice(0, q);
      route(req, res, requestId, path, q < 0 ? "" : url.slice(q)).catch((err: unknown) => {
        log.error({ err, req_id: requestId }, "web page failure");
        if (!res.headersSent) refuse(res, requestId, deny((err as Error).name === "StoreUnavailableError" ? "store_unavailable" : "internal_error"));
        else res.destroy();
      });
    },
  };
}

/** "12 seconds", "3 minutes": for the throttle's message. */
function waitWords(seconds: number): string {
  if (seconds < 120) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  return `${Math.ceil(seconds / 60)} minutes`;
}
