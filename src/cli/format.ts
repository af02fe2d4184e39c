/** Output for people: aligned tables, key/value blocks, relative times. */

/** Columns padded to their widest cell, two spaces apart, no trailing spaces. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows].map((r) => r.map(cell));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd()).join("\n") + "\n";
}

/** `key   value` lines; a multi-line value continues indented under its first line. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  const pad = " ".repeat(width + 2);
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v.split("\n").join(`\n${pad}`)}`.trimEnd()).join("\n") + "\n";
}

// Tables hold one line per row: tabs and newlines (allowed in descriptions) become spaces.
function cell(s: string): string {
  return s.replace(/\s+/g, " ");
}

const UNITS: readonly (readonly [string, number])[] = [
  ["y", 365 * 86_400_000],
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1000],
];

/** `in 29d`, `3h ago`, `now`; `never` for null. */
export function relative(iso: string | null, now: number): string {
  if (iso === null) return "never";
  const ms = Date.parse(iso) - now;
  const abs = Math.abs(ms);
  const unit = UNITS.find(([, size]) => abs >= size);
  if (unit === undefined) return "now";
  const text = `${Math.floor(abs / unit[1])}${unit[0]}`;
  return ms > 0 ? `in ${text}` : `${text} ago`;
}

/** ISO time with its relative form, for detail views. */
export function when(iso: string | null, now: number): string {
  return iso === null ? "never" : `${iso} (${relative(iso, now)})`;
}
