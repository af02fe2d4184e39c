#!/usr/bin/env node
// The `patgate` command. Node (>= 22.18) runs the TypeScript sources directly,
// stripping their types; the compile cache keeps that from being paid on every
// run. The import is dynamic so the cache is on before any source is loaded.
import module from "node:module";

module.enableCompileCache?.();
const { run } = await import("../src/cli/main.ts");
await run();
