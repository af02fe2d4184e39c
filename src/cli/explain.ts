/**
 * `routes explain`, offline: what the data plane would decide about a request
 * before any token is looked at — which route, operation and entity, and so
 * which scope a PAT needs. It runs the gateway's own path rules, route match
 * and entity extraction (src/routing/request.ts) and the decision's needs
 * (src/policy/authorize.ts): the data plane's own step functions, in its order.
 */
import { Denial, ERRORS, type ErrorCode } from "../errors.ts";
import { bodyTooLarge } from "../http/body.ts";
import { alsoNeeds } from "../policy/authorize.ts";
import { splitTarget } from "../routing/normalize.ts";
import { bodyRefusal, entityOfBody, entityWithoutBody, inBody, resolveRoute, routeForIntent } from "../routing/request.ts";
import type { EntitySource, Route, RouteTable } from "../routing/table.ts";
import type { Need } from "../scopes/scope.ts";
import { tokenInUrl } from "../tokens/bearer.ts";
import type { LimitSettings } from "../config/limits.ts";
import { matchingPolicies } from "../limits/policies.ts";

export interface ExplainRequest {
  readonly method: string;
  /** `/proxy/<domain>/…`, a path relative to it (`/v1/…`), or a full URL. */
  readonly target: string;
  /** The domain for a relative path. */
  readonly domain?: string;
  readonly body?: Buffer;
  readonly contentType?: string;
}

export interface Refusal {
  readonly status: number;
  readonly code: ErrorCode;
  readonly message: string;
  readonly allow?: readonly string[];
}

export interface RouteView {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly operation: string;
  readonly entity_type: string;
  readonly entity: EntitySource;
  readonly body_limit: number;
}

/** The explanation; `refused` when the gateway would answer an error whatever the token. */
export interface Explanation {
  readonly method: string;
  readonly path: string;
  /** null for a relative path without a domain. */
  readonly domain: string | null;
  readonly route: RouteView | null;
  /** The entity id, or null when it lives in a body that was not given. */
  readonly entity_id: string | null;
  /** The scope a PAT needs (DOMAIN:TYPE:ID:OP), with placeholders for what is unknown. */
  readonly scope: string | null;
  /** Further scopes the body makes the request need (fields the upstream also acts on, e.g. Ollama create's `from`). */
  readonly also_needs?: readonly string[];
  /** Other scopes that grant the same request. */
  readonly also_granted_by: readonly string[];
  /** Config roles that hold the operation (stored roles may add more). */
  readonly roles: readonly string[];
  /** The limit policies that would count the request (src/limits/policies.ts, as the data plane picks them), besides a PAT's own limits. */
  readonly limits?: readonly PolicyView[];
  readonly refused: Refusal | null;
}

/** A limit policy as `routes explain` shows it. */
export interface PolicyView {
  readonly name: string;
  readonly subject: string;
  readonly mode: string;
  readonly on_store_down: string;
  readonly requests_per_minute?: number;
  readonly tokens_per_minute?: number;
  readonly tokens_per_day?: number;
  readonly concurrent?: number;
}

const PROXY = "proxy";

function refusal(d: Denial): Refusal {
  const code = d.error;
  const message = code === "method_not_allowed" && d.allow !== undefined ? `${ERRORS.method_not_allowed.message} Allowed: ${d.allow.join(", ")}.` : (d.message ?? ERRORS[code].message);
  return { status: ERRORS[code].status, code, message, ...(d.allow === undefined ? {} : { allow: d.allow }) };
}

/** Explains one request against a route table and the config's roles. */
export async function explain(table: RouteTable, roles: ReadonlyMap<string, readonly string[]>, req: ExplainRequest, limits?: LimitSettings): Promise<Explanation> {
  const method = req.method.toUpperCase();
  const raw = stripOrigin(req.target);
  const base = { method, path: raw, domain: req.domain ?? null, route: null, entity_id: null, scope: null, also_granted_by: [], roles: [] };
  const target = splitTarget(raw, true);
  if (target === null) return { ...base, refused: refusal(new Denial("bad_path")) };
  const inUrl = tokenInUrl(target.rawPath, target.query);
  if (inUrl !== null) return { ...base, refused: refusal(inUrl) };
  // `/proxy/<domain>/…` as the gateway sees it; any other path is relative to /proxy/<domain>.
  const full = target.segments[0] === PROXY;
  if (full && target.segments.length < 2) return { ...base, refused: refusal(new Denial("no_route")) };
  const domain = full ? (target.segments[1] ?? null) : (req.domain ?? null);
  const at = { ...base, domain };
  const m = resolveRoute(table, method, target, full ? 2 : 0);
  if (m instanceof Denial) return { ...at, refused: refusal(m) };
  // An `?intent=` picks the route's variant (its own operation), as in the data plane.
  const r = routeForIntent(m.route, target.query);
  if (r instanceof Denial) return { ...at, refused: refusal(r) };
  const route: RouteView = { id: r.id, method: r.method, path: r.path, operation: r.operation, entity_type: r.entityType, entity: r.entity, body_limit: r.bodyLimit };
  const holding = [...roles].filter(([, ops]) => ops.includes("*") || ops.includes(r.operation)).map(([name]) => name);
  const withRoute = { ...at, route, roles: holding };

  const d = domain ?? "<domain>";
  const entity = await entityOf(r, d, m.params, target.query, req);
  if (entity instanceof Denial) return { ...withRoute, refused: refusal(entity) };
  const id = entity.id ?? (inBody(r.entity) ? `<${r.entity.field}>` : d);
  const others = [`${d}:${r.entityType}:*:${r.operation}`, `${d}:domains:${d}:${r.operation}`, `${d}:domains:*:${r.operation}`];
  const scope = `${d}:${r.entityType}:${id}:${r.operation}`;
  const also = entity.also.map((n) => `${n.domainId}:${n.entityType}:${n.entityId}:${n.operation}`);
  const policies = limits === undefined ? undefined : matchingPolicies(limits, { domainId: d, model: r.entityType === "models" ? (entity.id ?? "") : "", operation: r.operation }).map(policyView);
  return { ...withRoute, entity_id: entity.id, scope, ...(also.length > 0 ? { also_needs: also } : {}), also_granted_by: [...new Set(others)].filter((s) => s !== scope), ...(policies === undefined ? {} : { limits: policies }), refused: null };
}

/** The entity id (null when its body was not given) and the needs the body adds, read by the data plane's own steps. */
async function entityOf(route: Route, domain: string, params: ReadonlyMap<string, string>, query: string, req: ExplainRequest): Promise<{ id: string | null; also: readonly Need[] } | Denial> {
  const id = entityWithoutBody(route, domain, params, query);
  if (id instanceof Denial) return id;
  if (id !== null || !inBody(route.entity)) {
    // As the data plane's Bodies.streamed: a route that takes no body refuses one.
    if (req.body !== undefined && req.body.length > 0 && route.body === "none") return new Denial("body_not_accepted");
    return { id, also: [] };
  }
  const src = route.entity;
  if (req.body === undefined) {
    // No body to read: only what is refused whatever the body (the field in the query string) can be told.
    const refused = bodyRefusal(route, query, 1, src.from === "body" ? "application/json" : "multipart/form-data", undefined);
    return refused ?? { id: null, also: [] };
  }
  const type = req.contentType ?? (src.from === "body" ? "application/json" : multipartTypeOf(req.body));
  const refused = bodyRefusal(route, query, 1, type, undefined);
  if (refused !== null) return refused;
  if (req.body.length > route.bodyLimit) return bodyTooLarge(route.bodyLimit);
  const e = await entityOfBody(src, req.body, type);
  if (e instanceof Denial) return e;
  const also = alsoNeeds(route, domain, req.body);
  return also instanceof Denial ? also : { id: e, also };
}

function policyView(p: LimitSettings["policies"][number]): PolicyView {
  return {
    name: p.name, subject: p.subject, mode: p.mode, on_store_down: p.onStoreDown,
    ...(p.requestsPerMinute > 0 ? { requests_per_minute: p.requestsPerMinute } : {}),
    ...(p.tokensPerMinute > 0 ? { tokens_per_minute: p.tokensPerMinute } : {}),
    ...(p.tokensPerDay > 0 ? { tokens_per_day: p.tokensPerDay } : {}),
    ...(p.concurrent > 0 ? { concurrent: p.concurrent } : {}),
  };
}

/** A full URL → its path and query; anything else as given. */
function stripOrigin(target: string): string {
  if (!/^https?:\/\//i.test(target)) return target;
  const rest = target.slice(target.indexOf("//") + 2);
  const slash = rest.search(/[/?]/);
  return slash < 0 ? "/" : rest[slash] === "?" ? `/${rest.slice(slash)}` : rest.slice(slash);
}

// A multipart file from disk carries no Content-Type: its first line names the boundary.
function multipartTypeOf(body: Buffer): string {
  const line = body.subarray(0, Math.min(body.length, 80)).toString("latin1").split(/\r?\n/)[0] ?? "";
  return line.startsWith("--") && line.length > 2 ? `multipart/form-data; boundary="${line.slice(2)}"` : "";
}
