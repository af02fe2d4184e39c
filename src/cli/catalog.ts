/**
 * `patgate catalog`: the scope vocabulary, from the running gateway (GET /catalog)
 * when a credential is at hand, otherwise from the config file, offline.
 */
import path from "node:path";
import type { CatalogView } from "../config/catalog.ts";
import type { Command, Ctx } from "./command.ts";
import { CliError } from "./command.ts";
import { table } from "./format.ts";
import { packageRoot } from "./root.ts";

async function offline(c: Ctx): Promise<{ view: CatalogView; from: string }> {
  const { ConfigError, loadSettings } = await import("../config/config.ts");
  const { catalogView } = await import("../config/catalog.ts");
  const file = c.str("config") ?? c.io.env.PATGATE_CONFIG ?? path.join(packageRoot(), "config", "patgate.yaml");
  try {
    return { view: catalogView(loadSettings(file, c.io.env).catalog), from: file };
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`the config is invalid: ${err.message.split("\n")[0] ?? ""}`);
    throw err;
  }
}

export const CATALOG_COMMANDS: readonly Command[] = [
  {
    name: "catalog",
    summary: "List the entity types and the operations each accepts: what a scope may name.",
    usage: "[--config FILE]",
    api: true,
    options: { config: { type: "string", arg: "FILE", help: "read it from this config instead of asking a gateway (env PATGATE_CONFIG)" } },
    notes: `With a credential (PATGATE_TOKEN or --token) and no --config, asks the gateway
(GET /catalog); otherwise reads the config file offline (default: the shipped
config/patgate.yaml).`,
    async run(c) {
      const remote = c.str("config") === undefined && (c.str("token") ?? c.io.env.PATGATE_TOKEN ?? "") !== "";
      const { view, from } = remote ? { view: await c.api.call<CatalogView>("GET", "/catalog"), from: c.api.base } : await offline(c);
      if (c.json) {
        c.printJson(view);
        return 0;
      }
      const types = table(
        ["ENTITY TYPE", "OPERATIONS"],
        view.entity_types.map((t) => [t.name, t.name === "domains" ? "every operation (a domain-level grant covers what is inside the domain)" : t.operations.join(", ")]),
      );
      const ops = table(["OPERATION", "WHAT IT ALLOWS"], view.operations.map((o) => [o.name, o.description ?? "-"]));
      c.io.out(`${types}\n${ops}\nScopes are ${view.scope_syntax}.\n`);
      c.io.err(`(from ${from})\n`);
      return 0;
    },
  },
];
