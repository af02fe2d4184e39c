/**
 * The CLI's command model: each command is data (name, synopsis, options) plus
 * a small `run`. Parsing, `--help` and usage errors are handled once, here.
 */
import { parseArgs } from "node:util";
import type { Client } from "./client.ts";

/** Where a command writes and what it reads from its surroundings (the real process, or a test's). */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  now(): number;
  /** Reads `--body -` (standard input); absent in tests that do not need it. */
  readStdin?: () => Buffer;
}

export interface Opt {
  readonly type: "string" | "boolean";
  /** May be given more than once (values collected in order). */
  readonly multiple?: boolean;
  readonly short?: string;
  /** Placeholder shown in help, e.g. `N` in `--name N`. */
  readonly arg?: string;
  readonly help: string;
  /** A usage error when absent. */
  readonly required?: boolean;
}

export interface Command {
  /** Space-separated words, e.g. `pat scope add`. */
  readonly name: string;
  readonly summary: string;
  /** The synopsis after the command name, e.g. `ID --duration D [--grace G]`. */
  readonly usage: string;
  /** Positional arguments, in order; all required. */
  readonly args?: readonly string[];
  /** Positional arguments after `args` that may be left out (the command checks what it got). */
  readonly optionalArgs?: readonly string[];
  readonly options?: Readonly<Record<string, Opt>>;
  /** Talks to the management API: takes --url and --token. */
  readonly api?: boolean;
  /** Extra help text, printed after the options. */
  readonly notes?: string;
  run(c: Ctx): Promise<number>;
}

/** A command line the user got wrong: exit 2 with the command's synopsis. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Anything else that failed: exit 1 with this one line. */
export class CliError extends Error {
  override readonly name = "CliError";
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What `run` gets: positional arguments, typed option access, output, and the API client. */
export class Ctx {
  readonly io: Io;
  readonly args: readonly string[];
  readonly #values: Values;
  readonly #client: () => Client;

  constructor(io: Io, args: readonly string[], values: Values, client: () => Client) {
    this.io = io;
    this.args = args;
    this.#values = values;
    this.#client = client;
  }

  /** The n-th positional argument (present: counts are checked before `run`). */
  arg(n: number): string {
    return this.args[n] ?? "";
  }

  str(name: string): string | undefined {
    const v = this.#values[name];
    return typeof v === "string" ? v : undefined;
  }

  /** A repeatable option's values; each may also be a comma-separated list when `commas`. */
  list(name: string, commas = false): string[] {
    const v = this.#values[name];
    const all = Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : typeof v === "string" ? [v] : [];
    return commas ? all.flatMap((x) => x.split(",")).map((x) => x.trim()).filter((x) => x !== "") : all;
  }

  flag(name: string): boolean {
    return this.#values[name] === true;
  }

  get json(): boolean {
    return this.flag("json");
  }

  get api(): Client {
    return this.#client();
  }

  /** Prints a value as JSON for scripts. */
  printJson(value: unknown): void {
    this.io.out(JSON.stringify(value, null, 2) + "\n");
  }
}

export const JSON_OPT: Opt = { type: "boolean", help: "print JSON (for scripts) instead of text for people" };
export const HELP_OPT: Opt = { type: "boolean", short: "h", help: "show this help" };
export const API_OPTS: Readonly<Record<string, Opt>> = {
  url: { type: "string", arg: "URL", help: "the gateway (env PATGATE_URL; default http://127.0.0.1:8080)" },
  token: { type: "string", arg: "T", help: "an admin key or a user's OIDC token (env PATGATE_TOKEN)" },
  "ca-file": { type: "string", arg: "FILE", help: "trust an https gateway's certificate through this CA (PEM), besides the system's (env PATGATE_CA_FILE)" },
  "insecure-skip-tls-verify": { type: "boolean", help: "do not check the gateway's certificate at all (self-signed test setups only)" },
};

/** Every option a command takes: its own, then --url/--token (and TLS trust) for API commands, then --json and --help. */
export function allOptions(cmd: Command): Record<string, Opt> {
  return { ...cmd.options, ...(cmd.api === true ? API_OPTS : {}), json: JSON_OPT, help: HELP_OPT };
}

/** Parses a command's arguments (after its name); throws UsageError. */
export function parseCommandLine(cmd: Command, argv: readonly string[]): { args: string[]; values: Values } {
  const opts = allOptions(cmd);
  const config: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [k, o] of Object.entries(opts)) {
    config[k] = { type: o.type, ...(o.multiple === true ? { multiple: true } : {}), ...(o.short === undefined ? {} : { short: o.short }) };
  }
  let parsed: { values: Values; positionals: string[] };
  try {
    const r = parseArgs({ args: [...argv], options: config, allowPositionals: true, strict: true });
    parsed = { values: r.values, positionals: r.positionals };
  } catch (err) {
    throw new UsageError(parseArgsMessage(err));
  }
  const want = cmd.args ?? [];
  if (parsed.positionals.length < want.length) throw new UsageError(`missing ${want.slice(parsed.positionals.length).join(" ")}`);
  const most = want.length + (cmd.optionalArgs?.length ?? 0);
  if (parsed.positionals.length > most) throw new UsageError(`unexpected argument "${parsed.positionals[most] ?? ""}"`);
  for (const [k, o] of Object.entries(opts)) {
    if (o.required === true && parsed.values[k] === undefined) throw new UsageError(`missing --${k}`);
  }
  return { args: parsed.positionals, values: parsed.values };
}

// node:util's messages suggest `--` tricks; people need the option's name and what is wrong with it.
function parseArgsMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const quoted = /'([^']+)'/.exec(e.message ?? "")?.[1] ?? "";
  const opt = /--[\w-]+/.exec(quoted)?.[0] ?? /-\w/.exec(quoted)?.[0];
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${opt ?? ""}`.trim();
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (opt === undefined) return e.message ?? "invalid option value";
      if ((e.message ?? "").includes("does not take")) return `${opt} takes no value`;
      return (e.message ?? "").includes("ambiguous") ? `${opt} needs a value (write ${opt}=VALUE for one that starts with "-")` : `${opt} needs a value`;
    default:
      return e.message ?? String(err);
  }
}

/** The `--help` text of one command. */
export function commandHelp(cmd: Command): string {
  const opts = allOptions(cmd);
  const rows = Object.entries(opts).map(([k, o]) => {
    const flag = `${o.short === undefined ? "    " : `-${o.short}, `}--${k}${o.type === "string" ? ` ${o.arg ?? "VALUE"}` : ""}`;
    const extra = [o.required === true ? "required" : "", o.multiple === true ? "repeatable" : ""].filter((x) => x !== "").join(", ");
    return [flag, extra === "" ? o.help : `${o.help} (${extra})`] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  const lines = [`usage: patgate ${cmd.name} ${cmd.usage}`.trimEnd(), "", cmd.summary, "", "options:"];
  for (const [f, h] of rows) lines.push(`  ${f.padEnd(width)}  ${h}`);
  if (cmd.notes !== undefined) lines.push("", cmd.notes.trimEnd());
  return lines.join("\n") + "\n";
}
