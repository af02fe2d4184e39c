// The log-leak check (test/helpers/global-setup.ts) must itself catch leaks.
import { describe, expect, it } from "vitest";
import { findLeaks } from "../helpers/leaks.ts";
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
