/**
 * `patgate`: the command-line tool (bin/patgate.js). Finds the command from the
 * leading words, parses its options, runs it, and turns any failure into one
 * line on stderr and an exit code: 0 ok, 1 error, 2 usage.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "./root.ts";
import { DOMAIN_COMMANDS, MEMBER_COMMANDS, ROLE_COMMANDS } from "./admin.ts";
import { Client, oneLine } from "./client.ts";
import { CliError, Ctx, UsageError, commandHelp, parseCommandLine, type Command, type Io } from "./command.ts";
import { ME_COMMANDS } from "./me.ts";
import { PAT_COMMANDS } from "./pats.ts";
import { ROUTE_COMMANDS } from "./routes.ts";
import { CATALOG_COMMANDS } from "./catalog.ts";
import { ADMIN_KEY_COMMANDS } from "./admin-key.ts";
import { STORAGE_COMMANDS } from "./storage.ts";
import { USAGE_COMMANDS } from "./usage.ts";

/** Every command, in the order help lists them. */
export const COMMANDS: readonly Command[] = [...PAT_COMMANDS, ...DOMAIN_COMMANDS, ...MEMBER_COMMANDS, ...ROLE_COMMANDS, ...ROUTE_COMMANDS, ...ME_COMMANDS, ...CATALOG_COMMANDS, ...USAGE_COMMANDS, ...STORAGE_COMMANDS, ...ADMIN_KEY_COMMANDS];

const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));
// Every prefix of a command name that is not itself a command: `pat`, `pat scope`, …
const GROUPS = new Set(COMMANDS.flatMap((c) => c.name.split(" ").slice(0, -1).map((_, i, w) => w.slice(0, i + 1).join(" "))));

const OVERVIEW = `patgate: a gateway that enforces Personal Access Token scopes in front of LLM backends.

usage: patgate <command> [arguments] [options]      patgate <command> --help

The management commands call a running gateway at PATGATE_URL (default
http://127.0.0.1:8080) with PATGATE_TOKEN: an admin key (operators) or a user's
OIDC token. --url and --token override them. Every command takes --json.
export, import, backup and admin-key create work on the store of the gateway's
config (--config) directly, with or without a gateway running.
Exit status: 0 ok, 1 error (one line on stderr), 2 wrong usage.
Docs: docs/cli.md, in ${packageRoot()}`;

/** Runs one command line; resolves with the exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const words: string[] = [];
  while (words.length < argv.length && !(argv[words.length] ?? "-").startsWith("-")) words.push(argv[words.length] ?? "");
  let n = words.length;
  while (n > 0 && !BY_NAME.has(words.slice(0, n).join(" "))) n--;
  const cmd = BY_NAME.get(words.slice(0, n).join(" "));
  const rest = argv.slice(n);
  const wantsHelp = helpRequested(rest);

  if (cmd === undefined) {
    if (argv[0] === "--version") {
      io.out(`${version()}\n`);
      return 0;
    }
    const group = longestGroup(words);
    if (words[0] === "help") {
      const named = BY_NAME.get(words.slice(1).join(" "));
      io.out(named === undefined ? groupHelp(longestGroup(words.slice(1))) : commandHelp(named));
      return 0;
    }
    if (wantsHelp) {
      io.out(groupHelp(group));
      return 0;
    }
    const depth = group === "" ? 0 : group.split(" ").length;
    const reason =
      words.length > depth ? `unknown command "${words.slice(0, depth + 1).join(" ")}"` : group !== "" ? `"${group}" needs a command` : argv.length === 0 ? "missing command" : "missing command (options come after it)";
    return usageError(io, reason, `patgate ${group === "" ? "" : `${group} `}<${subcommands(group).join("|")}>`);
  }
  if (wantsHelp) {
    io.out(commandHelp(cmd));
    return 0;
  }
  try {
    const { args, values } = parseCommandLine(cmd, rest);
    const url = typeof values.url === "string" ? values.url : undefined;
    const token = typeof values.token === "string" ? values.token : undefined;
    let client: Client | null = null;
    const tls = { caFile: typeof values["ca-file"] === "string" ? values["ca-file"] : undefined, insecure: values["insecure-skip-tls-verify"] === true, warn: (line: string) => io.err(line) };
    const ctx = new Ctx(io, args, values, () => (client ??= Client.from(url, token, io.env, tls)));
    return await cmd.run(ctx);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err.message, `patgate ${cmd.name} ${cmd.usage}`.trimEnd());
    if (err instanceof CliError) {
      io.err(`patgate: ${oneLine(err.message)}\n`);
      return 1;
    }
    io.err(`patgate: unexpected error: ${oneLine((err as Error).message ?? String(err))}\n`);
    return 1;
  }
}

function usageError(io: Io, reason: string, synopsis: string): number {
  io.err(`patgate: ${oneLine(reason)} (usage: ${synopsis}; see --help)\n`);
  return 2;
}

/** --help or -h before any `--` terminator. */
function helpRequested(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

function longestGroup(words: readonly string[]): string {
  for (let n = words.length; n > 0; n--) {
    const g = words.slice(0, n).join(" ");
    if (GROUPS.has(g)) return g;
  }
  return "";
}

/** The next words after `group` that lead to commands. */
function subcommands(group: string): string[] {
  const depth = group === "" ? 0 : group.split(" ").length;
  const prefix = group === "" ? "" : `${group} `;
  return [...new Set(COMMANDS.filter((c) => c.name.startsWith(prefix)).map((c) => c.name.split(" ")[depth] ?? ""))];
}

function groupHelp(group: string): string {
  const prefix = group === "" ? "" : `${group} `;
  const cmds = COMMANDS.filter((c) => c.name.startsWith(prefix));
  const rows = cmds.map((c) => [`${c.name} ${c.usage}`.trimEnd(), c.summary] as const);
  const lines = group === "" ? [OVERVIEW, "", "commands:"] : [`usage: patgate ${group} <${subcommands(group).join("|")}> …`, "", "commands:"];
  for (const [syn, sum] of rows) lines.push(`  patgate ${syn}`, `      ${sum}`);
  return lines.join("\n") + "\n";
}

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version?: string };
  return `patgate ${pkg.version ?? "?"}`;
}

/** The real process: argv, stdout/stderr, environment; sets the exit code. */
export async function run(): Promise<void> {
  // `patgate pat list | head` closes the pipe early: that is not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
  const io: Io = {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    now: Date.now,
    readStdin: () => readFileSync(0),
  };
  process.exitCode = await main(process.argv.slice(2), io);
}
