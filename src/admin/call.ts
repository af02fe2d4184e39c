import type { Settings } from "../config/config.ts";
import type { Rights } from "../policy/rights.ts";
import type { Store } from "../store/types.ts";
import type { ModelCatalog } from "../upstream/models.ts";
import type { Caller } from "./auth.ts";
import type { Reply } from "./reply.ts";
import type { RouteDef } from "./router.ts";
import type { LimitSettings } from "../config/limits.ts";
import type { Taken } from "../limits/counters.ts";
import type { Charge } from "../limits/policies.ts";
import type { UsageBuckets } from "../usage/buckets.ts";

/** What GET /me/limits reads of the limit step: the policies, and what a subject's windows hold. */
export interface LimitView {
  readonly settings: LimitSettings;
  peek(c: Charge): Promise<Taken>;
}

/** What the management API's handlers use: the core, never the data plane. */
export interface AdminDeps {
  readonly settings: Settings;
  readonly store: Store;
  readonly rights: Rights;
  readonly pepper: Buffer;
  readonly now: () => number;
  /** Model ids the domains' upstreams serve (the scope picker's entities). */
  readonly models: ModelCatalog;
  /** null: built without them (tests of other endpoints). */
  readonly limits: LimitView | null;
  readonly usage: UsageBuckets | null;
}

/** One authenticated call, as a handler sees it. */
export interface Call {
  readonly caller: Caller;
  readonly params: ReadonlyMap<string, string>;
  readonly query: URLSearchParams;
  /** The JSON body; `{}` when none was sent. */
  readonly body: Readonly<Record<string, unknown>>;
  /** Records a committed management change (the audit trail). */
  audit(event: string, fields: Record<string, unknown>): void;
}

export interface Handler {
  /** `operator`: admin keys only; `any`: users too (handlers then scope to the caller). */
  readonly access: "operator" | "any";
  readonly run: (deps: AdminDeps, call: Call) => Promise<Reply>;
}

export type Endpoint = RouteDef<Handler>;

/** A path parameter the router bound (absent only if a route and its handler disagree). */
export function param(call: Call, name: string): string {
  const v = call.params.get(name);
  if (v === undefined) throw new Error(`route has no {${name}} parameter`);
  return v;
}
