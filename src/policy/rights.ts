import type { Domain, Store } from "../store/types.ts";
import { FencedCache } from "../util/fenced-cache.ts";

/** What a user currently holds in a domain: null when not a member. */
export type DomainRights = ReadonlySet<string> | null;

const ALL = "*";
const SEP = "\u0000";
const NONE: ReadonlySet<string> = new Set();
/** Unions already built, per roles snapshot: members with the same roles share one set. */
const unions = new WeakMap<ReadonlyMap<string, ReadonlySet<string>>, Map<string, ReadonlySet<string>>>();
const MAX_UNIONS = 1024;

/** The operations a member with `names` holds: one role's own set, or a (shared) union. */
function operationsOf(roles: ReadonlyMap<string, ReadonlySet<string>>, names: readonly string[]): ReadonlySet<string> {
  if (names.length === 1) return roles.get(names[0] as string) ?? NONE;
  let memo = unions.get(roles);
  if (memo === undefined) unions.set(roles, (memo = new Map<string, ReadonlySet<string>>()));
  const key = names.join(SEP);
  let ops = memo.get(key);
  if (ops === undefined) {
    const all = new Set<string>();
    for (const r of names) for (const op of roles.get(r) ?? NONE) all.add(op);
    ops = all;
    if (memo.size < MAX_UNIONS) memo.set(key, ops);
  }
  return ops;
}

export interface RightsOptions {
  readonly maxEntries: number;
  readonly maxAgeMs: number;
  readonly negativeTtlMs: number;
  /** Roles from config; roles stored through the operator API override these by name. */
  readonly configRoles: ReadonlyMap<string, readonly string[]>;
  /** Every operation, for roles that list `*`. */
  readonly operations: ReadonlySet<string>;
}

/**
 * The user side of `PAT scopes ∧ user's current domain rights`: domains,
 * memberships and roles, cached and kept exact by the store's change events.
 */
export class Rights {
  readonly #store: Store;
  readonly #opts: RightsOptions;
  readonly #members: FencedCache<DomainRights>;
  readonly #domains: FencedCache<Domain | null>;
  readonly #roles: FencedCache<ReadonlyMap<string, ReadonlySet<string>>>;
  #changes = 0;

  constructor(store: Store, opts: RightsOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#members = new FencedCache(opts.maxEntries);
    this.#domains = new FencedCache(opts.maxEntries);
    this.#roles = new FencedCache(1);
  }

  /** The domain record, or null when it does not exist. */
  domain(id: string): Promise<Domain | null> | Domain | null {
    const live = this.#store.eventsLive();
    if (live) {
      const hit = this.#domains.peek(id);
      if (hit !== undefined) return hit;
    }
    return this.#domains.load(id, () => this.#store.getDomain(id), (d) => this.#ttl(d), live);
  }

  /** The operations the user holds in the domain now, or null when not a member. */
  rightsIn(domainId: string, userId: string): Promise<DomainRights> | DomainRights {
    const key = domainId + SEP + userId;
    const live = this.#store.eventsLive();
    if (live) {
      const hit = this.#members.peek(key);
      if (hit !== undefined) return hit;
    }
    return this.#members.load(key, () => this.#loadRights(domainId, userId, live), (r) => this.#ttl(r), live);
  }

  /** Applies a change event from the store. */
  onMemberChanged(domainId: string, userId: string): void {
    this.#changes++;
    this.#members.invalidate(domainId + SEP + userId);
  }
  onDomainChanged(id: string): void {
    this.#changes++;
    this.#domains.invalidate(id);
  }
  onRoleChanged(): void {
    this.#changes++;
    this.#roles.clear();
    this.#members.clear();
  }
  clear(): void {
    this.#changes++;
    this.#roles.clear();
    this.#members.clear();
    this.#domains.clear();
  }

  /** Counts the changes applied (membership, domain, role, reset): a decision taken at the same count, with events flowing, still stands. */
  get changes(): number {
    return this.#changes;
  }

  /** Role name → operations, config roles overlaid with stored ones. */
  async roles(live = this.#store.eventsLive()): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
    if (live) {
      const hit = this.#roles.peek("roles");
      if (hit !== undefined) return hit;
    }
    return this.#roles.load("roles", () => this.#loadRoles(), () => this.#opts.maxAgeMs, live);
  }

  #ttl(v: unknown): number {
    return v === null ? this.#opts.negativeTtlMs : this.#opts.maxAgeMs;
  }

  async #loadRights(domainId: string, userId: string, live: boolean): Promise<DomainRights> {
    // The roles are nearly always cached: then only the membership is awaited.
    const cached = live ? this.#roles.peek("roles") : undefined;
    const [m, roles] = cached === undefined ? await Promise.all([this.#store.getMembership(domainId, userId), this.roles(live)]) : [await this.#store.getMembership(domainId, userId), cached];
    return m === null ? null : operationsOf(roles, m.roles);
  }

  async #loadRoles(): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
    const stored = await this.#store.listRoles();
    const out = new Map<string, ReadonlySet<string>>();
    const expand = (ops: readonly string[]): ReadonlySet<string> => (ops.includes(ALL) ? this.#opts.operations : new Set(ops));
    for (const [name, ops] of this.#opts.configRoles) out.set(name, expand(ops));
    for (const r of stored) out.set(r.name, expand(r.operations));
    return out;
  }
}
