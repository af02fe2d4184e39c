import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { splitTarget } from "../../src/routing/normalize.ts";
import { loadRouteTable, parseByteSize, parseRouteTable, RouteTable, RouteTableError } from "../../src/routing/table.ts";
import type { EntitySource, Route } from "../../src/routing/table.ts";
import { testCatalog } from "../fixtures/catalog.ts";

const ROUTES_FILE = fileURLToPath(new URL("../../routes.yaml", import.meta.url));

/** Parse and return the RouteTableError's problems (fails the test if it parses). */
function problems(text: string): string[] {
  try {
    parseRouteTable(text, "routes.yaml", testCatalog);
  } catch (err) {
    expect(err).toBeInstanceOf(RouteTableError);
    return [...(err as RouteTableError).problems];
  }
  throw new Error("expected the table to be rejected");
}

const CHAT = `  - id: chat
    method: POST
    path: /v1/chat/completions
    operation: llm_chat_completions
    entity: { type: models, from: body, field: model }
`;

function table(...routes: string[]): string {
  return `version: 1\nroutes:\n${routes.join("")}`;
}

function route(id: string, method: string, path: string, extra = "    entity: { type: domains, from: domain }\n"): string {
  return `  - id: ${id}\n    method: ${method}\n    path: ${path}\n    operation: llm_read\n${extra}`;
}

describe("the shipped routes.yaml", () => {
  const t = loadRouteTable(ROUTES_FILE, testCatalog);
  const body = (field: string, fallback?: string): EntitySource => (fallback === undefined ? { from: "body", field } : { from: "body", field, fallback });
  const domain: EntitySource = { from: "domain" };

  // Every path SPEC §4 lists, with the operation the reference deployment maps it to.
  const expected: [string, string, string, string, EntitySource][] = [
    ["POST", "/v1/chat/completions", "llm_chat_completions", "models", body("model")],
    ["POST", "/v1/completions", "llm_completions", "models", body("model")],
    ["POST", "/v1/embeddings", "llm_embeddings", "models", body("model")],
    ["GET", "/v1/models", "llm_read", "domains", domain],
    ["GET", "/v1/models/gpt-4o", "llm_read", "models", { from: "path", param: "model" }],
    ["POST", "/v1/audio/transcriptions", "llm_transcription", "models", { from: "form", field: "model" }],
    ["POST", "/v1/audio/translations", "llm_translation", "models", { from: "form", field: "model" }],
    ["POST", "/v1/responses", "llm_chat_completions", "models", body("model")],
    ["POST", "/api/chat", "llm_chat_completions", "models", body("model")],
    ["POST", "/api/generate", "llm_completions", "models", body("model")],
    ["POST", "/api/embed", "llm_embeddings", "models", body("model")],
    ["POST", "/api/embeddings", "llm_embeddings", "models", body("model")],
    ["GET", "/api/tags", "llm_read", "domains", domain],
    ["POST", "/api/show", "llm_read", "models", body("model", "name")],
    ["GET", "/api/ps", "llm_read", "domains", domain],
    ["GET", "/api/version", "llm_read", "domains", domain],
    ["POST", "/api/pull", "llm_create", "models", body("model", "name")],
    ["POST", "/api/push", "llm_update", "models", body("model", "name")],
    ["POST", "/api/create", "llm_create", "models", body("model", "name")],
    ["POST", "/api/copy", "llm_create", "models", body("destination")],
    ["DELETE", "/api/delete", "llm_delete", "models", body("model", "name")],
    ["POST", "/tokenize", "llm_utility", "models", body("model")],
    ["POST", "/detokenize", "llm_utility", "models", body("model")],
    ["POST", "/pooling", "llm_pooling", "models", body("model")],
    ["POST", "/classify", "llm_classification", "models", body("model")],
    ["POST", "/score", "llm_scoring", "models", body("model")],
    ["POST", "/v1/score", "llm_scoring", "models", body("model")],
    ["POST", "/rerank", "llm_rerank", "models", body("model")],
    ["POST", "/v1/rerank", "llm_rerank", "models", body("model")],
    ["GET", "/v1/realtime", "llm_realtime", "models", { from: "query", param: "model" }],
  ];

  it.each(expected)("%s %s → %s on %s", (method, path, operation, entityType, entity) => {
    const target = splitTarget(`/proxy/acme${path}`);
    expect(target).not.toBeNull();
    const m = t.match(method, target?.segments ?? [], 2);
    expect(m.kind).toBe("ok");
    if (m.kind !== "ok") return;
    expect(m.route.operation).toBe(operation);
    expect(m.route.entityType).toBe(entityType);
    expect(m.route.entity).toEqual(entity);
  });

  it("has one route per listed path and nothing else", () => {
    expect(t.routes.length).toBe(expected.length);
  });

  it("lets audio uploads through at 25mb and caps the rest at the 10mb default", () => {
    const limit = (path: string): number | undefined => {
      const m = t.match("POST", path.slice(1).split("/"));
      return m.kind === "ok" ? m.route.bodyLimit : undefined;
    };
    expect(limit("/v1/audio/transcriptions")).toBe(25 * 1024 * 1024);
    expect(limit("/v1/chat/completions")).toBe(10 * 1024 * 1024);
  });

  it("takes model ids with '/' from the rest of the path", () => {
    const m = t.match("GET", ["v1", "models", "meta-llama", "Llama-3.1-8B"]);
    expect(m.kind === "ok" && m.params.get("model")).toBe("meta-llama/Llama-3.1-8B");
  });

  it("answers 405 with the allowed methods for a known path", () => {
    expect(t.match("GET", ["v1", "chat", "completions"])).toEqual({ kind: "method_not_allowed", allow: ["POST"] });
    expect(t.match("HEAD", ["v1", "models"])).toEqual({ kind: "method_not_allowed", allow: ["GET"] });
    expect(t.match("POST", ["api", "delete"])).toEqual({ kind: "method_not_allowed", allow: ["DELETE"] });
  });

  it("answers no_route for unknown paths, prefixes and extensions", () => {
    for (const p of [[], ["v1"], ["v1", "chat"], ["v1", "chat", "completions", "x"], ["api", "blobs", "sha256"], ["V1", "models"]]) {
      expect(t.match("POST", p).kind === "ok").toBe(false);
    }
    expect(t.match("GET", ["v1", "chat", "completions", "x"])).toEqual({ kind: "no_route" });
  });

  it("does not match /v1/models/ with an empty model (splitTarget refuses the trailing slash)", () => {
    expect(splitTarget("/proxy/acme/v1/models/")).toBeNull();
    const m = t.match("GET", ["v1", "models"]);
    expect(m.kind === "ok" && m.route.id).toBe("openai.models_list");
  });
});

describe("RouteTable.match", () => {
  const r = (id: string, method: string, path: string, entity: EntitySource = { from: "domain" }): Route => ({
    id,
    method,
    path,
    operation: "llm_read",
    entityType: entity.from === "domain" ? "domains" : "models",
    entity,
    bodyLimit: 1024,
    body: "none",
    also: [],
    errors: "openai",
    upgrade: null,
    intents: null,
    intent: null,
  });
  const t = new RouteTable([
    r("root", "GET", "/"),
    r("one", "GET", "/a/{x}/c", { from: "path", param: "x" }),
    r("two", "GET", "/a/{x}/{y}/d", { from: "path", param: "y" }),
    r("rest", "POST", "/files/{p+}", { from: "path", param: "p" }),
    r("lit", "GET", "/a/b/c"),
  ]);

  it("matches the root", () => {
    expect(t.match("GET", []).kind).toBe("ok");
  });

  it("extracts single-segment parameters", () => {
    const m = t.match("GET", ["a", "q", "r", "d"]);
    expect(m.kind === "ok" && [m.route.id, m.params.get("x"), m.params.get("y")]).toEqual(["two", "q", "r"]);
  });

  it("prefers nothing: one route per method per path, so static and parametric never compete", () => {
    // Different methods may share a path shape; GET /a/b/c is a literal here.
    const m = t.match("GET", ["a", "b", "c"]);
    expect(m.kind === "ok" && m.route.id).toBe("lit");
  });

  it("joins a {p+} parameter's decoded segments with '/'", () => {
    const m = t.match("POST", ["files", "x y", "z:1"]);
    expect(m.kind === "ok" && m.params.get("p")).toBe("x y/z:1");
    expect(t.match("POST", ["files"]).kind).toBe("no_route");
  });

  it("honours the start offset", () => {
    const m = t.match("GET", ["proxy", "acme", "a", "z", "c"], 2);
    expect(m.kind === "ok" && m.params.get("x")).toBe("z");
  });

  it("returns method_not_allowed for a parametric path of another method", () => {
    expect(t.match("GET", ["files", "x"])).toEqual({ kind: "method_not_allowed", allow: ["POST"] });
  });
});

describe("parseRouteTable: validation with file:line:col", () => {
  it("reports YAML syntax errors with a position", () => {
    const ps = problems("version: 1\nroutes:\n  - id: a\n    method: [GET\n");
    expect(ps[0]).toMatch(/^routes\.yaml:\d+:\d+: /);
  });

  it("reports duplicate keys (YAML)", () => {
    expect(problems(table(CHAT.replace("    method: POST\n", "    method: POST\n    method: GET\n")))[0]).toMatch(
      /^routes\.yaml:5:5: .*unique/,
    );
  });

  it("rejects an empty file and a non-mapping root", () => {
    expect(problems("")).toEqual(["routes.yaml:1:1: the file is empty"]);
    expect(problems("- a\n")[0]).toBe("routes.yaml:1:1: routes file must be a mapping");
  });

  it("rejects a missing or unsupported version", () => {
    expect(problems(`routes:\n${CHAT}`)).toEqual(['routes.yaml:1:1: routes file: missing required key "version"']);
    expect(problems(`version: 2\nroutes:\n${CHAT}`)).toEqual(["routes.yaml:1:10: unsupported version (this gateway reads version: 1)"]);
  });

  it("entity.also: shipped create and copy check their second model; bad also entries are refused", () => {
    const t = loadRouteTable(ROUTES_FILE, testCatalog);
    const byId = new Map(t.routes.map((r) => [r.id, r]));
    expect(byId.get("ollama.create")?.also.map((a) => [a.field, a.operations, a.refuse !== null])).toEqual([
      ["from", ["llm_read", "llm_create"], false],
      ["files", [], true],
      ["adapters", [], true],
      ["draft_files", [], true],
      ["remote_host", [], true],
    ]);
    expect(byId.get("ollama.copy")?.also).toEqual([{ field: "source", operations: ["llm_read"], refuse: null }]);
    const yaml = (also: string): string =>
      `version: 1\nroutes:\n  - id: c\n    method: POST\n    path: /c\n    operation: llm_create\n    entity: { type: models, from: body, field: model, also: ${also} }\n`;
    const bad = (also: string): string[] => problems(yaml(also));
    expect(bad("[{ field: model, operation: llm_read }]").join("\n")).toMatch(/named twice/);
    expect(bad("[{ field: base, operation: llm_nope }]").join("\n")).toMatch(/unknown operation "llm_nope"/);
    expect(bad("[{ field: base, operation: read }]").join("\n")).toMatch(/does not apply to entity type "models"/);
    expect(bad("[]").join("\n")).toMatch(/non-empty list/);
    expect(bad("[{ field: base }]").join("\n")).toMatch(/exactly one of "operation"/);
    expect(bad("[{ field: base, operation: llm_read, refuse: no }]").join("\n")).toMatch(/exactly one of "operation"/);
    expect(bad("[{ field: base, operation: [] }]").join("\n")).toMatch(/at least one operation/);
    expect(parseRouteTable(yaml("[{ field: name, operation: llm_read }]"), "routes.yaml", testCatalog).routes[0]?.also[0]?.field).toBe("name");
    expect(parseRouteTable(yaml("[{ field: base, operation: llm_read }]"), "routes.yaml", testCatalog).routes[0]?.also).toEqual([{ field: "base", operations: ["llm_read"], refuse: null }]);
    expect(parseRouteTable(yaml("[{ field: base, operation: [llm_read, llm_create] }, { field: url, refuse: fetches a URL }]"), "routes.yaml", testCatalog).routes[0]?.also).toEqual([
      { field: "base", operations: ["llm_read", "llm_create"], refuse: null },
      { field: "url", operations: [], refuse: "fetches a URL" },
    ]);
  });

  it("entity.fallback: read when the field is absent; body only; differs from the field and from also fields", () => {
    const yaml = (entity: string): string => `version: 1\nroutes:\n  - id: c\n    method: POST\n    path: /c\n    operation: llm_create\n    entity: ${entity}\n`;
    expect(parseRouteTable(yaml("{ type: models, from: body, field: model, fallback: name }"), "routes.yaml", testCatalog).routes[0]?.entity).toEqual({ from: "body", field: "model", fallback: "name" });
    expect(problems(yaml("{ type: models, from: body, field: model, fallback: model }")).join("\n")).toMatch(/must differ/);
    expect(problems(yaml("{ type: models, from: form, field: model, fallback: name }")).join("\n")).toMatch(/body only/);
    expect(problems(yaml("{ type: models, from: body, field: model, fallback: name, also: [{ field: name, operation: llm_read }] }")).join("\n")).toMatch(/named twice/);
  });

  it("rejects unknown keys at every level, with a suggestion", () => {
    expect(problems(`version: 1\nroute:\n${CHAT}`)[0]).toMatch(/^routes\.yaml:2:1: routes file: unknown key "route" \(did you mean "routes"\?\)/);
    expect(problems(table(CHAT.replace("    method:", "    metod: POST\n    method:")))[0]).toMatch(
      /^routes\.yaml:4:5: routes\[0\]: unknown key "metod" \(did you mean "method"\?\)/,
    );
    expect(problems(table(CHAT.replace("field: model", "feild: model")))).toContain(
      'routes.yaml:7:41: route "chat": entity: unknown key "feild" (did you mean "field"?) (known: type, from, field, fallback, param, also)',
    );
    expect(problems(`version: 1\ndefaults: { bodylimit: 1mb }\nroutes:\n${CHAT}`)[0]).toMatch(
      /^routes\.yaml:2:13: defaults: unknown key "bodylimit" \(did you mean "body_limit"\?\)/,
    );
  });

  it("rejects missing required fields", () => {
    expect(problems(table(CHAT.replace("    operation: llm_chat_completions\n", "")))).toEqual([
      'routes.yaml:3:5: route "chat": missing required key "operation"',
    ]);
    expect(problems(table(CHAT.replace("  - id: chat\n", "  - description: x\n")))).toEqual([
      'routes.yaml:3:5: routes[0]: missing required key "id"',
    ]);
  });

  it("rejects a malformed or duplicate id", () => {
    expect(problems(table(CHAT.replace("id: chat", "id: Chat Completions")))).toEqual([
      'routes.yaml:3:9: route "Chat Completions": id must match [a-z0-9_.-]{1,100}',
    ]);
    const ps = problems(table(CHAT, CHAT.replace("/v1/chat/completions", "/v2/chat")));
    expect(ps).toEqual(['routes.yaml:8:5: duplicate route id "chat" (first defined at routes.yaml:3:5)']);
  });

  it("rejects an unknown method and accepts any case", () => {
    expect(problems(table(CHAT.replace("method: POST", "method: FETCH")))[0]).toMatch(
      /^routes\.yaml:4:13: route "chat": unknown method "FETCH"/,
    );
    const t = parseRouteTable(table(CHAT.replace("method: POST", "method: post")), "routes.yaml", testCatalog);
    expect(t.routes[0]?.method).toBe("POST");
  });

  it.each([
    ["v1/chat", 'path "v1/chat" must start with "/"'],
    ["/v1//chat", "empty segment"],
    ["/v1/chat/", "empty segment"],
    ["/v1/{model", "a parameter must be a whole segment"],
    ["/v1/m-{model}", "a parameter must be a whole segment"],
    ["/v1/{}", 'bad parameter "{}"'],
    ["/v1/{a-b}", 'bad parameter "{a-b}"'],
    ["/v1/{m+}/x", '"{m+}" must be the last segment'],
    ["/v1/{m}/{m}", 'parameter "m" appears twice'],
    ["/v1/../x", '"." and ".." segments are not allowed'],
    ["/v1/a%2Fb", "must be written decoded"],
    ["/v1/a;b", "must be written decoded"],
  ])("rejects the path template %s", (path, message) => {
    const ps = problems(table(route("r", "GET", path)));
    expect(ps[0]).toMatch(/^routes\.yaml:5:11: route "r": /);
    expect(ps[0]).toContain(message);
  });

  it("rejects an unknown operation, naming the known ones", () => {
    const ps = problems(table(CHAT.replace("operation: llm_chat_completions", "operation: llm_chat")));
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatch(/^routes\.yaml:6:16: route "chat": unknown operation "llm_chat" \(known: read, update, .*llm_chat_completions/);
  });

  it("rejects an operation that does not apply to the entity type", () => {
    const ps = problems(table(CHAT.replace("type: models", "type: datasets")));
    expect(ps).toEqual(['routes.yaml:6:16: route "chat": operation "llm_chat_completions" does not apply to entity type "datasets"']);
  });

  it("rejects an unknown entity type and an unknown source", () => {
    expect(problems(table(CHAT.replace("type: models", "type: model")))[0]).toMatch(
      /^routes\.yaml:7:21: route "chat": unknown entity type "model" \(known: domains, models, datasets\)/,
    );
    expect(problems(table(CHAT.replace("from: body", "from: header")))[0]).toMatch(
      /^routes\.yaml:7:35: route "chat": unknown entity source "header" \(known: body, form, path, query, domain\)/,
    );
  });

  it("reads an upgrade route with its entity from the query and its intents as variants", () => {
    const t = parseRouteTable(table(`  - id: rt\n    method: GET\n    path: /v1/realtime\n    upgrade: websocket\n    operation: llm_realtime\n    entity: { type: models, from: query, param: model }\n    intents: { transcription: llm_transcription }\n`), "routes.yaml", testCatalog);
    const r = t.routes[0]!;
    expect([r.upgrade, r.body, r.operation, r.intent]).toEqual(["websocket", "none", "llm_realtime", null]);
    const v = r.intents?.get("transcription");
    expect([v?.operation, v?.intent, v?.id, v?.upgrade]).toEqual(["llm_transcription", "transcription", "rt", "websocket"]);
  });

  it("refuses an upgrade that is not websocket or not GET, from: query on POST, and intents with an unknown operation", () => {
    const rt = (method: string, extra: string): string => `  - id: rt\n    method: ${method}\n    path: /v1/realtime\n    operation: llm_realtime\n${extra}`;
    const q = "    entity: { type: models, from: query, param: model }\n";
    expect(problems(table(rt("GET", q + "    upgrade: h2c\n"))).join("\n")).toMatch(/upgrade must be websocket/);
    expect(problems(table(rt("POST", q + "    upgrade: websocket\n"))).join("\n")).toMatch(/upgrade: websocket needs method GET/);
    expect(problems(table(rt("POST", q))).join("\n")).toMatch(/from: query is for GET routes/);
    expect(problems(table(rt("GET", q + "    intents: { transcription: llm_dance }\n"))).join("\n")).toMatch(/intents.transcription: unknown operation "llm_dance"/);
    expect(problems(table(rt("GET", "    entity: { type: models, from: query, param: intent }\n"))).join("\n")).toMatch(/picks an intent/);
  });

  it("checks that from: path names a parameter of the template", () => {
    const ps = problems(table(route("r", "GET", "/v1/models/{id}", "    entity: { type: models, from: path, param: model }\n")));
    expect(ps).toEqual(['routes.yaml:7:48: route "r": entity.param "model" is not a parameter of path /v1/models/{id}']);
  });

  it("checks the keys each source takes", () => {
    expect(problems(table(route("r", "GET", "/v1/models/{m}", "    entity: { type: models, from: path, param: m, field: model }\n")))).toEqual([
      'routes.yaml:7:51: route "r": entity.field does not apply to from: path',
    ]);
    expect(problems(table(route("r", "POST", "/x", "    entity: { type: models, from: body }\n")))).toEqual([
      'routes.yaml:7:13: route "r": entity: missing required key "field"',
    ]);
  });

  it("requires from: domain to use entity type domains", () => {
    expect(problems(table(route("r", "GET", "/x", "    entity: { type: models, from: domain }\n")))).toEqual([
      'routes.yaml:7:21: route "r": from: domain needs entity type "domains", not "models"',
    ]);
  });

  it("requires a body method for body and form entities", () => {
    expect(problems(table(CHAT.replace("method: POST", "method: GET")))).toEqual([
      'routes.yaml:7:35: route "chat": from: body needs a method with a body (POST, PUT, PATCH, DELETE), not GET',
    ]);
  });

  it("rejects field names JSON escapes could disguise", () => {
    expect(problems(table(CHAT.replace("field: model", 'field: "a/b"')))).toEqual([
      'routes.yaml:7:48: route "chat": entity.field must match [A-Za-z_][A-Za-z0-9_.-]{0,63}',
    ]);
  });

  it("parses body limits and enforces bounds", () => {
    const limit = (v: string): number | undefined =>
      parseRouteTable(table(CHAT + `    body_limit: ${v}\n`), "routes.yaml", testCatalog).routes[0]?.bodyLimit;
    expect(limit("10mb")).toBe(10 * 1024 * 1024);
    expect(limit("512kb")).toBe(512 * 1024);
    expect(limit("25MB")).toBe(25 * 1024 * 1024);
    expect(limit("1gb")).toBe(1024 ** 3);
    expect(limit("2048")).toBe(2048);
    expect(problems(table(CHAT + "    body_limit: 10 megabytes\n"))).toEqual([
      'routes.yaml:8:17: route "chat": body_limit must be a size like 10mb, 512kb or a number of bytes',
    ]);
    expect(problems(table(CHAT + "    body_limit: 2gb\n"))).toEqual(['routes.yaml:8:17: route "chat": body_limit 2gb is above the maximum of 1gb']);
    expect(problems(table(CHAT + "    body_limit: -1\n"))[0]).toContain("body_limit must be a size");
    expect(problems(table(CHAT + "    body_limit: 1.5\n"))[0]).toContain("body_limit must be a size");
  });

  it("applies defaults.body_limit", () => {
    const t = parseRouteTable(`version: 1\ndefaults: { body_limit: 1mb }\nroutes:\n${CHAT}`, "routes.yaml", testCatalog);
    expect(t.routes[0]?.bodyLimit).toBe(1024 * 1024);
  });

  it("rejects an empty route list", () => {
    expect(problems("version: 1\nroutes: []\n")).toEqual(["routes.yaml:2:9: routes must be a non-empty list"]);
  });

  it("lists several problems, one per line", () => {
    const text = table(CHAT.replace("llm_chat_completions", "nope"), route("Bad", "FETCH", "/x"));
    let message = "";
    try {
      parseRouteTable(text, "routes.yaml", testCatalog);
    } catch (err) {
      message = (err as Error).message;
    }
    const lines = message.split("\n");
    expect(lines.length).toBe(3);
    for (const l of lines) expect(l).toMatch(/^routes\.yaml:\d+:\d+: /);
  });

  it("resolves YAML aliases", () => {
    const text = `version: 1\nroutes:\n  - id: a\n    method: POST\n    path: /a\n    operation: llm_read\n    entity: &m { type: models, from: body, field: model }\n  - id: b\n    method: POST\n    path: /b\n    operation: llm_read\n    entity: *m\n`;
    expect(parseRouteTable(text, "routes.yaml", testCatalog).routes[1]?.entity).toEqual({ from: "body", field: "model" });
  });

  it("reports an unreadable file as a RouteTableError", () => {
    expect(() => loadRouteTable("/nonexistent/routes.yaml", testCatalog)).toThrow(RouteTableError);
  });
});

describe("parseRouteTable: overlapping routes", () => {
  it("rejects identical paths for one method, naming both routes and lines", () => {
    expect(problems(table(route("a", "GET", "/v1/models"), route("b", "GET", "/v1/models")))).toEqual([
      'routes.yaml:8:5: route "b" (GET /v1/models) overlaps route "a" (GET /v1/models) at routes.yaml:3:5: both match /v1/models',
    ]);
  });

  it("rejects a parameter that covers a literal", () => {
    const ps = problems(
      table(
        route("a", "GET", "/v1/models/{m}", "    entity: { type: models, from: path, param: m }\n"),
        route("b", "GET", "/v1/models/x"),
      ),
    );
    expect(ps).toEqual([
      'routes.yaml:8:5: route "b" (GET /v1/models/x) overlaps route "a" (GET /v1/models/{m}) at routes.yaml:3:5: both match /v1/models/x',
    ]);
  });

  it("rejects a rest parameter that covers a deeper literal", () => {
    const ps = problems(
      table(route("a", "GET", "/a/{x+}", "    entity: { type: models, from: path, param: x }\n"), route("b", "GET", "/a/b/c")),
    );
    expect(ps[0]).toContain('route "b" (GET /a/b/c) overlaps route "a" (GET /a/{x+}) at routes.yaml:3:5: both match /a/b/c');
  });

  it("rejects two parametric templates that can meet", () => {
    const ps = problems(
      table(
        route("a", "POST", "/a/{x}/c", "    entity: { type: models, from: path, param: x }\n"),
        route("b", "POST", "/a/b/{y}", "    entity: { type: models, from: path, param: y }\n"),
      ),
    );
    expect(ps[0]).toContain("both match /a/b/c");
  });

  it("accepts templates that cannot meet, and shared paths across methods", () => {
    const text = table(
      route("a", "GET", "/a/{x}", "    entity: { type: models, from: path, param: x }\n"),
      route("b", "GET", "/a/{x}/c", "    entity: { type: models, from: path, param: x }\n"),
      route("c", "GET", "/a"),
      route("d", "POST", "/a/{x+}", "    entity: { type: models, from: path, param: x }\n"),
      route("e", "GET", "/b/{x+}", "    entity: { type: models, from: path, param: x }\n"),
      route("f", "GET", "/b"),
    );
    expect(parseRouteTable(text, "routes.yaml", testCatalog).routes.length).toBe(6);
  });

  it("still checks overlaps when a route has other problems", () => {
    const ps = problems(table(route("a", "GET", "/x", "    entity: { type: nope, from: domain }\n"), route("b", "GET", "/x")));
    expect(ps.some((p) => p.includes('route "b" (GET /x) overlaps route "a"'))).toBe(true);
  });
});

describe("parseByteSize", () => {
  it.each([
    ["1", 1],
    ["1b", 1],
    ["1k", 1024],
    ["1kib", 1024],
    ["3 MB", 3 * 1024 ** 2],
    ["2g", 2 * 1024 ** 3],
  ])("%s = %d bytes", (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(["", "mb", "1.5mb", "-1", "1tb", "1 m b", "0x10"])("rejects %j", (text) => {
    expect(parseByteSize(text)).toBeNull();
  });
});
