/**
 * What a request needs, as the route table says: its route, then the id of the
 * entity it acts on. These are the data plane's first and third steps, and
 * `routes explain` runs the very same functions offline. Each returns a value
 * or a Denial; reading the body itself (I/O) is left to the caller.
 */
import { Denial } from "../errors.ts";
import { bodyEncodingProblem } from "./encoding.ts";
import { entityFromJson, entityFromMultipart, entityFromQuery, queryHasParam, validateEntityId, type EntityResult } from "./entity.ts";
import type { Target } from "./normalize.ts";
import { INTENT_PARAM, type EntitySource, type Match, type Route, type RouteTable } from "./table.ts";

/** A request matched to its route, with the path parameters it bound. */
export type RouteMatch = Extract<Match, { kind: "ok" }>;

const NO_ROUTE = new Denial("no_route");
const MISPLACED_SLASH = new Denial("bad_path", { message: "An encoded '/' (%2F) is accepted only inside a path parameter that takes '/' ({name+})." });

/**
 * The route for `method` and the target's decoded segments from index `start`
 * on: 404, or 405 with the methods the path has. An encoded `/` is refused
 * (400) unless it lies inside the matched route's `{name+}` parameter.
 */
export function resolveRoute(table: RouteTable, method: string, target: Target, start: number): RouteMatch | Denial {
  const m = table.match(method, target.segments, start);
  const misplaced = target.slashedAt !== undefined && (m.kind !== "ok" || m.restAt < 0 || target.slashedAt < m.restAt);
  if (m.kind === "ok" && !misplaced) return m;
  // No route decides the error shape: the routes nearest the path do (an Ollama client's /api/… gets Ollama's).
  const envelope = table.envelopeNear(target.segments, start);
  const d = misplaced ? MISPLACED_SLASH : m.kind === "no_route" ? NO_ROUTE : new Denial("method_not_allowed", { allow: m.kind === "method_not_allowed" ? m.allow : [] });
  return envelope === "openai" ? d : new Denial(d.error, { message: d.message, allow: d.allow, envelope });
}

/**
 * The route as the request asks for it: a route with `intents` and an
 * `?intent=` in the query is the intent's variant (its own operation); the
 * route itself otherwise. Decided before the token, since the operation is.
 */
export function routeForIntent(route: Route, query: string): Route | Denial {
  if (route.intents === null || !queryHasParam(query, INTENT_PARAM)) return route;
  const e = entityFromQuery(query, INTENT_PARAM);
  if (!e.ok) return new Denial(e.code === "entity_missing" ? "entity_ambiguous" : e.code, { message: e.message.replace("The query parameter", "The intent parameter"), param: INTENT_PARAM });
  const variant = route.intents.get(e.id);
  if (variant === undefined) return new Denial("bad_request", { message: `Unknown intent "${e.id}" (known: ${[...route.intents.keys()].join(", ")}).`, param: INTENT_PARAM });
  return variant;
}

/** The entity of an intent's variant: every model, since the session picks one later (each is checked then). */
export const EVERY_ENTITY = "*";

/**
 * The entity id when the route takes it from the path, the query or the
 * domain; null when it is in the body, which must be read first.
 */
export function entityWithoutBody(route: Route, domainId: string, params: ReadonlyMap<string, string>, query = ""): string | Denial | null {
  const src = route.entity;
  if (src.from === "domain") return domainId;
  if (src.from === "query") {
    if (route.intent !== null) {
      // An intent's variant names no entity in the query: with a model beside it, which one the upstream serves is unclear.
      if (queryHasParam(query, src.param)) return new Denial("entity_ambiguous", { message: `Send either "${src.param}" or "${INTENT_PARAM}", not both.`, param: src.param });
      return EVERY_ENTITY;
    }
    return entityOrDenial(entityFromQuery(query, src.param), src.param);
  }
  if (src.from !== "path") return null;
  return entityOrDenial(validateEntityId(params.get(src.param), `The path parameter "${src.param}"`), null);
}

/**
 * Whether a body that names the entity may be read at all: the field only in
 * the body (not also in the query string), one Content-Type, the route's media
 * type, identity-encoded UTF-8 (so the backend reads the bytes the gateway
 * checked). Checked before a byte of the body is read.
 */
export function bodyRefusal(route: Route, query: string, contentTypes: number, contentType: string, contentEncoding: string | undefined): Denial | null {
  const src = route.entity;
  if (!inBody(src)) return null;
  if (queryHasParam(query, src.field)) {
    return new Denial("entity_ambiguous", { param: src.field, message: `"${src.field}" must be sent once, in the body, not in the query string.` });
  }
  if (contentTypes > 1) return new Denial("ambiguous_header", { message: "Send exactly one Content-Type header." });
  if (src.from === "body" ? !isJson(contentType) : !contentType.toLowerCase().startsWith("multipart/form-data")) {
    const kind = src.from === "body" ? "JSON (application/json)" : "multipart/form-data";
    return new Denial("unsupported_media_type", { message: `This route reads "${src.field}" from a ${kind} body.` });
  }
  const encoding = bodyEncodingProblem(contentEncoding, contentType);
  return encoding === null ? null : new Denial("unsupported_encoding", { message: encoding });
}

/** Where a route that reads its body finds the entity. */
export type BodySource = Extract<EntitySource, { from: "body" | "form" }>;

/** Whether the route's entity is in its body (entityWithoutBody answered null). */
export function inBody(src: EntitySource): src is BodySource {
  return src.from === "body" || src.from === "form";
}

/** The entity id in a read body (a JSON field or a multipart form field), exactly once. */
export function entityOfBody(src: BodySource, body: Buffer, contentType: string): string | Denial | Promise<string | Denial> {
  if (src.from === "form") return entityFromMultipart(body, contentType, src.field).then((e) => entityOrDenial(e, src.field));
  return entityOrDenial(entityFromJson(body, src.field, src.fallback ?? null), src.field);
}

function entityOrDenial(e: EntityResult, param: string | null): string | Denial {
  if (e.ok) return e.id;
  return new Denial(e.code, { message: e.message, param: param ?? undefined });
}

/** Whether a Content-Type is JSON (no Content-Type counts as JSON, as the OpenAI SDKs send it). */
export function isJson(type: string): boolean {
  if (type === "") return true;
  const t = type.toLowerCase();
  const semi = t.indexOf(";");
  const base = (semi === -1 ? t : t.slice(0, semi)).trim();
  return base === "application/json" || base.endsWith("+json");
}

/** How many times a header appears in Node's flat rawHeaders list (`name` in lower case). */
export function countHeader(raw: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === name.length && (raw[i] as string).toLowerCase() === name) n++;
  return n;
}
