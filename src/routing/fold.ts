/**
 * Simple case folding as Go's encoding/json applies it to ASCII names (and as
 * the gateway compares field names everywhere): ASCII letters fold together,
 * and so do K (U+212A KELVIN SIGN) with k and ſ (U+017F LONG S) with s.
 */
export function foldCode(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c | 0x20;
  if (c === 0x212a) return 0x6b;
  if (c === 0x17f) return 0x73;
  return c;
}

/** Whether `a` and `b` are equal under foldCode. */
export function foldEquals(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (foldCode(a.charCodeAt(i)) !== foldCode(b.charCodeAt(i))) return false;
  }
  return true;
}
