// Finding (review, item 9): the constant-time compares were never checked; a
// `===` on a hash or `Buffer.equals` in place of timingSafeEqual passed the
// suite. This is a source check: the functions that compare secrets use
// timingSafeEqual and nothing else, and no line of src/ compares a value named
// like a secret, hash, digest or pepper with an ordinary operator, except
// against a literal (null, "", a number) or by its length.
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/gateway.ts";

const SRC = path.join(ROOT, "src");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** The body of `function name(` in `text`, up to the closing brace at column 0. */
function fnBody(text: string, name: string): string {
  const at = text.indexOf(`function ${name}(`);
  if (at === -1) return "";
  const end = text.indexOf("\n}", at);
  return text.slice(at, end === -1 ? undefined : end);
}

const NAMED = /(secret|hash|digest|pepper)/i;
const OPERAND = String.raw`[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\(\))*`;
const COMPARE = new RegExp(String.raw`(${OPERAND}|"[^"]*"|'[^']*'|\d+)\s*(===|!==|==|!=)\s*(${OPERAND}|"[^"]*"|'[^']*'|\d+)`, "g");
const LITERAL = /^(null|undefined|true|false|""|''|"[^"]*"|'[^']*'|\d+)$/;

/** `a === b` pairs on lines of src/ where a side is named like a secret and neither is a literal or a length. */
export function suspiciousCompares(text: string, file: string): string[] {
  const out: string[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim().startsWith("//") || line.trim().startsWith("*")) return;
    for (const m of line.matchAll(COMPARE)) {
      const [, a = "", , b = ""] = m;
      if (!NAMED.test(a) && !NAMED.test(b)) continue;
      if (LITERAL.test(a) || LITERAL.test(b)) continue;
      if (a.endsWith(".length") || b.endsWith(".length") || a.endsWith("ExpiresAt") || b.endsWith("ExpiresAt")) continue;
      out.push(`${path.relative(ROOT, file)}:${i + 1}: ${m[0]}`);
    }
    if (/\.(equals|compare)\(/.test(line) && NAMED.test(line)) out.push(`${path.relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
  });
  return out;
}

describe("secrets are compared in constant time", () => {
  it("secretMatches (PAT secrets) and the admin key lookup use timingSafeEqual and no ordinary compare of the hashes", () => {
    const format = readFileSync(path.join(SRC, "tokens", "format.ts"), "utf8");
    const sm = fnBody(format, "secretMatches");
    expect(sm).toContain("timingSafeEqual(");
    expect(sm).not.toMatch(/\.equals\(|Buffer\.compare\(|\bactual\s*[!=]==?\s*stored|\bstored\s*[!=]==?\s*actual/);
    const keys = readFileSync(path.join(SRC, "admin", "keys.ts"), "utf8");
    expect(keys).toContain("timingSafeEqual(");
    expect(keys).not.toMatch(/\.equals\(|Buffer\.compare\(/);
  });

  it("no line of src/ compares a secret, hash, digest or pepper with ===, !==, .equals or .compare", () => {
    const found = files(SRC).flatMap((f) => suspiciousCompares(readFileSync(f, "utf8"), f));
    expect(found).toEqual([]);
  });

  it("the check itself catches the forms it looks for", () => {
    expect(suspiciousCompares("  if (storedHash === actualHash) return true;", "x.ts")).toHaveLength(1);
    expect(suspiciousCompares("  return secret !== given;", "x.ts")).toHaveLength(1);
    expect(suspiciousCompares("  return actualDigest.equals(stored);", "x.ts")).toHaveLength(1);
    expect(suspiciousCompares('  if (pepperText !== "") x();', "x.ts")).toEqual([]);
    expect(suspiciousCompares("  if (storedHashHex.length !== 64) return false;", "x.ts")).toEqual([]);
  });
});
