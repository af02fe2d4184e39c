import { appendFileSync, mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { inject } from "vitest";

let dir: string | null | undefined;
let file: string | null = null;
let secretsFile: string | null = null;

function runDir(): string | null {
  if (dir === undefined) {
    try {
      // Undefined (or a throw) when the run has no global setup (npm run mutation): nothing is collected.
      dir = inject("patgateLogDir") ?? null;
    } catch {
      dir = null;
    }
  }
  return dir;
}

/** Appends gateway log output to this worker's file in the run's log directory (see global-setup.ts). */
export function sinkLog(text: string): void {
  const d = runDir();
  if (d === null) return;
  file ??= path.join(d, `${process.pid}-${randomBytes(4).toString("hex")}.log`);
  appendFileSync(file, text);
}

/** Name of the subdirectory of the log directory where minted secrets are noted. */
export const SECRETS_DIR = "secrets";

/**
 * Notes secrets this worker minted or was given (PATs, admin keys, peppers,
 * JWTs): after the run, every log line is searched for them, whole, in part
 * and encoded (global-setup.ts).
 */
export function noteSecret(...values: readonly (string | null | undefined)[]): void {
  const d = runDir();
  if (d === null) return;
  const lines = values.filter((v): v is string => typeof v === "string" && v.length >= 20 && !v.includes("\n"));
  if (lines.length === 0) return;
  if (secretsFile === null) {
    mkdirSync(path.join(d, SECRETS_DIR), { recursive: true });
    secretsFile = path.join(d, SECRETS_DIR, `${process.pid}-${randomBytes(4).toString("hex")}.txt`);
  }
  appendFileSync(secretsFile, lines.join("\n") + "\n");
}

declare module "vitest" {
  export interface ProvidedContext {
    patgateLogDir: string;
  }
}
