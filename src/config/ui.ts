/**
 * The `ui:` section (the web page at /ui/) and the OIDC client keys it adds to
 * `auth.oidc`. Parsed here so config.ts only calls it.
 */
import { isIP } from "node:net";
import type { Checker } from "./config.ts";

/** Signing users in through the OIDC issuer (authorization code + PKCE). */
export interface UiLoginSettings {
  readonly issuer: string;
  readonly clientId: string;
  /** Empty: a public client (PKCE alone). */
  readonly clientSecret: string;
  /** The ID token claim that holds the user id (auth.oidc.user_claim). */
  readonly userClaim: string;
  /** The scopes a sign-in asks for (auth.oidc.login_scopes), space-separated. */
  readonly scopes: string;
}

/** How many failed admin-key sign-ins the page takes (token buckets that refill over `windowMs`). */
export interface SignInLimit {
  readonly perAddress: number;
  readonly global: number;
  readonly windowMs: number;
}

export interface UiSettings {
  readonly enabled: boolean;
  /**
   * Where browsers reach the gateway, with any ingress path prefix
   * (`https://gw.example/a/b`); null: `http(s)://<Host>` as the request came.
   * Only the OIDC redirect URI and the CSRF origin check use it: every URL the
   * page itself uses is relative.
   */
  readonly publicUrl: URL | null;
  readonly sessionIdleMs: number;
  readonly sessionMaxMs: number;
  /** How long a domain's upstream model list is reused by the scope picker. */
  readonly modelsCacheMs: number;
  /** Entity ids the scope picker offers: entity type → domain id (`*`: every domain) → ids. */
  readonly entities: ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;
  /** null: no OIDC sign-in (operators still sign in with an admin key). */
  readonly login: UiLoginSettings | null;
  readonly signInLimit: SignInLimit;
  /** Proxies (addresses or CIDR blocks) whose X-Forwarded-For names the client, for the sign-in limit. */
  readonly trustedProxies: readonly string[];
}

type Obj = Record<string, unknown>;

/** Validates `ui:` and `auth.oidc.client_id/client_secret`; problems go to the checker. */
export function parseUi(c: Checker, raw: unknown, oidcRaw: unknown, entityTypes: ReadonlySet<string>): UiSettings {
  const u = c.obj(raw, "ui", ["enabled", "public_url", "session_idle", "session_max", "models_cache", "entities", "sign_in_limit", "trusted_proxies"]);
  const text = c.str(u.public_url, "ui.public_url", "").trim().replace(/\/+$/, "");
  let publicUrl: URL | null = null;
  if (text !== "") {
    try {
      publicUrl = new URL(text);
      if ((publicUrl.protocol !== "http:" && publicUrl.protocol !== "https:") || publicUrl.search !== "" || publicUrl.hash !== "" || publicUrl.username !== "") {
        c.fail("ui.public_url", "must be an http(s) URL without query, fragment or credentials, e.g. https://gw.example/a/b");
      }
    } catch {
      c.fail("ui.public_url", `"${text}" is not a URL`);
    }
  }
  const sessionIdleMs = c.duration(u.session_idle, "ui.session_idle", "30m");
  const sessionMaxMs = c.duration(u.session_max, "ui.session_max", "12h");
  if (sessionIdleMs > sessionMaxMs) c.fail("ui.session_idle", "must not be longer than ui.session_max");
  const entities = new Map<string, Map<string, readonly string[]>>();
  const et = c.obj(u.entities, "ui.entities", Object.keys(u.entities ?? {}));
  for (const [type, byDomain] of Object.entries(et)) {
    const typeAt = `ui.entities.${type}`;
    if (!entityTypes.has(type)) c.fail(typeAt, `is not an entity type of catalog.entity_types (known: ${[...entityTypes].join(", ")})`);
    const doms = c.obj(byDomain, typeAt, Object.keys(byDomain ?? {}));
    const m = new Map<string, readonly string[]>();
    for (const [dom, ids] of Object.entries(doms)) m.set(dom, Object.freeze([...new Set(c.list(ids, `${typeAt}.${dom}`))]));
    entities.set(type, m);
  }

  const o = (typeof oidcRaw === "object" && oidcRaw !== null ? oidcRaw : {}) as Obj;
  const issuer = c.str(o.issuer, "auth.oidc.issuer", "").trim();
  const clientId = c.str(o.client_id, "auth.oidc.client_id", "").trim();
  const clientSecret = c.str(o.client_secret, "auth.oidc.client_secret", "").trim();
  if (clientSecret !== "" && clientId === "") c.fail("auth.oidc.client_id", "is required with auth.oidc.client_secret");
  if (clientId !== "" && issuer === "") c.fail("auth.oidc.issuer", "is required with auth.oidc.client_id (the web page signs users in there)");
  const scopes = loginScopes(c, o.login_scopes);
  const login = clientId === "" || issuer === "" ? null : { issuer, clientId, clientSecret, userClaim: c.str(o.user_claim, "auth.oidc.user_claim", "sub").trim() || "sub", scopes };
  const sl = c.obj(u.sign_in_limit, "ui.sign_in_limit", ["per_address", "global", "window"]);
  const signInLimit = {
    perAddress: c.int(sl.per_address, "ui.sign_in_limit.per_address", 5, 1, 10_000),
    global: c.int(sl.global, "ui.sign_in_limit.global", 100, 1, 1_000_000),
    windowMs: c.duration(sl.window, "ui.sign_in_limit.window", "5m"),
  };
  if (signInLimit.global < signInLimit.perAddress) c.fail("ui.sign_in_limit.global", "must be at least ui.sign_in_limit.per_address");
  return {
    enabled: c.bool(u.enabled, "ui.enabled", true),
    publicUrl,
    sessionIdleMs,
    sessionMaxMs,
    modelsCacheMs: c.duration(u.models_cache, "ui.models_cache", "30s"),
    entities,
    login,
    signInLimit,
    trustedProxies: trustedProxies(c, u.trusted_proxies),
  };
}

/** A list, or one string split on commas and whitespace (what `${VAR}` gives). */
function words(c: Checker, v: unknown, at: string): string[] {
  if (typeof v === "string") return v.split(/[\s,]+/).filter((x) => x !== "");
  return c.list(v, at).map((x) => x.trim()).filter((x) => x !== "");
}

function loginScopes(c: Checker, v: unknown): string {
  const list = v === undefined || v === null || v === "" ? ["openid", "profile", "email"] : words(c, v, "auth.oidc.login_scopes");
  if (!list.includes("openid")) c.fail("auth.oidc.login_scopes", "must include openid (the sign-in needs an ID token)");
  for (const s of list) if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)) c.fail("auth.oidc.login_scopes", `"${s}" is not a scope name`);
  return [...new Set(list)].join(" ");
}

function trustedProxies(c: Checker, v: unknown): string[] {
  const list = words(c, v, "ui.trusted_proxies");
  for (const entry of list) {
    const [addr = "", bits, ...rest] = entry.split("/");
    const family = isIP(addr);
    const max = family === 6 ? 128 : 32;
    const ok = family !== 0 && rest.length === 0 && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max));
    if (!ok) c.fail("ui.trusted_proxies", `"${entry}" is not an IP address or a CIDR block (e.g. 10.0.0.0/8, fd00::/8)`);
  }
  return list;
}
