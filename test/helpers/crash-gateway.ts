// A gateway process for crash tests: what `node src/main.ts <config>` runs, but
// with last-used times flushed every 20 ms (not 10 s), so that a kill lands in
// the middle of flushes as often as in creates and revokes. The compile cache
// (as bin/patgate.js uses it) makes the test's twenty restarts cheaper.
import module from "node:module";

module.enableCompileCache?.();
const { buildApp } = await import("../../src/app.ts");
const { loadSettings } = await import("../../src/config/config.ts");

const app = await buildApp(loadSettings(process.argv[2] ?? ""), { touchIntervalMs: 20 });
const port = await app.listen();
app.log.info({ port }, "patgate listening");
app.log.flush();
