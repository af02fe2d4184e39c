/**
 * The route table: which method + path is which operation on which entity.
 *
 * Everything is decided when routes.yaml is loaded (syntax, catalog checks,
 * overlaps) and compiled into a static Map plus a short list of parametric
 * templates per method; `match` only compares strings.
 */
import { readFileSync } from "node:fs";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document, Node as YamlNode } from "yaml";
import { applies } from "../config/catalog.ts";
import type { Catalog } from "../config/catalog.ts";
import { ERROR_ENVELOPES, type ErrorEnvelope } from "../errors.ts";

/** Where a route reads the id of the entity it acts on. */
export type EntitySource =
  | { readonly from: "path"; readonly param: string }
  | {
      readonly from: "body";
      readonly field: string;
      /** A second field naming the same entity, read when `field` is absent (Ollama's older `name`); both present must agree. */
      readonly fallback?: string;
    }
  | { readonly from: "form"; readonly field: string }
  /** A query parameter (the Realtime API's `?model=`), sent exactly once and spelled exactly. */
  | { readonly from: "query"; readonly param: string }
  | { readonly from: "domain" };

/** One validated route. `path` is the template, relative to `/proxy/<domain>`. */
export interface Route {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly operation: string;
  readonly entityType: string;
  readonly entity: EntitySource;
  /** Largest request body accepted, in bytes. */
  readonly bodyLimit: number;
  /**
   * What happens to a request body: `read` (buffered for the entity: from body
   * or form), `stream` (passed through, under the streamed-body deadlines) or
   * `none` (a request with a body is refused). Default: `none` for GET, HEAD
   * and OPTIONS, `stream` otherwise; routes.yaml `body:` sets it.
   */
  readonly body: "read" | "stream" | "none";
  /**
   * Other JSON body fields that make the upstream read, copy, fetch or proxy
   * something (Ollama create's base model, copy's source, create's files):
   * each, when present, is authorized with its own operations, or refused.
   */
  readonly also: readonly AlsoNeeds[];
  /** The shape of the gateway's own error bodies on this route (its clients' format). */
  readonly errors: ErrorEnvelope;
  /** `websocket`: the route is a WebSocket upgrade (the Realtime API), relayed frame by frame; null: plain HTTP. */
  readonly upgrade: "websocket" | null;
  /**
   * `?intent=<value>` → the same route under another operation (the Realtime
   * API's `intent=transcription`: `llm_transcription`), whose entity is every
   * model (it is chosen later, in the session); null when the route has none.
   */
  readonly intents: ReadonlyMap<string, Route> | null;
  /** On an intent's variant, its intent value; null on every route as declared. */
  readonly intent: string | null;
}

/**
 * A further body field: when present, it names an entity of the route's type
 * that needs every one of `operations`, or (`refuse` set) it is refused with
 * that reason, because it names nothing a scope can grant (blob digests, a
 * remote host).
 */
export interface AlsoNeeds {
  readonly field: string;
  readonly operations: readonly string[];
  readonly refuse: string | null;
}

/** The outcome of matching one request against the table. */
export type Match =
  /** `restAt`: the index in `segments` where the route's `{name+}` parameter starts, -1 when it has none. */
  | { readonly kind: "ok"; readonly route: Route; readonly params: ReadonlyMap<string, string>; readonly restAt: number }
  | { readonly kind: "no_route" }
  | { readonly kind: "method_not_allowed"; readonly allow: readonly string[] };

/** routes.yaml is invalid; the message lists every problem as `file:line:col: problem`, one per line. */
export class RouteTableError extends Error {
  override readonly name = "RouteTableError";
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join("\n"));
    this.problems = problems;
  }
}

/** Methods a route may use. */
export const METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
// A body-borne entity needs a method that carries a body.
const BODY_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Default per-route body limit when the table sets none. */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;
/** Upper bound on any body_limit: the body is buffered when the entity is in it. */
export const MAX_BODY_LIMIT = 1024 * 1024 * 1024;

// ---------------------------------------------------------------- templates

const LIT = 0;
const PARAM = 1;
const REST = 2;
interface Seg {
  readonly kind: typeof LIT | typeof PARAM | typeof REST;
  /** literal text, or the parameter name */
  readonly text: string;
}

interface Compiled {
  readonly route: Route;
  readonly segs: readonly Seg[];
  readonly hasRest: boolean;
}

interface MethodRoutes {
  /** template path (no params) → route */
  readonly byPath: Map<string, Route>;
  readonly dynamic: Compiled[];
}

const ID_RE = /^[a-z0-9_.-]{1,100}$/;
const PARAM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
// Same alphabet splitTarget accepts unencoded, minus '%': a literal is compared
// with the decoded request segment, so it must be written decoded and canonical.
const LITERAL_RE = /^[A-Za-z0-9\-._~!$&'()*+,=:@]+$/;
// A field name made only of these cannot be spelled with JSON escapes other
// than \uXXXX, which entity.ts relies on for its fast path.
const FIELD_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Parse a path template into segments, or return a description of what is wrong. */
function compileTemplate(path: string): Seg[] | string {
  if (!path.startsWith("/")) return `path "${path}" must start with "/"`;
  if (path === "/") return [];
  const parts = path.slice(1).split("/");
  const segs: Seg[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? "";
    if (p === "") return `path "${path}" has an empty segment (no "//" and no trailing "/")`;
    if (p.startsWith("{") && p.endsWith("}")) {
      const rest = p.endsWith("+}");
      const name = p.slice(1, rest ? -2 : -1);
      if (!PARAM_NAME_RE.test(name)) return `path "${path}": bad parameter "${p}" (use {name} or {name+}, name = [A-Za-z_][A-Za-z0-9_]*)`;
      if (seen.has(name)) return `path "${path}": parameter "${name}" appears twice`;
      if (rest && i !== parts.length - 1) return `path "${path}": "{${name}+}" must be the last segment`;
      seen.add(name);
      segs.push({ kind: rest ? REST : PARAM, text: name });
      continue;
    }
    if (p.includes("{") || p.includes("}")) return `path "${path}": a parameter must be a whole segment ("${p}")`;
    if (p === "." || p === "..") return `path "${path}": "." and ".." segments are not allowed`;
    if (!LITERAL_RE.test(p)) return `path "${path}": segment "${p}" must be written decoded, using only A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , = : @`;
    segs.push({ kind: LIT, text: p });
  }
  return segs;
}

/** A concrete path both templates match, or null when they are disjoint. */
function overlapWitness(a: readonly Seg[], b: readonly Seg[]): string | null {
  const out: string[] = [];
  const fill = (segs: readonly Seg[], from: number): void => {
    for (let k = from; k < segs.length; k++) {
      const s = segs[k];
      out.push(s !== undefined && s.kind === LIT ? s.text : "x");
    }
  };
  for (let i = 0; ; i++) {
    const sa = a[i];
    const sb = b[i];
    // A {rest+} matches one or more segments, so it overlaps any non-empty remainder.
    if (sa?.kind === REST) {
      if (sb === undefined) return null;
      fill(b, i);
      break;
    }
    if (sb?.kind === REST) {
      if (sa === undefined) return null;
      fill(a, i);
      break;
    }
    if (sa === undefined || sb === undefined) {
      if (sa !== sb) return null;
      break;
    }
    if (sa.kind === LIT && sb.kind === LIT) {
      if (sa.text !== sb.text) return null;
      out.push(sa.text);
    } else if (sa.kind === LIT) {
      out.push(sa.text);
    } else if (sb.kind === LIT) {
      out.push(sb.text);
    } else {
      out.push("x");
    }
  }
  return "/" + out.join("/");
}

// ---------------------------------------------------------------- matching

const NO_ROUTE: Match = Object.freeze({ kind: "no_route" });
const NO_PARAMS: ReadonlyMap<string, string> = new Map();

/** A compiled, immutable route table. */
export class RouteTable {
  readonly routes: readonly Route[];
  readonly #byMethod: Map<string, MethodRoutes>;
  /** Every route's literal start (its segments before the first parameter), for envelopeNear. */
  readonly #starts: readonly { readonly lits: readonly string[]; readonly errors: ErrorEnvelope }[];

  /** Compile routes already validated by parseRouteTable (throws on a bad template). */
  constructor(routes: readonly Route[]) {
    this.routes = Object.freeze(routes.slice());
    this.#byMethod = new Map();
    // Sorted so `allow` lists come out in a stable order.
    const methods = [...new Set(routes.map((r) => r.method))].sort();
    for (const m of methods) this.#byMethod.set(m, { byPath: new Map(), dynamic: [] });
    const starts: { lits: string[]; errors: ErrorEnvelope }[] = [];
    this.#starts = starts;
    for (const route of routes) {
      const segs = compileTemplate(route.path);
      if (typeof segs === "string") throw new Error(`route ${route.id}: ${segs}`);
      const lits: string[] = [];
      for (const s of segs) {
        if (s.kind !== LIT) break;
        lits.push(s.text);
      }
      starts.push({ lits, errors: route.errors });
      const mr = this.#byMethod.get(route.method);
      if (mr === undefined) continue; // unreachable: every method was added above
      if (segs.every((s) => s.kind === LIT)) {
        mr.byPath.set(route.path, route);
      } else {
        mr.dynamic.push({ route, segs, hasRest: segs.some((s) => s.kind === REST) });
      }
    }
  }

  /**
   * Match a request. `segments` are splitTarget's decoded segments; `start`
   * skips a prefix such as `proxy/<domain>` without copying the array.
   */
  match(method: string, segments: readonly string[], start = 0): Match {
    let key = "";
    for (let i = start; i < segments.length; i++) key += "/" + (segments[i] ?? "");
    if (key === "") key = "/";

    const own = this.#byMethod.get(method);
    if (own !== undefined) {
      const hit = matchIn(own, key, segments, start);
      if (hit !== null) return hit;
    }
    // Cold path: tell a wrong method (405) apart from an unknown path (404).
    let allow: string[] | null = null;
    for (const [m, other] of this.#byMethod) {
      if (m !== method && matchIn(other, key, segments, start) !== null) (allow ??= []).push(m);
    }
    return allow === null ? NO_ROUTE : { kind: "method_not_allowed", allow };
  }

  /**
   * The error envelope for a request no route takes (404, 405, a misplaced
   * `%2F`): that of the routes whose literal start shares the most segments
   * with its path, so `/api/…` of an Ollama client gets Ollama's shape and
   * `/v1/…` OpenAI's, as routes.yaml declares them; "openai" when no route
   * shares a segment or the nearest ones disagree. Cold path: refusals only.
   */
  envelopeNear(segments: readonly string[], start = 0): ErrorEnvelope {
    let best = 0;
    let envelope: ErrorEnvelope | null = null;
    for (const { lits, errors } of this.#starts) {
      let n = 0;
      while (n < lits.length && lits[n] === segments[start + n]) n++;
      if (n === 0 || n < best) continue;
      if (n > best) {
        best = n;
        envelope = errors;
      } else if (envelope !== errors) envelope = null;
    }
    return best === 0 || envelope === null ? "openai" : envelope;
  }
}

function matchIn(mr: MethodRoutes, key: string, segments: readonly string[], start: number): Match | null {
  const route = mr.byPath.get(key);
  if (route !== undefined) return { kind: "ok", route, params: NO_PARAMS, restAt: -1 };
  const n = segments.length - start;
  for (const c of mr.dynamic) {
    const segs = c.segs;
    if (c.hasRest ? n < segs.length : n !== segs.length) continue;
    let ok = true;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      if (s !== undefined && s.kind === LIT && s.text !== segments[start + i]) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    const params = new Map<string, string>();
    let restAt = -1;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      if (s === undefined || s.kind === LIT) continue;
      if (s.kind === REST) restAt = start + i;
      params.set(s.text, s.kind === REST ? segments.slice(start + i).join("/") : (segments[start + i] ?? ""));
    }
    return { kind: "ok", route: c.route, params, restAt };
  }
  return null;
}

// ---------------------------------------------------------------- loading

const TOP_KEYS = ["version", "defaults", "routes"] as const;
const DEFAULTS_KEYS = ["body_limit"] as const;
const ROUTE_KEYS = ["id", "description", "method", "path", "operation", "entity", "body_limit", "body", "errors", "upgrade", "intents"] as const;
// Methods whose requests carry no body by convention: a route for them takes none unless it says so.
const BODYLESS_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);
const ENTITY_KEYS = ["type", "from", "field", "fallback", "param", "also"] as const;
const ALSO_KEYS = ["field", "operation", "refuse"] as const;
const FROM_VALUES = ["body", "form", "path", "query", "domain"] as const;
/** The query parameter that picks one of a route's `intents`. */
export const INTENT_PARAM = "intent";

/** Problems collected with their source positions. */
class Problems {
  readonly list: string[] = [];
  readonly #file: string;
  readonly #lines: LineCounter;

  constructor(file: string, lines: LineCounter) {
    this.#file = file;
    this.#lines = lines;
  }

  where(node: YamlNode | null | undefined): string {
    return this.at(node?.range?.[0] ?? 0);
  }

  at(offset: number): string {
    const { line, col } = this.#lines.linePos(offset);
    return `${this.#file}:${line}:${col}`;
  }

  add(node: YamlNode | null | undefined, message: string): void {
    this.list.push(`${this.where(node)}: ${message}`);
  }
}

interface Entry {
  readonly key: YamlNode;
  readonly value: YamlNode | null;
}

/**
 * Read a mapping, reporting unknown keys (so a typo is an error, not a
 * silently ignored line) and non-string keys. Duplicate keys are already
 * rejected by the YAML parser.
 */
function readMap(
  doc: Document,
  node: YamlNode | null,
  known: readonly string[],
  what: string,
  p: Problems,
): Map<string, Entry> | null {
  const n = deref(doc, node);
  if (!isMap(n)) {
    p.add(node, `${what} must be a mapping`);
    return null;
  }
  const out = new Map<string, Entry>();
  for (const pair of n.items) {
    const k = pair.key as YamlNode | null;
    if (!isScalar(k) || typeof k.value !== "string") {
      p.add(k ?? n, `${what}: keys must be strings`);
      continue;
    }
    const name = k.value;
    if (!known.includes(name)) {
      const hint = closest(name, known);
      p.add(k, `${what}: unknown key "${name}"${hint === null ? "" : ` (did you mean "${hint}"?)`} (known: ${known.join(", ")})`);
      continue;
    }
    out.set(name, { key: k, value: deref(doc, pair.value as YamlNode | null) });
  }
  return out;
}

/**
 * `also: [{ field, operation }, …]`: `operation` one name or a list (all are
 * needed), or `refuse: <reason>` instead; fields distinct from the entity's
 * fields and from each other.
 */
function readAlso(doc: Document, entry: Entry, taken: readonly (string | null)[], what: string, p: Problems, out: AlsoNeeds[]): void {
  const seq = entry.value;
  if (!isSeq(seq) || seq.items.length === 0) {
    p.add(seq ?? entry.key, `${what} must be a non-empty list`);
    return;
  }
  for (const item of seq.items) {
    const m = readMap(doc, deref(doc, item as YamlNode | null), ALSO_KEYS, what, p);
    if (m === null) continue;
    const f = str(required(m, "field", item as YamlNode, what, p), `${what}.field`, p);
    const opEntry = m.get("operation");
    const refuseEntry = m.get("refuse");
    if ((opEntry === undefined) === (refuseEntry === undefined)) {
      p.add(item as YamlNode, `${what}: give exactly one of "operation" (what the field needs) and "refuse" (why it is refused)`);
      continue;
    }
    let operations: string[] = [];
    let refuse: string | null = null;
    if (refuseEntry !== undefined) {
      refuse = str(refuseEntry, `${what}.refuse`, p);
      if (refuse === null) continue;
    } else if (opEntry !== undefined) {
      const ops = opEntry.value;
      if (isSeq(ops)) {
        for (const o of ops.items) {
          const v = isScalar(o) && typeof o.value === "string" && o.value !== "" ? o.value : null;
          if (v === null) p.add(o as YamlNode, `${what}.operation: each entry must be a non-empty string`);
          else operations.push(v);
        }
        if (ops.items.length === 0) p.add(ops, `${what}.operation must name at least one operation`);
      } else {
        const op = str(opEntry, `${what}.operation`, p);
        if (op !== null) operations = [op];
      }
      if (operations.length === 0) continue;
    }
    if (f === null) continue;
    if (!FIELD_RE.test(f)) p.add(m.get("field")?.value, `${what}.field must match [A-Za-z_][A-Za-z0-9_.-]{0,63}`);
    else if (taken.includes(f) || out.some((a) => a.field === f)) p.add(m.get("field")?.value, `${what}: field "${f}" is named twice`);
    else out.push(Object.freeze({ field: f, operations: Object.freeze(operations), refuse }));
  }
}

/** `intents: { <value>: <operation> }`: each value of `?intent=` and the operation it is authorized as. */
function readIntents(doc: Document, entry: Entry | undefined, what: string, catalog: Catalog, entityType: string | null, p: Problems): Map<string, string> {
  const out = new Map<string, string>();
  if (entry === undefined) return out;
  const n = entry.value;
  if (!isMap(n) || n.items.length === 0) {
    p.add(n ?? entry.key, `${what}: intents must be a non-empty mapping of intent → operation`);
    return out;
  }
  for (const pair of n.items) {
    const k = pair.key as YamlNode | null;
    const v = deref(doc, pair.value as YamlNode | null);
    const key = isScalar(k) && typeof k.value === "string" ? k.value : null;
    const op = isScalar(v) && typeof v.value === "string" ? v.value : null;
    if (key === null || !FIELD_RE.test(key)) p.add(k ?? n, `${what}: intents: each intent must match [A-Za-z_][A-Za-z0-9_.-]{0,63}`);
    else if (op === null || !catalog.operations.has(op)) p.add(v ?? k, `${what}: intents.${key}: unknown operation "${String(op)}"`);
    else if (entityType !== null && !applies(catalog, entityType, op)) p.add(v, `${what}: intents.${key}: operation "${op}" does not apply to entity type "${entityType}"`);
    else out.set(key, op);
  }
  return out;
}

function deref(doc: Document, node: YamlNode | null): YamlNode | null {
  if (isAlias(node)) return (node.resolve(doc) as YamlNode | undefined) ?? null;
  return node;
}

function required(m: Map<string, Entry>, key: string, owner: YamlNode | null, what: string, p: Problems): Entry | null {
  const e = m.get(key);
  if (e === undefined) p.add(owner, `${what}: missing required key "${key}"`);
  return e ?? null;
}

function str(e: Entry | null | undefined, what: string, p: Problems): string | null {
  if (e === null || e === undefined) return null;
  if (!isScalar(e.value) || typeof e.value.value !== "string" || e.value.value === "") {
    p.add(e.value ?? e.key, `${what} must be a non-empty string`);
    return null;
  }
  return e.value.value;
}

/** `10mb`, `512kb`, `1gb`, `2048b` or a plain number of bytes. Units are binary (1kb = 1024 bytes). */
export function parseByteSize(v: unknown): number | null {
  let n: number;
  if (typeof v === "number") {
    n = v;
  } else if (typeof v === "string") {
    const m = /^\s*(\d+)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$/i.exec(v);
    if (m === null) return null;
    const unit = (m[2] ?? "b").toLowerCase()[0];
    const mult = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
    n = Number(m[1]) * mult;
  } else {
    return null;
  }
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

function bodyLimit(e: Entry | undefined, fallback: number, what: string, p: Problems): number {
  if (e === undefined) return fallback;
  const raw = isScalar(e.value) ? e.value.value : undefined;
  const n = parseByteSize(raw);
  if (n === null) {
    p.add(e.value ?? e.key, `${what}: body_limit must be a size like 10mb, 512kb or a number of bytes`);
    return fallback;
  }
  if (n > MAX_BODY_LIMIT) {
    p.add(e.value ?? e.key, `${what}: body_limit ${String(raw)} is above the maximum of 1gb`);
    return fallback;
  }
  return n;
}

/** `errors: openai | ollama`: the envelope of the gateway's own errors on the route (default openai). */
function errorEnvelope(e: Entry | undefined, what: string, p: Problems): ErrorEnvelope {
  if (e === undefined) return "openai";
  const v = isScalar(e.value) ? e.value.value : undefined;
  if (typeof v === "string" && (ERROR_ENVELOPES as readonly string[]).includes(v)) return v as ErrorEnvelope;
  p.add(e.value ?? e.key, `${what}: errors must be one of ${ERROR_ENVELOPES.join(", ")} (the shape of the gateway's error bodies on this route)`);
  return "openai";
}

/** A route as read; `route` is null when some field is invalid, but the
 * overlap check still runs on any route whose id, method and path are valid. */
interface Draft {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly segs: readonly Seg[];
  readonly node: YamlNode | null;
  readonly route: Route | null;
}

/** Validate and compile routes.yaml text against the catalog; throws RouteTableError. */
export function parseRouteTable(text: string, fileName: string, catalog: Catalog): RouteTable {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const p = new Problems(fileName, lines);
  for (const e of [...doc.errors, ...doc.warnings]) {
    p.list.push(`${p.at(e.pos[0])}: ${e.message}`);
  }
  if (p.list.length > 0) throw new RouteTableError(p.list);

  const root = doc.contents as YamlNode | null;
  if (root === null) throw new RouteTableError([`${fileName}:1:1: the file is empty`]);
  const top = readMap(doc, root, TOP_KEYS, "routes file", p);
  if (top === null) throw new RouteTableError(p.list);

  const version = required(top, "version", root, "routes file", p);
  if (version !== null && !(isScalar(version.value) && version.value.value === 1)) {
    p.add(version.value ?? version.key, `unsupported version (this gateway reads version: 1)`);
  }

  let defaultLimit = DEFAULT_BODY_LIMIT;
  const defaults = top.get("defaults");
  if (defaults !== undefined) {
    const dm = readMap(doc, defaults.value, DEFAULTS_KEYS, "defaults", p);
    if (dm !== null) defaultLimit = bodyLimit(dm.get("body_limit"), DEFAULT_BODY_LIMIT, "defaults", p);
  }

  const drafts: Draft[] = [];
  const routesEntry = required(top, "routes", root, "routes file", p);
  if (routesEntry !== null) {
    const seq = routesEntry.value;
    if (!isSeq(seq) || seq.items.length === 0) {
      p.add(seq ?? routesEntry.key, "routes must be a non-empty list");
    } else {
      const ids = new Map<string, YamlNode | null>();
      seq.items.forEach((item, i) => {
        const node = deref(doc, item as YamlNode | null);
        const d = readRoute(doc, node, i, defaultLimit, catalog, p);
        if (d === null) return;
        const prev = ids.get(d.id);
        if (prev !== undefined) {
          p.add(node, `duplicate route id "${d.id}" (first defined at ${p.where(prev)})`);
          return;
        }
        ids.set(d.id, node);
        drafts.push(d);
      });
    }
  }

  // Two routes of one method must never match the same path: which one wins
  // would depend on table order, and a scope decision must not.
  for (let i = 0; i < drafts.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = drafts[i];
      const b = drafts[j];
      if (a === undefined || b === undefined || a.method !== b.method) continue;
      const w = overlapWitness(a.segs, b.segs);
      if (w !== null) {
        p.add(
          a.node,
          `route "${a.id}" (${a.method} ${a.path}) overlaps route "${b.id}" ` +
            `(${b.method} ${b.path}) at ${p.where(b.node)}: both match ${w}`,
        );
      }
    }
  }

  const routes: Route[] = [];
  for (const d of drafts) if (d.route !== null) routes.push(d.route);
  if (p.list.length > 0) throw new RouteTableError(p.list);
  return new RouteTable(routes);
}

function readRoute(
  doc: Document,
  node: YamlNode | null,
  index: number,
  defaultLimit: number,
  catalog: Catalog,
  p: Problems,
): Draft | null {
  const before = p.list.length;
  const m = readMap(doc, node, ROUTE_KEYS, `routes[${index}]`, p);
  if (m === null) return null;

  const id = str(required(m, "id", node, `routes[${index}]`, p), "id", p);
  const what = id === null ? `routes[${index}]` : `route "${id}"`;
  if (id !== null && !ID_RE.test(id)) p.add(m.get("id")?.value, `${what}: id must match [a-z0-9_.-]{1,100}`);

  const desc = m.get("description");
  if (desc !== undefined) str(desc, `${what}: description`, p);

  const methodEntry = required(m, "method", node, what, p);
  let method = str(methodEntry, `${what}: method`, p);
  if (method !== null) {
    method = method.toUpperCase();
    if (!METHODS.has(method)) {
      p.add(methodEntry?.value, `${what}: unknown method "${method}" (allowed: ${[...METHODS].join(", ")})`);
    }
  }

  const pathEntry = required(m, "path", node, what, p);
  const path = str(pathEntry, `${what}: path`, p);
  let segs: Seg[] | null = null;
  if (path !== null) {
    const c = compileTemplate(path);
    if (typeof c === "string") p.add(pathEntry?.value, `${what}: ${c}`);
    else segs = c;
  }

  const opEntry = required(m, "operation", node, what, p);
  const operation = str(opEntry, `${what}: operation`, p);
  if (operation !== null && !catalog.operations.has(operation)) {
    p.add(opEntry?.value, `${what}: unknown operation "${operation}" (known: ${[...catalog.operations].join(", ")})`);
  }

  const limit = bodyLimit(m.get("body_limit"), defaultLimit, what, p);
  const errors = errorEnvelope(m.get("errors"), what, p);

  const entEntry = required(m, "entity", node, what, p);
  let entityType: string | null = null;
  let entity: EntitySource | null = null;
  const also: AlsoNeeds[] = [];
  if (entEntry !== null) {
    const em = readMap(doc, entEntry.value, ENTITY_KEYS, `${what}: entity`, p);
    if (em !== null) {
      const typeEntry = required(em, "type", entEntry.value, `${what}: entity`, p);
      entityType = str(typeEntry, `${what}: entity.type`, p);
      if (entityType !== null && !catalog.entityTypes.has(entityType)) {
        p.add(typeEntry?.value, `${what}: unknown entity type "${entityType}" (known: ${[...catalog.entityTypes.keys()].join(", ")})`);
        entityType = null;
      }
      const fromEntry = required(em, "from", entEntry.value, `${what}: entity`, p);
      const from = str(fromEntry, `${what}: entity.from`, p);
      const field = em.get("field");
      const param = em.get("param");
      const notHere = (e: Entry | undefined, key: string): void => {
        if (e !== undefined) p.add(e.key, `${what}: entity.${key} does not apply to from: ${from ?? "?"}`);
      };
      switch (from) {
        case null:
          break;
        case "body":
        case "form": {
          notHere(param, "param");
          const f = str(required(em, "field", entEntry.value, `${what}: entity`, p), `${what}: entity.field`, p);
          if (f !== null && !FIELD_RE.test(f)) p.add(field?.value, `${what}: entity.field must match [A-Za-z_][A-Za-z0-9_.-]{0,63}`);
          if (method !== null && !BODY_METHODS.has(method)) {
            p.add(fromEntry?.value, `${what}: from: ${from} needs a method with a body (${[...BODY_METHODS].join(", ")}), not ${method}`);
          }
          const fbEntry = em.get("fallback");
          let fallback: string | null = null;
          if (fbEntry !== undefined) {
            fallback = str(fbEntry, `${what}: entity.fallback`, p);
            if (from !== "body") p.add(fbEntry.key, `${what}: entity.fallback applies to from: body only`);
            else if (fallback !== null && !FIELD_RE.test(fallback)) p.add(fbEntry.value, `${what}: entity.fallback must match [A-Za-z_][A-Za-z0-9_.-]{0,63}`);
            else if (fallback !== null && fallback === f) p.add(fbEntry.value, `${what}: entity.fallback must differ from entity.field`);
          }
          if (f !== null) entity = from === "body" && fallback !== null ? { from, field: f, fallback } : { from, field: f };
          const alsoEntry = em.get("also");
          if (alsoEntry !== undefined) {
            if (from !== "body") p.add(alsoEntry.key, `${what}: entity.also applies to from: body only`);
            else readAlso(doc, alsoEntry, [f, fallback], `${what}: entity.also`, p, also);
          }
          break;
        }
        case "path": {
          notHere(field, "field");
          notHere(em.get("fallback"), "fallback");
          notHere(em.get("also"), "also");
          const pe = required(em, "param", entEntry.value, `${what}: entity`, p);
          const name = str(pe, `${what}: entity.param`, p);
          if (name !== null && segs !== null && !segs.some((s) => s.kind !== LIT && s.text === name)) {
            p.add(pe?.value, `${what}: entity.param "${name}" is not a parameter of path ${path ?? ""}`);
          }
          if (name !== null) entity = { from: "path", param: name };
          break;
        }
        case "query": {
          notHere(field, "field");
          notHere(em.get("fallback"), "fallback");
          notHere(em.get("also"), "also");
          const qe = required(em, "param", entEntry.value, `${what}: entity`, p);
          const name = str(qe, `${what}: entity.param`, p);
          if (name !== null && !FIELD_RE.test(name)) p.add(qe?.value, `${what}: entity.param must match [A-Za-z_][A-Za-z0-9_.-]{0,63}`);
          else if (name === INTENT_PARAM) p.add(qe?.value, `${what}: entity.param "${INTENT_PARAM}" is the parameter that picks an intent`);
          if (method !== null && method !== "GET") p.add(fromEntry?.value, `${what}: from: query is for GET routes (a body would be a second place to name the entity)`);
          if (name !== null) entity = { from: "query", param: name };
          break;
        }
        case "domain":
          notHere(em.get("also"), "also");
          notHere(em.get("fallback"), "fallback");
          notHere(field, "field");
          notHere(param, "param");
          // The id is the domain id, which only names an entity of type domains.
          if (entityType !== null && entityType !== "domains") {
            p.add(em.get("type")?.value, `${what}: from: domain needs entity type "domains", not "${entityType}"`);
          }
          entity = { from: "domain" };
          break;
        default:
          p.add(fromEntry?.value, `${what}: unknown entity source "${from}" (known: ${FROM_VALUES.join(", ")})`);
      }
    }
  }

  if (operation !== null && entityType !== null && catalog.operations.has(operation) && !applies(catalog, entityType, operation)) {
    p.add(opEntry?.value, `${what}: operation "${operation}" does not apply to entity type "${entityType}"`);
  }
  for (const a of also) {
    for (const op of a.operations) {
      if (!catalog.operations.has(op)) p.add(node, `${what}: entity.also: unknown operation "${op}"`);
      else if (entityType !== null && !applies(catalog, entityType, op)) p.add(node, `${what}: entity.also: operation "${op}" does not apply to entity type "${entityType}"`);
    }
  }

  const bodyEntry = m.get("body");
  let bodyRule: Route["body"] | null = null;
  if (bodyEntry !== undefined) {
    const v = str(bodyEntry, `${what}: body`, p);
    if (v !== null && v !== "none" && v !== "stream") p.add(bodyEntry.value, `${what}: body must be none or stream (a route whose entity is in the body reads it)`);
    else if (v !== null && entity !== null && ((entity).from === "body" || (entity).from === "form")) p.add(bodyEntry.value, `${what}: body: ${v} does not fit an entity read from the body`);
    else if (v === "none" || v === "stream") bodyRule = v;
  }

  const upgradeEntry = m.get("upgrade");
  let upgrade: Route["upgrade"] = null;
  if (upgradeEntry !== undefined) {
    const v = str(upgradeEntry, `${what}: upgrade`, p);
    if (v !== null && v !== "websocket") p.add(upgradeEntry.value, `${what}: upgrade must be websocket`);
    else if (v !== null && method !== null && method !== "GET") p.add(upgradeEntry.value, `${what}: upgrade: websocket needs method GET (RFC 6455)`);
    else if (v === "websocket") upgrade = v;
    if (bodyEntry !== undefined) p.add(bodyEntry.key, `${what}: an upgrade route takes no body`);
  }
  const intentOps = readIntents(doc, m.get("intents"), what, catalog, entityType, p);
  if (intentOps.size > 0 && entity !== null && entity.from !== "query") p.add(m.get("intents")?.key, `${what}: intents need an entity from: query`);

  if (id === null || method === null || path === null || segs === null || !METHODS.has(method)) return null;
  let route: Route | null = null;
  if (p.list.length === before && operation !== null && entityType !== null && entity !== null) {
    const from = (entity).from;
    const body = from === "body" || from === "form" ? "read" : (bodyRule ?? (BODYLESS_METHODS.has(method) || upgrade !== null ? "none" : "stream"));
    const base = { id, method, path, entityType, entity: Object.freeze(entity), bodyLimit: limit, body, also: Object.freeze(also), errors, upgrade } as const;
    let intents: Map<string, Route> | null = null;
    for (const [value, op] of intentOps) (intents ??= new Map()).set(value, Object.freeze({ ...base, operation: op, intents: null, intent: value }));
    route = Object.freeze({ ...base, operation, intents, intent: null });
  }
  return { id, method, path, segs, node, route };
}

/** Read, validate and compile a routes file; throws RouteTableError. */
export function loadRouteTable(file: string, catalog: Catalog): RouteTable {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new RouteTableError([`${file}: cannot read: ${(err as Error).message}`]);
  }
  return parseRouteTable(text, file, catalog);
}

// Load-time only: suggest the known key a typo most likely meant.
function closest(word: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
