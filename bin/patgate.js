#!/usr/bin/env node
// The `patgate` command. A packed install (npm pack, the image) ships the
// compiled JavaScript in dist/ and no sources; a clone runs the TypeScript
// sources directly, Node (>= 22.18) stripping their types, so that it never
// runs a stale build. The compile cache keeps either from being paid on every
// run; the import is dynamic so the cache is on before any code is loaded.
import module from "node:module";
import { existsSync } from "node:fs";

module.enableCompileCache?.();
const source = new URL("../src/cli/main.ts", import.meta.url);
const built = new URL("../dist/src/cli/main.js", import.meta.url);
const { run } = await import(existsSync(source) || !existsSync(built) ? source.href : built.href);
await run();
