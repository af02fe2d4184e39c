/**
 * `npm run mutation [-- group…]`: mutation testing of the security-critical
 * modules, one StrykerJS run per module group (MUTATION_GROUP in
 * vitest.mutation.config.ts narrows the tests to the group's own), then one
 * score per module and in total from the runs' JSON reports (`--report`:
 * only that summary, from the reports of earlier runs). Exits 1 when a
 * module or the total is under 90 %. Not part of `npm test` or `.ci/run`.
 *
 * One run over every module with every test would rerun the whole test set
 * for each static mutant (a module-level constant), about a minute apiece:
 * ten hours on one worker (test/security/README.md).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";

interface Group {
  readonly mutate: readonly string[];
  /** Skip static mutants (each would start a gateway per test file). */
  readonly ignoreStatic: boolean;
}

const GROUPS: Readonly<Record<string, Group>> = {
  scopes: { mutate: ["src/scopes/scope.ts"], ignoreStatic: false },
  tokens: { mutate: ["src/tokens/format.ts"], ignoreStatic: false },
  headers: { mutate: ["src/upstream/headers.ts"], ignoreStatic: false },
  entity: { mutate: ["src/routing/entity.ts", "src/routing/entity-id.ts", "src/routing/multipart.ts"], ignoreStatic: false },
  pats: { mutate: ["src/admin/pats.ts"], ignoreStatic: true },
};
const BAR = 90;
const DETECTED = new Set(["Killed", "Timeout"]);
const UNDETECTED = new Set(["Survived", "NoCoverage"]);

// `--report`: only the summary of the reports already written.
const reportOnly = process.argv.includes("--report");
const asked = process.argv.slice(2).filter((a) => a !== "--report");
for (const g of asked) if (GROUPS[g] === undefined) throw new Error(`unknown group ${g}: ${Object.keys(GROUPS).join(", ")}`);
const run = reportOnly ? [] : asked.length > 0 ? asked : Object.keys(GROUPS);
mkdirSync("reports/mutation", { recursive: true });

for (const name of run) {
  const g = GROUPS[name] as Group;
  const args = ["stryker", "run", "--mutate", g.mutate.join(","), "--timeoutMS", "5000", "--incrementalFile", `reports/stryker-incremental-${name}.json`, ...(g.ignoreStatic ? ["--ignoreStatic"] : [])];
  process.stdout.write(`\n== ${name}: npx ${args.join(" ")}\n`);
  // A group under the bar makes Stryker exit 1 after writing its report: every group still runs, and the summary below judges them together.
  spawnSync("npx", args, { stdio: "inherit", env: { ...process.env, MUTATION_GROUP: name } });
  if (existsSync("reports/mutation/mutation.json")) copyFileSync("reports/mutation/mutation.json", `reports/mutation/${name}.json`);
}

// The score of every module, from each group's latest report.
const rows: { file: string; detected: number; valid: number }[] = [];
for (const name of Object.keys(GROUPS)) {
  const path = `reports/mutation/${name}.json`;
  if (!existsSync(path)) {
    process.stdout.write(`${name}: no report yet (npm run mutation -- ${name})\n`);
    continue;
  }
  const report = JSON.parse(readFileSync(path, "utf8")) as { files: Record<string, { mutants: { status: string }[] }> };
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const detected = mutants.filter((m) => DETECTED.has(m.status)).length;
    const valid = detected + mutants.filter((m) => UNDETECTED.has(m.status)).length;
    rows.push({ file, detected, valid });
  }
}
const pct = (d: number, v: number): number => (v === 0 ? 100 : (100 * d) / v);
let failed = false;
process.stdout.write("\nmodule | detected / valid | score\n--- | ---: | ---:\n");
for (const r of rows) {
  const p = pct(r.detected, r.valid);
  if (p < BAR) failed = true;
  process.stdout.write(`${r.file} | ${r.detected} / ${r.valid} | ${p.toFixed(1)} %\n`);
}
const d = rows.reduce((s, r) => s + r.detected, 0);
const v = rows.reduce((s, r) => s + r.valid, 0);
if (pct(d, v) < BAR || rows.length === 0) failed = true;
process.stdout.write(`total | ${d} / ${v} | ${pct(d, v).toFixed(1)} %\n${failed ? `FAIL: under ${BAR} % (or nothing measured)` : `PASS: every module and the total at ${BAR} % or more`}\n`);
process.exit(failed ? 1 : 0);
