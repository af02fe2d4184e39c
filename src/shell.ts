/**
 * What the process shell (main.ts) tells a person: a port that is taken, said
 * in one line that names the variable moving it, and the short banner a
 * terminal gets beside the JSON log.
 */
import net from "node:net";
import path from "node:path";
import type { Settings } from "./config/config.ts";

/** One listener the gateway opens, and the setting and variable (in the shipped config) that move it. */
interface Listener {
  readonly what: string;
  readonly host: string;
  readonly port: number;
  readonly key: string;
  readonly env: string;
}

function listeners(s: Settings): Listener[] {
  return [
    { what: "gateway", host: s.server.host, port: s.server.port, key: "server.port", env: "PATGATE_PORT" },
    { what: "ops (metrics/health)", host: s.ops.host, port: s.ops.port, key: "ops.port", env: "PATGATE_METRICS_PORT" },
  ];
}

/** The one line for a port that cannot be bound. */
function clashLine(l: Listener, code: string | undefined): string {
  const why = code === "EADDRINUSE" ? "is already in use" : code === "EACCES" ? "may not be bound by this user" : `cannot be bound (${code ?? "unknown error"})`;
  return `patgate: the ${l.what} port ${l.port} on ${l.host} ${why}; free it, or move patgate with ${l.env}=<port> (${l.key} in the config)`;
}

/**
 * Tries each port the gateway will listen on and lets it go again, before
 * anything is built (no store opened, no first-start key made): the one line
 * for the first that cannot be bound, or null when all can.
 */
export async function portProblem(s: Settings): Promise<string | null> {
  for (const l of listeners(s)) {
    if (l.port === 0) continue;
    const code = await new Promise<string | null>((resolve) => {
      const probe = net.createServer();
      probe.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "unknown"));
      probe.listen({ port: l.port, host: l.host, exclusive: true }, () => probe.close(() => resolve(null)));
    });
    if (code !== null) return clashLine(l, code);
  }
  return null;
}

/** The one line for a listen error (a port taken between the probe and the listen), or null for another failure. */
export function listenProblem(err: unknown, s: Settings): string | null {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e.syscall !== "listen" || e.code === undefined) return null;
  const l = listeners(s).find((x) => x.port === e.port) ?? listeners(s)[0];
  return l === undefined ? null : clashLine(l, e.code);
}

/** What the banner says about the running gateway. */
export interface BannerFacts {
  readonly port: number;
  readonly opsPort: number;
  readonly store: string;
  /** "created" (printed above, once), "configured" (auth.admin_keys), "stored" (from an earlier first start), or "none". */
  readonly adminKey: "created" | "configured" | "stored" | "none";
  readonly docs: string;
}

/** The short human banner `npm start` prints on a terminal (stderr; stdout stays JSON). */
export function banner(s: Settings, f: BannerFacts): string {
  const host = s.server.host.includes(":") ? `[${s.server.host}]` : s.server.host;
  const opsHost = s.ops.host.includes(":") ? `[${s.ops.host}]` : s.ops.host;
  const key = {
    created: "created on this first start and printed above, once (only its hash is kept)",
    configured: "configured (auth.admin_keys / PATGATE_ADMIN_KEYS)",
    stored: "the one a first start created (printed then; a lost one can be replaced, see the README)",
    none: "none: nobody can manage PATs until one is configured (PATGATE_ADMIN_KEYS)",
  }[f.adminKey];
  return [
    "",
    `patgate is up.`,
    `  gateway    http://${host}:${f.port}/proxy/<domain>/v1   (management API: /pats, /domains, /roles, /catalog)`,
    `  ops        http://${opsHost}:${f.opsPort}/metrics  /healthz  /readyz`,
    `  store      ${f.store}`,
    `  admin key  ${key}`,
    `  docs       ${f.docs}`,
    "  Ctrl-C stops it gracefully; a second Ctrl-C at once. The JSON log goes to stdout.",
    "",
    "",
  ].join("\n");
}

/** The store line of the banner: where the data is. */
export function storeText(s: Settings, kind: string): string {
  if (kind === "embedded") return `embedded, in ${path.relative(process.cwd(), s.store.embeddedPath) || s.store.embeddedPath}`;
  return `Redis (${s.store.redisMode}${s.store.redisUrl === null ? "" : `, ${redactUrl(s.store.redisUrl)}`})`;
}

/** A Redis URL without its password, for people to read. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}
