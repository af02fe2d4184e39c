// docs/openapi.yaml is the contract the admin tests check every response
// against; this file checks the document itself: it describes exactly the
// routes the server has, every $ref resolves, every schema uses only keywords
// the test validator implements, and every error code it names exists.
import { describe, expect, it } from "vitest";
import { ENDPOINTS } from "../../src/admin/api.ts";
import { ERRORS } from "../../src/errors.ts";
import { OpenApi, unsupportedKeywords } from "../helpers/openapi.ts";

const api = new OpenApi();
const doc = api.doc;

/** Every object in the document with its JSON path. */
function walk(v: unknown, at: string, visit: (node: Record<string, unknown>, at: string) => void): void {
  if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`, visit));
  else if (typeof v === "object" && v !== null) {
    visit(v as Record<string, unknown>, at);
    for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`, visit);
  }
}

describe("docs/openapi.yaml", () => {
  it("is OpenAPI 3.1", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
  });

  it("documents exactly the routes the management API serves", () => {
    const served = ENDPOINTS.map((e) => `${e.method} ${e.path}`).sort();
    const documented = api.operations.map((o) => `${o.method} ${o.template}`).sort();
    expect(documented).toEqual(served);
  });

  it("resolves every $ref", () => {
    const refs: string[] = [];
    walk(doc, "$", (node) => {
      if (typeof node.$ref === "string") refs.push(node.$ref);
    });
    expect(refs.length).toBeGreaterThan(50);
    for (const ref of new Set(refs)) {
      let target: unknown = doc;
      for (const part of ref.slice(2).split("/")) target = (target as Record<string, unknown> | undefined)?.[part];
      expect(target, ref).toBeDefined();
    }
  });

  it("uses only schema keywords the test validator implements (so none is silently ignored)", () => {
    const schemas: Array<[unknown, string]> = [];
    walk(doc, "$", (node, at) => {
      if ("schema" in node) schemas.push([node.schema, `${at}.schema`]);
    });
    const components = (doc.components as { schemas: Record<string, unknown> }).schemas;
    for (const [name, s] of Object.entries(components)) schemas.push([s, `#/components/schemas/${name}`]);
    expect(schemas.length).toBeGreaterThan(30);
    expect(schemas.flatMap(([s, at]) => unsupportedKeywords(s, at))).toEqual([]);
  });

  it("gives every operation a 401, a 500 and a 503 response, and a success", () => {
    const paths = doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    for (const o of api.operations) {
      const responses = paths[o.template]?.[o.method.toLowerCase()]?.responses ?? {};
      const codes = Object.keys(responses);
      expect(codes, `${o.method} ${o.template}`).toEqual(expect.arrayContaining(["401", "500", "503"]));
      expect(codes.some((c) => c.startsWith("2")), `${o.method} ${o.template}`).toBe(true);
    }
  });

  it("names only error codes that exist in src/errors.ts, with their documented status", () => {
    const responses = (doc.components as { responses: Record<string, { content: { "application/json": { schema: { allOf?: unknown[] } } } }> }).responses;
    const paths = doc.paths as Record<string, Record<string, { responses: Record<string, { $ref?: string }> }>>;
    // status of each reusable response, from where operations use it
    const statusOf = new Map<string, Set<number>>();
    for (const item of Object.values(paths)) {
      for (const op of Object.values(item)) {
        if (typeof op !== "object" || op === null || !("responses" in op)) continue;
        for (const [status, r] of Object.entries(op.responses)) {
          const name = r.$ref?.split("/").pop();
          if (name !== undefined) statusOf.set(name, (statusOf.get(name) ?? new Set()).add(Number(status)));
        }
      }
    }
    let checked = 0;
    for (const [name, r] of Object.entries(responses)) {
      const branch = r.content["application/json"].schema.allOf?.[1] as { properties: { error: { properties: { code: { enum?: string[]; const?: string } } } } } | undefined;
      if (branch === undefined) continue;
      const c = branch.properties.error.properties.code;
      for (const code of c.enum ?? [c.const ?? ""]) {
        expect(Object.keys(ERRORS), `${name}: ${code}`).toContain(code);
        for (const status of statusOf.get(name) ?? []) expect(ERRORS[code as keyof typeof ERRORS].status, `${name}: ${code}`).toBe(status);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it("shows a PAT with its token exactly as a PAT plus `token` (and, on create, `warnings`)", () => {
    const schemas = (doc.components as { schemas: Record<string, { properties: Record<string, unknown>; required: string[] }> }).schemas;
    const pat = schemas.Pat;
    const withToken = schemas.PatWithToken;
    expect(pat).toBeDefined();
    expect(withToken).toBeDefined();
    if (pat === undefined || withToken === undefined) return;
    const { token, warnings, ...rest } = withToken.properties;
    expect(token).toBeDefined();
    expect(warnings).toBeDefined();
    expect(rest).toEqual(pat.properties);
    expect(withToken.required).toEqual([...pat.required, "token"]);
    // Nothing that could carry a secret hash is even documented.
    expect(JSON.stringify(doc)).not.toMatch(/secret_?hash/i);
  });
});
