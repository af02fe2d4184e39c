/**
 * The management API's router: route templates compiled once into segment
 * lists; a request is matched segment by segment. About thirty routes, so a
 * scan is as fast as a tree and far easier to read.
 */

/** One route as declared: `PATCH /pats/{id}/scope/add`. */
export interface RouteDef<H> {
  readonly method: string;
  readonly path: string;
  readonly handler: H;
  /** The query parameters it takes; any other is refused rather than ignored (a typo must not widen an action). */
  readonly query?: readonly string[];
}

/** `param` segments bind a name; `literal` ones must match exactly. */
type Segment = { readonly literal: string } | { readonly param: string };

interface Compiled<H> {
  readonly def: RouteDef<H>;
  readonly segments: readonly Segment[];
}

export type Match<H> =
  | { readonly kind: "ok"; readonly route: RouteDef<H>; readonly params: ReadonlyMap<string, string> }
  | { readonly kind: "method_not_allowed"; readonly allow: readonly string[] }
  | { readonly kind: "not_found" };

const PARAM = /^\{([a-z_]+)\}$/;

export class Router<H> {
  readonly #routes: readonly Compiled<H>[];

  constructor(defs: readonly RouteDef<H>[]) {
    const seen = new Set<string>();
    this.#routes = defs.map((def) => {
      const key = `${def.method} ${def.path}`;
      if (seen.has(key)) throw new Error(`duplicate admin route ${key}`);
      seen.add(key);
      const segments = def.path
        .split("/")
        .slice(1)
        .map((s): Segment => {
          const m = PARAM.exec(s);
          return m === null ? { literal: s } : { param: m[1] ?? "" };
        });
      return { def, segments };
    });
  }

  /** Every route, for the OpenAPI coverage test. */
  get routes(): readonly RouteDef<H>[] {
    return this.#routes.map((r) => r.def);
  }

  /** Matches decoded path segments; a known path with another method gives its `Allow` list. */
  match(method: string, segments: readonly string[]): Match<H> {
    const allow: string[] = [];
    for (const r of this.#routes) {
      const params = bind(r.segments, segments);
      if (params === null) continue;
      if (r.def.method === method) return { kind: "ok", route: r.def, params };
      allow.push(r.def.method);
    }
    return allow.length > 0 ? { kind: "method_not_allowed", allow } : { kind: "not_found" };
  }
}

function bind(template: readonly Segment[], segments: readonly string[]): Map<string, string> | null {
  if (template.length !== segments.length) return null;
  const params = new Map<string, string>();
  for (let i = 0; i < template.length; i++) {
    const t = template[i] as Segment;
    const s = segments[i] as string;
    if ("literal" in t) {
      if (t.literal !== s) return null;
    } else {
      params.set(t.param, s);
    }
  }
  return params;
}
