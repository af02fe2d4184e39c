// Runs once around the whole suite. Every gateway a test starts (in-process or
// as a child) copies its log output into one directory; after the last test,
// every line the suite's traffic produced is searched for credentials. A hit
// fails the run: a token or Authorization value must never reach a log.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { findLeaks } from "./leaks.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-logs-"));
  project.provide("patgateLogDir", dir);
  return async () => {
    const files = await readdir(dir);
    let lines = 0;
    const leaks: string[] = [];
    for (const f of files) {
      const text = await readFile(path.join(dir, f), "utf8");
      for (const line of text.split("\n")) {
        if (line === "") continue;
        lines++;
        for (const leak of findLeaks(line)) leaks.push(`${f}: ${leak}`);
      }
    }
    await rm(dir, { recursive: true, force: true });
    // A run of files that start no gateway has nothing to check.
    if (lines === 0) return;
    if (leaks.length > 0) throw new Error(`log-leak check: ${leaks.length} credential(s) in gateway logs:\n${leaks.slice(0, 20).join("\n")}`);
    process.stdout.write(`log-leak check: ${lines} gateway log lines from ${files.length} files, no credentials\n`);
  };
}
