// The CLI's command line, in process: finding the command, --help for every
// command, usage errors (exit 2, one line) and the checks made before any request.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { COMMANDS, main } from "../../src/cli/main.ts";

async function cli(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), env, now: () => Date.parse("2025-05-01T10:00:00Z") });
  return { code, stdout, stderr };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** One `patgate: …` line and nothing else. */
const ONE_LINE = /^patgate: [^\n]+\n$/;

describe("patgate usage", () => {
  it("has the commands the issue asks for", () => {
    const names = COMMANDS.map((c) => c.name);
    for (const n of [
      "serve",
      "pat create", "pat list", "pat show", "pat rotate", "pat revoke", "pat delete", "pat rename", "pat describe",
      "pat scope add", "pat scope remove", "pat scope clear",
      "domain create", "domain list", "domain show", "domain delete",
      "member add", "member list", "member remove",
      "role list", "role show", "role set", "role delete",
      "routes check", "routes explain",
    ]) {
      expect(names).toContain(n);
    }
  });

  it.each(COMMANDS.map((c) => [c.name]))("patgate %s --help", async (name) => {
    const r = await cli([...name.split(" "), "--help"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(new RegExp(`^usage: patgate ${name}\\b`));
    expect(r.stdout).toContain("--json");
    expect(r.stdout).toContain("--help");
  });

  it("prints an overview for --help, and one for each group", async () => {
    const all = await cli(["--help"]);
    expect(all.code).toBe(0);
    for (const c of COMMANDS) expect(all.stdout).toContain(`patgate ${c.name}`);
    const pat = await cli(["pat", "--help"]);
    expect(pat.stdout).toMatch(/^usage: patgate pat <create\|list\|/);
    expect(pat.stdout).not.toContain("domain create");
    expect((await cli(["help", "pat", "create"])).stdout).toMatch(/^usage: patgate pat create --name N/);
  });

  it("docs/cli.md shows every command's synopsis as --help prints it", () => {
    const doc = readFileSync(new URL("../../docs/cli.md", import.meta.url), "utf8").replaceAll("\\|", "|");
    for (const c of COMMANDS) expect(doc, c.name).toContain(`\`${`patgate ${c.name} ${c.usage}`.trimEnd()}\``);
  });

  it("prints the version", async () => {
    expect((await cli(["--version"])).stdout).toMatch(/^patgate \d+\.\d+\.\d+\n$/);
  });

  it.each([
    [[], /^patgate: missing command \(usage: patgate <pat\|domain\|member\|role\|routes\|serve\|me\|grantable\|catalog\|usage\|limits\|export\|import\|backup\|admin-key>; see --help\)\n$/],
    [["bogus"], /unknown command "bogus"/],
    [["pat"], /"pat" needs a command \(usage: patgate pat <create\|list\|show/],
    [["pat", "scope"], /"pat scope" needs a command \(usage: patgate pat scope <list\|add\|remove\|clear>/],
    [["pat", "frobnicate"], /unknown command "pat frobnicate"/],
    [["--url", "http://x", "pat", "list"], /missing command \(options come after it\)/],
    [["pat", "create", "--name", "n", "--duration", "30d"], /missing --scope \(usage: patgate pat create --name N --duration D --scope S/],
    [["pat", "create", "--name", "n", "--scope", "d:models:m:llm_read"], /missing --duration/],
    [["pat", "create", "--nmae", "n"], /unknown option --nmae/],
    [["pat", "create", "--name"], /--name needs a value/],
    [["pat", "list", "--quiet=yes"], /--quiet takes no value/],
    [["pat", "show"], /missing ID \(usage: patgate pat show ID/],
    [["pat", "show", "a", "b"], /unexpected argument "b"/],
    [["pat", "rename", "id"], /missing NAME/],
    [["member", "add", "demo", "alice"], /missing --role/],
    [["role", "set", "chatter"], /missing --op/],
    [["pat", "create", "--name", "n", "--duration", "30d", "--scope", "models:llama3:llm_read"], /the domain is missing/],
    [["pat", "scope", "add", "id", "--scope", "x:y"], /is not DOMAIN:TYPE:ID:OP/],
    [["pat", "list", "--url", "ftp://gw"], /--url must be http/],
    [["routes", "explain", "GET"], /missing PATH/],
  ])("%j is a usage error: exit 2, one line", async (argv, message) => {
    const r = await cli(argv, { PATGATE_TOKEN: "pgadm_x".padEnd(40, "x") });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toMatch(message);
  });

  it("needs a credential for API commands, before sending anything", async () => {
    const r = await cli(["domain", "list"], { PATGATE_URL: "http://127.0.0.1:1" });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("patgate: no credential: set PATGATE_TOKEN or pass --token (an admin key, or a user's OIDC token)\n");
  });

  it("says so in one line when the gateway cannot be reached", async () => {
    const port = await closedPort();
    const r = await cli(["domain", "list", "--url", `http://127.0.0.1:${port}/`, "--token", "k"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(`patgate: cannot reach http://127.0.0.1:${port}: ECONNREFUSED (is the gateway running?`);
  });
});
