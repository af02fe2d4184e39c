/**
 * Signing users in to the web page with the OIDC issuer: authorization code
 * flow with PKCE (S256), `state` and `nonce`, through openid-client, the
 * issuer found by discovery. What the browser started (verifier, state, nonce)
 * waits server-side under a short-lived cookie and is taken exactly once.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as client from "openid-client";
import type { Logger } from "pino";
import type { OperatorClaim } from "../config/operators.ts";
import type { UiLoginSettings, UiSettings } from "../config/ui.ts";
import { holdsOperatorClaim } from "../admin/oidc.ts";
import { isUserId } from "../admin/validate.ts";
import type { UiSessions } from "./sessions.ts";

const LOGIN_TTL_MS = 10 * 60_000;
// After a failed discovery, the next sign-in tries again no sooner than this.
const DISCOVERY_RETRY_MS = 5000;
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

interface LoginState {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  readonly redirectUri: string;
}

/** Where a finished (or failed) sign-in sends the browser: the page, relative to /ui/auth/…. */
export type LoginOutcome = { readonly ok: true } | { readonly ok: false; readonly code: "login_failed" | "idp_unavailable"; readonly detail: string };

/** The OIDC sign-in: start() redirects to the issuer, callback() finishes it into a session. */
export class OidcLogin {
  readonly #cfg: UiLoginSettings;
  readonly #ui: UiSettings;
  readonly #operator: OperatorClaim | null;
  readonly #sessions: UiSessions;
  readonly #log: Logger;
  #config: Promise<client.Configuration> | null = null;
  #failedAt = 0;

  /** `operator`: the claim that makes someone an operator (auth.oidc.operator_claim), if any. */
  constructor(cfg: UiLoginSettings, ui: UiSettings, operator: OperatorClaim | null, sessions: UiSessions, log: Logger) {
    this.#cfg = cfg;
    this.#ui = ui;
    this.#operator = operator;
    this.#sessions = sessions;
    this.#log = log;
  }

  /** The issuer's metadata, discovered once (and again after a failure). */
  #discover(): Promise<client.Configuration> {
    if (this.#config !== null) return this.#config;
    if (Date.now() - this.#failedAt < DISCOVERY_RETRY_MS) return Promise.reject(new Error("the identity provider was unreachable moments ago"));
    const issuer = new URL(this.#cfg.issuer);
    // Plain http only for an issuer on this machine (the dev provider, `npm run dev-idp`).
    const insecure = issuer.protocol === "http:" && LOOPBACK.has(issuer.hostname);
    const auth = this.#cfg.clientSecret === "" ? client.None() : client.ClientSecretPost(this.#cfg.clientSecret);
    const p = client.discovery(issuer, this.#cfg.clientId, undefined, auth, { timeout: 5, ...(insecure ? { execute: [client.allowInsecureRequests] } : {}) });
    this.#config = p;
    p.catch(() => {
      this.#config = null;
      this.#failedAt = Date.now();
    });
    return p;
  }

  /** The callback URL registered at the issuer: under ui.public_url, else this request's origin. */
  redirectUri(req: IncomingMessage): string {
    const base = this.#ui.publicUrl !== null ? this.#ui.publicUrl.href.replace(/\/+$/, "") : this.#sessions.origin(req);
    return `${base}/ui/auth/callback`;
  }

  /** Starts a sign-in: remembers verifier, state and nonce, and redirects to the issuer. */
  async start(req: IncomingMessage, res: ServerResponse): Promise<LoginOutcome> {
    let config: client.Configuration;
    try {
      config = await this.#discover();
    } catch (err) {
      this.#log.warn({ problem: (err as Error).message, issuer: this.#cfg.issuer }, "web sign-in: OIDC discovery failed");
      return { ok: false, code: "idp_unavailable", detail: "The sign-in service did not answer." };
    }
    const verifier = client.randomPKCECodeVerifier();
    const login: LoginState = { state: client.randomState(), nonce: client.randomNonce(), verifier, redirectUri: this.redirectUri(req) };
    const value = randomBytes(32).toString("base64url");
    await this.#sessions.store.put(this.#sessions.storeKey("login", value), JSON.stringify(login), LOGIN_TTL_MS);
    this.#sessions.setCookie(res, req, "login", value, LOGIN_TTL_MS);
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: login.redirectUri,
      scope: this.#cfg.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state: login.state,
      nonce: login.nonce,
    });
    res.writeHead(303, { location: url.href });
    res.end();
    return { ok: true };
  }

  /** Finishes a sign-in: checks state, nonce and the PKCE verifier through the code exchange, then starts a session. */
  async callback(req: IncomingMessage, res: ServerResponse, query: string): Promise<LoginOutcome> {
    const value = this.#sessions.read(req, "login");
    this.#sessions.setCookie(res, req, "login", null);
    if (value === null) return { ok: false, code: "login_failed", detail: "This browser did not start a sign-in (or it took longer than 10 minutes)." };
    const text = await this.#sessions.store.take(this.#sessions.storeKey("login", value));
    if (text === null) return { ok: false, code: "login_failed", detail: "The sign-in expired or was already used." };
    const login = JSON.parse(text) as LoginState;
    let config: client.Configuration;
    try {
      config = await this.#discover();
    } catch {
      return { ok: false, code: "idp_unavailable", detail: "The sign-in service did not answer." };
    }
    const current = new URL(login.redirectUri);
    current.search = query;
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: login.verifier,
        expectedState: login.state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims() ?? {};
    } catch (err) {
      this.#log.warn({ problem: (err as Error).message }, "web sign-in: the issuer's answer was refused");
      return { ok: false, code: "login_failed", detail: "The sign-in service's answer did not check out." };
    }
    const userId = claims[this.#cfg.userClaim];
    if (typeof userId !== "string" || !isUserId(userId)) {
      return { ok: false, code: "login_failed", detail: `The ID token's "${this.#cfg.userClaim}" claim is not a usable user id.` };
    }
    const display = ([claims.name, claims.email, claims.preferred_username].find((v): v is string => typeof v === "string" && v !== "") ?? userId).slice(0, 200);
    if (this.#operator !== null && holdsOperatorClaim(this.#operator, claims)) {
      // The session remembers the rule that granted it: a changed rule ends it (see uiSessions).
      await this.#sessions.signIn(req, res, { kind: "operator", keyId: null, subject: userId }, "oidc", display, this.#operator.describe);
      this.#log.info({ audit: "ui.sign_in", actor: `operator:${userId}`, via: "oidc", operator_claim: this.#operator.describe }, "audit");
      return { ok: true };
    }
    await this.#sessions.signIn(req, res, { kind: "user", userId }, "oidc", display);
    this.#log.info({ audit: "ui.sign_in", actor: `user:${userId}`, via: "oidc" }, "audit");
    return { ok: true };
  }
}
