/**
 * Holds responses to docs/openapi.yaml: a response whose status the document
 * does not list for that path and method, or whose body does not match the
 * documented schema, fails the test.
 *
 * OpenAPI 3.1 schemas are JSON Schema 2020-12; this validator implements the
 * subset the document uses and THROWS on any other keyword, so a schema can
 * never pass a test by using something the validator silently ignores.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: Json } | boolean;

export const OPENAPI_FILE = path.resolve(import.meta.dirname, "..", "..", "docs", "openapi.yaml");

// Annotations: no effect on validity.
const ANNOTATIONS = new Set(["description", "title", "examples", "example", "deprecated", "readOnly", "writeOnly", "default", "$comment"]);
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The keywords validate() implements (annotations aside). */
export const KEYWORDS = new Set([
  "$ref", "type", "properties", "required", "additionalProperties", "items", "enum", "const", "oneOf", "anyOf", "allOf",
  "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "format",
]);

/** Every keyword in a schema tree that validate() would not understand, with its path. */
export function unsupportedKeywords(schema: unknown, at = "$"): string[] {
  if (typeof schema !== "object" || schema === null) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(schema)) {
    if (ANNOTATIONS.has(k)) continue;
    if (!KEYWORDS.has(k)) out.push(`${at}.${k}`);
    else if (k === "properties") for (const [p, s] of Object.entries(v as object)) out.push(...unsupportedKeywords(s, `${at}.properties.${p}`));
    else if (k === "items" || k === "additionalProperties") out.push(...unsupportedKeywords(v, `${at}.${k}`));
    else if (k === "allOf" || k === "anyOf" || k === "oneOf") (v as unknown[]).forEach((s, i) => out.push(...unsupportedKeywords(s, `${at}.${k}[${i}]`)));
    else if (k === "format" && v !== "date-time" && v !== "uuid") out.push(`${at}.format(${String(v)})`);
  }
  return out;
}

/** Validates `value` against `schema`; returns every problem found, each with its JSON path. */
export function validate(schema: Schema, value: unknown, root: unknown, at = "$"): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${at}: no value is allowed here`];
  const errs: string[] = [];
  for (const [kw, arg] of Object.entries(schema)) {
    if (ANNOTATIONS.has(kw)) continue;
    switch (kw) {
      case "$ref": {
        const ref = arg as string;
        if (!ref.startsWith("#/")) throw new Error(`only local $refs are supported: ${ref}`);
        let target: unknown = root;
        for (const part of ref.slice(2).split("/")) target = isObj(target) ? target[part.replaceAll("~1", "/").replaceAll("~0", "~")] : undefined;
        if (target === undefined) throw new Error(`unresolved $ref ${ref}`);
        errs.push(...validate(target as Schema, value, root, at));
        break;
      }
      case "type": {
        const types = Array.isArray(arg) ? (arg as string[]) : [arg as string];
        const t = typeOf(value);
        if (!types.includes(t) && !(t === "integer" && types.includes("number"))) errs.push(`${at}: expected ${types.join(" | ")}, got ${t}`);
        break;
      }
      case "properties":
        if (isObj(value)) {
          for (const [k, s] of Object.entries(arg as Record<string, Schema>)) {
            if (k in value) errs.push(...validate(s, value[k], root, `${at}.${k}`));
          }
        }
        break;
      case "required":
        if (isObj(value)) for (const k of arg as string[]) if (!(k in value)) errs.push(`${at}: missing required property "${k}"`);
        break;
      case "additionalProperties":
        if (isObj(value)) {
          const known = isObj(schema.properties) ? Object.keys(schema.properties) : [];
          for (const [k, v] of Object.entries(value)) {
            if (known.includes(k)) continue;
            errs.push(...validate(arg as Schema, v, root, `${at}.${k}`).map((e) => (arg === false ? `${at}: undocumented property "${k}"` : e)));
          }
        }
        break;
      case "items":
        if (Array.isArray(value)) value.forEach((v, i) => errs.push(...validate(arg as Schema, v, root, `${at}[${i}]`)));
        break;
      case "enum":
        if (!(arg as Json[]).some((e) => JSON.stringify(e) === JSON.stringify(value))) errs.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(arg)}`);
        break;
      case "const":
        if (JSON.stringify(arg) !== JSON.stringify(value)) errs.push(`${at}: expected ${JSON.stringify(arg)}`);
        break;
      case "oneOf": {
        const passing = (arg as Schema[]).filter((s) => validate(s, value, root, at).length === 0).length;
        if (passing !== 1) errs.push(`${at}: matches ${passing} of the oneOf schemas, not exactly one`);
        break;
      }
      case "anyOf":
        if (!(arg as Schema[]).some((s) => validate(s, value, root, at).length === 0)) errs.push(`${at}: matches none of the anyOf schemas`);
        break;
      case "allOf":
        for (const s of arg as Schema[]) errs.push(...validate(s, value, root, at));
        break;
      case "minimum":
        if (typeof value === "number" && value < (arg as number)) errs.push(`${at}: ${value} < minimum ${JSON.stringify(arg)}`);
        break;
      case "maximum":
        if (typeof value === "number" && value > (arg as number)) errs.push(`${at}: ${value} > maximum ${JSON.stringify(arg)}`);
        break;
      case "minLength":
        if (typeof value === "string" && [...value].length < (arg as number)) errs.push(`${at}: shorter than ${JSON.stringify(arg)}`);
        break;
      case "maxLength":
        if (typeof value === "string" && [...value].length > (arg as number)) errs.push(`${at}: longer than ${JSON.stringify(arg)}`);
        break;
      case "pattern":
        if (typeof value === "string" && !new RegExp(arg as string, "u").test(value)) errs.push(`${at}: ${JSON.stringify(value)} does not match /${JSON.stringify(arg)}/`);
        break;
      case "minItems":
        if (Array.isArray(value) && value.length < (arg as number)) errs.push(`${at}: fewer than ${JSON.stringify(arg)} items`);
        break;
      case "maxItems":
        if (Array.isArray(value) && value.length > (arg as number)) errs.push(`${at}: more than ${JSON.stringify(arg)} items`);
        break;
      case "format":
        if (typeof value === "string") {
          if (arg === "date-time" && !(DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)))) errs.push(`${at}: ${JSON.stringify(value)} is not a date-time`);
          else if (arg === "uuid" && !UUID.test(value)) errs.push(`${at}: ${JSON.stringify(value)} is not a uuid`);
          else if (arg !== "date-time" && arg !== "uuid") throw new Error(`unsupported format "${JSON.stringify(arg)}" at ${at}`);
        }
        break;
      default:
        throw new Error(`the test validator does not implement the schema keyword "${kw}" (at ${at}); implement it or use another`);
    }
  }
  return errs;
}

interface Operation {
  readonly template: string;
  readonly method: string;
  readonly responses: Record<string, unknown>;
}

/** The OpenAPI document, with concrete paths matched to its templates. */
export class OpenApi {
  readonly doc: Record<string, unknown>;
  readonly #ops: Operation[] = [];

  constructor(file = OPENAPI_FILE) {
    this.doc = parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    const paths = (this.doc.paths ?? {}) as Record<string, Record<string, unknown>>;
    for (const [template, item] of Object.entries(paths)) {
      for (const method of ["get", "put", "post", "patch", "delete"]) {
        const op = item[method] as { responses?: Operation["responses"] } | undefined;
        if (op !== undefined) this.#ops.push({ template, method: method.toUpperCase(), responses: op.responses ?? {} });
      }
    }
  }

  /** Every documented method + path template. */
  get operations(): ReadonlyArray<{ method: string; template: string }> {
    return this.#ops.map((o) => ({ method: o.method, template: o.template }));
  }

  /** The operation a concrete request path falls under; path parameters match one segment. */
  find(method: string, pathname: string): Operation | undefined {
    const segs = pathname.split("/").slice(1);
    return this.#ops.find((o) => {
      if (o.method !== method) return false;
      const t = o.template.split("/").slice(1);
      return t.length === segs.length && t.every((s, i) => (/^\{.+\}$/.test(s) ? segs[i] !== "" : s === segs[i]));
    });
  }

  /**
   * Throws unless the response is documented: the status is listed for the
   * operation (a path the document does not know must be a documented 404/405
   * of some operation on it, or fails), and the JSON body matches its schema.
   */
  check(method: string, pathname: string, status: number, contentType: string | null, text: string): void {
    const op = this.find(method, pathname);
    const where = `${method} ${pathname} → ${status}`;
    if (op === undefined) {
      // Unknown path or method: only the generic refusals, in the shared envelope.
      if (![400, 404, 405].includes(status)) throw new Error(`${where}: no documented operation for this request`);
      this.#checkBody(where, { $ref: "#/components/schemas/Error" }, contentType, text);
      return;
    }
    const resp = this.#deref(op.responses[String(status)]);
    if (resp === undefined) throw new Error(`${where}: status ${status} is not documented for ${op.method} ${op.template} (documented: ${Object.keys(op.responses).join(", ")})`);
    const media = resp.content?.["application/json"];
    if (media === undefined) {
      if (text !== "") throw new Error(`${where}: documented without a body, but the response has one: ${text.slice(0, 200)}`);
      return;
    }
    this.#checkBody(where, media.schema, contentType, text);
  }

  /** A response object, following a `$ref` to components. */
  #deref(r: unknown): { content?: Record<string, { schema: Schema }> } | undefined {
    if (!isObj(r)) return undefined;
    if (typeof r.$ref !== "string") return r;
    let target: unknown = this.doc;
    for (const part of r.$ref.slice(2).split("/")) target = isObj(target) ? target[part] : undefined;
    if (target === undefined) throw new Error(`unresolved $ref ${r.$ref}`);
    return this.#deref(target);
  }

  #checkBody(where: string, schema: Schema, contentType: string | null, text: string): void {
    if (contentType === null || !contentType.startsWith("application/json")) throw new Error(`${where}: content-type is ${contentType ?? "missing"}, not application/json`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`${where}: body is not JSON: ${text.slice(0, 200)}`);
    }
    const errs = validate(schema, body, this.doc);
    if (errs.length > 0) throw new Error(`${where}: body does not match the documented schema:\n  ${errs.join("\n  ")}\nbody: ${text.slice(0, 2000)}`);
  }
}
