import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

/*
 * Keeps docs/configuration.md in step with the parser. The keys come from two
 * independent places: the key lists src/config/config.ts (and tls.ts) pass to `c.obj(…)`
 * (what the parser accepts) and the shipped config/patgate.yaml (what operators
 * see). Every key must appear in the doc as its full path in backticks, with
 * `<id>`-style placeholders for names the operator chooses.
 */

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const doc = readFileSync(path.join(ROOT, "docs", "configuration.md"), "utf8");
// config.ts and the section parsers it calls in files of their own (ui.ts; tls.ts: server.tls, upstreams.<id>.tls; limits.ts).
const source = ["config.ts", "ui.ts", "tls.ts", "limits.ts"].map((f) => readFileSync(path.join(ROOT, "src", "config", f), "utf8")).join("\n");
const shipped: unknown = parseYaml(readFileSync(path.join(ROOT, "config", "patgate.yaml"), "utf8"));

// Sections whose keys are names the operator picks (c.obj(…, Object.keys(…))), and their placeholder.
const NAMED = new Map([
  ["catalog.entity_types", "<type>"],
  ["roles", "<name>"],
  ["upstreams", "<id>"],
  ["ui.entities", "<type>"],
  ["ui.entities.<type>", "<domain>"],
]);
// Key paths config.ts computes (a variable or template literal) and the section they stand for.
const TEMPLATES = new Map([
  ["at", "upstreams.<id>"],
  ["`${at}.credential`", "upstreams.<id>.credential"],
  ["typeAt", "ui.entities.<type>"],
  ["`${at}.tls`", "upstreams.<id>.tls"],
  ["where", "limits.policies[]"],
  ["`${where}.match`", "limits.policies[].match"],
]);

function documented(keyPath: string): boolean {
  return doc.includes("`" + keyPath + "`");
}

function join(section: string, key: string): string {
  return section === "" ? key : `${section}.${key}`;
}

/** Every key path the parser accepts, from the `c.obj(value, at, keys)` calls in config.ts. */
function keysFromParser(): string[] {
  const calls = source.split("c.obj(").length - 1;
  const call = /c\.obj\([^,]+,\s*("[^"]*"|`[^`]*`|[A-Za-z_]\w*),\s*(\[[^\]]*\]|Object\.keys\()/g;
  const out: string[] = [];
  let seen = 0;
  for (const m of source.matchAll(call)) {
    seen++;
    const atText = m[1] ?? "";
    const section = atText.startsWith('"') ? atText.slice(1, -1) : TEMPLATES.get(atText);
    if (section === undefined) throw new Error(`config-doc test: teach TEMPLATES what ${atText} stands for`);
    const keys = m[2] ?? "";
    if (keys.startsWith("Object.keys(")) {
      const placeholder = NAMED.get(section);
      if (placeholder === undefined) throw new Error(`config-doc test: "${section}" takes operator-chosen names; add it to NAMED`);
      out.push(join(section, placeholder));
    } else {
      for (const k of keys.matchAll(/"([^"]+)"/g)) out.push(join(section, k[1] ?? ""));
    }
  }
  // A call this test cannot read would let its keys go unchecked.
  if (seen !== calls) throw new Error(`config-doc test: read ${seen} of ${calls} c.obj(…) calls in config.ts; update its pattern`);
  return out;
}

/** Every key path in the shipped config file, names chosen by the operator replaced by placeholders. */
function keysFromShipped(value: unknown, section: string, out: string[]): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    const keyPath = join(section, NAMED.get(section) ?? k);
    out.push(keyPath);
    keysFromShipped(v, keyPath, out);
  }
  return out;
}

const parserKeys = keysFromParser();
const shippedKeys = [...new Set(keysFromShipped(shipped, "", []))];

describe("docs/configuration.md documents every config key", () => {
  it("finds the parser's key lists (sanity check of this test)", () => {
    expect(parserKeys).toEqual(expect.arrayContaining(["server", "server.port", "security.pepper", "upstreams.<id>", "upstreams.<id>.targets", "upstreams.<id>.credential.value", "roles.<name>", "logging.level"]));
    expect(parserKeys.length).toBeGreaterThan(30);
  });

  it.each(parserKeys)("accepted by the parser: %s", (keyPath) => {
    expect(documented(keyPath), `docs/configuration.md does not mention \`${keyPath}\``).toBe(true);
  });

  it.each(shippedKeys)("in config/patgate.yaml: %s", (keyPath) => {
    expect(documented(keyPath), `docs/configuration.md does not mention \`${keyPath}\``).toBe(true);
  });

  it("every key in the shipped file is one the parser accepts", () => {
    expect(shippedKeys.filter((k) => !parserKeys.includes(k))).toEqual([]);
  });

  it("documents the environment expansion forms", () => {
    expect(documented("${VAR}")).toBe(true);
    expect(documented("${VAR:-default}")).toBe(true);
  });
});
