/**
 * A local OpenID provider for trying the web page without one (`npm run dev-idp`)
 * and for the browser tests: oidc-provider with a few fixed users, their
 * password shown on its sign-in page. Never for production: keys and cookies
 * are made up at start, and it speaks plain http on loopback.
 */
import http from "node:http";
import { randomBytes } from "node:crypto";
import Provider from "oidc-provider";

export interface DevUser {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly password: string;
  /** The `groups` claim (scope `groups`), as Dex or Okta would send it. */
  readonly groups: readonly string[];
}

/** The group that makes carol an operator when the gateway is told so (auth.oidc.operator_claim: groups). */
export const DEV_OPERATOR_GROUP = "patgate-operators";

export const DEV_USERS: readonly DevUser[] = [
  { id: "alice", name: "Alice Example", email: "alice@example.test", password: "alice", groups: ["ml-team"] },
  { id: "bob", name: "Bob Example", email: "bob@example.test", password: "bob", groups: [] },
  { id: "carol", name: "Carol Example", email: "carol@example.test", password: "carol", groups: ["ml-team", DEV_OPERATOR_GROUP] },
];

export const DEV_CLIENT_ID = "patgate-ui";
export const DEV_CLIENT_SECRET = "patgate-dev-secret";

export interface DevIdp {
  readonly issuer: string;
  readonly port: number;
  /** Starts answering OpenID requests, for a client that may redirect to `redirectUris`. */
  start(redirectUris: readonly string[]): void;
  close(): Promise<void>;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#f3f4f6;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;border:1px solid #d1d5db;border-radius:10px;padding:1.6rem;width:min(22rem,92vw)}label{display:block;font-weight:600;margin:.7rem 0 .2rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #9ca3af;border-radius:6px}button{margin-top:1rem;width:100%;padding:.6rem;font:inherit;font-weight:600;background:#374151;color:#fff;border:0;border-radius:6px}
.err{color:#b91c1c}.note{color:#4b5563;font-size:.9rem}code{background:#f3f4f6;padding:0 .2rem}</style></head><body><main>${body}</main></body></html>`;
}

/** Listens now (so the issuer URL is known), answers OpenID requests once start() is called. */
export async function startDevIdp(opts: { port?: number; host?: string; users?: readonly DevUser[] } = {}): Promise<DevIdp> {
  const users = opts.users ?? DEV_USERS;
  let provider: Provider | null = null;
  let callback: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | null = null;

  const interaction = async (req: http.IncomingMessage, res: http.ServerResponse, p: Provider): Promise<void> => {
    const details = await p.interactionDetails(req, res);
    const form = (error: string): string =>
      page("Sign in · dev identity provider", `<h1>Dev identity provider</h1><p class="note">Not for production. Accounts: ${users.map((u) => `<code>${esc(u.id)}</code>`).join(", ")}; each password is the user name.</p>
${error ? `<p class="err" role="alert">${esc(error)}</p>` : ""}<form method="post" action="/interaction/${esc(details.uid)}">
<label for="login">User name</label><input id="login" name="login" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`);
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(form(""));
      return;
    }
    let body = "";
    for await (const chunk of req) body += String(chunk);
    const f = new URLSearchParams(body);
    const user = users.find((u) => u.id === f.get("login"));
    if (user === undefined || user.password !== f.get("password")) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(form("Unknown user name or wrong password."));
      return;
    }
    await p.interactionFinished(req, res, { login: { accountId: user.id } }, { mergeWithLastSubmission: false });
  };

  const server = http.createServer((req, res) => {
    if (provider === null || callback === null) {
      res.writeHead(503).end();
      return;
    }
    if ((req.url ?? "").startsWith("/interaction/")) {
      interaction(req, res, provider).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(400, { "content-type": "text/plain" });
        res.end(`sign-in failed: ${(err as Error).message}`);
      });
      return;
    }
    callback(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 9400, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  const issuer = `http://${opts.host ?? "127.0.0.1"}:${port}`;

  return {
    issuer,
    port,
    start(redirectUris) {
      provider = new Provider(issuer, {
        clients: [{ client_id: DEV_CLIENT_ID, client_secret: DEV_CLIENT_SECRET, redirect_uris: [...redirectUris], grant_types: ["authorization_code"], response_types: ["code"], token_endpoint_auth_method: "client_secret_post" }],
        pkce: { required: () => true },
        cookies: { keys: [randomBytes(32).toString("hex")] },
        // `groups` is a scope of its own, as at Dex and Okta: the gateway asks for it (auth.oidc.login_scopes).
        claims: { openid: ["sub"], profile: ["name"], email: ["email"], groups: ["groups"] },
        features: { devInteractions: { enabled: false } },
        // Name and email in the ID token itself, so the gateway shows them without a userinfo call.
        conformIdTokenClaims: false,
        ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
        interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
        findAccount: (_ctx, sub) => {
          const u = users.find((x) => x.id === sub);
          return u === undefined ? undefined : { accountId: u.id, claims: () => ({ sub: u.id, name: u.name, email: u.email, groups: [...u.groups] }) };
        },
        // No consent screen: this provider knows only the one client, which gets the scopes it asks for.
        loadExistingGrant: async (ctx) => {
          const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(ctx.oidc.client?.clientId ?? "");
          const found = grantId === undefined ? undefined : await ctx.oidc.provider.Grant.find(grantId);
          const grant = found ?? new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client?.clientId ?? "", accountId: ctx.oidc.session?.accountId ?? "" });
          const asked = ctx.oidc.params?.scope;
          grant.addOIDCScope(typeof asked === "string" ? asked : "openid profile email");
          await grant.save();
          return grant;
        },
      });
      const handle = provider.callback();
      callback = (req, res) => void handle(req, res);
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
