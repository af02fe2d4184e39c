/**
 * `patgate routes check|explain` and `patgate serve`: offline commands that read
 * the config file and the route table the gateway would load. The gateway's
 * modules are imported on first use, so API commands start fast.
 */
import { readFileSync } from "node:fs";
import type { Settings } from "../config/config.ts";
import type { RouteTable } from "../routing/table.ts";
import type { Command, Ctx, Opt } from "./command.ts";
import { CliError } from "./command.ts";
import { oneLine } from "./client.ts";
import type { Explanation } from "./explain.ts";
import { fields } from "./format.ts";
import { CONFIG_OPT, configFile, loadConfig } from "./local.ts";

// The config option and loader are shared with the local store commands (local.ts).
const CONFIG = CONFIG_OPT;
const ROUTES: Opt = { type: "string", arg: "FILE", help: "the route table (default: the config's routes_file)" };
/** The table and the file it came from; a RouteTableError is left to the caller. */
async function loadTable(c: Ctx, s: Settings): Promise<{ file: string; table: RouteTable }> {
  const { loadRouteTable } = await import("../routing/table.ts");
  const file = c.str("routes") ?? s.routesFile;
  return { file, table: loadRouteTable(file, s.catalog) };
}

export const ROUTE_COMMANDS: readonly Command[] = [
  {
    name: "routes check",
    summary: "Validate the config and the route table offline, as the gateway would at start.",
    usage: "[--routes FILE] [--config FILE]",
    options: { routes: ROUTES, config: CONFIG },
    notes: "Exits 0 when the table is valid. Otherwise prints every problem (file:line:col: problem) on stdout and exits 1.",
    async run(c) {
      const { ConfigError, loadSettings } = await import("../config/config.ts");
      const { RouteTableError } = await import("../routing/table.ts");
      let s: Settings;
      try {
        s = loadSettings(configFile(c), c.io.env);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        return invalid(c, configFile(c), err.message.split("\n"), "config");
      }
      try {
        const { file, table } = await loadTable(c, s);
        if (c.json) c.printJson({ ok: true, file, routes: table.routes.length });
        else c.io.out(`${file}: OK, ${table.routes.length} routes\n`);
        return 0;
      } catch (err) {
        if (!(err instanceof RouteTableError)) throw err;
        return invalid(c, c.str("routes") ?? s.routesFile, err.problems, "route table");
      }
    },
  },
  {
    name: "routes explain",
    summary: "Explain offline which route a request matches and the scope a PAT needs for it.",
    usage: "METHOD PATH [--body FILE] [--content-type T] [--domain D] [--routes FILE] [--config FILE]",
    args: ["METHOD", "PATH"],
    options: {
      body: { type: "string", arg: "FILE", help: 'the request body, to read the entity from it ("-": stdin)' },
      "content-type": { type: "string", arg: "T", help: "the body's Content-Type (default: JSON, or multipart with the boundary the body starts with)" },
      domain: { type: "string", arg: "D", help: "the domain, when PATH is relative to /proxy/<domain>" },
      routes: ROUTES,
      config: CONFIG,
    },
    notes: `PATH is /proxy/<domain>/…, a path relative to it (/v1/chat/completions) or a full URL.
Exits 1, with the reason on stderr, when the gateway would refuse the request
whatever the token (bad path, no route, wrong method, or a body that does not
name exactly one valid entity).

Example:
  patgate routes explain POST /proxy/demo/v1/chat/completions --body req.json`,
    async run(c) {
      const s = await loadConfig(c);
      const { RouteTableError } = await import("../routing/table.ts");
      let table: RouteTable;
      try {
        table = (await loadTable(c, s)).table;
      } catch (err) {
        if (!(err instanceof RouteTableError)) throw err;
        throw new CliError(`the route table is invalid: ${err.problems[0] ?? ""}${err.problems.length > 1 ? ` (and ${err.problems.length - 1} more; see patgate routes check)` : ""}`);
      }
      const { explain } = await import("./explain.ts");
      const body = readBody(c);
      const type = c.str("content-type");
      const domain = c.str("domain");
      const e = await explain(table, s.roles, {
        method: c.arg(0),
        target: c.arg(1),
        ...(domain === undefined ? {} : { domain }),
        ...(body === undefined ? {} : { body }),
        ...(type === undefined ? {} : { contentType: type }),
      }, s.limits);
      if (c.json) c.printJson({ ok: e.refused === null, ...e });
      else if (e.route !== null) c.io.out(describe(e, body !== undefined));
      if (e.refused === null) return 0;
      c.io.err(`patgate: the gateway would refuse ${e.method} ${e.path}: ${e.refused.status} ${e.refused.code}: ${oneLine(e.refused.message)}\n`);
      return 1;
    },
  },
  {
    name: "serve",
    summary: "Run the gateway (what `npm start` runs).",
    usage: "[--config FILE]",
    options: { config: CONFIG },
    async run(c) {
      const { serve } = await import("../main.ts");
      await serve(configFile(c));
      // serve() returns once listening (or after reporting why it cannot); the server keeps the process alive.
      return Number(process.exitCode ?? 0);
    },
  },
];

function invalid(c: Ctx, file: string, problems: readonly string[], what: string): number {
  if (c.json) c.printJson({ ok: false, file, problems });
  else c.io.out(problems.join("\n") + "\n");
  c.io.err(`patgate: the ${what} ${file} is invalid: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n`);
  return 1;
}

function readBody(c: Ctx): Buffer | undefined {
  const file = c.str("body");
  if (file === undefined) return undefined;
  try {
    if (file === "-") {
      if (c.io.readStdin === undefined) throw new CliError("--body -: there is no standard input to read here");
      return c.io.readStdin();
    }
    return readFileSync(file);
  } catch (err) {
    throw new CliError(`cannot read --body ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function describe(e: Explanation, bodyGiven: boolean): string {
  const r = e.route;
  if (r === null) return "";
  const src = r.entity;
  const from =
    src.from === "domain" ? "the domain itself" : src.from === "path" ? `the path parameter {${src.param}}` : src.from === "query" ? `the query parameter "${src.param}"` : `the ${src.from === "body" ? "JSON body" : "multipart form"} field "${src.field}"`;
  const rows: [string, string][] = [
    ["request", `${e.method} ${e.path}`],
    ["route", `${r.id} (${r.method} ${r.path})`],
    ["operation", r.operation],
    ["entity", e.entity_id !== null ? `${r.entity_type} ${e.entity_id} (from ${from})` : `${r.entity_type}, from ${from}${bodyGiven || e.refused !== null ? "" : " (pass --body FILE to read it)"}`],
    ["domain", e.domain ?? "(not given: the path is relative; pass --domain D or use /proxy/<domain>/…)"],
  ];
  if (e.scope !== null) {
    rows.push(["needs scope", e.scope], ["or any of", e.also_granted_by.join("\n")]);
    rows.push(["and roles", `the PAT's user must hold ${r.operation} in the domain (config roles with it: ${e.roles.length === 0 ? "none" : e.roles.join(", ")})`]);
  }
  if (e.limits !== undefined) {
    const list = e.limits.map((p) => `${p.name} (per ${p.subject}, ${p.mode}, store down: ${p.on_store_down}): ${[p.requests_per_minute === undefined ? "" : `${p.requests_per_minute} req/min`, p.tokens_per_minute === undefined ? "" : `${p.tokens_per_minute} tokens/min`, p.tokens_per_day === undefined ? "" : `${p.tokens_per_day} tokens/day`, p.concurrent === undefined ? "" : `${p.concurrent} at once`].filter((x) => x !== "").join(", ")}`);
    rows.push(["limits", list.length === 0 ? "none (a PAT's own limits still apply)" : list.join("\n")]);
  }
  return fields(rows);
}
