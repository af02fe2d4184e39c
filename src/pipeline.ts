import type { Readable } from "node:stream";
import type { RequestContext } from "./http/context.ts";
import { sendError } from "./http/respond.ts";
import { hasBody } from "./http/body.ts";
import type { Bodies } from "./http/bodies.ts";
import type { ErrorCode } from "./errors.ts";
import type { RouteTableHolder } from "./routing/holder.ts";
import type { Route } from "./routing/table.ts";
import type { Target } from "./routing/normalize.ts";
import { entityFromJson, entityFromMultipart, queryHasParam, validateEntityId, type EntityResult } from "./routing/entity.ts";
import type { Verifier, VerifiedPat, VerifyResult } from "./tokens/verifier.ts";
import { TOKEN_PATTERN, looksLikePat } from "./tokens/format.ts";
import type { DomainRights, Rights } from "./policy/rights.ts";
import type { Domain } from "./store/types.ts";
import { formatNeed } from "./scopes/scope.ts";
import type { Upstreams } from "./upstream/upstreams.ts";
import type { HeaderPolicy } from "./upstream/headers.ts";
import { forward, type ForwardHooks } from "./upstream/forward.ts";
import { alsoDenial } from "./policy/also.ts";
import { bodyEncodingProblem } from "./http/encoding.ts";

/** Everything the data plane uses, built once in app.ts. */
export interface DataPlane {
  readonly routes: RouteTableHolder;
  readonly verifier: Verifier;
  readonly rights: Rights;
  readonly upstreams: Upstreams;
  readonly headers: HeaderPolicy;
  /** Access line, metrics and audit for every request, allowed or denied. */
  readonly hooks: ForwardHooks;
  /** How long a body the gateway must read may take to arrive. */
  readonly bodyTimeoutMs: number;
  /** Deadlines for every relayed body, and the memory budget of buffered ones (http/bodies.ts). */
  readonly bodies: Bodies;
}

const BODY_FAILURE = { too_large: "body_too_large", aborted: "bad_request", timeout: "body_timeout", busy: "busy_bodies" } as const;

const DENY_401 = { malformed: "invalid_token", unknown: "invalid_token", bad_secret: "invalid_token", expired: "expired_token", revoked: "revoked_token" } as const;

/**
 * The data plane, in order: route → token → rights → entity → scope → forward.
 * `target` is the normalised `/proxy/<domain>/…` request target.
 */
export async function proxy(dp: DataPlane, ctx: RequestContext, target: Target): Promise<void> {
  const { req } = ctx;
  // A PAT in the URL would be forwarded and logged upstream: refuse the request outright.
  if (target.query.includes("pat_") && TOKEN_PATTERN.test(target.query)) return deny(dp, ctx, "token_in_query");
  if (looksLikePat(target.rawPath) || looksLikePat(target.query)) return deny(dp, ctx, "token_in_path");
  ctx.domainId = target.segments[1] ?? "";
  const m = dp.routes.current.match(req.method ?? "", target.segments, 2);
  if (m.kind === "method_not_allowed") return deny(dp, ctx, "method_not_allowed", { allow: m.allow });
  if (m.kind !== "ok") return deny(dp, ctx, "no_route");
  const route = (ctx.route = m.route);

  const token = bearer(req.headers.authorization);
  if (token === null) return deny(dp, ctx, "missing_token");
  ctx.token = token;
  const mark = changeMark(dp);
  let pa = authorize(dp, ctx, token, route);
  let granted = pa instanceof Promise ? await pa : pa;
  if (granted === null) return;

  let body: Buffer | Readable | null = null;
  const src = route.entity;
  if (src.from === "domain") ctx.entityId = ctx.domainId;
  else if (src.from === "path") {
    const e = validateEntityId(m.params.get(src.param), `The path parameter "${src.param}"`);
    if (!e.ok) return deny(dp, ctx, e.code, { message: e.message });
    ctx.entityId = e.id;
  } else {
    if (queryHasParam(target.query, src.field)) return deny(dp, ctx, "entity_ambiguous", { param: src.field, message: `"${src.field}" must be sent once, in the body, not in the query string.` });
    if (countHeader(req.rawHeaders, "content-type") > 1) return deny(dp, ctx, "ambiguous_header", { message: "Send exactly one Content-Type header." });
    const type = req.headers["content-type"] ?? "";
    if (src.from === "body" ? !isJson(type) : !type.toLowerCase().startsWith("multipart/form-data")) {
      return deny(dp, ctx, "unsupported_media_type", { message: `This route reads "${src.field}" from a ${src.from === "body" ? "JSON (application/json)" : "multipart/form-data"} body.` });
    }
    const encoding = bodyEncodingProblem(req.headers, type);
    if (encoding !== null) return deny(dp, ctx, "unsupported_encoding", { message: encoding });
    continueIfAsked(ctx);
    const read = await dp.bodies.read(req, ctx.res, route.bodyLimit);
    if (!read.ok) return deny(dp, ctx, BODY_FAILURE[read.reason], read.reason === "too_large" ? { message: `The body exceeds this route's limit of ${route.bodyLimit} bytes.` } : {});
    body = read.body;
    const e: EntityResult = src.from === "body" ? entityFromJson(body, src.field, src.fallback ?? null) : await entityFromMultipart(body, type, src.field);
    if (!e.ok) return deny(dp, ctx, e.code, { message: e.message, param: src.field });
    ctx.entityId = e.id;
    // The body may have taken a while: decide on the token and rights as they are now, not as they were,
    // unless nothing they rest on can have changed meanwhile.
    if (mark === -1 || changeMark(dp) !== mark || Date.now() >= granted.until) {
      pa = authorize(dp, ctx, token, route);
      granted = pa instanceof Promise ? await pa : pa;
      if (granted === null) return;
    }
  }
  if (body === null && hasBody(req)) {
    if (route.body === "none") return deny(dp, ctx, "body_not_accepted");
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > route.bodyLimit) return deny(dp, ctx, "body_too_large");
    continueIfAsked(ctx);
    // Counted on the way through (a chunked size is only known as it streams), under idle and total deadlines.
    body = dp.bodies.stream(req, route.bodyLimit);
  }

  const scopes = granted.pat.scopes;
  const need = { domainId: ctx.domainId, entityType: route.entityType, entityId: ctx.entityId, operation: route.operation };
  if (!scopes.grants(need)) return denyScope(dp, ctx, route.entityType, ctx.entityId, route.operation);
  // Fields the upstream also acts on (a base model, a copy's source) are each authorized too, or refused.
  const alsoDenied = route.also.length === 0 ? null : alsoDenial(route, body as Buffer, need, granted.held, scopes);
  if (alsoDenied !== null) return deny(dp, ctx, alsoDenied.code, alsoDenied);

  const upstream = dp.upstreams.pick(granted.domain.upstream);
  if (upstream === null) return deny(dp, ctx, "upstream_unavailable");
  const extra = dp.headers.trusted(req, ctx.requestId);
  const credential = upstream.upstream.credential;
  if (credential !== null) extra.push(credential.header, credential.value);
  const path = target.rawPath.slice(target.rawSegments[0]!.length + target.rawSegments[1]!.length + 2) + target.query;
  forward(ctx, upstream, path, dp.headers.requestHeaders(req.rawHeaders, extra, credential === null ? null : credential.header), body, dp.headers, dp.hooks);
}

/**
 * Whether a request that is already being served (a running stream) would still
 * be allowed now: token, the user's rights and the main scope, decided afresh.
 * Sends nothing; rejects only when the store fails.
 */
export async function stillAllowed(dp: DataPlane, ctx: RequestContext): Promise<boolean> {
  const route = ctx.route;
  if (route === null || ctx.token === "") return false;
  const v = await dp.verifier.verify(ctx.token);
  if (!v.ok) return false;
  const held = await dp.rights.rightsIn(ctx.domainId, v.pat.record.userId);
  if (held === null || !held.has(route.operation)) return false;
  return v.pat.scopes.grants({ domainId: ctx.domainId, entityType: route.entityType, entityId: ctx.entityId, operation: route.operation });
}

/** What a request holds once its token and its user's rights are checked. */
interface Granted {
  readonly pat: VerifiedPat;
  readonly held: ReadonlySet<string>;
  /** When the token's own validity ends (VerifyResult.until). */
  readonly until: number;
  /** The domain as it was when this was decided (its upstream). */
  readonly domain: Domain;
}

/**
 * How many store changes (PATs, memberships, domains, roles) the caches have
 * applied, or -1 while they may be missing changes (the store's events are not
 * flowing). A decision taken at one mark still stands at the same mark, until
 * its `until`: while events flow the caches are exact, and nothing else goes
 * into it. (Cache entries reaching cache.max_age_ms, the backstop against
 * lost events, are not looked at within one request: a decision is reused
 * for at most server.body_timeout.)
 */
function changeMark(dp: DataPlane): number {
  return dp.verifier.exact ? dp.verifier.changes + dp.rights.changes : -1;
}

/**
 * Token, then the user's current rights in the domain, then whether any scope
 * could allow the operation here (so a body no scope allows is never read),
 * then the domain record itself. Null when denied (the response is sent);
 * synchronous on cache hits.
 */
function authorize(dp: DataPlane, ctx: RequestContext, token: string, route: Route): Granted | null | Promise<Granted | null> {
  const pv = dp.verifier.verify(token);
  if (pv instanceof Promise) return pv.then((v) => rights(dp, ctx, route, v));
  return rights(dp, ctx, route, pv);
}

function rights(dp: DataPlane, ctx: RequestContext, route: Route, v: VerifyResult): Granted | null | Promise<Granted | null> {
  if (!v.ok) {
    deny(dp, ctx, DENY_401[v.reason]);
    return null;
  }
  const pat = (ctx.pat = v.pat);
  const until = v.until;
  const ph = dp.rights.rightsIn(ctx.domainId, pat.record.userId);
  if (ph instanceof Promise) return ph.then((held) => checkHeld(dp, ctx, route, pat, until, held));
  return checkHeld(dp, ctx, route, pat, until, ph);
}

function checkHeld(dp: DataPlane, ctx: RequestContext, route: Route, pat: VerifiedPat, until: number, held: DomainRights): Granted | null | Promise<Granted | null> {
  if (held === null) {
    deny(dp, ctx, "not_a_member");
    return null;
  }
  if (!held.has(route.operation)) {
    deny(dp, ctx, "role_denied", { message: `The token's user does not hold "${route.operation}" in domain "${ctx.domainId}".` });
    return null;
  }
  if (!pat.scopes.mayGrant(ctx.domainId, route.operation)) {
    denyScope(dp, ctx, route.entityType, "*", route.operation);
    return null;
  }
  const pd = dp.rights.domain(ctx.domainId);
  if (pd instanceof Promise) return pd.then((domain) => grant(dp, ctx, pat, held, until, domain));
  return grant(dp, ctx, pat, held, until, pd);
}

function grant(dp: DataPlane, ctx: RequestContext, pat: VerifiedPat, held: ReadonlySet<string>, until: number, domain: Domain | null): Granted | null {
  if (domain === null) {
    deny(dp, ctx, "domain_not_found");
    return null;
  }
  return { pat, held, until, domain };
}

/** Sends 100 Continue to a client that waits for it, once the request is authorized. */
function continueIfAsked(ctx: RequestContext): void {
  if (ctx.req.headers.expect !== undefined) ctx.res.writeContinue();
}

function countHeader(raw: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === name.length && (raw[i] as string).toLowerCase() === name) n++;
  return n;
}

function denyScope(dp: DataPlane, ctx: RequestContext, entityType: string, entityId: string, operation: string): void {
  const scope = formatNeed({ domainId: ctx.domainId, entityType, entityId, operation });
  deny(dp, ctx, "insufficient_scope", { scope, message: `The token lacks the scope "${scope}" in domain "${ctx.domainId}".` });
}

/** Ends a request with a catalogue error and its access line. */
export function deny(dp: DataPlane, ctx: RequestContext, code: ErrorCode, opts: { message?: string; param?: string; scope?: string; allow?: readonly string[] } = {}): void {
  ctx.outcome = code;
  // An unread body would be drained before the connection is reused; closing is cheaper for big ones.
  const close = hasBody(ctx.req) && !ctx.req.readableEnded && Number(ctx.req.headers["content-length"] ?? Infinity) > 65536;
  sendError(ctx.res, ctx.requestId, code, { ...opts, close });
  dp.hooks.finish(ctx);
}

function bearer(header: string | undefined): string | null {
  if (header === undefined || header.length < 8) return null;
  // RFC 6750: the scheme is case-insensitive; exactly one space before the token.
  const scheme = header.slice(0, 7);
  if (scheme !== "Bearer " && scheme.toLowerCase() !== "bearer ") return null;
  const token = header.slice(7).trim();
  return token === "" ? null : token;
}

function isJson(type: string): boolean {
  if (type === "") return true;
  const t = type.toLowerCase();
  const semi = t.indexOf(";");
  const base = (semi === -1 ? t : t.slice(0, semi)).trim();
  return base === "application/json" || base.endsWith("+json");
}
