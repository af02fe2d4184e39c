/**
 * Runs the shell examples of README.md and docs/ that are marked to run, so
 * they cannot drift from the code. A marked example is a fenced block right
 * after the line `<!-- doc-test -->`:
 *
 * - ```sh: the block runs in bash with `set -euo pipefail`; it passes when it
 *   exits 0. `curl` fails on an HTTP error (`--fail-with-body`), so a refused
 *   call fails the example unless the example says what to do about it.
 * - ```console: each `$ command` runs; the lines after it, up to the next
 *   `$`, are its expected standard output, where `…` stands for any text
 *   within a line.
 *
 * The blocks of one file run in order in one shell (variables set in one are
 * seen by the next), in a scratch directory, with `patgate` (and `npx
 * patgate`) running this clone's bin/patgate.js. `subst` maps text in the
 * examples (the default URL, a placeholder key) to the test's gateway.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";

export interface Example {
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly kind: "sh" | "console";
  readonly text: string;
}

const MARK = "<!-- doc-test -->";

/** The marked examples of one markdown text. */
export function markedExamples(markdown: string, file: string): Example[] {
  const lines = markdown.split("\n");
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== MARK) continue;
    const fence = /^```(sh|console)\s*$/.exec(lines[i + 1]?.trim() ?? "");
    if (fence === null) throw new Error(`${file}:${i + 1}: ${MARK} must be followed by a \`\`\`sh or \`\`\`console block`);
    const end = lines.findIndex((l, j) => j > i + 1 && l.trim() === "```");
    if (end < 0) throw new Error(`${file}:${i + 2}: unclosed block`);
    out.push({ file, line: i + 2, kind: fence[1] as "sh" | "console", text: lines.slice(i + 2, end).join("\n") });
    i = end;
  }
  return out;
}

export interface ExampleRun {
  readonly ok: boolean;
  /** Which example failed and how, for the test's message. */
  readonly problem: string;
  readonly output: string;
}

/** What the examples run with. */
export interface Sandbox {
  readonly root: string;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly subst: ReadonlyMap<string, string>;
}

function substitute(text: string, subst: ReadonlyMap<string, string>): string {
  let t = text;
  for (const [from, to] of subst) t = t.split(from).join(to);
  return t;
}

/** A `…` pattern line as a RegExp over one output line. */
function linePattern(expected: string): RegExp {
  const parts = expected.trimEnd().split("…").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`);
}

/** Runs examples (of one file, in order) in one bash; the first that fails is reported. */
export async function runExamples(examples: readonly Example[], box: Sandbox): Promise<ExampleRun> {
  const script: string[] = [
    "set -euo pipefail",
    `patgate() { node ${JSON.stringify(path.join(box.root, "bin", "patgate.js"))} "$@"; }`,
    'npx() { if [ "${1:-}" = patgate ]; then shift; patgate "$@"; else command npx "$@"; fi; }',
    'curl() { command curl --fail-with-body "$@"; }',
    "export -f patgate npx curl",
  ];
  const expectations: { at: string; file: string; expected: string[] }[] = [];
  examples.forEach((ex, n) => {
    const at = `${ex.file}:${ex.line}`;
    script.push(`echo ${JSON.stringify(`@@example ${at}`)} >&2`);
    if (ex.kind === "sh") {
      script.push(substitute(ex.text, box.subst));
      return;
    }
    let current: { cmd: string; expected: string[] } | null = null;
    const flush = (): void => {
      if (current === null) return;
      const out = `console-${n}-${expectations.length}.out`;
      script.push(`${substitute(current.cmd, box.subst)} > ${out}`);
      expectations.push({ at, file: out, expected: current.expected });
    };
    for (const l of ex.text.split("\n")) {
      if (l.startsWith("$ ")) {
        flush();
        current = { cmd: l.slice(2), expected: [] };
      } else if (current !== null) current.expected.push(l);
    }
    flush();
  });
  script.push('echo "@@done" >&2');

  const { code, stderr, stdout } = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
    const child = spawn("bash", ["-c", script.join("\n")], { cwd: box.cwd, env: { ...box.env }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (c) => resolve({ code: c, stderr: err, stdout: out }));
  });
  const last = [...stderr.matchAll(/@@example (\S+)/g)].at(-1)?.[1] ?? "(before the first example)";
  const output = `${stdout}\n${stderr}`;
  if (code !== 0 || !stderr.includes("@@done")) return { ok: false, problem: `${last}: the example exited ${code}`, output };
  for (const e of expectations) {
    const got = (await readFile(path.join(box.cwd, e.file), "utf8")).replace(/\n$/, "").split("\n");
    const want = e.expected;
    if (got.length !== want.length || !want.every((w, i) => linePattern(w).test(got[i] ?? ""))) {
      return { ok: false, problem: `${e.at}: the output differs from the example\n--- expected\n${want.join("\n")}\n--- got\n${got.join("\n")}`, output };
    }
  }
  return { ok: true, problem: "", output };
}
