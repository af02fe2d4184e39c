/**
 * What the web page's browser tests run against: a real gateway, the fake
 * upstream, and the dev OpenID provider (devtools/dev-idp.ts), optionally
 * behind a proxy that strips an ingress path prefix.
 */
import http from "node:http";
import { DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_OPERATOR_GROUP, startDevIdp, type DevIdp } from "../../devtools/dev-idp.ts";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { ensureMember, startGateway, type TestConfig, type TestGateway } from "./gateway.ts";

export interface UiEnv {
  readonly gw: TestGateway;
  readonly idp: DevIdp;
  readonly upstream: FakeUpstream;
  /** Where the browser goes: the gateway, or the prefix proxy in front of it (ends without a slash). */
  readonly base: string;
  readonly origin: string;
  close(): Promise<void>;
}

/** A proxy at `prefix` (e.g. /a/b) that strips it and forwards to the gateway, as an ingress would. */
async function prefixProxy(prefix: string): Promise<{ server: http.Server; url: string; target: { port: number } }> {
  const target = { port: 0 };
  const server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    if (!url.startsWith(`${prefix}/`)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not under the prefix");
      return;
    }
    const up = http.request({ host: "127.0.0.1", port: target.port, method: req.method, path: url.slice(prefix.length), headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const addr = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${addr.port}${prefix}`, target };
}

/** `configure` edits the gateway's config after the page's own settings (limits, usage…). */
export async function startUiEnv(opts: { prefix?: string; maxTokenLifetime?: string; configure?: (cfg: TestConfig) => void } = {}): Promise<UiEnv> {
  const upstream = await startFakeUpstream({ models: ["llama3", "mistral", "nomic-embed"] });
  const idp = await startDevIdp({ port: 0 });
  const proxy = opts.prefix === undefined ? null : await prefixProxy(opts.prefix);
  const gw = await startGateway({
    upstreamUrl: upstream.url,
    oidc: { issuer: idp.issuer, audience: DEV_CLIENT_ID, jwksUrl: `${idp.issuer}/jwks` },
    patch: (cfg) => {
      // carol is an operator through her groups claim; alice and bob are users.
      Object.assign((cfg.auth as { oidc: Record<string, unknown> }).oidc, {
        client_id: DEV_CLIENT_ID,
        client_secret: DEV_CLIENT_SECRET,
        login_scopes: ["openid", "profile", "email", "groups"],
        operator_claim: "groups",
        operator_value: DEV_OPERATOR_GROUP,
      });
      cfg.security.max_token_lifetime = opts.maxTokenLifetime ?? "1y";
      cfg.ui = { public_url: proxy?.url ?? "", entities: { datasets: { demo: ["sales-2025"] } } };
      opts.configure?.(cfg);
    },
  });
  if (proxy !== null) proxy.target.port = gw.port;
  const base = proxy?.url ?? gw.url;
  idp.start([`${base}/ui/auth/callback`]);
  // alice: a developer in demo; bob: an admin in another domain only.
  await ensureMember(gw.store, "demo", "alice", "developer");
  await ensureMember(gw.store, "other", "bob", "admin");
  return {
    gw,
    idp,
    upstream,
    base,
    origin: new URL(base).origin,
    async close() {
      proxy?.server.closeAllConnections();
      proxy?.server.close();
      await gw.close();
      await idp.close();
      await upstream.close();
    },
  };
}
