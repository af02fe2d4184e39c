import { appendFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { inject } from "vitest";

let file: string | null | undefined;

/** Appends gateway log output to this worker's file in the run's log directory (see global-setup.ts). */
export function sinkLog(text: string): void {
  if (file === undefined) {
    let dir: string | undefined;
    try {
      dir = inject("patgateLogDir");
    } catch {
      dir = undefined;
    }
    file = dir === undefined ? null : path.join(dir, `${process.pid}-${randomBytes(4).toString("hex")}.log`);
  }
  if (file !== null) appendFileSync(file, text);
}

declare module "vitest" {
  export interface ProvidedContext {
    patgateLogDir: string;
  }
}
