import path from "node:path";
import { buildApp } from "./app.ts";
import { ConfigError, loadSettings } from "./config/config.ts";
import { RouteTableError } from "./routing/table.ts";

/** Process shell: config → build → listen → signals → graceful close. */
export async function serve(configFile: string): Promise<void> {
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    const settings = loadSettings(configFile);
    app = await buildApp(settings);
    const port = await app.listen();
    app.log.info({ port, host: settings.server.host, ops_port: app.opsPort(), store: app.store.kind, routes: app.routes.current.routes.length, scheme: settings.server.tls === null ? "http" : "https", http2: settings.server.tls?.http2 === true, plain_port: app.listeners.plainPort }, "patgate listening");
    app.log.flush();
  } catch (err) {
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

/** The project directory, whether this runs from src/ (type stripping) or from the build in dist/src/. */
function packageRoot(dir: string): string {
  const up = path.dirname(dir);
  return path.basename(up) === "dist" ? path.dirname(up) : up;
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename);
if (invokedDirectly) {
  const file = process.argv[2] ?? process.env.PATGATE_CONFIG ?? path.join(packageRoot(import.meta.dirname), "config", "patgate.yaml");
  await serve(file);
}
