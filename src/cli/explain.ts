/**
 * `routes explain`, offline: what the data plane would decide about a request
 * before any token is looked at — which route, operation and entity, and so
 * which scope a PAT needs. It runs the gateway's own path rules, route match
 * and entity extraction (src/routing/), in the pipeline's order.
 */
import { ERRORS, type ErrorCode } from "../errors.ts";
import { entityFromJson, entityFromMultipart, queryHasParam, validateEntityId } from "../routing/entity.ts";
import { splitTarget } from "../routing/normalize.ts";
import type { EntitySource, RouteTable } from "../routing/table.ts";

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
  /** Other scopes that grant the same request. */
  readonly also_granted_by: readonly string[];
  /** Config roles that hold the operation (stored roles may add more). */
  readonly roles: readonly string[];
  readonly refused: Refusal | null;
}

const PROXY = "proxy";

function refusal(code: ErrorCode, message?: string, allow?: readonly string[]): Refusal {
  return { status: ERRORS[code].status, code, message: message ?? ERRORS[code].message, ...(allow === undefined ? {} : { allow }) };
}

/** Explains one request against a route table and the config's roles. */
export async function explain(table: RouteTable, roles: ReadonlyMap<string, readonly string[]>, req: ExplainRequest): Promise<Explanation> {
  const method = req.method.toUpperCase();
  const raw = stripOrigin(req.target);
  const base = { method, path: raw, domain: req.domain ?? null, route: null, entity_id: null, scope: null, also_granted_by: [], roles: [] };
  const target = splitTarget(raw);
  if (target === null) return { ...base, refused: refusal("bad_path") };
  // `/proxy/<domain>/…` as the gateway sees it; any other path is relative to /proxy/<domain>.
  const full = target.segments[0] === PROXY;
  if (full && target.segments.length < 2) return { ...base, refused: refusal("no_route") };
  const domain = full ? (target.segments[1] ?? null) : (req.domain ?? null);
  const at = { ...base, domain };
  const m = table.match(method, target.segments, full ? 2 : 0);
  if (m.kind === "method_not_allowed") return { ...at, refused: refusal("method_not_allowed", `${ERRORS.method_not_allowed.message} Allowed: ${m.allow.join(", ")}.`, m.allow) };
  if (m.kind === "no_route") return { ...at, refused: refusal("no_route") };
  const r = m.route;
  const route: RouteView = { id: r.id, method: r.method, path: r.path, operation: r.operation, entity_type: r.entityType, entity: r.entity, body_limit: r.bodyLimit };
  const holding = [...roles].filter(([, ops]) => ops.includes("*") || ops.includes(r.operation)).map(([name]) => name);
  const withRoute = { ...at, route, roles: holding };

  const entity = await entityOf(r.entity, domain, m.params, target.query, req, r.bodyLimit);
  if (!entity.ok) return { ...withRoute, refused: entity.refused };
  const d = domain ?? "<domain>";
  const id = entity.id ?? (r.entity.from === "body" || r.entity.from === "form" ? `<${r.entity.field}>` : d);
  const others = [`${d}:${r.entityType}:*:${r.operation}`, `${d}:domains:${d}:${r.operation}`, `${d}:domains:*:${r.operation}`];
  const scope = `${d}:${r.entityType}:${id}:${r.operation}`;
  return { ...withRoute, entity_id: entity.id, scope, also_granted_by: [...new Set(others)].filter((s) => s !== scope), refused: null };
}

type EntityOutcome = { readonly ok: true; readonly id: string | null } | { readonly ok: false; readonly refused: Refusal };

/** The entity id from where the route says, as the pipeline reads it; null when its body was not given. */
async function entityOf(src: EntitySource, domain: string | null, params: ReadonlyMap<string, string>, query: string, req: ExplainRequest, limit: number): Promise<EntityOutcome> {
  if (src.from === "domain") return { ok: true, id: domain };
  if (src.from === "path") {
    const e = validateEntityId(params.get(src.param), `The path parameter "${src.param}"`);
    return e.ok ? { ok: true, id: e.id } : { ok: false, refused: refusal(e.code, e.message) };
  }
  if (queryHasParam(query, src.field)) return { ok: false, refused: refusal("entity_ambiguous", `"${src.field}" must be sent once, in the body, not in the query string.`) };
  if (req.body === undefined) return { ok: true, id: null };
  const type = req.contentType ?? (src.from === "body" ? "application/json" : multipartTypeOf(req.body));
  if (src.from === "body" ? !isJson(type) : !type.toLowerCase().startsWith("multipart/form-data")) {
    return { ok: false, refused: refusal("unsupported_media_type", `This route reads "${src.field}" from a ${src.from === "body" ? "JSON (application/json)" : "multipart/form-data"} body.`) };
  }
  if (req.body.length > limit) return { ok: false, refused: refusal("body_too_large", `The body exceeds this route's limit of ${limit} bytes.`) };
  const e = src.from === "body" ? entityFromJson(req.body, src.field, src.fallback ?? null) : await entityFromMultipart(req.body, type, src.field);
  return e.ok ? { ok: true, id: e.id } : { ok: false, refused: refusal(e.code, e.message) };
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

// The same test as the pipeline's: no Content-Type counts as JSON.
function isJson(type: string): boolean {
  if (type === "") return true;
  const t = type.toLowerCase();
  const semi = t.indexOf(";");
  const base = (semi === -1 ? t : t.slice(0, semi)).trim();
  return base === "application/json" || base.endsWith("+json");
}
