import { createHmac } from "node:crypto";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  TOKEN_PATTERN,
  generateToken,
  hashSecret,
  looksLikePat,
  redactPats,
  identToUuid,
  parseToken,
  secretMatches,
  uuidToIdent,
} from "../../src/tokens/format.ts";

// An independent BigInt reference of the format, so the tests check the
// published layout rather than the implementation against itself.
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TOKEN_CHARS = [...ALPHABET, "_"];

function b62(n: bigint, width: number): string {
  let out = "";
  for (let i = 0; i < width; i++) {
    out = ALPHABET.charAt(Number(n % 62n)) + out;
    n /= 62n;
  }
  if (n !== 0n) throw new Error("does not fit");
  return out;
}

function unb62(s: string): bigint {
  let n = 0n;
  for (const c of s) n = n * 62n + BigInt(ALPHABET.indexOf(c));
  return n;
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function withChecksum(body: string): string {
  return body + b62(BigInt(crc32(body)), 6);
}

function refBuild(uuid: string, secretBytes: Uint8Array): { token: string; secret: string } {
  const ident = b62(BigInt("0x" + uuid.replaceAll("-", "")), 22);
  const secret = b62(bytesToBigInt(secretBytes), 43);
  return { token: withChecksum(`pat_${ident}_${secret}`), secret };
}

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The reference answer to "is this exactly a valid token?". */
function refIsValid(text: string): boolean {
  const m = /^pat_([0-9A-Za-z]{22})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/.exec(text);
  if (m === null) return false;
  const [, ident = "", secret = ""] = m;
  const idNum = unb62(ident);
  if (idNum >= 1n << 128n || unb62(secret) >= 1n << 256n) return false;
  const hex = idNum.toString(16).padStart(32, "0");
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return V4.test(uuid) && withChecksum(text.slice(0, 70)) === text;
}

const uuidV4 = fc.uuid({ version: 4 });
const secretBytes = fc.uint8Array({ minLength: 32, maxLength: 32 });
const validToken = fc.tuple(uuidV4, secretBytes).map(([id, bytes]) => ({ id, ...refBuild(id, bytes) }));
const tokenChar = fc.constantFrom(...TOKEN_CHARS);
// A replacement for one position: token chars, lookalikes, and any UTF-16 unit (lone surrogates included).
const replacementChar = fc.oneof(
  tokenChar,
  fc.constantFrom("-", " ", "\0", "\u00e0", "\uff10", "\u0430", "\u200b"),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
);

describe("uuidToIdent / identToUuid", () => {
  it("pins the encoding with known answers", () => {
    expect(uuidToIdent("00000000-0000-4000-8000-000000000000")).toBe("000000001VgEh72lXvTXkG");
    expect(uuidToIdent("ffffffff-ffff-4fff-bfff-ffffffffffff")).toBe("7n42DGM5PW9UTFKxP3NWYh");
    expect(identToUuid("000000001VgEh72lXvTXkG")).toBe("00000000-0000-4000-8000-000000000000");
  });

  it("round-trips every v4 UUID and agrees with the reference", () => {
    fc.assert(
      fc.property(uuidV4, (id) => {
        const ident = uuidToIdent(id);
        expect(ident).toBe(b62(BigInt("0x" + id.replaceAll("-", "")), 22));
        expect(identToUuid(ident)).toBe(id);
      }),
    );
  });

  it("rejects idents of the wrong length or alphabet, above 2^128, or not v4-shaped", () => {
    for (const bad of ["", "000000001VgEh72lXvTXk", "000000001VgEh72lXvTXkG0", "000000001VgEh72lXvTXk_", "000000001VgEh72lXvTXk\u00e9"]) {
      expect(identToUuid(bad)).toBeNull();
    }
    expect(identToUuid("z".repeat(22))).toBeNull(); // > 2^128
    // > 2^128 whose low 128 bits are a valid v4 UUID: only the overflow check catches it.
    expect(identToUuid(b62((1n << 128n) + BigInt("0x00000000000040008000000000000000"), 22))).toBeNull();
    expect(identToUuid("0".repeat(22))).toBeNull(); // nil UUID, version 0
    expect(identToUuid(b62(BigInt("0x00000000000010008000000000000000"), 22))).toBeNull(); // v1
    expect(identToUuid(b62(BigInt("0x00000000000040000000000000000000"), 22))).toBeNull(); // wrong variant
  });

  it("refuses to encode anything but a lowercase UUID v4", () => {
    for (const bad of ["", "not-a-uuid", "00000000-0000-1000-8000-000000000000", "00000000-0000-4000-c000-000000000000", "ABCDEF00-0000-4000-8000-000000000000", "00000000000040008000000000000000"]) {
      expect(() => uuidToIdent(bad)).toThrow(TypeError);
    }
  });
});

describe("generateToken", () => {
  it("has the published shape", () => {
    for (let i = 0; i < 200; i++) {
      const { token, id, secret } = generateToken();
      expect(token).toHaveLength(76);
      expect(token).toMatch(/^pat_[A-Za-z0-9_]+$/);
      expect(TOKEN_PATTERN.test(token)).toBe(true);
      expect(id).toMatch(V4);
      expect(secret).toHaveLength(43);
      // Same bytes through the reference give the same token.
      expect(refBuild(id, bigIntTo32Bytes(unb62(secret))).token).toBe(token);
    }
  });

  it("keeps the id it is given (rotation) and rejects a malformed one", () => {
    const id = "3fd5bdba-61b5-46d6-bf1c-f1df0000000f";
    const a = generateToken(id);
    const b = generateToken(id);
    expect(a.id).toBe(id);
    expect(parseToken(a.token)?.id).toBe(id);
    expect(a.token.slice(0, 27)).toBe(b.token.slice(0, 27));
    expect(a.secret).not.toBe(b.secret);
    expect(() => generateToken("3FD5BDBA-61B5-46D6-BF1C-F1DF0000000F")).toThrow(TypeError);
  });

  it("gives 10k tokens with distinct secrets and ids", () => {
    const secrets = new Set<string>();
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const t = generateToken();
      secrets.add(t.secret);
      ids.add(t.id);
    }
    expect(secrets.size).toBe(10_000);
    expect(ids.size).toBe(10_000);
  });
});

function bigIntTo32Bytes(n: bigint): Uint8Array {
  return Uint8Array.from(Buffer.from(n.toString(16).padStart(64, "0"), "hex"));
}

describe("parseToken", () => {
  it("round-trips generated tokens", () => {
    for (let i = 0; i < 1000; i++) {
      const t = generateToken();
      expect(parseToken(t.token)).toEqual({ id: t.id, secret: t.secret });
    }
  });

  it("round-trips reference-built tokens over any id and secret bytes", () => {
    fc.assert(
      fc.property(validToken, ({ id, token, secret }) => {
        expect(parseToken(token)).toEqual({ id, secret });
      }),
    );
  });

  it("accepts the extremes of the secret range", () => {
    const id = "ffffffff-ffff-4fff-bfff-ffffffffffff";
    for (const bytes of [new Uint8Array(32), new Uint8Array(32).fill(0xff)]) {
      const { token, secret } = refBuild(id, bytes);
      expect(parseToken(token)).toEqual({ id, secret });
    }
  });

  it("rejects every single-character substitution (CRC32 catches them all)", () => {
    fc.assert(
      fc.property(validToken, fc.nat(75), replacementChar, ({ token }, pos, ch) => {
        fc.pre(token.charAt(pos) !== ch);
        expect(parseToken(token.slice(0, pos) + ch + token.slice(pos + 1))).toBeNull();
      }),
      { numRuns: 2000 },
    );
  });

  it("rejects every single-character substitution, exhaustively, for a few tokens", () => {
    for (let k = 0; k < 3; k++) {
      const { token } = generateToken();
      for (let pos = 0; pos < token.length; pos++) {
        for (const ch of TOKEN_CHARS) {
          if (ch === token.charAt(pos)) continue;
          expect(parseToken(token.slice(0, pos) + ch + token.slice(pos + 1))).toBeNull();
        }
      }
    }
  });

  it("rejects deletions, insertions and adjacent swaps", () => {
    fc.assert(
      fc.property(validToken, fc.nat(75), tokenChar, ({ token }, pos, ch) => {
        expect(parseToken(token.slice(0, pos) + token.slice(pos + 1))).toBeNull();
        expect(parseToken(token.slice(0, pos) + ch + token.slice(pos))).toBeNull();
        // A swap straddling the body/checksum boundary (69↔70) is caught only with
        // probability 1 - 2^-32, so it is left out to keep the test exact.
        const i = Math.min(pos, 74);
        if (i !== 69 && token.charAt(i) !== token.charAt(i + 1)) {
          const swapped = token.slice(0, i) + token.charAt(i + 1) + token.charAt(i) + token.slice(i + 2);
          expect(parseToken(swapped)).toBeNull();
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("rejects a correct checksum over an ident above 2^128, a non-v4 id, or a secret above 2^256", () => {
    const secret = b62(123n, 43);
    expect(parseToken(withChecksum(`pat_${"z".repeat(22)}_${secret}`))).toBeNull();
    const wrapsToV4 = b62((3n << 128n) + BigInt("0xffffffffffff4fffbfffffffffffffff"), 22);
    expect(parseToken(withChecksum(`pat_${wrapsToV4}_${secret}`))).toBeNull();
    expect(parseToken(withChecksum(`pat_${"0".repeat(22)}_${secret}`))).toBeNull();
    const ident = uuidToIdent("00000000-0000-4000-8000-000000000000");
    expect(parseToken(withChecksum(`pat_${ident}_${"z".repeat(43)}`))).toBeNull();
    expect(parseToken(withChecksum(`pat_${ident}_${secret}`))).toEqual({ id: "00000000-0000-4000-8000-000000000000", secret });
  });

  it("never throws and returns null unless the input is exactly valid", () => {
    const anyText = fc.oneof(
      fc.string(),
      fc.string({ unit: "binary" }),
      fc.string({ unit: "grapheme", maxLength: 100 }),
      fc.string({ unit: tokenChar, minLength: 76, maxLength: 76 }),
      fc
        .tuple(fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 22, maxLength: 22 }), fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 49, maxLength: 49 }))
        .map(([a, b]) => `pat_${a}_${b}`),
    );
    fc.assert(
      fc.property(anyText, (text) => {
        const parsed = parseToken(text);
        expect(parsed !== null).toBe(refIsValid(text));
      }),
      { numRuns: 3000 },
    );
  });

  it("rejects a valid token with anything around it", () => {
    fc.assert(
      fc.property(validToken, fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), ({ token }, before, after) => {
        expect(parseToken(before + token)).toBeNull();
        expect(parseToken(token + after)).toBeNull();
        expect(parseToken(before + token + after)).toBeNull();
      }),
    );
    const { token } = generateToken();
    for (const wrapped of [` ${token}`, `${token}\n`, `Bearer ${token}`, token.toUpperCase(), token.replace("pat_", "PAT_")]) {
      expect(parseToken(wrapped)).toBeNull();
    }
  });

  it("rejects huge and non-string input cheaply without throwing", () => {
    expect(parseToken("pat_" + "a".repeat(10_000_000))).toBeNull();
    expect(parseToken("\u{1F600}".repeat(38))).toBeNull(); // 76 UTF-16 units
    const junks: unknown[] = [undefined, null, 42, {}, ["pat_"]];
    for (const junk of junks) {
      expect(parseToken(junk as string)).toBeNull();
    }
  });
});

describe("TOKEN_PATTERN", () => {
  it("is stateless and finds tokens in surrounding text, not inside longer words", () => {
    expect(TOKEN_PATTERN.global).toBe(false);
    expect(TOKEN_PATTERN.sticky).toBe(false);
    const { token } = generateToken();
    expect(TOKEN_PATTERN.exec(`export OPENAI_API_KEY="${token}"`)?.[0]).toBe(token);
    expect(TOKEN_PATTERN.test(`Authorization: Bearer ${token}`)).toBe(true);
    expect(TOKEN_PATTERN.test(`x${token}`)).toBe(false);
    expect(TOKEN_PATTERN.test(`${token}x`)).toBe(false);
    expect(TOKEN_PATTERN.test(token.slice(0, 75))).toBe(false);
  });
});

describe("hashSecret / secretMatches", () => {
  const pepper = Buffer.from("0123456789abcdef0123456789abcdef");
  const otherPepper = Buffer.from("fedcba9876543210fedcba9876543210");
  const { id, secret } = generateToken();
  const other = generateToken();
  const stored = hashSecret(pepper, id, secret);

  it("is HMAC-SHA256(pepper, id:secret) in lowercase hex", () => {
    expect(stored).toMatch(/^[0-9a-f]{64}$/);
    expect(stored).toBe(createHmac("sha256", pepper).update(`${id}:${secret}`).digest("hex"));
    expect(hashSecret(pepper, id, secret)).toBe(stored);
  });

  it("depends on the pepper, the id and the secret", () => {
    expect(hashSecret(otherPepper, id, secret)).not.toBe(stored);
    expect(hashSecret(pepper, other.id, secret)).not.toBe(stored);
    expect(hashSecret(pepper, id, other.secret)).not.toBe(stored);
  });

  it("matches only the right secret, id and pepper", () => {
    expect(secretMatches(pepper, id, secret, stored)).toBe(true);
    expect(secretMatches(pepper, id, other.secret, stored)).toBe(false);
    expect(secretMatches(pepper, other.id, secret, stored)).toBe(false);
    expect(secretMatches(otherPepper, id, secret, stored)).toBe(false);
  });

  it("returns false, without throwing, for malformed stored hashes", () => {
    const bad = [
      stored.slice(0, 63),
      stored.slice(0, 62),
      stored.slice(0, 32),
      "",
      stored + "0",
      stored + "00",
      "z".repeat(64),
      stored.slice(0, 40) + "zz" + stored.slice(42),
      stored.slice(0, 63) + "g",
      "\u00e9".repeat(64),
    ];
    for (const hash of bad) expect(secretMatches(pepper, id, secret, hash)).toBe(false);
    for (const junk of [undefined, null, 42]) {
      expect(secretMatches(pepper, id, secret, junk as unknown as string)).toBe(false);
    }
  });
});

describe("looksLikePat and redactPats", () => {
  const { token } = generateToken();
  it.each([
    ["a whole token", token, true],
    ["a token without its checksum", token.slice(0, 70), true],
    ["the shortest cut that still has 8 secret characters", token.slice(0, 35), true],
    ["one character shorter", token.slice(0, 34), false],
    ["percent-encoded separators", token.replaceAll("_", "%5F"), true],
    ["lower-case percent-encoding", token.replaceAll("_", "%5f"), true],
    ["JSON-escaped separators", token.replaceAll("_", "\\u005f"), true],
    ["JSON-escaped, lower case", token.replaceAll("_", "\\u005F"), true],
    ["the bare ident and secret", token.slice(4), false],
    ["a model id", "meta-llama/Llama-3.1-8B-Instruct", false],
    ["a long text without a token", "pat ".repeat(20), false],
    ["a token inside text", `x=${token};`, true],
    // The title names the case, never the random token: mutation testing picks tests by their titles.
  ])("%s", (_name, text, expected) => {
    expect(looksLikePat(text)).toBe(expected);
  });

  it("redactPats replaces every token-shaped run and leaves other text as it is", () => {
    const { token: other } = generateToken();
    expect(redactPats(`a ${token} b ${other.slice(0, 60)} c`)).toBe("a [redacted] b [redacted] c");
    const plain = "nothing to see: pat_x_y";
    expect(redactPats(plain)).toBe(plain);
  });
});
