// Runs once around the whole suite. Every gateway a test starts (in-process or
// as a child) copies its log output into one directory, and every secret the
// tests mint or are handed (PATs, admin keys, peppers, JWTs) is noted there
// too (log-sink.ts). After the last test, every log line is searched for
// credential shapes and for any 20-character piece of any noted secret, also
// percent- or JSON-escaped. A hit fails the run: a secret must never reach a
// log.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { findLeaks, SecretIndex } from "./leaks.ts";
import { SECRETS_DIR } from "./log-sink.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-logs-"));
  project.provide("patgateLogDir", dir);
  return async () => {
    const index = new SecretIndex();
    let secrets = 0;
    const secretFiles = await readdir(path.join(dir, SECRETS_DIR)).catch(() => [] as string[]);
    for (const f of secretFiles) {
      for (const s of (await readFile(path.join(dir, SECRETS_DIR, f), "utf8")).split("\n")) {
        if (s === "") continue;
        secrets++;
        index.add(s, `secret #${secrets} (noted in ${f})`);
      }
    }
    const files = (await readdir(dir)).filter((f) => f.endsWith(".log"));
    let lines = 0;
    const leaks: string[] = [];
    for (const f of files) {
      const text = await readFile(path.join(dir, f), "utf8");
      for (const line of text.split("\n")) {
        if (line === "") continue;
        lines++;
        for (const leak of findLeaks(line)) leaks.push(`${f}: ${leak}`);
        const hit = index.find(line);
        if (hit !== null) leaks.push(`${f}: a piece of ${hit}: …${line.slice(0, 120)}…`);
      }
    }
    await rm(dir, { recursive: true, force: true });
    // A run of files that start no gateway has nothing to check.
    if (lines === 0) return;
    if (leaks.length > 0) throw new Error(`log-leak check: ${leaks.length} credential(s) in gateway logs:\n${leaks.slice(0, 20).join("\n")}`);
    process.stdout.write(`log-leak check: ${lines} gateway log lines from ${files.length} files, no credentials, none of ${secrets} minted secrets\n`);
  };
}
