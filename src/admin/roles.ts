/**
 * Roles: named sets of operations. Config roles are fixed by the file; stored
 * roles (this API) overlay a config role of the same name. Listing shows both,
 * each with its source and whether it is the one in effect.
 */
import { validOperations } from "../config/catalog.ts";
import type { Role } from "../store/types.ts";
import { param, type AdminDeps, type Call, type Endpoint, type Handler } from "./call.ts";
import { deny, created, noContent, ok, type Reply } from "./reply.ts";
import { BodyFields, isRoleName, stringList } from "./validate.ts";

const ALL = "*";

interface RoleView {
  readonly name: string;
  readonly operations: readonly string[];
  readonly source: "config" | "stored";
  /** False for a config role that a stored role of the same name overrides. */
  readonly effective: boolean;
}

const op = (run: Handler["run"]): Handler => ({ access: "operator", run });

export const ROLE_ENDPOINTS: readonly Endpoint[] = [
  { method: "GET", path: "/roles", handler: op(listRoles) },
  { method: "GET", path: "/roles/{name}", handler: op(showRole) },
  { method: "PUT", path: "/roles/{name}", handler: op(putRole) },
  { method: "DELETE", path: "/roles/{name}", handler: op(deleteRole) },
];

async function allRoles(d: AdminDeps): Promise<RoleView[]> {
  const stored = new Map((await d.store.listRoles()).map((r) => [r.name, r.operations]));
  const out: RoleView[] = [];
  for (const [name, operations] of d.settings.roles) out.push({ name, operations: [...operations], source: "config", effective: !stored.has(name) });
  for (const [name, operations] of stored) out.push({ name, operations: [...operations], source: "stored", effective: true });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.source === "config" ? -1 : 1));
}

/** The role in effect under `name` for audit events: the stored one, else the config one, else null. */
function roleState(d: AdminDeps, name: string, stored: Role | null): { operations: string[]; source: "config" | "stored" } | null {
  if (stored !== null) return { operations: [...stored.operations], source: "stored" };
  const fromConfig = d.settings.roles.get(name);
  return fromConfig === undefined ? null : { operations: [...fromConfig], source: "config" };
}

async function listRoles(d: AdminDeps, _c: Call): Promise<Reply> {
  const roles = await allRoles(d);
  return ok({ total: roles.length, roles });
}

async function showRole(d: AdminDeps, c: Call): Promise<Reply> {
  const name = param(c, "name");
  const role = (await allRoles(d)).find((r) => r.name === name && r.effective);
  return role === undefined ? deny("role_not_found") : ok(role);
}

async function putRole(d: AdminDeps, c: Call): Promise<Reply> {
  const name = param(c, "name");
  if (!isRoleName(name)) return deny("invalid_field", "Role names are snake_case: a–z, 0–9 and _, starting with a letter, at most 64 characters.", "name");
  const f = new BodyFields(c.body, ["operations"]);
  const ops = f.take(stringList(f.raw("operations"), "operations", { min: 0, max: d.settings.catalog.operations.size + 1 }));
  if (f.problem !== null || ops === undefined) return f.problem ?? deny("invalid_field");
  const unknown = ops.filter((o) => o !== ALL && !d.settings.catalog.operations.has(o));
  if (unknown.length > 0) return deny("unknown_operation", `Unknown operation ${unknown.map((o) => `"${o}"`).join(", ")}; valid: ${validOperations(d.settings.catalog).join(", ")} ("*" means all; GET /catalog).`, "operations");
  const prior = await d.store.getRole(name);
  await d.store.putRole({ name, operations: ops });
  c.audit("role.put", { role: name, operations: ops, before: roleState(d, name, prior), after: { operations: ops, source: "stored" } });
  const view: RoleView = { name, operations: ops, source: "stored", effective: true };
  return prior !== null ? ok(view) : created(view, `/roles/${name}`);
}

async function deleteRole(d: AdminDeps, c: Call): Promise<Reply> {
  const f = new BodyFields(c.body, []);
  if (f.problem !== null) return f.problem;
  const name = param(c, "name");
  const prior = await d.store.getRole(name);
  if (await d.store.deleteRole(name)) {
    // After the delete, a config role of the same name is in effect again.
    c.audit("role.delete", { role: name, before: roleState(d, name, prior), after: roleState(d, name, null) });
    return noContent();
  }
  if (d.settings.roles.has(name)) return deny("role_in_config", `The role "${name}" is defined in the config file (roles.${name}); change it there.`);
  return deny("role_not_found");
}
