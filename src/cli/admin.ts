/** `patgate domain|member|role …`: the operator side of /domains and /roles. */
import type { Command, Ctx } from "./command.ts";
import { UsageError } from "./command.ts";
import { fields, relative, table, when } from "./format.ts";

interface DomainJson {
  readonly id: string;
  readonly name: string;
  readonly upstream: string | null;
  readonly created_at: string;
  /** Only when a user lists their own domains. */
  readonly roles?: readonly string[];
}

interface MemberJson {
  readonly domain_id: string;
  readonly user_id: string;
  readonly roles: readonly string[];
}

interface RoleJson {
  readonly name: string;
  readonly operations: readonly string[];
  readonly source: "config" | "stored";
  readonly effective: boolean;
}

const enc = encodeURIComponent;
const upstreamText = (u: string | null): string => u ?? "(default)";

function done(c: Ctx, body: unknown, text: string): number {
  if (c.json) c.printJson(body);
  else c.io.out(text + "\n");
  return 0;
}

function nonEmptyList(c: Ctx, opt: string): string[] {
  const list = c.list(opt, true);
  if (list.length === 0) throw new UsageError(`missing --${opt}`);
  return list;
}

export const DOMAIN_COMMANDS: readonly Command[] = [
  {
    name: "domain create",
    summary: "Create a domain (a tenant: requests name it in /proxy/<domain>/…).",
    usage: "ID [--name N] [--upstream U]",
    args: ["ID"],
    api: true,
    options: {
      name: { type: "string", arg: "N", help: "a display name (default: the id)" },
      upstream: { type: "string", arg: "U", help: "an upstream id from the gateway's config (default: its default_upstream)" },
    },
    async run(c) {
      const body = { id: c.arg(0), ...(c.str("name") === undefined ? {} : { name: c.str("name") }), ...(c.str("upstream") === undefined ? {} : { upstream: c.str("upstream") }) };
      const d = await c.api.call<DomainJson>("POST", "/domains", { body });
      return done(c, d, `Created domain ${d.id}, served by ${d.upstream === null ? "the default upstream" : `upstream ${d.upstream}`}.`);
    },
  },
  {
    name: "domain list",
    summary: "List domains (an operator: all; a user: theirs, with their roles).",
    usage: "",
    api: true,
    async run(c) {
      const r = await c.api.call<{ total: number; domains: DomainJson[] }>("GET", "/domains");
      if (c.json) return done(c, r, "");
      if (r.domains.length === 0) return done(c, r, "No domains.");
      const now = c.io.now();
      const withRoles = r.domains.some((d) => d.roles !== undefined);
      const rows = r.domains.map((d) => [d.id, d.name, upstreamText(d.upstream), relative(d.created_at, now), ...(withRoles ? [(d.roles ?? []).join(",")] : [])]);
      c.io.out(table(["ID", "NAME", "UPSTREAM", "CREATED", ...(withRoles ? ["ROLES"] : [])], rows));
      return 0;
    },
  },
  {
    name: "domain show",
    summary: "Show one domain.",
    usage: "ID",
    args: ["ID"],
    api: true,
    async run(c) {
      const d = await c.api.call<DomainJson>("GET", `/domains/${enc(c.arg(0))}`);
      if (c.json) return done(c, d, "");
      c.io.out(fields([["id", d.id], ["name", d.name], ["upstream", upstreamText(d.upstream)], ["created", when(d.created_at, c.io.now())]]));
      return 0;
    },
  },
  {
    name: "domain update",
    summary: "Change a domain's name or upstream (PATCH /domains/{id}).",
    usage: "ID [--name N] [--upstream U | --default-upstream]",
    args: ["ID"],
    api: true,
    options: {
      name: { type: "string", arg: "N", help: "a new display name" },
      upstream: { type: "string", arg: "U", help: "an upstream id from the gateway's config" },
      "default-upstream": { type: "boolean", help: "serve it by the gateway's default_upstream again" },
    },
    async run(c) {
      const upstream = c.flag("default-upstream") ? null : c.str("upstream");
      if (c.flag("default-upstream") && c.str("upstream") !== undefined) throw new UsageError("give --upstream or --default-upstream, not both");
      if (c.str("name") === undefined && upstream === undefined) throw new UsageError("nothing to change: give --name, --upstream or --default-upstream");
      const body = { ...(c.str("name") === undefined ? {} : { name: c.str("name") }), ...(upstream === undefined ? {} : { upstream }) };
      const d = await c.api.call<DomainJson>("PATCH", `/domains/${enc(c.arg(0))}`, { body });
      return done(c, d, `Domain ${d.id} ("${d.name}") is served by ${d.upstream === null ? "the default upstream" : `upstream ${d.upstream}`}.`);
    },
  },
  {
    name: "domain delete",
    summary: "Delete a domain and its memberships: every PAT stops working there at once.",
    usage: "ID",
    args: ["ID"],
    api: true,
    async run(c) {
      await c.api.call("DELETE", `/domains/${enc(c.arg(0))}`);
      return done(c, { id: c.arg(0), deleted: true }, `Deleted domain ${c.arg(0)} and its memberships.`);
    },
  },
];

export const MEMBER_COMMANDS: readonly Command[] = [
  {
    name: "member add",
    summary: "Make a user a member of a domain with these roles (replacing any roles they had there).",
    usage: "DOMAIN USER --role R [--role R]…",
    args: ["DOMAIN", "USER"],
    api: true,
    options: { role: { type: "string", multiple: true, arg: "R", help: "a role (see `patgate role list`); commas separate several", required: true } },
    async run(c) {
      const m = await c.api.call<MemberJson>("PUT", `/domains/${enc(c.arg(0))}/members/${enc(c.arg(1))}`, { body: { roles: nonEmptyList(c, "role") } });
      return done(c, m, `${m.user_id} is a member of ${m.domain_id} with role${m.roles.length === 1 ? "" : "s"} ${m.roles.join(", ")}.`);
    },
  },
  {
    name: "member list",
    summary: "List a domain's members and their roles.",
    usage: "DOMAIN",
    args: ["DOMAIN"],
    api: true,
    async run(c) {
      const r = await c.api.call<{ total: number; members: MemberJson[] }>("GET", `/domains/${enc(c.arg(0))}/members`);
      if (c.json) return done(c, r, "");
      if (r.members.length === 0) return done(c, r, `No members in ${c.arg(0)}.`);
      c.io.out(table(["USER", "ROLES"], r.members.map((m) => [m.user_id, m.roles.join(",")])));
      return 0;
    },
  },
  {
    name: "member show",
    summary: "Show one user's roles in a domain.",
    usage: "DOMAIN USER",
    args: ["DOMAIN", "USER"],
    api: true,
    async run(c) {
      const m = await c.api.call<MemberJson>("GET", `/domains/${enc(c.arg(0))}/members/${enc(c.arg(1))}`);
      return done(c, m, fields([["domain", m.domain_id], ["user", m.user_id], ["roles", m.roles.join(", ")]]).trimEnd());
    },
  },
  {
    name: "member remove",
    summary: "Remove a user from a domain: all their PATs stop working there at once.",
    usage: "DOMAIN USER",
    args: ["DOMAIN", "USER"],
    api: true,
    async run(c) {
      await c.api.call("DELETE", `/domains/${enc(c.arg(0))}/members/${enc(c.arg(1))}`);
      return done(c, { domain_id: c.arg(0), user_id: c.arg(1), removed: true }, `Removed ${c.arg(1)} from ${c.arg(0)}.`);
    },
  },
];

export const ROLE_COMMANDS: readonly Command[] = [
  {
    name: "role list",
    summary: "List roles: those in the config file and those stored through the API.",
    usage: "",
    api: true,
    async run(c) {
      const r = await c.api.call<{ total: number; roles: RoleJson[] }>("GET", "/roles");
      if (c.json) return done(c, r, "");
      const rows = r.roles.map((x) => [x.name, x.effective ? x.source : `${x.source} (overridden)`, x.operations.join(",")]);
      c.io.out(table(["NAME", "SOURCE", "OPERATIONS"], rows));
      return 0;
    },
  },
  {
    name: "role show",
    summary: "Show the role in effect under a name.",
    usage: "NAME",
    args: ["NAME"],
    api: true,
    async run(c) {
      const x = await c.api.call<RoleJson>("GET", `/roles/${enc(c.arg(0))}`);
      return done(c, x, fields([["name", x.name], ["source", x.source], ["operations", x.operations.join("\n")]]).trimEnd());
    },
  },
  {
    name: "role set",
    summary: "Create or replace a stored role (it overrides a config role of the same name).",
    usage: "NAME --op OP [--op OP]…",
    args: ["NAME"],
    api: true,
    options: { op: { type: "string", multiple: true, arg: "OP", help: 'an operation from the catalog, or "*" for all; commas separate several', required: true } },
    async run(c) {
      const x = await c.api.call<RoleJson>("PUT", `/roles/${enc(c.arg(0))}`, { body: { operations: nonEmptyList(c, "op") } });
      return done(c, x, `Role ${x.name}: ${x.operations.join(", ")}.`);
    },
  },
  {
    name: "role delete",
    summary: "Delete a stored role (config roles are changed in the config file).",
    usage: "NAME",
    args: ["NAME"],
    api: true,
    async run(c) {
      await c.api.call("DELETE", `/roles/${enc(c.arg(0))}`);
      return done(c, { name: c.arg(0), deleted: true }, `Deleted role ${c.arg(0)}.`);
    },
  },
];
