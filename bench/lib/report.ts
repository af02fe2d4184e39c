/** Renders results: aligned text for the terminal, Markdown for bench/README.md. */
import type { Check, Table } from "./report-types.ts";

function cell(v: string | number | null): string {
  if (v === null) return "-";
  if (typeof v === "number") return Number.isNaN(v) ? "-" : String(v);
  return v;
}

function verdict(c: Check): string {
  return c.pass === null ? (c.goal === "report" ? "(info)" : "n/a") : c.pass ? "PASS" : "FAIL";
}

/** The checks as a table. */
export function checksTable(checks: readonly Check[]): Table {
  return {
    title: "Targets of issues 5 and 18",
    columns: ["target", "value", "goal", "result", "note"],
    rows: checks.map((c) => [c.what, c.value === null ? "-" : `${c.value} ${c.unit}`, c.goal, verdict(c), c.note ?? ""]),
  };
}

/** Fixed-width columns; numbers right-aligned. */
export function renderText(t: Table): string {
  const rows = t.rows.map((r) => r.map(cell));
  const widths = t.columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? "").length)));
  const numeric = t.columns.map((_, i) => t.rows.every((r) => typeof r[i] === "number" || r[i] === null || r[i] === "-"));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (numeric[i] === true && i > 0 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  const out = [t.title, line(t.columns), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
  for (const n of t.notes ?? []) out.push(`  note: ${n}`);
  return out.join("\n");
}

export function renderMarkdown(t: Table): string {
  const esc = (s: string): string => s.replace(/\|/g, "\\|");
  const out = [`**${t.title}**`, "", `| ${t.columns.map(esc).join(" | ")} |`, `| ${t.columns.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`];
  for (const r of t.rows) out.push(`| ${r.map((v) => esc(cell(v))).join(" | ")} |`);
  if (t.notes !== undefined && t.notes.length > 0) out.push("", ...t.notes.map((n) => `_${n}_`));
  return out.join("\n");
}
