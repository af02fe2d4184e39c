/**
 * What the signed-in caller may do, for forms (the web page's scope picker,
 * `patgate me`, `patgate grantable`): `GET /me` and `GET /me/grantable`.
 * A user sees only domains they belong to; a domain they do not belong to
 * answers like one that does not exist.
 */
import { DOMAINS, WILDCARD } from "../scopes/scope.ts";
import type { Domain } from "../store/types.ts";
import { formatDuration } from "../util/duration.ts";
import type { AdminDeps, Call, Endpoint } from "./call.ts";
import { queryParam } from "./http.ts";
import { deny, ok, type Reply, type Result } from "./reply.ts";

const MODELS = "models";

export const ME_ENDPOINTS: readonly Endpoint[] = [
  { method: "GET", path: "/me", handler: { access: "any", run: me } },
  { method: "GET", path: "/me/grantable", handler: { access: "any", run: grantable }, query: ["domain", "entity_type"] },
];

const sorted = (s: Iterable<string>): string[] => [...s].sort();

/** The domains the caller acts in, with the operations held there (operators: every domain, every operation). */
async function domainsOf(d: AdminDeps, c: Call): Promise<Array<{ domain: Domain; roles: string[]; operations: ReadonlySet<string> }>> {
  if (c.caller.kind === "operator") {
    const all = d.settings.catalog.operations;
    return (await d.store.listDomains()).map((domain) => ({ domain, roles: [], operations: all }));
  }
  const out = [];
  for (const m of await d.store.listMembershipsOfUser(c.caller.userId)) {
    const domain = await d.store.getDomain(m.domainId);
    const held = await d.rights.rightsIn(m.domainId, c.caller.userId);
    if (domain !== null && held !== null) out.push({ domain, roles: [...m.roles], operations: held });
  }
  return out.sort((a, b) => (a.domain.id < b.domain.id ? -1 : 1));
}

async function me(d: AdminDeps, c: Call): Promise<Reply> {
  const max = d.settings.security.maxTokenLifetimeMs;
  const domains = await domainsOf(d, c);
  return ok({
    kind: c.caller.kind,
    user_id: c.caller.kind === "user" ? c.caller.userId : null,
    max_token_lifetime: formatDuration(max),
    max_token_lifetime_seconds: Math.floor(max / 1000),
    entity_types: [...d.settings.catalog.entityTypes].map(([name, ops]) => ({ name, operations: sorted(ops) })),
    domains: domains.map((x) => ({ id: x.domain.id, name: x.domain.name, roles: x.roles, operations: sorted(x.operations) })),
  });
}

function required(c: Call, name: string): Result<string> {
  const r = queryParam(c.query, name);
  if (!r.ok) return r;
  if (r.value === undefined || r.value === "") return deny("invalid_field", `The query parameter "${name}" is required.`, name);
  return { ok: true, value: r.value };
}

interface EntityView {
  readonly id: string;
  /** `wildcard` (every entity of the type), `upstream` (the domain's upstream lists it), `config` (ui.entities), `domain` (the domain itself). */
  readonly source: "wildcard" | "upstream" | "config" | "domain";
}

async function grantable(d: AdminDeps, c: Call): Promise<Reply> {
  const dom = required(c, "domain");
  if (!dom.ok) return dom;
  const type = required(c, "entity_type");
  if (!type.ok) return type;
  const applicable = d.settings.catalog.entityTypes.get(type.value);
  if (applicable === undefined) {
    return deny("invalid_field", `Unknown entity type "${type.value}" (known: ${[...d.settings.catalog.entityTypes.keys()].join(", ")}).`, "entity_type");
  }
  const mine = (await domainsOf(d, c)).find((x) => x.domain.id === dom.value);
  if (mine === undefined) return deny("domain_not_found");
  const operations = sorted([...applicable].filter((op) => mine.operations.has(op)));

  const entities: EntityView[] = [{ id: WILDCARD, source: "wildcard" }];
  const seen = new Set<string>([WILDCARD]);
  const add = (id: string, source: EntityView["source"]): void => {
    if (seen.has(id)) return;
    seen.add(id);
    entities.push({ id, source });
  };
  let upstream: { status: "ok" | "unavailable" | "not_used"; message: string | null } = { status: "not_used", message: null };
  if (type.value === DOMAINS) add(mine.domain.id, "domain");
  if (type.value === MODELS) {
    const listed = await d.models.list(mine.domain.upstream);
    if (listed.ok) {
      for (const id of listed.ids) add(id, "upstream");
      upstream = { status: "ok", message: null };
    } else {
      upstream = { status: "unavailable", message: `The domain's upstream could not list its models: ${listed.message}. Type a model id, or use "all".` };
    }
  }
  const configured = d.settings.ui.entities.get(type.value);
  for (const id of [...(configured?.get(mine.domain.id) ?? []), ...(configured?.get(WILDCARD) ?? [])]) add(id, "config");
  return ok({ domain_id: mine.domain.id, entity_type: type.value, operations, entities, upstream });
}
