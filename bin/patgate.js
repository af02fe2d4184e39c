#!/usr/bin/env node
// The `patgate` command. A packed install (npm pack, the image) ships the
// compiled JavaScript in dist/ and no sources; a clone runs the TypeScript
// sources directly, Node (>= 22.18) stripping their types, so that it never
// runs a stale build. The compile cache keeps either from being paid on every
// run; the import is dynamic so the cache is on before any code is loaded.
import module from "node:module";
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

module.enableCompileCache?.();
const source = path.join(import.meta.dirname, "../src/cli/main.ts");
const built = path.join(import.meta.dirname, "../dist/src/cli/main.js");
const { run } = await import(pathToFileURL(existsSync(source) || !existsSync(built) ? source : built).href);
await run();
