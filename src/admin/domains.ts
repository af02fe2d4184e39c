/**
 * Domains and their members: the operator API. Users may list the domains they
 * belong to (with their roles there), which is what a CLI needs to offer scopes.
 */
import type { Domain } from "../store/types.ts";
import { param, type AdminDeps, type Call, type Endpoint, type Handler } from "./call.ts";
import { created, deny, noContent, ok, type Reply, type Result } from "./reply.ts";
import { BodyFields, domainId, stringList, userId } from "./validate.ts";
import { domainView, memberView } from "./views.ts";

const MAX_DOMAIN_NAME = 200;
const MAX_ROLES = 64;

const op = (run: Handler["run"]): Handler => ({ access: "operator", run });

export const DOMAIN_ENDPOINTS: readonly Endpoint[] = [
  { method: "POST", path: "/domains", handler: op(createDomain) },
  { method: "GET", path: "/domains", handler: { access: "any", run: listDomains } },
  { method: "GET", path: "/domains/{domain_id}", handler: op(showDomain) },
  { method: "PATCH", path: "/domains/{domain_id}", handler: op(updateDomain) },
  { method: "DELETE", path: "/domains/{domain_id}", handler: op(deleteDomain) },
  { method: "GET", path: "/domains/{domain_id}/members", handler: op(listMembers) },
  { method: "GET", path: "/domains/{domain_id}/members/{user_id}", handler: op(showMember) },
  { method: "PUT", path: "/domains/{domain_id}/members/{user_id}", handler: op(putMember) },
  { method: "DELETE", path: "/domains/{domain_id}/members/{user_id}", handler: op(deleteMember) },
];

/** `name` (display text) and `upstream` (a configured upstream id, or null for the default). */
function readDomainFields(d: AdminDeps, f: BodyFields): { name?: string; upstream?: string | null } {
  const out: { name?: string; upstream?: string | null } = {};
  const name = f.string("name", { optional: true });
  if (typeof name === "string") {
    if (name.trim() === "" || name.length > MAX_DOMAIN_NAME || /\p{Cc}/u.test(name)) {
      f.fail(deny("invalid_field", `The field "name" must be 1–${MAX_DOMAIN_NAME} characters without control characters.`, "name"));
    } else {
      out.name = name.trim();
    }
  }
  const upstream = f.string("upstream", { optional: true, nullable: true });
  if (upstream === null) out.upstream = null;
  else if (typeof upstream === "string") {
    if (!d.settings.upstreams.has(upstream)) {
      f.fail(deny("unknown_upstream", `There is no upstream "${upstream}" in the config (known: ${[...d.settings.upstreams.keys()].join(", ")}).`, "upstream"));
    } else {
      out.upstream = upstream;
    }
  }
  return out;
}

/** A domain's settings as audit events show them before and after a change. */
function domainState(dom: Domain): { name: string; upstream: string | null } {
  return { name: dom.name, upstream: dom.upstream };
}

async function domainOr404(d: AdminDeps, c: Call): Promise<Result<Domain>> {
  const id = param(c, "domain_id");
  const dom = await d.store.getDomain(id);
  return dom === null ? deny("domain_not_found") : { ok: true, value: dom };
}

async function createDomain(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["id", "name", "upstream"]);
  const rawId = f.string("id");
  const id = rawId == null ? undefined : f.take(domainId(rawId, "id"));
  const fields = readDomainFields(d, f);
  if (f.problem !== null || id === undefined) return f.problem ?? deny("invalid_field");
  const dom: Domain = { id, name: fields.name ?? id, upstream: fields.upstream ?? null, createdAt: d.now() };
  // One atomic create: of two concurrent creates of one id (on any replicas), exactly one wins.
  if (!(await d.store.insertDomain(dom))) return deny("domain_exists", `A domain "${id}" already exists; change it with PATCH /domains/${encodeURIComponent(id)} (patgate domain update).`, "id");
  c.audit("domain.create", { domain: id, upstream: dom.upstream, before: null, after: domainState(dom) });
  return created(domainView(dom), `/domains/${encodeURIComponent(id)}`);
}

async function listDomains(d: AdminDeps, c: Call): Promise<Reply> {
  if (c.caller.kind === "operator") {
    const all = await d.store.listDomains();
    return ok({ total: all.length, domains: all.map(domainView) });
  }
  const mine = await d.store.listMembershipsOfUser(c.caller.userId);
  const out = [];
  for (const m of mine) {
    const dom = await d.store.getDomain(m.domainId);
    if (dom !== null) out.push({ ...domainView(dom), roles: [...m.roles] });
  }
  return ok({ total: out.length, domains: out });
}

async function showDomain(d: AdminDeps, c: Call): Promise<Reply> {
  const dom = await domainOr404(d, c);
  return dom.ok ? ok(domainView(dom.value)) : dom;
}

async function updateDomain(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["name", "upstream"]);
  const fields = readDomainFields(d, f);
  if (f.problem !== null) return f.problem;
  if (!f.has("name") && !f.has("upstream")) return deny("invalid_field", 'Send "name", "upstream" or both.');
  const dom = await domainOr404(d, c);
  if (!dom.ok) return dom;
  const next: Domain = { ...dom.value, ...fields };
  await d.store.putDomain(next);
  c.audit("domain.update", { domain: next.id, upstream: next.upstream, before: domainState(dom.value), after: domainState(next) });
  return ok(domainView(next));
}

async function deleteDomain(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, []);
  if (f.problem !== null) return f.problem;
  const id = param(c, "domain_id");
  // Read for the audit trail only: what the delete is about to remove (as seen just before it).
  const [dom, members] = await Promise.all([d.store.getDomain(id), d.store.listMembers(id)]);
  // Its memberships go too, which disables every PAT for the domain at once.
  if (!(await d.store.deleteDomain(id))) return deny("domain_not_found");
  const removed = members.map((m) => ({ user_id: m.userId, roles: [...m.roles] }));
  c.audit("domain.delete", { domain: id, before: dom === null ? { members: removed } : { ...domainState(dom), members: removed }, after: null });
  return noContent();
}

async function listMembers(d: AdminDeps, c: Call): Promise<Reply> {
  const dom = await domainOr404(d, c);
  if (!dom.ok) return dom;
  const members = await d.store.listMembers(dom.value.id);
  return ok({ total: members.length, members: members.map(memberView) });
}

async function showMember(d: AdminDeps, c: Call): Promise<Reply> {
  const dom = await domainOr404(d, c);
  if (!dom.ok) return dom;
  const m = await d.store.getMembership(dom.value.id, param(c, "user_id"));
  return m === null ? deny("member_not_found") : ok(memberView(m));
}

async function putMember(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, ["roles"]);
  const user = f.take(userId(param(c, "user_id"), "user_id"));
  const roles = f.take(stringList(f.raw("roles"), "roles", { min: 1, max: MAX_ROLES }));
  if (f.problem !== null || user === undefined || roles === undefined) return f.problem ?? deny("invalid_field");
  const known = await d.rights.roles();
  const unknown = roles.filter((r) => !known.has(r));
  if (unknown.length > 0) return deny("unknown_role", `No role named ${unknown.map((r) => `"${r}"`).join(", ")} (known: ${[...known.keys()].sort().join(", ")}).`, "roles");
  const dom = await domainOr404(d, c);
  if (!dom.ok) return dom;
  const prior = await d.store.getMembership(dom.value.id, user);
  const m = { domainId: dom.value.id, userId: user, roles };
  await d.store.putMembership(m);
  c.audit("member.put", { domain: m.domainId, user_id: user, roles, before: prior === null ? null : { roles: [...prior.roles] }, after: { roles } });
  return prior !== null ? ok(memberView(m)) : created(memberView(m), `/domains/${encodeURIComponent(m.domainId)}/members/${encodeURIComponent(user)}`);
}

async function deleteMember(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, []);
  if (f.problem !== null) return f.problem;
  const dom = await domainOr404(d, c);
  if (!dom.ok) return dom;
  const user = param(c, "user_id");
  const prior = await d.store.getMembership(dom.value.id, user);
  // Takes effect on every replica through the member change event: all the user's PATs for the domain stop at once.
  if (!(await d.store.deleteMembership(dom.value.id, user))) return deny("member_not_found");
  c.audit("member.delete", { domain: dom.value.id, user_id: user, before: { roles: prior === null ? [] : [...prior.roles] }, after: null });
  return noContent();
}
