// Rules of the PAT format (src/tokens/format.ts) that the CRC32 checksum does
// not enforce by itself. CRC32 is no secret: anyone can append a matching
// checksum to any text, so the prefix, the separator, the alphabet and the
// id's shape are each checked on their own. The tokens here carry a correct
// checksum computed independently (zlib), so only those checks refuse them.
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { generateToken, identToUuid, parseToken, uuidToIdent } from "../../src/tokens/format.ts";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function b62(n: number, width: number): string {
  let out = "";
  for (let i = 0; i < width; i++) {
    out = ALPHABET.charAt(n % 62) + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** `body` (the first 70 chars of a token) with its correct checksum. */
const withChecksum = (body: string): string => body + b62(crc32(Buffer.from(body, "latin1")), 6);
const ID = "0b0e1c9e-8d5c-4f7a-9b1e-2a3c4d5e6f70";
const body = generateToken(ID).token.slice(0, 70);
const at = (s: string, i: number, c: string): string => s.slice(0, i) + c + s.slice(i + 1);

describe("parseToken beyond the checksum", () => {
  it("a re-checksummed token that changes nothing still parses (the control)", () => {
    expect(parseToken(withChecksum(body))?.id).toBe(ID);
  });

  it("refuses another prefix or separator even with a matching checksum", () => {
    for (const [i, c] of [[0, "P"], [1, "b"], [2, "T"], [3, "x"], [3, "-"], [26, "0"], [26, "-"]] as const) {
      expect(parseToken(withChecksum(at(body, i, c))), `${i}:${c}`).toBeNull();
    }
  });

  it("refuses a character outside base62 in the secret even with a matching checksum", () => {
    for (const c of ["-", "_", ".", "+", "/", "\u00e9", "\u0080"]) {
      for (const i of [27, 50, 69]) expect(parseToken(withChecksum(at(body, i, c))), `${i}:${c}`).toBeNull();
    }
  });
});

describe("identToUuid", () => {
  const ident = uuidToIdent(ID);

  it("is null for anything but a 22-char string, and never throws", () => {
    expect(identToUuid(ident)).toBe(ID);
    for (const bad of [null, undefined, 42, ident + "0", ident.slice(1)]) expect(identToUuid(bad as unknown as string)).toBeNull();
  });

  it("is null for a character outside base62 at any position", () => {
    for (let i = 0; i < 22; i++) {
      for (const c of ["-", "_", ".", "/", ":", "@", "[", "`", "{", "\u00e9", "\u0100"]) expect(identToUuid(at(ident, i, c)), `${i}:${c}`).toBeNull();
    }
  });

  it("does not read a non-ASCII character as a digit", () => {
    const zeroOne = uuidToIdent("00000000-0000-4000-8000-000000000000");
    expect(zeroOne.charAt(8)).toBe("1");
    expect(identToUuid(at(zeroOne, 8, "\u00e9"))).toBeNull();
    expect(identToUuid(at(zeroOne, 8, "\u0101"))).toBeNull();
  });
});

describe("uuidToIdent", () => {
  it("refuses any length but 36, a hex digit where a hyphen goes, and characters outside 0-9a-f", () => {
    const bad = [ID + "0", ID + "-", ID.slice(0, 35), ...[8, 13, 18, 23].map((i) => at(ID, i, "a")), ...["/", "g", "G", "A", ":", "`", " "].map((c) => at(ID, 0, c))];
    for (const id of bad) expect(() => uuidToIdent(id), id).toThrow(TypeError);
  });

  it("accepts every lowercase hex digit", () => {
    for (const c of "0123456789abcdef") expect(identToUuid(uuidToIdent(at(ID, 0, c)))).toBe(at(ID, 0, c));
  });
});
