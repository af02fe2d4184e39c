const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** Parses `10mb`, `512kb`, `25MB`, `1048576` (bytes, binary units) into a byte count. */
export function parseSize(text: string | number): { ok: true; bytes: number } | { ok: false; error: string } {
  if (typeof text === "number") {
    return Number.isSafeInteger(text) && text >= 0 ? { ok: true, bytes: text } : { ok: false, error: `"${text}" is not a whole number of bytes` };
  }
  const m = /^\s*(\d+)\s*([kmg]?b)?\s*$/i.exec(text);
  if (m === null) return { ok: false, error: `"${text}" is not a size (use e.g. 512kb, 10mb, 1gb)` };
  const n = Number(m[1]);
  const unit = UNITS[(m[2] ?? "b").toLowerCase()] ?? 1;
  const bytes = n * unit;
  if (!Number.isSafeInteger(bytes)) return { ok: false, error: `"${text}" is too large` };
  return { ok: true, bytes };
}
