/**
 * The management API (SPEC §5): `/pats`, `/domains`, `/roles` on the gateway's
 * port. Per request, in order: route → credential → access → body → handler.
 * It uses the core (store, tokens, scopes, policy), never the data plane.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Settings } from "../config/config.ts";
import type { Rights } from "../policy/rights.ts";
import { StoreUnavailableError, type Store } from "../store/types.ts";
import { Authenticator, type AuthResult, type Caller, type CookieAuth } from "./auth.ts";
import type { AdminDeps, Call, Endpoint, Handler } from "./call.ts";
import { DOMAIN_ENDPOINTS } from "./domains.ts";
import { CATALOG_ENDPOINTS } from "./catalog.ts";
import { hasBody } from "../http/body.ts";
import { parseTarget, readJsonBody, sendDenial, sendJson } from "./http.ts";
import { AdminKeys } from "./keys.ts";
import { IdpUnavailableError, OidcVerifier } from "./oidc.ts";
import { ME_ENDPOINTS } from "./me.ts";
import { OPERATOR_PAT_ENDPOINTS } from "./operator-pats.ts";
import { PAT_ENDPOINTS } from "./pats.ts";
import { ModelCatalog } from "../upstream/models.ts";
import { deny, type Denial, type Reply } from "./reply.ts";
import { ROLE_ENDPOINTS } from "./roles.ts";
import { USAGE_ENDPOINTS } from "./usage.ts";
import { ME_LIMITS_ENDPOINTS } from "./me-limits.ts";
import type { LimitView } from "./call.ts";
import type { UsageBuckets } from "../usage/buckets.ts";
import { Router } from "./router.ts";
import type { AuditStream } from "../telemetry/audit.ts";

export interface AdminApiOptions {
  readonly settings: Settings;
  readonly store: Store;
  readonly rights: Rights;
  readonly pepper: Buffer;
  readonly log: Logger;
  /** Where audit events also go, besides the log (a Redis Stream), if configured. */
  readonly auditStream?: AuditStream | null;
  /** Current limit use (GET /me/limits) and usage buckets (GET /usage). */
  readonly limiter?: LimitView | null;
  readonly usage?: UsageBuckets | null;
  /** Receives a first-start admin key, once; default: stderr. */
  readonly printAdminKey?: (key: string) => void;
  readonly now?: () => number;
  /** The web page's sessions as a credential (when the UI is on). */
  readonly cookies?: CookieAuth | null;
}

export interface AdminApi {
  handle(req: IncomingMessage, res: ServerResponse, requestId: string): void;
  /** Who an `Authorization` header value is (the web page's admin-key sign-in uses it). */
  authenticate(header: string | undefined): Promise<AuthResult>;
  /** Stops a pending first-start retry and the model look-ups. */
  close(): Promise<void>;
}

// While the store is down at start, the first-start key check is retried this often.
const BOOTSTRAP_RETRY_MS = 2000;

/** Every route of the management API (tests hold these to docs/openapi.yaml). */
export const ENDPOINTS: readonly Endpoint[] = [...PAT_ENDPOINTS, ...OPERATOR_PAT_ENDPOINTS, ...DOMAIN_ENDPOINTS, ...ROLE_ENDPOINTS, ...ME_ENDPOINTS, ...CATALOG_ENDPOINTS, ...USAGE_ENDPOINTS, ...ME_LIMITS_ENDPOINTS];

/** Builds the API once; on a first start without admin keys, creates one (see AdminKeys.bootstrap). */
export async function createAdminApi(opts: AdminApiOptions): Promise<AdminApi> {
  const { settings, store, log } = opts;
  const keys = new AdminKeys(settings.auth.adminKeyHashes, store);
  // A store that is down at start must not keep the gateway from starting (the
  // data plane recovers by itself): the first-start key is then made later.
  let retry: NodeJS.Timeout | null = null;
  let closed = false;
  const bootstrap = async (): Promise<void> => {
    try {
      await keys.bootstrap(opts.printAdminKey ?? printToStderr);
    } catch (err) {
      if (closed) return;
      if (!(err instanceof StoreUnavailableError)) throw err;
      log.warn({ problem: err.message }, "cannot check for an admin key while the store is unavailable; retrying");
      retry = setTimeout(() => void bootstrap().catch((e: unknown) => log.error({ err: e }, "admin key bootstrap failed")), BOOTSTRAP_RETRY_MS);
      retry.unref();
    }
  };
  await bootstrap();
  const oidc = settings.auth.oidc === null ? null : new OidcVerifier(settings.auth.oidc);
  const auth = new Authenticator(keys, oidc);
  const models = new ModelCatalog(settings.upstreams, settings.defaultUpstream, settings.ui.modelsCacheMs);
  const deps: AdminDeps = { settings, store, rights: opts.rights, pepper: opts.pepper, now: opts.now ?? Date.now, models, limits: opts.limiter ?? null, usage: opts.usage ?? null };
  const cookies = opts.cookies ?? null;
  const router = new Router<Handler>(ENDPOINTS);

  const handle = (req: IncomingMessage, res: ServerResponse, requestId: string): void => {
    const started = performance.now();
    const line: AccessLine = { req_id: requestId, method: req.method ?? "", route: null, caller: null, user: null, status: 0, reason: "ok", total_ms: 0 };
    const finish = (status: number, reason: string): void => {
      line.status = status;
      line.reason = reason;
      line.total_ms = Math.round((performance.now() - started) * 100) / 100;
      log.info(line, "admin");
    };
    serve(req, res, requestId, line).then(
      (r) => finish(r.status, r.reason),
      (err: unknown) => {
        const code = err instanceof StoreUnavailableError ? "store_unavailable" : err instanceof IdpUnavailableError ? "idp_unavailable" : "internal_error";
        if (code === "internal_error") log.error({ err, req_id: requestId }, "management API failure");
        // The store says once that it is lost and once that it is back (app.ts); the admin line has the reason.
        else if (code === "idp_unavailable") log.warn({ req_id: requestId, problem: (err as Error).message }, "management API dependency unavailable");
        sendDenial(res, requestId, deny(code));
        finish(res.statusCode, code);
      },
    );
  };

  async function serve(req: IncomingMessage, res: ServerResponse, requestId: string, line: AccessLine): Promise<{ status: number; reason: string }> {
    // Until the body is read, a refusal closes the connection rather than drain what the client sends.
    let unread = hasBody(req);
    const refuse = (d: Denial, allow?: readonly string[]): { status: number; reason: string } => {
      sendDenial(res, requestId, d, allow === undefined ? { close: unread } : { allow, close: unread });
      return { status: res.statusCode, reason: d.error };
    };
    const target = parseTarget(req.url ?? "/");
    if (target === null) return refuse(deny("bad_path"));
    if (target === "not_found") return refuse(deny("no_route"));
    const method = req.method ?? "";
    const m = router.match(method, target.segments);
    if (m.kind === "method_not_allowed") return refuse(deny("method_not_allowed"), m.allow);
    if (m.kind === "not_found") return refuse(deny("no_route"));
    line.route = `${m.route.method} ${m.route.path}`;

    // A bearer credential wins; a session cookie counts only without one (the web page).
    const who = req.headers.authorization === undefined && cookies !== null ? ((await cookies.authenticate(req)) ?? deny("missing_credential")) : await auth.authenticate(req.headers.authorization);
    if (!who.ok) return refuse(who);
    const caller = who.caller;
    line.caller = caller.kind;
    line.user = caller.kind === "user" ? caller.userId : null;
    if (m.route.handler.access === "operator" && caller.kind !== "operator") return refuse(deny("operator_only"));
    const allowed = m.route.query ?? [];
    for (const k of target.query.keys()) {
      if (!allowed.includes(k)) {
        const known = allowed.length === 0 ? "this endpoint takes none" : `known: ${allowed.join(", ")}`;
        return refuse(deny("invalid_field", `Unknown query parameter "${k}" (${known}).`, k));
      }
    }

    const body = await readJsonBody(req);
    unread = !body.ok && body.close;
    if (!body.ok) return refuse(body);
    const call: Call = {
      caller,
      params: m.params,
      query: target.query,
      body: body.body,
      audit: (event, fields) => {
        const who = actor(caller);
        log.info({ audit: event, req_id: requestId, actor: who, ...fields }, "audit");
        opts.auditStream?.change(event, who, fields, requestId);
      },
    };
    const reply: Reply = await m.route.handler.run(deps, call);
    if (!reply.ok) return refuse(reply);
    sendJson(res, requestId, reply.status, reply.body, reply.location);
    return { status: reply.status, reason: "ok" };
  }

  return {
    handle,
    authenticate: (header) => auth.authenticate(header),
    async close() {
      closed = true;
      if (retry !== null) clearTimeout(retry);
      await models.close();
    },
  };
}

/** The admin access line: never a credential, only who it turned out to be. */
interface AccessLine {
  req_id: string;
  method: string;
  route: string | null;
  caller: Caller["kind"] | null;
  user: string | null;
  status: number;
  reason: string;
  total_ms: number;
}

function actor(c: Caller): string {
  if (c.kind === "user") return `user:${c.userId}`;
  return c.keyId !== null ? `admin:${c.keyId}` : `operator:${c.subject}`;
}

/** The default first-start key printer: once, on stderr, with how to use it. */
export function printToStderr(key: string): void {
  process.stderr.write(
    "\npatgate: no admin key was configured, so this first start created one.\n" +
      "It is shown ONCE and only its hash is stored; keep it somewhere safe:\n\n" +
      `  ${key}\n\n` +
      "Use it as 'Authorization: Bearer <key>' on /pats, /domains and /roles (docs/admin-api.md).\n" +
      "Lost it? `patgate admin-key create` on this machine makes another (docs/cli.md).\n\n",
  );
}
