/**
 * The `ui:` section (the web page at /ui/) and the OIDC client keys it adds to
 * `auth.oidc`. Parsed here so config.ts only calls it.
 */
import type { Checker } from "./config.ts";

/** Signing users in through the OIDC issuer (authorization code + PKCE). */
export interface UiLoginSettings {
  readonly issuer: string;
  readonly clientId: string;
  /** Empty: a public client (PKCE alone). */
  readonly clientSecret: string;
  /** The ID token claim that holds the user id (auth.oidc.user_claim). */
  readonly userClaim: string;
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
}

type Obj = Record<string, unknown>;

/** Validates `ui:` and `auth.oidc.client_id/client_secret`; problems go to the checker. */
export function parseUi(c: Checker, raw: unknown, oidcRaw: unknown, entityTypes: ReadonlySet<string>): UiSettings {
  const u = c.obj(raw, "ui", ["enabled", "public_url", "session_idle", "session_max", "models_cache", "entities"]);
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
  const login = clientId === "" || issuer === "" ? null : { issuer, clientId, clientSecret, userClaim: c.str(o.user_claim, "auth.oidc.user_claim", "sub").trim() || "sub" };
  return {
    enabled: c.bool(u.enabled, "ui.enabled", true),
    publicUrl,
    sessionIdleMs,
    sessionMaxMs,
    modelsCacheMs: c.duration(u.models_cache, "ui.models_cache", "30s"),
    entities,
    login,
  };
}
