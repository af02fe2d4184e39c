/**
 * `patgate me` and `patgate grantable`: who the credential is, and what it may
 * put on a PAT (the web page's scope picker, on the command line).
 */
import type { Command } from "./command.ts";
import { fields, table } from "./format.ts";

interface MeJson {
  readonly kind: string;
  readonly user_id: string | null;
  readonly max_token_lifetime: string;
  readonly domains: ReadonlyArray<{ id: string; name: string; roles: string[]; operations: string[] }>;
}

interface GrantableJson {
  readonly operations: readonly string[];
  readonly entities: ReadonlyArray<{ id: string; source: string }>;
  readonly upstream: { status: string; message: string | null };
}

export const ME_COMMANDS: readonly Command[] = [
  {
    name: "me",
    summary: "Who the credential is: kind, user, domains with roles and operations, the maximum PAT lifetime.",
    usage: "",
    api: true,
    async run(c) {
      const r = await c.api.call<MeJson>("GET", "/me");
      if (c.json) {
        c.printJson(r);
        return 0;
      }
      c.io.out(fields([["kind", r.kind], ["user", r.user_id ?? "-"], ["max lifetime", r.max_token_lifetime]]));
      if (r.domains.length === 0) c.io.out("\nNo domains: a PAT could not do anything yet. Ask an operator to add you to one.\n");
      else c.io.out("\n" + table(["DOMAIN", "ROLES", "OPERATIONS"], r.domains.map((d) => [d.id, d.roles.join(",") || "-", d.operations.join(",")])));
      return 0;
    },
  },
  {
    name: "grantable",
    summary: "What you may put on a PAT in DOMAIN for entity TYPE: the entities (the upstream's models, configured ids, *) and operations.",
    usage: "DOMAIN TYPE",
    args: ["DOMAIN", "TYPE"],
    api: true,
    async run(c) {
      const r = await c.api.call<GrantableJson>("GET", "/me/grantable", { query: { domain: c.arg(0), entity_type: c.arg(1) } });
      if (c.json) {
        c.printJson(r);
        return 0;
      }
      if (r.upstream.status === "unavailable" && r.upstream.message !== null) c.io.err(`patgate: ${r.upstream.message}\n`);
      c.io.out(fields([["operations", r.operations.join(",") || "(none you hold)"]]));
      c.io.out("\n" + table(["ENTITY", "FROM"], r.entities.map((e) => [e.id, e.source])));
      return 0;
    },
  },
];
