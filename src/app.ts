import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { Listeners } from "./http/server.ts";
import { CertificateReloader } from "./http/certificates.ts";
import { readKeyPair } from "./config/tls.ts";
import type { Logger } from "pino";
import { ConfigError, type Settings } from "./config/config.ts";
import { RequestContext } from "./http/context.ts";
import { clientRequestId } from "./http/request-id.ts";
import { Bodies, bodySettings } from "./http/bodies.ts";
import { deny, proxy, upgrade, type DataPlane } from "./pipeline.ts";
import { decideAgain, decideFor } from "./policy/authorize.ts";
import { upgradeResponse } from "./http/respond.ts";
import { RealtimeSessions } from "./realtime/session.ts";
import type { Duplex } from "node:stream";
import { LiveStreams } from "./policy/streams.ts";
import { RouteTableHolder } from "./routing/holder.ts";
import { splitTarget } from "./routing/normalize.ts";
import { Verifier } from "./tokens/verifier.ts";
import { Rights } from "./policy/rights.ts";
import { Upstreams } from "./upstream/upstreams.ts";
import { HeaderPolicy } from "./upstream/headers.ts";
import { EmbeddedStore } from "./store/embedded.ts";
import { openStore, redisStoreOptions } from "./store/open.ts";
import { gatewayPepper } from "./store/pepper.ts";
import { createRedisClient, untilReady, type RedisStoreOptions } from "./store/redis.ts";
import { StoreUnavailableError, type ChangeEvent, type Store } from "./store/types.ts";
import { createLogger } from "./telemetry/logger.ts";
import { createAdminApi } from "./admin/api.ts";
import { createUi, uiSessions } from "./ui/index.ts";
import { Metrics, observeRequest } from "./telemetry/metrics.ts";
import { AccessLog } from "./telemetry/access.ts";
import { AuditStream } from "./telemetry/audit.ts";
import type { ForwardHooks } from "./upstream/forward.ts";
import { buildLimits, type Limits } from "./limits/build.ts";

/** A built gateway: its listeners (not yet listening) and a close for everything. */
export interface App {
  /** server.port's listener (HTTP, or HTTPS with server.tls) and the optional plain one beside it. */
  readonly listeners: Listeners;
  /** The operations listener: /metrics, /healthz, /readyz. */
  readonly opsServer: http.Server;
  readonly metrics: Metrics;
  readonly store: Store;
  readonly verifier: Verifier;
  readonly routes: RouteTableHolder;
  readonly log: Logger;
  /** Requests being served right now (data plane and others). */
  inflight(): number;
  /** Starts both listeners; resolves with the bound data-plane port (the ops port is `opsPort()`). */
  listen(port?: number, host?: string): Promise<number>;
  opsPort(): number;
  /** Reloads the route table now (SIGHUP), keeping the last good one if the file is invalid. */
  reloadRoutes(how: string): { ok: true } | { ok: false; error: string };
  /** Re-reads every certificate (the server's, upstream client ones) now (SIGHUP), keeping the last good pair of each. */
  reloadCertificates(how: string): void;
  /** Readiness: store reachable, route table loaded, not draining. */
  ready(): Promise<{ ok: boolean; checks: Record<string, string> }>;
  /**
   * Graceful close: readiness goes down, no new connections, in-flight requests
   * and streams finish (up to `drainMs`, then they are cut), then everything shuts.
   */
  close(drainMs?: number): Promise<void>;
}

export interface AppOptions {
  readonly logger?: Logger;
  /** Touch flush interval for last-used times (tests shorten it). */
  readonly touchIntervalMs?: number;
  /** Receives the admin key a first start creates (default: printed once to stderr). */
  readonly printAdminKey?: (key: string) => void;
}


/** The composition root: builds every dependency once, wires change events to caches. */
export async function buildApp(settings: Settings, opts: AppOptions = {}): Promise<App> {
  const log = opts.logger ?? createLogger(settings.logging.level);
  const routes = RouteTableHolder.load(settings.routesFile, settings.catalog);
  const redisOpts = withHealthLog(redisStoreOptions(settings.store), log);
  // The audit stream's own connection (same mode, credentials and fail-fast settings as the store; a Cluster
  // client routes the stream key to its slot) connects beside the store's, and is waited for from now on, so
  // that it is up before the first change without adding its wait to the store's.
  const auditRedis = settings.audit.redisStream !== null && redisOpts !== null ? createRedisClient(redisOpts) : null;
  auditRedis?.on("error", () => undefined); // state, not news: each failed append logs a warning
  const auditReady = auditRedis !== null && redisOpts !== null ? untilReady(auditRedis, redisOpts) : Promise.resolve(true);
  let store: Store | null = null;
  // Limit counters and usage buckets: their own Redis connection, opened beside the store's (src/limits/build.ts).
  const limits = buildLimits(settings, redisOpts, log);
  try {
    store = await openStore(settings.store, { redis: redisOpts });
    if (store instanceof EmbeddedStore && store.migration !== null) log.info({ ...store.migration, store: store.file }, "migrated the JSON store file of an earlier version into the database; the JSON file is kept as a backup");
    return await assemble(settings, opts, { log, routes, store, auditRedis, auditReady, limits });
  } catch (err) {
    // Nothing may keep a process that failed to start alive: no Redis socket, no reconnect timer.
    auditRedis?.disconnect();
    await limits.close();
    await store?.close();
    throw err;
  }
}

/** What buildApp has opened before the rest is wired to it. */
interface Opened {
  readonly log: Logger;
  readonly routes: RouteTableHolder;
  readonly store: Store;
  readonly auditRedis: ReturnType<typeof createRedisClient> | null;
  /** Whether the audit connection came up within its connect timeout (true without one). */
  readonly auditReady: Promise<boolean>;
  readonly limits: Limits;
}

async function assemble(settings: Settings, opts: AppOptions, opened: Opened): Promise<App> {
  const { log, routes, store, auditRedis, auditReady, limits } = opened;
  const pepper = await gatewayPepper(settings);

  const verifier = new Verifier(store, {
    pepper,
    maxEntries: settings.cache.maxEntries,
    negativeTtlMs: settings.cache.negativeTtlMs,
    maxAgeMs: settings.cache.maxAgeMs,
    touchIntervalMs: opts.touchIntervalMs ?? 10_000,
  });
  const rights = new Rights(store, {
    maxEntries: settings.cache.maxEntries,
    maxAgeMs: settings.cache.maxAgeMs,
    negativeTtlMs: settings.cache.negativeTtlMs,
    configRoles: settings.roles,
    operations: settings.catalog.operations,
  });
  let inflight = 0;
  const bodies = new Bodies(bodySettings(settings.server));
  let realtime: RealtimeSessions | null = null;
  const metrics = new Metrics({
    cacheStats: () => verifier.stats, cacheEntries: () => verifier.cacheSize, inflightRequests: () => inflight, bodyBytesHeld: () => bodies.held,
    realtimeSessions: () => realtime?.active ?? 0, realtimeBytesHeld: () => realtime?.bufferedBytes ?? 0,
  });
  const streams = new LiveStreams();
  // Set once the data plane exists: running streams are re-decided against the changed grant.
  let recheckStreams: (which: (ctx: RequestContext) => boolean) => void = () => undefined;
  const unsubscribe = store.subscribe((ev: ChangeEvent, committedAt?: number) => {
    if (committedAt !== undefined) metrics.propagationLag.observe(Math.max(0, Date.now() - committedAt) / 1000);
    switch (ev.kind) {
      case "pat":
        verifier.invalidate(ev.id);
        recheckStreams((c) => c.pat?.record.id === ev.id);
        break;
      case "member":
        rights.onMemberChanged(ev.domainId, ev.userId);
        recheckStreams((c) => c.domainId === ev.domainId && c.pat?.record.userId === ev.userId);
        break;
      case "domain":
        rights.onDomainChanged(ev.id);
        recheckStreams((c) => c.domainId === ev.id);
        break;
      case "role":
        rights.onRoleChanged();
        recheckStreams(() => true);
        break;
      case "reset":
        verifier.clear();
        rights.clear();
        recheckStreams(() => true);
        break;
    }
  });
  let auditStream: AuditStream | null = null;
  if (auditRedis !== null && settings.audit.redisStream !== null) {
    const conn = auditRedis;
    const streamKey = settings.audit.redisStream;
    const maxLen = String(settings.audit.streamMaxLen);
    // With no offline queue, an append before the first connect would fail: a change made right after start would be missing from the stream.
    if (!(await auditReady)) log.warn({ stream: streamKey }, "audit stream: its Redis connection is not ready (refused, failed or timed out at start); each append fails with a warning until it is");
    auditStream = new AuditStream(log, (fields) => conn.xadd(streamKey, "MAXLEN", "~", maxLen, "*", ...fields));
  }
  const sessions = uiSessions(settings, store, pepper);
  await limits.ready;
  const { limiter, meter, buckets } = limits.start(metrics, store);
  const admin = await createAdminApi({
    settings, store, rights, pepper, log, auditStream, cookies: sessions, limiter, usage: buckets,
    ...(opts.printAdminKey === undefined ? {} : { printAdminKey: opts.printAdminKey }),
  });
  const ui = sessions === null ? null : createUi(settings, sessions, admin, log);
  const upstreams = new Upstreams(settings.upstreams, settings.defaultUpstream, { log, metrics });
  const decisions = settings.audit.includeDecisions ? auditStream : null;
  const access = new AccessLog(log);
  const hooks: ForwardHooks = {
    finish(ctx) {
      // Past the drain deadline the gateway closed the connection, not the client.
      if (drainCut && ctx.outcome === "client_closed") ctx.outcome = "shutting_down";
      const now = performance.now();
      access.write(ctx, now);
      observeRequest(metrics, ctx, now);
      if (ctx.streaming) {
        metrics.inflightStreams.dec();
        streams.remove(ctx);
      }
      if (ctx.realtime) streams.remove(ctx);
      // Limits and usage: one hand-back per response (reservations reconciled, leases freed, one usage record).
      if (ctx.admission !== null) limiter.settle(ctx, ctx.admission);
      meter?.record(ctx);
      if (decisions !== null) {
        decisions.decision([
          "req_id", ctx.requestId, "decision", ctx.upstreamStartedAt > 0 ? "allow" : "deny", "reason", ctx.outcome,
          "pat_id", ctx.pat?.record.id ?? "", "user", ctx.pat?.record.userId ?? "", "domain", ctx.domainId,
          "route", ctx.route?.id ?? "", "entity", ctx.entityId, "status", String(ctx.res.statusCode),
          ...(ctx.limitPolicy === "" ? [] : ["policy", ctx.limitPolicy]),
        ]);
      }
    },
    streamStarted(ctx) {
      metrics.inflightStreams.inc();
      streams.add(ctx);
    },
  };
  // Sessions are re-decided and cut by the same LiveStreams as HTTP streams: on changes, at the token's deadline, at the drain deadline.
  realtime = new RealtimeSessions(settings.realtime, {
    sessionStarted: (ctx) => streams.add(ctx),
    finish: (ctx) => hooks.finish(ctx),
    decideFor: (ctx, entityId, also) => decideFor(dp, ctx, entityId, also),
  }, log);
  const dp: DataPlane = { routes, verifier, rights, upstreams, headers: new HeaderPolicy(settings.security.stripRequestHeaders, settings.security.forwardedHeaders), hooks, bodies, limiter, realtime };
  recheckStreams = (which) => streams.recheck(which, (ctx) => decideAgain(dp, ctx).then((d) => d === null));

  const onReload = (r: { ok: true } | { ok: false; error: string }, how: string): void => {
    metrics.routeReloads.labels(r.ok ? "ok" : "invalid").inc();
    if (r.ok) log.info({ file: settings.routesFile, how }, "route table reloaded");
    else log.error({ file: settings.routesFile, how, problem: r.error }, "route table reload failed; keeping the last good table");
  };
  routes.watch((r) => onReload(r, "file change"));


  let draining = false;
  let drainCut = false;
  const ready = async (): Promise<{ ok: boolean; checks: Record<string, string> }> => {
    const checks: Record<string, string> = { routes: "ok", draining: draining ? "draining" : "ok" };
    try {
      await store.ping();
      checks.store = "ok";
    } catch {
      checks.store = "unreachable";
    }
    return { ok: checks.store === "ok" && !draining, checks };
  };

  let closeAll: (() => void) | null = null;
  function onResponseClose(): void {
    inflight--;
    if (inflight === 0 && closeAll !== null) closeAll();
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    inflight++;
    // "close" comes once per response: a plain listener spares once()'s wrapper on every request.
    res.on("close", onResponseClose);
    // While draining, tell keep-alive clients to reconnect elsewhere.
    if (draining) res.shouldKeepAlive = false;
    const requestId = clientRequestId(req.headers["x-request-id"]) ?? randomUUID();
    const ctx = new RequestContext(req, res, requestId, performance.now());
    const url = req.url ?? "/";
    if (url.startsWith("/proxy/")) {
      const target = splitTarget(url, true);
      if (target === null) return deny(dp, ctx, "bad_path");
      proxy(dp, ctx, target).catch((err: unknown) => {
        if (err instanceof StoreUnavailableError) {
          metrics.storeErrors.inc();
          return deny(dp, ctx, "store_unavailable");
        }
        log.error({ err, req_id: requestId }, "data plane failure");
        deny(dp, ctx, "internal_error");
      });
      return;
    }
    if (url === "/healthz") return json(res, 200, { status: "ok" });
    if (url === "/readyz") {
      ready().then((r) => json(res, r.ok ? 200 : 503, { status: r.ok ? "ready" : "not ready", checks: r.checks }), () => json(res, 503, { status: "not ready" }));
      return;
    }
    if (ui?.owns(url) === true) return ui.handle(req, res, requestId);
    // Everything else is the management API (/pats, /domains, /roles); it answers 404 itself.
    admin.handle(req, res, requestId);
  };

  // HTTPS with server.tls: the pair was checked at load; it is read again here, as every reload reads it.
  const tls = settings.server.tls;
  const read = tls === null ? null : readKeyPair(tls);
  if (read !== null && !read.ok) throw new ConfigError(`${settings.configFile}: server.tls: ${read.error}`);
  const pair = read === null || !read.ok ? null : read.pair;
  const listeners = new Listeners({ tls, pair, handler: onRequest });
  // WebSocket upgrades (Realtime): the same decision as a request, answered over HTTP until the 101.
  listeners.onUpgrade((req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Until ws owns the socket, a reset must not become an uncaught error.
    socket.on("error", () => socket.destroy());
    const requestId = clientRequestId(req.headers["x-request-id"]) ?? randomUUID();
    const ctx = new RequestContext(req, upgradeResponse(req, socket), requestId, performance.now());
    const url = req.url ?? "/";
    if (draining) return deny(dp, ctx, "shutting_down");
    const target = url.startsWith("/proxy/") ? splitTarget(url, true) : null;
    if (target === null) return deny(dp, ctx, url.startsWith("/proxy/") ? "bad_path" : "no_route");
    upgrade(dp, ctx, target, socket, head).catch((err: unknown) => {
      if (err instanceof StoreUnavailableError) {
        metrics.storeErrors.inc();
        return deny(dp, ctx, "store_unavailable");
      }
      log.error({ err, req_id: requestId }, "data plane failure (upgrade)");
      deny(dp, ctx, "internal_error");
    });
  });
  const certificates = upstreams.certificates();
  if (tls !== null && pair !== null) certificates.unshift(new CertificateReloader({ name: "server", files: tls, initial: pair, apply: (p) => listeners.setCertificate(p), log, metrics }));
  for (const c of certificates) c.watch();

  // Operations listener: scraped by Prometheus and probed by orchestrators, kept off the data-plane port.
  const opsServer = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const url = req.url ?? "/";
    if (url === "/metrics") {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType, "cache-control": "no-store" });
          res.end(text);
        },
        (err: unknown) => {
          log.error({ err }, "metrics collection failed");
          json(res, 500, { status: "metrics failed" });
        },
      );
      return;
    }
    if (url === "/healthz") return json(res, 200, { status: "ok" });
    if (url === "/readyz") {
      ready().then((r) => json(res, r.ok ? 200 : 503, { status: r.ok ? "ready" : "not ready", checks: r.checks }), () => json(res, 503, { status: "not ready" }));
      return;
    }
    json(res, 404, { status: "not found", endpoints: ["/metrics", "/healthz", "/readyz"] });
  });
  let opsPort = 0;

  return {
    listeners,
    opsServer,
    metrics,
    opsPort: () => opsPort,
    reloadRoutes(how) {
      const r = routes.reload();
      onReload(r, how);
      return r;
    },
    reloadCertificates(how) {
      for (const c of certificates) c.reload(how);
    },
    store,
    verifier,
    routes,
    log,
    ready,
    async listen(port = settings.server.port, host = settings.server.host) {
      const bound = await listeners.listen(port, host);
      // Tests bind the data plane to port 0; the ops port then follows suit.
      opsPort = await listenOn(opsServer, port === 0 ? 0 : settings.ops.port, port === 0 ? host : settings.ops.host);
      return bound;
    },
    inflight: () => inflight,
    async close(drainMs = settings.server.drainTimeoutMs) {
      draining = true;
      routes.close();
      for (const c of certificates) c.close();
      opsServer.close();
      opsServer.closeAllConnections();
      await new Promise<void>((resolve) => {
        // Connections with no request in flight (idle keep-alive, or opened and never used) go now;
        // the rest go when their last request ends, or at the deadline.
        closeAll = () => listeners.closeAllConnections();
        // At the deadline, streams still running get their last frame (shutting_down) before the sockets go.
        const deadline = setTimeout(() => {
          drainCut = true;
          streams.cutAll("shutting_down");
          setTimeout(() => closeAll?.(), 50).unref();
        }, drainMs);
        deadline.unref();
        listeners.close().then(() => {
          clearTimeout(deadline);
          resolve();
        }, resolve);
        if (inflight === 0) closeAll();
      });

      unsubscribe();
      streams.close();
      await admin.close();
      await sessions?.store.close();
      await limits.close();
      await verifier.close();
      await upstreams.close();
      await store.close();
      auditRedis?.disconnect();
      access.flush();
      log.flush();
    },
  };
}

/** One line when the store connection is lost (where, and why) and one when it is back: not one per request. */
function withHealthLog(opts: RedisStoreOptions | null, log: Logger): RedisStoreOptions | null {
  if (opts === null) return null;
  return {
    ...opts,
    onHealth: (h) => {
      if (h.up) log.info({ store: h.address, down_ms: h.downMs }, "store back: requests are verified again");
      else log.error({ store: h.address, cause: h.cause }, `store lost: Redis at ${h.address} is unavailable (${h.cause}); requests that need it get 503 store_unavailable until it is back`);
    },
  };
}

function listenOn(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve(typeof addr === "object" && addr !== null ? addr.port : port);
    });
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  res.end(text);
}
