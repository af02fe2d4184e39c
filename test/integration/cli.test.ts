// Every `patgate` management command against a gateway on a real socket: what
// it prints for people and with --json, and one refusal each (exit 1, one line
// naming the API's error code). Most runs are in process (main() with captured
// output); the ones whose process behaviour matters (the token alone on stdout,
// exit codes) spawn `node bin/patgate.js` as a shell would.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { startAdminFixture, type AdminFixture } from "../helpers/admin.ts";
import { ROOT } from "../helpers/gateway.ts";

const BIN = path.join(ROOT, "bin", "patgate.js");
const TOKEN_LINE = /^pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{49}\n$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let fx: AdminFixture;
let env: Record<string, string>;

/** In process, as an operator unless `env` says otherwise. */
async function cli(argv: string[], extra: Record<string, string> = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), env: { ...env, ...extra }, now: Date.now });
  return { code, stdout, stderr };
}

/** A real `patgate` process. */
function spawnCli(argv: string[], extra: Record<string, string> = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PATGATE_")));
  const child = spawn(process.execPath, [BIN, ...argv], { env: { ...base, ...env, ...extra }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Exit 0 and nothing on stderr; the output. */
async function ok(argv: string[], extra?: Record<string, string>): Promise<string> {
  const r = await cli(argv, extra);
  expect(r.stderr, `patgate ${argv.join(" ")}`).toBe("");
  expect(r.code).toBe(0);
  return r.stdout;
}

async function okJson<T>(argv: string[], extra?: Record<string, string>): Promise<T> {
  return JSON.parse(await ok([...argv, "--json"], extra)) as T;
}

/** Exit 1 with one line `patgate: <message> (<code>…)` and nothing on stdout. */
async function fails(argv: string[], code: string, extra?: Record<string, string>): Promise<string> {
  const r = await cli(argv, extra);
  expect(r.code, `patgate ${argv.join(" ")}: ${r.stderr}`).toBe(1);
  expect(r.stdout).toBe("");
  expect(r.stderr).toMatch(/^patgate: [^\n]+\n$/);
  expect(r.stderr).toContain(`(${code}`);
  return r.stderr;
}

/** Creates a PAT for alice in acme (in process); its id and token. */
async function createPat(name: string, scopes = ["acme:models:llama3:llm_chat_completions"]): Promise<{ id: string; token: string }> {
  const r = await cli(["pat", "create", "--user", "alice", "--name", name, "--duration", "1d", ...scopes.flatMap((s) => ["--scope", s]), "--json"]);
  expect(r.code, r.stderr).toBe(0);
  const p = JSON.parse(r.stdout) as { id: string; token: string };
  return { id: p.id, token: p.token };
}

beforeAll(async () => {
  fx = await startAdminFixture();
  env = { PATGATE_URL: fx.gw.url, PATGATE_TOKEN: fx.gw.adminKey ?? "" };
  await ok(["domain", "create", "acme"]);
  await ok(["member", "add", "acme", "alice", "--role", "developer"]);
});
afterAll(async () => {
  await fx?.close();
});

describe("patgate domain", () => {
  it("create: a domain on the default upstream, or a named one", async () => {
    expect(await ok(["domain", "create", "d-one", "--name", "Domain One"])).toBe("Created domain d-one, served by the default upstream.\n");
    const d = await okJson<Record<string, unknown>>(["domain", "create", "d-two", "--upstream", "default"]);
    expect(d).toMatchObject({ id: "d-two", name: "d-two", upstream: "default" });
    expect(Object.keys(d).sort()).toEqual(["created_at", "id", "name", "upstream"]);
    expect(await fails(["domain", "create", "d-one"], "domain_exists")).toBe('patgate: A domain "d-one" already exists; change it with PATCH /domains/d-one (patgate domain update). (domain_exists)\n');
    await fails(["domain", "create", "d-three", "--upstream", "nowhere"], "unknown_upstream; see --upstream");
  });

  it("list: a table, or JSON", async () => {
    const out = await ok(["domain", "list"]);
    expect(out).toMatch(/^ID\s+NAME\s+UPSTREAM\s+CREATED\n/);
    expect(out).toMatch(/\nacme\s+acme\s+\(default\)\s+(now|\d+s ago)\n/);
    const j = await okJson<{ total: number; domains: { id: string }[] }>(["domain", "list"]);
    expect(j.domains.map((d) => d.id)).toContain("acme");
    expect(j.total).toBe(j.domains.length);
    await fails(["domain", "list", "--token", "not-a-valid-admin-key-but-long-enough"], "invalid_credential");
  });

  it("update: name, upstream, back to the default upstream", async () => {
    await ok(["domain", "create", "d-upd"]);
    expect(await ok(["domain", "update", "d-upd", "--name", "Updated", "--upstream", "default"])).toBe('Domain d-upd ("Updated") is served by upstream default.\n');
    expect(await okJson(["domain", "update", "d-upd", "--default-upstream"])).toMatchObject({ id: "d-upd", name: "Updated", upstream: null });
    await fails(["domain", "update", "d-upd", "--upstream", "nowhere"], "unknown_upstream; see --upstream");
    await fails(["domain", "update", "d-none", "--name", "x"], "domain_not_found");
    expect((await cli(["domain", "update", "d-upd"])).code).toBe(2);
  });

  it("show, and delete", async () => {
    await ok(["domain", "create", "d-gone"]);
    expect(await ok(["domain", "show", "d-gone"])).toMatch(/^id\s+d-gone\nname\s+d-gone\nupstream\s+\(default\)\ncreated\s+\d{4}-.*Z \((now|\d+s ago)\)\n$/);
    expect(await okJson(["domain", "show", "d-gone"])).toMatchObject({ id: "d-gone", upstream: null });
    expect(await ok(["domain", "delete", "d-gone"])).toBe("Deleted domain d-gone and its memberships.\n");
    await fails(["domain", "show", "d-gone"], "domain_not_found");
    await fails(["domain", "delete", "d-gone"], "domain_not_found");
    expect(await okJson(["domain", "delete", "d-one"])).toEqual({ id: "d-one", deleted: true });
  });
});

describe("patgate member", () => {
  it("add, list, show, remove", async () => {
    expect(await ok(["member", "add", "acme", "bob", "--role", "viewer", "--role", "developer"])).toBe("bob is a member of acme with roles viewer, developer.\n");
    expect(await okJson(["member", "add", "acme", "bob", "--role", "viewer"])).toEqual({ domain_id: "acme", user_id: "bob", roles: ["viewer"] });
    expect(await ok(["member", "list", "acme"])).toMatch(/^USER\s+ROLES\n(.*\n)*bob\s+viewer\n/);
    const members = await okJson<{ total: number; members: unknown[] }>(["member", "list", "acme"]);
    expect(members.members).toEqual(expect.arrayContaining([{ domain_id: "acme", user_id: "bob", roles: ["viewer"] }]));
    expect(await ok(["member", "show", "acme", "bob"])).toBe("domain  acme\nuser    bob\nroles   viewer\n");
    expect(await ok(["member", "remove", "acme", "bob"])).toBe("Removed bob from acme.\n");
    expect(await okJson(["member", "add", "acme", "carol", "--role", "viewer,developer"])).toMatchObject({ roles: ["viewer", "developer"] });
    expect(await okJson(["member", "remove", "acme", "carol"])).toEqual({ domain_id: "acme", user_id: "carol", removed: true });
  });

  it("refusals", async () => {
    await fails(["member", "add", "acme", "bob", "--role", "wizard"], "unknown_role; see --role");
    await fails(["member", "add", "nowhere", "bob", "--role", "viewer"], "domain_not_found");
    await fails(["member", "list", "nowhere"], "domain_not_found");
    await fails(["member", "show", "acme", "nobody"], "member_not_found");
    await fails(["member", "remove", "acme", "nobody"], "member_not_found");
  });
});

describe("patgate role", () => {
  it("set, show, list, delete", async () => {
    expect(await ok(["role", "set", "chatter", "--op", "llm_chat_completions", "--op", "llm_read"])).toBe("Role chatter: llm_chat_completions, llm_read.\n");
    expect(await okJson(["role", "set", "chatter", "--op", "llm_read"])).toEqual({ name: "chatter", operations: ["llm_read"], source: "stored", effective: true });
    expect(await ok(["role", "show", "chatter"])).toBe("name        chatter\nsource      stored\noperations  llm_read\n");
    const list = await ok(["role", "list"]);
    expect(list).toMatch(/^NAME\s+SOURCE\s+OPERATIONS\n/);
    expect(list).toMatch(/\nchatter\s+stored\s+llm_read\n/);
    expect(list).toMatch(/\ndeveloper\s+config\s+read,llm_read,/);
    const roles = await okJson<{ total: number; roles: unknown[] }>(["role", "list"]);
    expect(roles.roles).toEqual(expect.arrayContaining([{ name: "admin", operations: ["*"], source: "config", effective: true }]));
    expect(await ok(["role", "delete", "chatter"])).toBe("Deleted role chatter.\n");
  });

  it("marks a config role a stored one overrides", async () => {
    await ok(["role", "set", "viewer", "--op", "llm_read"]);
    expect(await ok(["role", "list"])).toMatch(/\nviewer\s+config \(overridden\)\s+read,llm_read\nviewer\s+stored\s+llm_read\n/);
    await ok(["role", "delete", "viewer"]);
  });

  it("refusals", async () => {
    await fails(["role", "set", "chatter", "--op", "llm_dance"], "unknown_operation; see --op");
    await fails(["role", "show", "nope"], "role_not_found");
    await fails(["role", "delete", "developer"], "role_in_config");
    await fails(["role", "delete", "nope"], "role_not_found");
  });
});

describe("patgate pat create", () => {
  it("prints the token alone on stdout, once, and the summary on stderr (a real process)", async () => {
    const r = await spawnCli(["pat", "create", "--user", "alice", "--name", "laptop", "--duration", "30d", "--scope", "acme:models:llama3:llm_chat_completions", "--description", "my laptop"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TOKEN_LINE);
    const token = r.stdout.trim();
    expect(r.stderr).not.toContain(token);
    expect(r.stderr).toMatch(/^Created PAT "laptop" \(id [0-9a-f-]{36}\) for alice, expires \d{4}-\d\d-\d\dT.*Z \(in 29d\)\.\n/);
    expect(r.stderr).toContain("Scopes: acme:models:llama3:llm_chat_completions\n");
    expect(r.stderr).toContain("only this once");
    expect(await fx.chat(token, "acme", "llama3")).toBe(200);
    expect(await fx.chat(token, "acme", "other-model")).toBe(403);
  });

  it("warns on stderr about a scope that can grant nothing yet; the token still alone on stdout", async () => {
    const r = await cli(["pat", "create", "--user", "alice", "--name", "warned", "--duration", "1d", "--scope", "acme:models:llama3:llm_delete"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TOKEN_LINE);
    expect(r.stderr).toContain('warning: "acme:models:llama3:llm_delete" grants nothing yet: no role of alice in domain "acme" holds "llm_delete".\n');
  });

  it("with --json, prints the whole PAT, token included", async () => {
    const p = await okJson<Record<string, unknown>>(["pat", "create", "--user", "alice", "--name", "json-one", "--duration", "1h", "--scope", "acme:models:*:llm_read"]);
    expect(p).toMatchObject({ user_id: "alice", name: "json-one", status: "active", scopes: [{ domain_id: "acme", entity_type: "models", entity_id: "*", operation: "llm_read" }] });
    expect(p.id).toMatch(UUID);
    expect(`${String(p.token)}\n`).toMatch(TOKEN_LINE);
  });

  it("takes entity ids with colons, and --domain with TYPE:ID:OP", async () => {
    const a = await createPat("tagged", ["acme:models:llama3:8b:llm_chat_completions"]);
    expect(await fx.chat(a.token, "acme", "llama3:8b")).toBe(200);
    expect(await fx.chat(a.token, "acme", "llama3")).toBe(403);
    const b = await okJson<{ scopes: unknown[]; token: string }>(["pat", "create", "--user", "alice", "--name", "domained", "--duration", "1d", "--domain", "acme", "--scope", "models:qwen2.5:0.5b:llm_chat_completions", "--scope", "models:*:llm_read"]);
    expect(b.scopes).toEqual([
      { domain_id: "acme", entity_type: "models", entity_id: "qwen2.5:0.5b", operation: "llm_chat_completions" },
      { domain_id: "acme", entity_type: "models", entity_id: "*", operation: "llm_read" },
    ]);
    expect(await fx.chat(b.token, "acme", "qwen2.5:0.5b")).toBe(200);
  });

  it("refusals", async () => {
    await createPat("taken");
    const base = ["pat", "create", "--user", "alice", "--duration", "1d", "--scope", "acme:models:llama3:llm_read"];
    await fails([...base, "--name", "taken"], "name_taken; see --name");
    await fails(["pat", "create", "--user", "alice", "--name", "long", "--duration", "2y", "--scope", "acme:models:m:llm_read"], "invalid_duration; see --duration");
    await fails(["pat", "create", "--user", "alice", "--name", "x", "--duration", "1d", "--scope", "acme:models:m:llm_dance"], "invalid_scope; see --scope");
    await fails(["pat", "create", "--user", "alice", "--name", "x", "--duration", "1d", "--scope", "nowhere:models:m:llm_read"], "unknown_domain; see --scope");
    const noUser = await fails(["pat", "create", "--name", "x", "--duration", "1d", "--scope", "acme:models:m:llm_read"], "invalid_field; see --user");
    expect(noUser).toContain("Operators name the user");
  });

  it("exits 2 on a usage error and 1 on a refusal (real processes)", async () => {
    const usage = await spawnCli(["pat", "create", "--user", "alice", "--name", "x", "--duration", "1d"]);
    expect(usage).toMatchObject({ code: 2, stdout: "" });
    expect(usage.stderr).toMatch(/^patgate: missing --scope \(usage: patgate pat create [^\n]*\)\n$/);
    const refused = await spawnCli(["pat", "create", "--user", "alice", "--name", "x", "--duration", "0s", "--scope", "acme:models:m:llm_read"]);
    expect(refused).toMatchObject({ code: 1, stdout: "" });
    expect(refused.stderr).toMatch(/^patgate: [^\n]+ \(invalid_duration; see --duration\)\n$/);
  });
});

describe("patgate pat list, show", () => {
  it("list: a table, ids only with -q, or JSON; filters by status and name", async () => {
    const a = await createPat("list-a");
    const b = await createPat("list-b");
    await ok(["pat", "revoke", b.id]);
    const table = await ok(["pat", "list", "--user", "alice", "--name", "list-", "--limit", "100"]);
    expect(table).toMatch(/^ID\s+NAME\s+STATUS\s+EXPIRES\s+LAST USED\s+SCOPES\n/);
    expect(table).toMatch(new RegExp(`\\n${a.id}  list-a\\s+active\\s+in 23h\\s+never\\s+acme:models:llama3:llm_chat_completions\\n`));
    expect(table).toMatch(new RegExp(`\\n${b.id}  list-b\\s+revoked\\s+`));
    expect(await ok(["pat", "list", "--user", "alice", "--name", "list-", "-q"])).toBe(`${a.id}\n${b.id}\n`);
    expect(await ok(["pat", "list", "--user", "alice", "--name", "list-", "--status", "revoked", "-q"])).toBe(`${b.id}\n`);
    const j = await okJson<{ total: number; offset: number; limit: number; pats: { id: string }[] }>(["pat", "list", "--user", "alice", "--name", "list-"]);
    expect(j).toMatchObject({ total: 2, offset: 0 });
    expect(j.pats.map((p) => p.id)).toEqual([a.id, b.id]);
    expect(await ok(["pat", "list", "--user", "nobody"])).toBe("No PATs.\n");
  });

  it("list: says when there are more than one page", async () => {
    const r = await cli(["pat", "list", "--user", "alice", "--limit", "1"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split("\n")).toHaveLength(2);
    expect(r.stderr).toMatch(/^1–1 of \d+; see --offset and --limit\n$/);
  });

  it("list: without --limit/--offset, every PAT, page after page; delete --all removes them all", async () => {
    const made = [];
    for (let i = 0; i < 105; i++) made.push((await fx.ops.post<{ id: string }>("/pats?user_id=pager", { name: `p${i}`, duration: "1d", scopes: [{ domain_id: "acme", entity_type: "models", entity_id: "llama3", operation: "llm_read" }] })).body.id);
    const ids = (await ok(["pat", "list", "--user", "pager", "-q"])).trimEnd().split("\n");
    expect(ids.sort()).toEqual([...made].sort());
    expect((await okJson<{ total: number; pats: unknown[] }>(["pat", "list", "--user", "pager"])).pats).toHaveLength(105);
    // One page when asked for one.
    expect((await ok(["pat", "list", "--user", "pager", "-q", "--limit", "10"])).trimEnd().split("\n")).toHaveLength(10);
    expect(await ok(["pat", "delete", "--all", "--user", "pager"])).toBe("Deleted 105 PATs of pager.\n");
    expect(await ok(["pat", "list", "--user", "pager"])).toBe("No PATs.\n");
    expect(await okJson(["pat", "delete", "--all", "--user", "pager"])).toEqual({ deleted: 0 });
    expect((await cli(["pat", "delete"])).stderr).toMatch(/missing ID \(or --all\)/);
    expect((await cli(["pat", "delete", "x", "--all"])).code).toBe(2);
  });

  it("list refusals", async () => {
    await fails(["pat", "list"], "invalid_field; see --user");
    await fails(["pat", "list", "--user", "alice", "--status", "sleeping"], "invalid_field; see --status");
    await fails(["pat", "list", "--user", "alice", "--limit", "1000"], "invalid_field; see --limit");
  });

  it("show: every field, never the token", async () => {
    const { id, token } = await createPat("show-me");
    await ok(["pat", "describe", id, "for the show test"]);
    const out = await ok(["pat", "show", id]);
    expect(out).not.toContain(token);
    expect(out).toMatch(new RegExp(`^id\\s+${id}\\nname\\s+show-me\\nuser\\s+alice\\nstatus\\s+active\\ndescription\\s+for the show test\\nscopes\\s+acme:models:llama3:llm_chat_completions\\nissued\\s+`));
    expect(out).toMatch(/\nexpires\s+\S+Z \(in 23h\)\n/);
    expect(out).toMatch(/\nlast used\s+never\n$/);
    const j = await okJson<Record<string, unknown>>(["pat", "show", id]);
    expect(j).toMatchObject({ id, name: "show-me", status: "active" });
    expect(j).not.toHaveProperty("token");
    expect(await okJson(["pat", "show", id, "--user", "alice"])).toMatchObject({ id });
  });

  it("show refusals: unknown, someone else's", async () => {
    const { id } = await createPat("not-bobs");
    await fails(["pat", "show", "00000000-0000-4000-8000-000000000000"], "pat_not_found");
    await fails(["pat", "show", id, "--user", "bob"], "pat_not_found");
  });
});

describe("patgate pat rotate, revoke, delete, rename, describe", () => {
  it("rotate: the new token alone on stdout; the old one stops at once (a real process)", async () => {
    const { id, token } = await createPat("rotate-me");
    const r = await spawnCli(["pat", "rotate", id, "--duration", "2d"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TOKEN_LINE);
    expect(r.stdout.trim()).not.toBe(token);
    expect(r.stderr).toMatch(/^Rotated PAT "rotate-me" \(id [0-9a-f-]{36}\) for alice, expires .* \(in 1d\)\.\n/);
    expect(await fx.chat(r.stdout.trim(), "acme")).toBe(200);
    expect(await fx.chat(token, "acme")).toBe(401);
  });

  it("rotate --grace keeps the old secret working; --json has the token", async () => {
    const { id, token } = await createPat("rotate-grace");
    const p = await okJson<{ token: string; previous_secret_expires_at: string | null }>(["pat", "rotate", id, "--duration", "1d", "--grace", "1h"]);
    expect(`${p.token}\n`).toMatch(TOKEN_LINE);
    expect(p.previous_secret_expires_at).not.toBeNull();
    expect(await fx.chat(token, "acme")).toBe(200);
    expect(await fx.chat(p.token, "acme")).toBe(200);
  });

  it("rotate refusals", async () => {
    const { id } = await createPat("rotate-revoked");
    await ok(["pat", "revoke", id]);
    await fails(["pat", "rotate", id, "--duration", "1d"], "pat_revoked");
    await fails(["pat", "rotate", id, "--duration", "banana"], "invalid_duration; see --duration");
  });

  it("revoke: the token is refused at once", async () => {
    const { id, token } = await createPat("revoke-me");
    expect(await ok(["pat", "revoke", id])).toBe(`Revoked PAT "revoke-me" (${id}).\n`);
    expect(await fx.chat(token, "acme")).toBe(401);
    expect(await okJson(["pat", "revoke", id])).toMatchObject({ id, status: "revoked", revoked: true });
    await fails(["pat", "revoke", "00000000-0000-4000-8000-000000000000"], "pat_not_found");
  });

  it("delete", async () => {
    const a = await createPat("delete-a");
    const b = await createPat("delete-b");
    expect(await ok(["pat", "delete", a.id])).toBe(`Deleted PAT ${a.id}.\n`);
    expect(await fx.chat(a.token, "acme")).toBe(401);
    expect(await okJson(["pat", "delete", b.id])).toEqual({ id: b.id, deleted: true });
    await fails(["pat", "delete", a.id], "pat_not_found");
  });

  it("rename and describe", async () => {
    const { id } = await createPat("old-name");
    await createPat("other-name");
    expect(await ok(["pat", "rename", id, "new-name"])).toBe(`Renamed PAT ${id} to "new-name".\n`);
    expect(await okJson(["pat", "rename", id, "newer-name"])).toMatchObject({ id, name: "newer-name" });
    await fails(["pat", "rename", id, "other-name"], "name_taken; see --name");
    expect(await ok(["pat", "describe", id, "CI jobs"])).toBe(`Updated the description of PAT ${id}.\n`);
    expect(await okJson(["pat", "describe", id, ""])).toMatchObject({ id, description: "" });
    await fails(["pat", "describe", id, "x".repeat(1001)], "invalid_field; see --description");
  });
});

describe("patgate pat scope", () => {
  it("add, list, remove, clear; each takes effect on the data plane", async () => {
    const { id, token } = await createPat("scoped");
    expect(await fx.chat(token, "acme", "mistral")).toBe(403);
    expect(await ok(["pat", "scope", "add", id, "--scope", "acme:models:mistral:llm_chat_completions"])).toBe(
      `PAT ${id} now has 2 scopes:\n  acme:models:llama3:llm_chat_completions\n  acme:models:mistral:llm_chat_completions\n`,
    );
    expect(await fx.chat(token, "acme", "mistral")).toBe(200);
    expect(await ok(["pat", "scope", "list", id])).toBe("acme:models:llama3:llm_chat_completions\nacme:models:mistral:llm_chat_completions\n");
    expect(await okJson(["pat", "scope", "list", id])).toMatchObject({ total: 2 });
    const removed = await okJson<{ scopes: unknown[] }>(["pat", "scope", "remove", id, "--domain", "acme", "--scope", "models:mistral:llm_chat_completions"]);
    expect(removed.scopes).toHaveLength(1);
    expect(await fx.chat(token, "acme", "mistral")).toBe(403);
    expect(await ok(["pat", "scope", "clear", id])).toBe(`Removed every scope from PAT ${id}; it grants nothing now.\n`);
    expect(await fx.chat(token, "acme", "llama3")).toBe(403);
    expect(await ok(["pat", "scope", "list", id])).toBe("(none: the PAT grants nothing)\n");
    expect(await okJson(["pat", "scope", "clear", id])).toEqual({ id, scopes: [] });
  });

  it("refusals", async () => {
    const { id } = await createPat("scope-refusals");
    await fails(["pat", "scope", "add", id, "--scope", "acme:models:m:llm_dance"], "invalid_scope; see --scope");
    await fails(["pat", "scope", "add", id, "--scope", "acme:datasets:d:llm_read"], "invalid_scope; see --scope");
    await fails(["pat", "scope", "remove", "00000000-0000-4000-8000-000000000000", "--scope", "acme:models:m:llm_read"], "pat_not_found");
    await fails(["pat", "scope", "list", "00000000-0000-4000-8000-000000000000"], "pat_not_found");
    await fails(["pat", "scope", "clear", "00000000-0000-4000-8000-000000000000"], "pat_not_found");
  });
});

describe("a user's OIDC token as PATGATE_TOKEN", () => {
  it("manages only the user's own PATs, within what the user holds", async () => {
    const jwt = await fx.idp.token("alice", { expiresIn: 600 });
    const as = { PATGATE_TOKEN: jwt };
    const r = await cli(["pat", "create", "--name", "mine", "--duration", "1d", "--scope", "acme:models:llama3:llm_chat_completions"], as);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TOKEN_LINE);
    expect(await ok(["pat", "list", "--name", "mine", "-q"], as)).toMatch(/^[0-9a-f-]{36}\n$/);
    expect(await ok(["domain", "list"], as)).toMatch(/^ID\s+NAME\s+UPSTREAM\s+CREATED\s+ROLES\nacme\s+acme\s+\(default\)\s+\S+( ago)?\s+developer\n$/);
    await fails(["pat", "create", "--name", "too-much", "--duration", "1d", "--scope", "acme:models:m:llm_create"], "scope_not_held; see --scope", as);
    await fails(["pat", "list", "--user", "bob"], "operator_only; see --user", as);
    await fails(["domain", "create", "mine"], "operator_only", as);
    await fails(["pat", "list"], "pat_not_accepted", { PATGATE_TOKEN: r.stdout.trim() });
  });
});

describe("patgate serve", () => {
  it("refuses to start on a config it cannot read, with exit status 1 (a real process)", async () => {
    const r = await spawnCli(["serve", "--config", path.join(ROOT, "config", "no-such-file.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^patgate: refusing to start:\n.*no-such-file\.yaml: cannot read config/);
  });
});

describe("routes explain agrees with the gateway", () => {
  it("a PAT with exactly the explained scope is let through; without it, the gateway names the same scope", async () => {
    const body = '{"model":"phi3:mini","messages":[]}';
    let out = "";
    const code = await main(["routes", "explain", "POST", "/proxy/acme/api/chat", "--body", "-", "--json"], {
      out: (t) => (out += t),
      err: () => undefined,
      env: {},
      now: Date.now,
      readStdin: () => Buffer.from(body),
    });
    expect(code).toBe(0);
    const scope = (JSON.parse(out) as { scope: string }).scope;
    expect(scope).toBe("acme:models:phi3:mini:llm_chat_completions");

    const send = (token: string): Promise<Response> =>
      fetch(`${fx.gw.url}/proxy/acme/api/chat`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body });
    const without = await send((await createPat("explain-without")).token);
    expect(without.status).toBe(403);
    // An Ollama route: Ollama's envelope, naming the scope exactly as `routes explain` and `--scope` write it.
    const err = (await without.json()) as { error: string };
    expect(err.error).toContain(`"${scope}"`);
    const withIt = await send((await createPat("explain-with", [scope])).token);
    expect(withIt.status).toBe(200);
    await withIt.arrayBuffer();
  });
});
