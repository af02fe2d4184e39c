import type { Duplex, Readable } from "node:stream";
import { Denial, type ErrorCode } from "./errors.ts";
import type { RequestContext } from "./http/context.ts";
import { detachUpgrade, sendError } from "./http/respond.ts";
import { continueIfAsked, hasBody } from "./http/body.ts";
import type { Bodies } from "./http/bodies.ts";
import type { RouteTableHolder } from "./routing/holder.ts";
import type { Target } from "./routing/normalize.ts";
import { bodyRefusal, countHeader, entityOfBody, entityWithoutBody, inBody, resolveRoute, routeForIntent } from "./routing/request.ts";
import { bearerToken, offeredProtocols, tokenInUrl, upgradeToken } from "./tokens/bearer.ts";
import { alsoNeeds, authorize, changeMark, scopeDenial, stillCurrent, type Deciders } from "./policy/authorize.ts";
import type { Upstreams } from "./upstream/upstreams.ts";
import type { HeaderPolicy } from "./upstream/headers.ts";
import { upstreamCall } from "./upstream/request.ts";
import { forward, type ForwardHooks } from "./upstream/forward.ts";
import type { Limiter } from "./limits/limiter.ts";
import { upstreamSocket } from "./upstream/socket.ts";
import { RealtimeSessions } from "./realtime/session.ts";

/** Everything the data plane uses, built once in app.ts. */
export interface DataPlane extends Deciders {
  readonly routes: RouteTableHolder;
  readonly upstreams: Upstreams;
  readonly headers: HeaderPolicy;
  /** Access line, metrics and audit for every request, allowed or denied. */
  readonly hooks: ForwardHooks;
  /** Deadlines for every relayed body, and the memory budget of buffered ones. */
  readonly bodies: Bodies;
  /** Limit policies and metering's reservation (src/limits/). */
  readonly limiter: Limiter;
  /** Relays the WebSocket sessions of upgrade routes (src/realtime/). */
  readonly realtime: RealtimeSessions;
}

const UPGRADE_REQUIRED = new Denial("upgrade_required");
const NOT_AN_UPGRADE = new Denial("bad_request", { message: "This route takes no WebSocket upgrade." });
const BAD_HANDSHAKE = new Denial("bad_request", { message: "Not a valid WebSocket handshake (GET with Upgrade: websocket, Sec-WebSocket-Key, Sec-WebSocket-Version: 13)." });

/**
 * The data plane, in order: route → token → rights → entity → scope → limits → forward.
 * Each step returns a value or a Denial; this function only says the order.
 * `target` is the normalised `/proxy/<domain>/…` request target.
 */
export async function proxy(dp: DataPlane, ctx: RequestContext, target: Target): Promise<void> {
  const { req } = ctx;
  const inUrl = tokenInUrl(target.rawPath, target.query);
  if (inUrl !== null) return deny(dp, ctx, inUrl);
  ctx.domainId = target.segments[1] ?? "";
  const m = resolveRoute(dp.routes.current, req.method ?? "", target, 2);
  if (m instanceof Denial) return deny(dp, ctx, m);
  if (m.route.upgrade !== null) return deny(dp, ctx, UPGRADE_REQUIRED);
  const variant = m.route.intents === null ? m.route : routeForIntent(m.route, target.query);
  if (variant instanceof Denial) return deny(dp, ctx, variant);
  const route = (ctx.route = variant);

  const token = bearerToken(req.headers.authorization);
  if (token instanceof Denial) return deny(dp, ctx, token);
  ctx.token = token;
  const mark = changeMark(dp);
  let pg = authorize(dp, ctx, token, route);
  let g = pg instanceof Promise ? await pg : pg;
  if (g instanceof Denial) return deny(dp, ctx, g);

  let body: Buffer | Readable | null = null;
  const id = entityWithoutBody(route, ctx.domainId, m.params, target.query);
  if (id instanceof Denial) return deny(dp, ctx, id);
  if (id !== null) ctx.entityId = id;
  else if (inBody(route.entity)) {
    const type = req.headers["content-type"] ?? "";
    const refused = bodyRefusal(route, target.query, countHeader(req.rawHeaders, "content-type"), type, req.headers["content-encoding"]);
    if (refused !== null) return deny(dp, ctx, refused);
    continueIfAsked(req, ctx.res);
    const read = await dp.bodies.read(req, ctx.res, route.bodyLimit);
    if (read instanceof Denial) return deny(dp, ctx, read);
    body = read;
    const pe = entityOfBody(route.entity, read, type);
    const e = pe instanceof Promise ? await pe : pe;
    if (e instanceof Denial) return deny(dp, ctx, e);
    ctx.entityId = e;
    const also = alsoNeeds(route, ctx.domainId, read);
    if (also instanceof Denial) return deny(dp, ctx, also);
    ctx.also = also;
    // The body may have taken a while: decide on the token and rights as they are now.
    if (!stillCurrent(dp, mark, g)) {
      pg = authorize(dp, ctx, token, route);
      g = pg instanceof Promise ? await pg : pg;
      if (g instanceof Denial) return deny(dp, ctx, g);
    }
  }
  const refused = scopeDenial(g, route, ctx.domainId, ctx.entityId, ctx.also);
  if (refused !== null) return deny(dp, ctx, refused);

  if (body === null) {
    const streamed = dp.bodies.streamed(req, route.bodyLimit, route.body !== "none");
    if (streamed instanceof Denial) return deny(dp, ctx, streamed);
    if (streamed !== null) continueIfAsked(req, ctx.res);
    body = streamed;
  }
  const call = upstreamCall(dp.upstreams, dp.headers, ctx, g.domain, target);
  if (call instanceof Denial) return deny(dp, ctx, call);
  const pa = dp.limiter.admit(ctx, route, body, call.headers);
  const a = pa instanceof Promise ? await pa : pa;
  if (a instanceof Denial) return deny(dp, ctx, a);
  ctx.admission = a;
  forward(ctx, call.target, call.path, call.headers, a.body ?? body, dp.headers, dp.hooks);
}

/**
 * An upgrade (a Realtime session over WebSocket), in the same order and
 * through the same steps: route (its intent's variant) → token (header or
 * key subprotocol) → rights → entity (the query's model) → scope → limits;
 * only then the 101 and the relay. A refusal is an ordinary HTTP answer on
 * `ctx.res` (an upgradeResponse on the socket). Every step before the 101
 * is the data plane's own; the session is re-checked later as streams are.
 */
export async function upgrade(dp: DataPlane, ctx: RequestContext, target: Target, socket: Duplex, head: Buffer): Promise<void> {
  const { req } = ctx;
  const inUrl = tokenInUrl(target.rawPath, target.query);
  if (inUrl !== null) return deny(dp, ctx, inUrl);
  ctx.domainId = target.segments[1] ?? "";
  const m = resolveRoute(dp.routes.current, req.method ?? "", target, 2);
  if (m instanceof Denial) return deny(dp, ctx, m);
  if (m.route.upgrade === null) return deny(dp, ctx, NOT_AN_UPGRADE);
  if (!RealtimeSessions.acceptable(req)) return deny(dp, ctx, BAD_HANDSHAKE);
  const variant = routeForIntent(m.route, target.query);
  if (variant instanceof Denial) return deny(dp, ctx, variant);
  const route = (ctx.route = variant);

  const offered = offeredProtocols(req.headers["sec-websocket-protocol"]);
  const token = upgradeToken(req.headers.authorization, offered);
  if (token instanceof Denial) return deny(dp, ctx, token);
  ctx.token = token;
  const pg = authorize(dp, ctx, token, route);
  const g = pg instanceof Promise ? await pg : pg;
  if (g instanceof Denial) return deny(dp, ctx, g);
  const id = entityWithoutBody(route, ctx.domainId, m.params, target.query);
  if (id instanceof Denial) return deny(dp, ctx, id);
  ctx.entityId = id ?? "";
  const refused = scopeDenial(g, route, ctx.domainId, ctx.entityId, ctx.also);
  if (refused !== null) return deny(dp, ctx, refused);

  const call = upstreamCall(dp.upstreams, dp.headers, ctx, g.domain, target);
  if (call instanceof Denial) return deny(dp, ctx, call);
  const pa = dp.limiter.admit(ctx, route, null, call.headers);
  const a = pa instanceof Promise ? await pa : pa;
  if (a instanceof Denial) return deny(dp, ctx, a);
  ctx.admission = a;
  // The client may have left while the decision waited on the store.
  if (socket.destroyed) {
    ctx.outcome = "client_closed";
    return dp.hooks.finish(ctx);
  }
  detachUpgrade(ctx.res, socket);
  dp.realtime.open(ctx, upstreamSocket(call, offered.others), socket, head);
}

/** Ends a request with a refusal (a Denial, or a bare catalogue code) and its access line. */
export function deny(dp: DataPlane, ctx: RequestContext, d: Denial | ErrorCode): void {
  const denial = typeof d === "string" ? new Denial(d) : d;
  ctx.outcome = denial.error;
  // An unread body would be drained before the connection is reused; closing is cheaper for big ones.
  const close = hasBody(ctx.req) && !ctx.req.readableEnded && Number(ctx.req.headers["content-length"] ?? Infinity) > 65536;
  sendError(ctx.res, ctx.requestId, denial.error, { message: denial.message, param: denial.param, scope: denial.scope, allow: denial.allow, close, envelope: denial.envelope ?? ctx.route?.errors ?? "openai", headers: denial.headers });
  dp.hooks.finish(ctx);
}
