import path from "node:path";
import { buildApp } from "./app.ts";
import { ConfigError, loadSettings, type Settings } from "./config/config.ts";
import { printToStderr } from "./admin/api.ts";
import { banner, listenProblem, portProblem, storeText, type BannerFacts } from "./shell.ts";
import { RouteTableError } from "./routing/table.ts";

/** Process shell: config → build → listen → signals → graceful close. */
export async function serve(configFile: string): Promise<void> {
  let app: Awaited<ReturnType<typeof buildApp>>;
  let settings: Settings | null = null;
  try {
    settings = loadSettings(configFile);
    // A taken port stops the start before anything exists (no store opened, no first-start key made).
    const busy = await portProblem(settings);
    if (busy !== null) return fail(busy);
    let keyCreated = false;
    const printAdminKey = (key: string): void => {
      keyCreated = true;
      printToStderr(key);
    };
    app = await buildApp(settings, { printAdminKey });
    const built = app;
    // Never half-started: if either listener fails, everything that was opened is closed again.
    const port = await app.listen().catch(async (err: unknown) => {
      await built.close(0);
      throw err;
    });
    app.log.info({ port, host: settings.server.host, ops_port: app.opsPort(), store: app.store.kind, routes: app.routes.current.routes.length, scheme: settings.server.tls === null ? "http" : "https", http2: settings.server.tls?.http2 === true, plain_port: app.listeners.plainPort }, "patgate listening");
    app.log.flush();
    if (process.stderr.isTTY) process.stderr.write(banner(settings, { port, opsPort: app.opsPort(), store: storeText(settings, app.store.kind), adminKey: await keyStatus(app, settings, keyCreated), docs: DOCS }));
  } catch (err) {
    const clash = settings === null ? null : listenProblem(err, settings);
    if (clash !== null) return fail(clash);
    if (err instanceof ConfigError || err instanceof RouteTableError) {
      process.stderr.write(`patgate: refusing to start:\n${err.message}\n`);
    } else {
      process.stderr.write(`patgate: failed to start: ${(err as Error).stack ?? String(err)}\n`);
    }
    process.exitCode = 1;
    return;
  }

  let closing = false;
  const shutdown = (signal: string): void => {
    // A second Ctrl-C means "now": no more waiting for streams to drain.
    if (closing && signal === "SIGINT") {
      process.stderr.write("patgate: second interrupt, exiting without waiting for the drain\n");
      process.exit(130);
    }
    if (closing) return;
    closing = true;
    app.log.info({ signal }, "shutting down");
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`patgate: error while closing: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGHUP", () => {
    app.reloadRoutes("SIGHUP");
    app.reloadCertificates("SIGHUP");
  });
}

function fail(line: string): void {
  process.stderr.write(`${line}\n`);
  process.exitCode = 1;
}

/** Which admin key the banner can speak of. */
async function keyStatus(app: Awaited<ReturnType<typeof buildApp>>, settings: Settings, created: boolean): Promise<BannerFacts["adminKey"]> {
  if (created) return "created";
  if (settings.auth.adminKeyHashes.length > 0) return "configured";
  const stored = await app.store.listAdminKeys().catch(() => []);
  return stored.length > 0 ? "stored" : "none";
}

/** The project directory, whether this runs from src/ (type stripping) or from the build in dist/src/. */
function packageRoot(dir: string): string {
  const up = path.dirname(dir);
  return path.basename(up) === "dist" ? path.dirname(up) : up;
}

const DOCS = `${path.join(packageRoot(import.meta.dirname), "README.md")} and docs/ beside it`;

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename);
if (invokedDirectly) {
  const file = process.argv[2] ?? process.env.PATGATE_CONFIG ?? path.join(packageRoot(import.meta.dirname), "config", "patgate.yaml");
  await serve(file);
}
