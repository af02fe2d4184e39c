import type { Readable } from "node:stream";
import type { RequestContext } from "./http/context.ts";
import { sendError } from "./http/respond.ts";
import { LimitedBody, hasBody, readBody } from "./http/body.ts";
import type { ErrorCode } from "./errors.ts";
import type { RouteTableHolder } from "./routing/holder.ts";
import type { Target } from "./routing/normalize.ts";
import { entityFromJson, entityFromMultipart, queryHasParam, validateEntityId, type EntityResult } from "./routing/entity.ts";
import type { Verifier } from "./tokens/verifier.ts";
import type { Rights } from "./policy/rights.ts";
import { formatNeed } from "./scopes/scope.ts";
import type { Upstreams } from "./upstream/upstreams.ts";
import type { HeaderPolicy } from "./upstream/headers.ts";
import { forward, type ForwardHooks } from "./upstream/forward.ts";

/** Everything the data plane uses, built once in app.ts. */
export interface DataPlane {
  readonly routes: RouteTableHolder;
  readonly verifier: Verifier;
  readonly rights: Rights;
  readonly upstreams: Upstreams;
  readonly headers: HeaderPolicy;
  /** Access line, metrics and audit for every request, allowed or denied. */
  readonly hooks: ForwardHooks;
}

const DENY_401 = { malformed: "invalid_token", unknown: "invalid_token", bad_secret: "invalid_token", expired: "expired_token", revoked: "revoked_token" } as const;

/**
 * The data plane, in order: route → token → rights → entity → scope → forward.
 * `target` is the normalised `/proxy/<domain>/…` request target.
 */
export async function proxy(dp: DataPlane, ctx: RequestContext, target: Target): Promise<void> {
  const { req } = ctx;
  ctx.domainId = target.segments[1] ?? "";
  const m = dp.routes.current.match(req.method ?? "", target.segments, 2);
  if (m.kind === "method_not_allowed") return deny(dp, ctx, "method_not_allowed", { allow: m.allow });
  if (m.kind !== "ok") return deny(dp, ctx, "no_route");
  const route = (ctx.route = m.route);

  const token = bearer(req.headers.authorization);
  if (token === null) return deny(dp, ctx, "missing_token");
  // Cache hits come back synchronously: awaiting only real promises saves a microtask hop per step.
  const pv = dp.verifier.verify(token);
  const v = pv instanceof Promise ? await pv : pv;
  if (!v.ok) return deny(dp, ctx, DENY_401[v.reason]);
  const pat = (ctx.pat = v.pat);

  const pd = dp.rights.domain(ctx.domainId);
  const domain = pd instanceof Promise ? await pd : pd;
  if (domain === null) return deny(dp, ctx, "domain_not_found");
  const ph = dp.rights.rightsIn(ctx.domainId, pat.record.userId);
  const held = ph instanceof Promise ? await ph : ph;
  if (held === null) return deny(dp, ctx, "not_a_member");
  if (!held.has(route.operation)) return deny(dp, ctx, "role_denied", { message: `The token's user does not hold "${route.operation}" in domain "${ctx.domainId}".` });
  // Refuse before reading a body that no scope of this token could allow.
  if (!pat.scopes.mayGrant(ctx.domainId, route.operation)) return denyScope(dp, ctx, route.entityType, "*");

  let body: Buffer | Readable | null = null;
  const src = route.entity;
  if (src.from === "domain") ctx.entityId = ctx.domainId;
  else if (src.from === "path") {
    const e = validateEntityId(m.params.get(src.param), `The path parameter "${src.param}"`);
    if (!e.ok) return deny(dp, ctx, e.code, { message: e.message });
    ctx.entityId = e.id;
  } else {
    if (queryHasParam(target.query, src.field)) return deny(dp, ctx, "entity_ambiguous", { param: src.field, message: `"${src.field}" must be sent once, in the body, not in the query string.` });
    const type = req.headers["content-type"] ?? "";
    if (src.from === "body" ? !isJson(type) : !type.toLowerCase().startsWith("multipart/form-data")) {
      return deny(dp, ctx, "unsupported_media_type", { message: `This route reads "${src.field}" from a ${src.from === "body" ? "JSON (application/json)" : "multipart/form-data"} body.` });
    }
    const read = await readBody(req, route.bodyLimit);
    if (!read.ok) return deny(dp, ctx, read.reason === "too_large" ? "body_too_large" : "bad_request", { message: read.reason === "too_large" ? `The body exceeds this route's limit of ${route.bodyLimit} bytes.` : "The client closed the request body." });
    body = read.body;
    const e: EntityResult = src.from === "body" ? entityFromJson(body, src.field) : await entityFromMultipart(body, type, src.field);
    if (!e.ok) return deny(dp, ctx, e.code, { message: e.message, param: src.field });
    ctx.entityId = e.id;
  }
  if (body === null && hasBody(req)) {
    const declared = req.headers["content-length"];
    if (declared !== undefined) {
      if (Number(declared) > route.bodyLimit) return deny(dp, ctx, "body_too_large");
      body = req;
    } else {
      // Chunked: the size is only known as it streams, so count on the way through.
      body = req.pipe(new LimitedBody(route.bodyLimit));
    }
  }

  const need = { domainId: ctx.domainId, entityType: route.entityType, entityId: ctx.entityId, operation: route.operation };
  if (!pat.scopes.grants(need)) return denyScope(dp, ctx, route.entityType, ctx.entityId);

  const upstream = dp.upstreams.pick(domain.upstream);
  if (upstream === null) return deny(dp, ctx, "upstream_unavailable");
  const extra = ["x-request-id", ctx.requestId];
  if (upstream.upstream.credential !== null) extra.push(upstream.upstream.credential.header, upstream.upstream.credential.value);
  const path = target.rawPath.slice(target.rawSegments[0]!.length + target.rawSegments[1]!.length + 2) + target.query;
  forward(ctx, upstream, path, dp.headers.requestHeaders(req.rawHeaders, extra), body, dp.headers, dp.hooks);
}

function denyScope(dp: DataPlane, ctx: RequestContext, entityType: string, entityId: string): void {
  const route = ctx.route!;
  const scope = formatNeed({ domainId: ctx.domainId, entityType, entityId, operation: route.operation });
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
