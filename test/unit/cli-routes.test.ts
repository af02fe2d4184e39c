// `patgate routes check|explain`, offline, on the shipped routes.yaml and the
// shipped config's catalog and roles: which route, operation, entity and scope.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { loadSettings } from "../../src/config/config.ts";
import { loadRouteTable } from "../../src/routing/table.ts";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const SHIPPED_ROUTES = path.join(ROOT, "routes.yaml");
const ONE_LINE = /^patgate: [^\n]+\n$/;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(argv: string[], stdin?: string): Promise<Run> {
  let stdout = "";
  let stderr = "";
  // An empty environment: the shipped config with its defaults, whatever the machine has set.
  const code = await main(argv, {
    out: (t) => (stdout += t),
    err: (t) => (stderr += t),
    env: {},
    now: Date.now,
    ...(stdin === undefined ? {} : { readStdin: () => Buffer.from(stdin) }),
  });
  return { code, stdout, stderr };
}

interface ExplainJson {
  ok: boolean;
  method: string;
  path: string;
  domain: string | null;
  route: { id: string; operation: string; entity_type: string; entity: Record<string, string> } | null;
  entity_id: string | null;
  scope: string | null;
  also_granted_by: string[];
  roles: string[];
  refused: { status: number; code: string; message: string; allow?: string[] } | null;
}

async function explain(argv: string[], stdin?: string): Promise<Run & { json: ExplainJson }> {
  const r = await cli(["routes", "explain", ...argv, "--json"], stdin);
  return { ...r, json: JSON.parse(r.stdout) as ExplainJson };
}

let dir: string;
const file = (name: string): string => path.join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "patgate-cli-routes-"));
  await writeFile(file("chat.json"), JSON.stringify({ model: "llama3:8b", messages: [{ role: "user", content: "hi" }] }));
  await writeFile(file("pull.json"), JSON.stringify({ model: "qwen2.5:0.5b" }));
  await writeFile(file("dup.json"), '{"model":"allowed","MODEL":"other"}');
  await writeFile(file("nomodel.json"), '{"messages":[]}');
  await writeFile(file("bad.json"), "{model:");
  await writeFile(file("big.json"), JSON.stringify({ model: "m", pad: "x".repeat(64) }));
  await writeFile(
    file("audio.form"),
    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n" +
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--XyZ--\r\n",
  );
  await writeFile(file("small-routes.yaml"), "version: 1\nroutes:\n  - id: chat\n    method: POST\n    path: /v1/chat/completions\n    operation: llm_chat_completions\n    entity: { type: models, from: body, field: model }\n    body_limit: 32b\n");
  await writeFile(file("broken-routes.yaml"), "version: 1\nroutes:\n  - id: chat\n    method: POST\n    path: /v1/chat/completions\n    operation: llm_chatt\n    entity: { type: models, from: body, feild: model }\n");
  await writeFile(file("broken-config.yaml"), "server:\n  port: banana\nroutes_file: ../nowhere.yaml\n");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("patgate routes check", () => {
  it("accepts the shipped table, counting its routes", async () => {
    const n = loadRouteTable(SHIPPED_ROUTES, loadSettings(path.join(ROOT, "config", "patgate.yaml"), {}).catalog).routes.length;
    const r = await cli(["routes", "check"]);
    expect(r).toEqual({ code: 0, stdout: `${SHIPPED_ROUTES}: OK, ${n} routes\n`, stderr: "" });
    const j = await cli(["routes", "check", "--json"]);
    expect(JSON.parse(j.stdout)).toEqual({ ok: true, file: SHIPPED_ROUTES, routes: n });
  });

  it("lists every problem of an invalid table (file:line:col) and exits 1", async () => {
    const r = await cli(["routes", "check", "--routes", file("broken-routes.yaml")]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toMatch(new RegExp(`^${file("broken-routes.yaml")}:\\d+:\\d+: `));
    expect(r.stdout).toContain('unknown operation "llm_chatt"');
    expect(r.stdout).toContain('unknown key "feild" (did you mean "field"?)');
    expect(r.stdout).toContain('missing required key "field"');
    expect(r.stderr).toBe(`patgate: the route table ${file("broken-routes.yaml")} is invalid: 3 problems\n`);

    const j = await cli(["routes", "check", "--routes", file("broken-routes.yaml"), "--json"]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toEqual({ ok: false, file: file("broken-routes.yaml"), problems: lines });
  });

  it("reports an unreadable table and an invalid config", async () => {
    const missing = await cli(["routes", "check", "--routes", file("nope.yaml")]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/nope\.yaml: cannot read/);
    expect(missing.stderr).toMatch(ONE_LINE);

    const cfg = await cli(["routes", "check", "--config", file("broken-config.yaml")]);
    expect(cfg.code).toBe(1);
    expect(cfg.stdout).toContain("server.port: must be a whole number");
    expect(cfg.stderr).toMatch(/^patgate: the config .*broken-config\.yaml is invalid: \d+ problems?\n$/);
  });
});

describe("patgate routes explain", () => {
  // [method, path, body file, route id, operation, scope]
  it.each([
    ["POST", "/proxy/demo/v1/chat/completions", "chat.json", "openai.chat_completions", "llm_chat_completions", "demo:models:llama3:8b:llm_chat_completions"],
    ["POST", "/proxy/demo/v1/responses", "chat.json", "openai.responses", "llm_chat_completions", "demo:models:llama3:8b:llm_chat_completions"],
    ["POST", "/proxy/demo/v1/embeddings", "pull.json", "openai.embeddings", "llm_embeddings", "demo:models:qwen2.5:0.5b:llm_embeddings"],
    ["POST", "/proxy/demo/api/chat", "chat.json", "ollama.chat", "llm_chat_completions", "demo:models:llama3:8b:llm_chat_completions"],
    ["POST", "/proxy/demo/api/generate", "chat.json", "ollama.generate", "llm_completions", "demo:models:llama3:8b:llm_completions"],
    ["POST", "/proxy/demo/api/pull", "pull.json", "ollama.pull", "llm_create", "demo:models:qwen2.5:0.5b:llm_create"],
    ["POST", "/proxy/demo/v1/audio/transcriptions", "audio.form", "openai.audio_transcriptions", "llm_transcription", "demo:models:whisper-1:llm_transcription"],
    ["GET", "/proxy/demo/v1/models", undefined, "openai.models_list", "llm_read", "demo:domains:demo:llm_read"],
    ["GET", "/proxy/demo/api/tags", undefined, "ollama.tags", "llm_read", "demo:domains:demo:llm_read"],
    ["GET", "/proxy/demo/v1/models/org/llama3", undefined, "openai.models_get", "llm_read", "demo:models:org/llama3:llm_read"],
    ["get", "http://gw.example:8080/proxy/demo/v1/models", undefined, "openai.models_list", "llm_read", "demo:domains:demo:llm_read"],
  ])("%s %s", async (method, target, body, routeId, operation, scope) => {
    const r = await explain(body === undefined ? [method, target] : [method, target, "--body", file(body)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.json).toMatchObject({ ok: true, method: method.toUpperCase(), domain: "demo", scope, refused: null });
    expect(r.json.route).toMatchObject({ id: routeId, operation });
  });

  it("prints what it found for people, with the scope to pass to `pat create`", async () => {
    const r = await cli(["routes", "explain", "POST", "/proxy/demo/v1/chat/completions", "--body", file("chat.json")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("route        openai.chat_completions (POST /v1/chat/completions)\n");
    expect(r.stdout).toContain("operation    llm_chat_completions\n");
    expect(r.stdout).toContain('entity       models llama3:8b (from the JSON body field "model")\n');
    expect(r.stdout).toContain("needs scope  demo:models:llama3:8b:llm_chat_completions\n");
    expect(r.stdout).toContain("or any of    demo:models:*:llm_chat_completions\n             demo:domains:demo:llm_chat_completions\n             demo:domains:*:llm_chat_completions\n");
    expect(r.stdout).toMatch(/config roles with it: admin, developer\)\nlimits {7}none \(a PAT's own limits still apply\)\n$/);
  });

  it("names the other grants and the config roles that hold the operation", async () => {
    const r = await explain(["GET", "/proxy/demo/v1/models/m"]);
    expect(r.json.also_granted_by).toEqual(["demo:models:*:llm_read", "demo:domains:demo:llm_read", "demo:domains:*:llm_read"]);
    expect(r.json.roles).toEqual(["admin", "developer", "viewer"]);
    const pull = await explain(["POST", "/proxy/demo/api/pull"]);
    expect(pull.json.roles).toEqual(["admin"]);
  });

  it("without --body, says where the entity is and leaves a placeholder in the scope", async () => {
    const r = await explain(["POST", "/proxy/demo/v1/chat/completions"]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, entity_id: null, scope: "demo:models:<model>:llm_chat_completions" });
    expect(r.json.route?.entity).toEqual({ from: "body", field: "model" });
    const text = await cli(["routes", "explain", "POST", "/proxy/demo/v1/chat/completions"]);
    expect(text.stdout).toContain('entity       models, from the JSON body field "model" (pass --body FILE to read it)\n');
  });

  it("takes a path relative to /proxy/<domain>, with --domain or a placeholder", async () => {
    const withDomain = await explain(["POST", "/v1/chat/completions", "--domain", "acme", "--body", file("chat.json")]);
    expect(withDomain.json).toMatchObject({ domain: "acme", scope: "acme:models:llama3:8b:llm_chat_completions" });
    const without = await explain(["GET", "/api/tags"]);
    expect(without.json).toMatchObject({ ok: true, domain: null, scope: "<domain>:domains:<domain>:llm_read" });
  });

  it("reads the body from stdin with --body -", async () => {
    const r = await explain(["POST", "/proxy/demo/api/show", "--body", "-"], '{"model":"phi3:mini"}');
    expect(r.json.scope).toBe("demo:models:phi3:mini:llm_read");
  });

  // [why, argv, status, code]
  it.each([
    ["a dot segment", ["GET", "/proxy/demo/v1/../models"], 400, "bad_path"],
    ["an encoded slash outside a {name+} parameter", ["GET", "/proxy/demo/v1%2Fmodels"], 400, "bad_path"],
    ["no route", ["GET", "/proxy/demo/v1/nothing"], 404, "no_route"],
    ["no path after the domain", ["GET", "/proxy/demo"], 404, "no_route"],
    ["a duplicate key in another case", ["POST", "/proxy/demo/v1/chat/completions", "--body", "dup.json"], 400, "entity_ambiguous"],
    ["the field in the query string too", ["POST", "/proxy/demo/v1/chat/completions?model=x", "--body", "chat.json"], 400, "entity_ambiguous"],
    ["no model field", ["POST", "/proxy/demo/v1/chat/completions", "--body", "nomodel.json"], 400, "entity_missing"],
    ["invalid JSON", ["POST", "/proxy/demo/v1/chat/completions", "--body", "bad.json"], 400, "bad_json"],
    ["a non-JSON type", ["POST", "/proxy/demo/v1/chat/completions", "--body", "chat.json", "--content-type", "text/plain"], 415, "unsupported_media_type"],
    ["a JSON body where a form is read", ["POST", "/proxy/demo/v1/audio/transcriptions", "--body", "chat.json"], 415, "unsupported_media_type"],
    ["a body over the route's limit", ["POST", "/proxy/demo/v1/chat/completions", "--body", "big.json", "--routes", "small-routes.yaml"], 413, "body_too_large"],
  ])("refuses %s", async (_why, argv, status, code) => {
    const args = argv.map((a) => (a.endsWith(".json") || a.endsWith(".yaml") ? file(a) : a));
    const r = await explain(args);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, scope: null, refused: { status, code } });
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(`would refuse ${args[0] ?? ""} ${args[1] ?? ""}: ${status} ${code}: `);
  });

  it("refuses a known path with another method, naming the allowed ones", async () => {
    const r = await explain(["GET", "/proxy/demo/v1/chat/completions"]);
    expect(r.code).toBe(1);
    expect(r.json.refused).toEqual({ status: 405, code: "method_not_allowed", message: "The path exists but not for this method. Allowed: POST.", allow: ["POST"] });
    const text = await cli(["routes", "explain", "GET", "/proxy/demo/v1/chat/completions"]);
    expect(text.stdout).toBe("");
    expect(text.stderr).toBe("patgate: the gateway would refuse GET /proxy/demo/v1/chat/completions: 405 method_not_allowed: The path exists but not for this method. Allowed: POST.\n");
  });

  it("says which route matched before the body was refused", async () => {
    const r = await cli(["routes", "explain", "POST", "/proxy/demo/v1/chat/completions", "--body", file("dup.json")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("route      openai.chat_completions");
    expect(r.stdout).not.toContain("needs scope");
    expect(r.stderr).toMatch(/400 entity_ambiguous: The field "model" appears 2 times/);
  });

  it("fails in one line on a missing body file or an invalid table", async () => {
    const nofile = await cli(["routes", "explain", "POST", "/proxy/d/v1/chat/completions", "--body", file("none.json")]);
    expect(nofile).toMatchObject({ code: 1, stdout: "" });
    expect(nofile.stderr).toBe(`patgate: cannot read --body ${file("none.json")}: ENOENT\n`);
    const broken = await cli(["routes", "explain", "GET", "/proxy/d/v1/models", "--routes", file("broken-routes.yaml")]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/^patgate: the route table is invalid: .*\(and 2 more; see patgate routes check\)\n$/);
  });
});
