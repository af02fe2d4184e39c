// Finding (review, item 9): comparing only part of the keyed hash passed the
// suite. A stored hash that matches the real one in its first half (or any
// prefix, or all but its last byte) must not verify a secret.
import { describe, expect, it } from "vitest";
import { generateToken, hashSecret, secretMatches } from "../../src/tokens/format.ts";

describe("the whole keyed hash is compared", () => {
  const pepper = Buffer.alloc(32, 7);
  const { id, secret } = generateToken();
  const good = hashSecret(pepper, id, secret);

  it("the right secret matches", () => {
    expect(secretMatches(pepper, id, secret, good)).toBe(true);
  });

  it.each([1, 2, 8, 16, 24, 31, 32])("a stored hash differing only from byte %i on does not", (from) => {
    const bytes = Buffer.from(good, "hex");
    for (let i = from - 1; i < 32; i++) bytes[i] = (bytes[i] ?? 0) ^ 0xff;
    expect(secretMatches(pepper, id, secret, bytes.toString("hex"))).toBe(false);
  });

  it("each single flipped bit anywhere in the hash is noticed", () => {
    for (let bit = 0; bit < 256; bit++) {
      const bytes = Buffer.from(good, "hex");
      bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      expect(secretMatches(pepper, id, secret, bytes.toString("hex"))).toBe(false);
    }
  });

  it("the id and the pepper are part of the hash", () => {
    expect(secretMatches(pepper, generateToken().id, secret, good)).toBe(false);
    expect(secretMatches(Buffer.alloc(32, 8), id, secret, good)).toBe(false);
  });
});
