// The log-leak check (test/helpers/global-setup.ts) must itself catch leaks.
import { describe, expect, it } from "vitest";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { findLeaks, SecretIndex } from "../helpers/leaks.ts";
import { ROOT } from "../helpers/gateway.ts";
import { generateToken } from "../../src/tokens/format.ts";

describe("findLeaks", () => {
  it("finds a PAT, a bearer value, a JWT, an admin key and a raw authorization field", () => {
    const { token } = generateToken();
    expect(findLeaks(`{"msg":"x","t":"${token}"}`)).toHaveLength(1);
    expect(findLeaks('{"h":"Bearer abcdefgh12345"}')[0]).toMatch(/Authorization value/);
    expect(findLeaks('{"j":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.sig"}')[0]).toMatch(/JWT/);
    expect(findLeaks('{"k":"pgadm_0123456789abcdefABCD"}')[0]).toMatch(/admin key/);
    expect(findLeaks('{"authorization":"Basic Zm9v"}')).toContain("authorization field");
    expect(findLeaks('{"problem":"-----BEGIN PRIVATE KEY-----\\nMIGHAgEA"}')[0]).toMatch(/private key/);
    expect(findLeaks(`{"pair":{"key":${JSON.stringify(Buffer.from("-----BEGIN EC PRIVATE KEY-----"))}}}`)[0]).toMatch(/private key/);
  });
  it("passes clean access lines and redacted fields", () => {
    expect(findLeaks('{"msg":"access","pat_id":"5f0c…","authorization":"[redacted]","status":401}')).toEqual([]);
  });
});

describe("the log-leak check finds secrets in part and encoded", () => {
  it("finds a token cut short, percent- and JSON-escaped, by shape alone", () => {
    const { token } = generateToken();
    expect(findLeaks(`{"m":"${token.slice(0, 70)}"}`).length).toBeGreaterThan(0);
    expect(findLeaks(`{"m":"${token.replaceAll("_", "%5F")}"}`).length).toBeGreaterThan(0);
    expect(findLeaks(`{"m":"${token.replaceAll("_", "\\u005f")}"}`).length).toBeGreaterThan(0);
  });

  it("SecretIndex: the bare secret, a piece of it, an admin key's random part, a pepper, and nothing else", () => {
    const { token, secret } = generateToken();
    const index = new SecretIndex();
    index.add(token, "pat");
    index.add("pgadm_test_0123456789abcdef0123456789abcdef0123456789abcdef", "key");
    index.add("a1".repeat(32), "pepper");
    expect(index.find(`{"x":"${secret}"}`)).toBe("pat");
    expect(index.find(`{"x":"…${secret.slice(10, 32)}…"}`)).toBe("pat");
    expect(index.find(`{"x":"${token.slice(0, 70).replaceAll("_", "%5F")}"}`)).toBe("pat");
    expect(index.find('{"k":"0123456789abcdef0123456789abcdef"}')).toBe("key");
    expect(index.find(`{"p":"${"a1".repeat(12)}"}`)).toBe("pepper");
    // The PAT's ident is its id, not a secret; ids and short runs are not matched.
    expect(index.find(`{"i":"${token.slice(4, 26)}"}`)).toBeNull();
    expect(index.find('{"msg":"access","pat_id":"5f0c1e2d-…","status":200}')).toBeNull();
  });

  it("no test makes a gateway's logger silent (its lines would escape the check)", () => {
    const offenders = files(path.join(ROOT, "test")).filter((f) => !f.endsWith("leaks.test.ts") && /level:\s*["']silent["']/.test(readFileSync(f, "utf8")));
    expect(offenders).toEqual([]);
  });
});

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}
