// The shell examples of README.md and docs/ marked `<!-- doc-test -->` run as
// written (test/helpers/doc-examples.ts), against a real gateway with the fake
// upstream, an OIDC issuer for the user examples, and this clone's `patgate`:
// an example that stops working fails here.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startAdminFixture, type AdminFixture } from "../helpers/admin.ts";
import { markedExamples, runExamples, type Sandbox } from "../helpers/doc-examples.ts";
import { ROOT, ensureMember } from "../helpers/gateway.ts";

// Each file in its own gateway (the examples create the same names), in the order a reader meets them.
const FILES: Record<string, (fx: AdminFixture) => Promise<void>> = {
  "README.md": () => Promise.resolve(),
  // cli.md's examples assume the README's demo domain, with alice a member.
  "docs/cli.md": (fx) => ensureMember(fx.gw.store, "demo", "alice", "developer"),
  "docs/admin-api.md": () => Promise.resolve(),
};

describe("the docs' marked shell examples", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("every markdown file that has marked examples is run here", async () => {
    const { readdir } = await import("node:fs/promises");
    const all = ["README.md", ...(await readdir(path.join(ROOT, "docs"))).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
    const marked: string[] = [];
    for (const f of all) if (markedExamples(await readFile(path.join(ROOT, f), "utf8"), f).length > 0) marked.push(f);
    expect(marked.sort()).toEqual(Object.keys(FILES).sort());
  });

  /** A fresh gateway, issuer and scratch directory for one run of a file's examples. */
  async function sandbox(file: string): Promise<{ box: Sandbox; fx: AdminFixture }> {
    const fx = await startAdminFixture();
    await FILES[file]?.(fx);
    const cwd = await mkdtemp(path.join(os.tmpdir(), "patgate-docs-"));
    dirs.push(cwd);
    const key = fx.gw.adminKey ?? "";
    const base = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !k.startsWith("PATGATE_") && v !== undefined)) as Record<string, string>;
    const box: Sandbox = {
      root: ROOT,
      cwd,
      env: {
        ...base,
        PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
        // What the docs' conventions say a reader has set (README's example exports its own token).
        PATGATE_URL: fx.gw.url,
        ...(file === "README.md" ? {} : { PATGATE_TOKEN: key }),
        PATGATE_ADMIN_KEY: key,
        ID_TOKEN: await fx.idp.token("alice", { expiresIn: 3600 }),
      },
      // The examples are written for the default port and with a placeholder key.
      subst: new Map([
        ["http://127.0.0.1:8080", fx.gw.url],
        ["pgadm_3q0M…", key],
      ]),
    };
    return { box, fx };
  }

  for (const file of Object.keys(FILES)) {
    describe(file, () => {
      it("runs as written", async () => {
        const examples = markedExamples(await readFile(path.join(ROOT, file), "utf8"), file);
        expect(examples.length).toBeGreaterThan(0);
        const { box, fx } = await sandbox(file);
        try {
          const r = await runExamples(examples, box);
          expect(r.ok, `${r.problem}\n${r.output.slice(-3000)}`).toBe(true);
        } finally {
          await fx.close();
        }
      }, 60_000);

      it("fails, naming the example, when one is broken", async () => {
        const text = await readFile(path.join(ROOT, file), "utf8");
        // One small edit per file, of the kind drift makes: a renamed command, a changed output, a misspelt field.
        const [from = "", to = ""] = {
          "README.md": ["npx patgate pat list --user alice --name laptop -q", "npx patgate pat lst --user alice --name laptop -q"],
          "docs/cli.md": ["entity       models llama3:8b", "entity       models llama3:70b"],
          "docs/admin-api.md": ['-d \'{"name":"ci-chat-2"}\'', '-d \'{"nmae":"ci-chat-2"}\''],
        }[file] ?? [];
        expect(text).toContain(from);
        const broken = text.replace(from, to);
        const line = broken.slice(0, broken.indexOf(to)).split("\n").length;
        // The example holding the edit is the one reported: the last fence that opens before it.
        const holder = markedExamples(broken, file).filter((e) => e.line < line).at(-1);
        const { box, fx } = await sandbox(file);
        try {
          const r = await runExamples(markedExamples(broken, file), box);
          expect(r.ok).toBe(false);
          expect(r.problem).toMatch(new RegExp(`^${file.replace(".", "\\.")}:${holder?.line ?? -1}: the (example exited [1-9]|output differs)`));
        } finally {
          await fx.close();
        }
      }, 60_000);
    });
  }
});
