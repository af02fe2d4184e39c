import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ERRORS, errorBody, retryHeaders, type ErrorCode } from "../../src/errors.ts";

const DOC = path.resolve(import.meta.dirname, "..", "..", "docs", "errors.md");
// 409 and 422: the management API (name clashes, values the config does not know); 426: a plain request to a WebSocket route.
const ALLOWED_STATUSES = [400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 426, 429, 500, 502, 503, 504];

interface DocRow {
  readonly code: string;
  readonly status: string;
  readonly type: string;
  readonly message: string;
  readonly when: string;
}

/** Cells of a markdown table row, trimmed; backticks around a whole cell are dropped. */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  return inner.split("|").map((c) => c.trim().replace(/^`([^`]*)`$/, "$1"));
}

/** The rows of the table whose header starts with `code | status`. */
function parseTable(markdown: string): DocRow[] {
  const lines = markdown.split("\n");
  const header = lines.findIndex((l) => /^\|\s*code\s*\|\s*status\s*\|/i.test(l.trim()));
  if (header < 0) throw new Error("docs/errors.md has no table with a `| code | status | …` header");
  const rows: DocRow[] = [];
  // header, then the |---| separator, then rows until the first non-table line.
  for (const line of lines.slice(header + 2)) {
    if (!line.trim().startsWith("|")) break;
    const [code = "", status = "", type = "", message = "", when = "", ...extra] = cells(line);
    if (extra.length > 0) throw new Error(`docs/errors.md: row for "${code}" has too many cells (a '|' in the text?)`);
    rows.push({ code, status, type, message, when });
  }
  return rows;
}

const doc = readFileSync(DOC, "utf8");
const rows = parseTable(doc);
const byCode = new Map(rows.map((r) => [r.code, r]));
const codes = Object.keys(ERRORS) as ErrorCode[];

describe("docs/errors.md is in step with src/errors.ts", () => {
  it("documents exactly the catalogue's codes, each once", () => {
    expect(rows.map((r) => r.code).sort()).toEqual([...codes].sort());
  });

  it.each(codes)("%s: status, type and default message match", (code) => {
    const row = byCode.get(code);
    expect(row, `docs/errors.md has no row for ${code}`).toBeDefined();
    expect(row?.status).toBe(String(ERRORS[code].status));
    expect(row?.type).toBe(ERRORS[code].type);
    expect(row?.message).toBe(ERRORS[code].message);
    expect(row?.when.length ?? 0, `say when ${code} happens and what to do`).toBeGreaterThan(20);
  });
});

describe("the catalogue", () => {
  it.each(codes)("%s uses a status the gateway is meant to answer with", (code) => {
    expect(ALLOWED_STATUSES).toContain(ERRORS[code].status);
  });

  it.each(codes)("%s: errorBody is the OpenAI envelope", (code) => {
    const parsed: unknown = JSON.parse(errorBody(code));
    expect(parsed).toStrictEqual({ error: { message: ERRORS[code].message, type: ERRORS[code].type, code, param: null } });
  });

  it("errorBody takes a specific message and param, and stays valid JSON for awkward text", () => {
    const message = 'quote " backslash \\ newline \n and </script>';
    const parsed = JSON.parse(errorBody("entity_ambiguous", message, "model")) as unknown;
    expect(parsed).toStrictEqual({ error: { message, type: "invalid_request_error", code: "entity_ambiguous", param: "model" } });
    expect(JSON.parse(errorBody("bad_json", undefined, null))).toStrictEqual({
      error: { message: ERRORS.bad_json.message, type: "invalid_request_error", code: "bad_json", param: null },
    });
  });
});

/** The codes in backticks on the list item after the `<!-- marker: … -->` comment. */
function listedAfter(marker: string): string[] {
  const at = doc.indexOf(`<!-- ${marker}:`);
  if (at < 0) throw new Error(`docs/errors.md has no <!-- ${marker}: … --> list`);
  const item = doc.slice(doc.indexOf("\n", at) + 1).split(/\n(?=<!--|\n)/)[0] ?? "";
  return [...item.matchAll(/`([a-z_]+)`/g)].map((m) => m[1] ?? "").filter((c) => c in ERRORS);
}

describe("retry hints", () => {
  it("docs/errors.md names exactly the codes that get Retry-After", () => {
    const want = codes.filter((c) => typeof (ERRORS[c] as { retry?: unknown }).retry === "number");
    expect(listedAfter("retry-after").sort()).toEqual(want.sort());
    for (const c of want) expect(retryHeaders(c)).toEqual(["retry-after", "1", "retry-after-ms", "1000"]);
  });

  it("docs/errors.md describes exactly the codes that get x-should-retry: false", () => {
    const never = codes.filter((c) => (ERRORS[c] as { retry?: unknown }).retry === "never");
    const exceptions = listedAfter("should-retry");
    // "every 4xx code except …, and …": the 4xx codes minus the named exceptions, plus the named 5xx ones.
    const described = codes.filter((c) => (ERRORS[c].status < 500 ? !exceptions.includes(c) : exceptions.includes(c)));
    expect(described.sort()).toEqual(never.sort());
    for (const c of never) expect(retryHeaders(c)).toEqual(["x-should-retry", "false"]);
  });
});

describe("the Ollama envelope", () => {
  it.each(codes)("%s: Ollama's {error: message}", (code) => {
    expect(JSON.parse(errorBody(code, undefined, "model", "ollama"))).toStrictEqual({ error: ERRORS[code].message });
  });
});
