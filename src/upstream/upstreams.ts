import { Pool } from "undici";
import type { Logger } from "pino";
import type { Target, UpstreamSettings } from "../config/config.ts";
import type { CertificateReloader } from "../http/certificates.ts";
import type { Metrics } from "../telemetry/metrics.ts";
import { UpstreamTls } from "./tls.ts";

/** One target's pooled keep-alive connections. */
export interface PooledTarget {
  readonly pool: Pool;
  readonly target: Target;
  readonly upstream: UpstreamSettings;
  /** The upstream's TLS for https targets (its WebSocket sessions use it too); null for plain ones. */
  readonly tls: UpstreamTls | null;
}

class Upstream {
  readonly settings: UpstreamSettings;
  readonly targets: readonly PooledTarget[];
  #next = 0;

  readonly tls: UpstreamTls | null;

  constructor(settings: UpstreamSettings, deps: TlsDeps) {
    this.settings = settings;
    const https = settings.targets.some((t) => t.origin.startsWith("https:"));
    const tls = (this.tls = https ? new UpstreamTls(settings, deps) : null);
    if (https && !settings.tlsVerify) deps.log.warn({ upstream: settings.id }, "TLS certificate verification is OFF for this upstream (tls_verify: false with security.allow_insecure_upstream_tls)");
    this.targets = settings.targets.map((target) => ({
      target,
      upstream: settings,
      tls,
      pool: new Pool(target.origin, {
        connections: settings.connections,
        connectTimeout: settings.connectTimeoutMs,
        headersTimeout: settings.headersTimeoutMs,
        bodyTimeout: settings.bodyTimeoutMs,
        keepAliveTimeout: 30_000,
        // Proxied requests are never pipelined: one slow stream must not hold others back.
        pipelining: 1,
        // https: trust, client certificate and SNI from upstreams.<id>.tls (src/upstream/tls.ts).
        connect: tls === null ? { rejectUnauthorized: settings.tlsVerify } : tls.connect,
      }),
    }));
  }

  /** Round-robin over the targets. */
  pick(): PooledTarget {
    const t = this.targets[this.#next % this.targets.length];
    this.#next = (this.#next + 1) % this.targets.length;
    // Validated at load: every upstream has at least one target.
    return t as PooledTarget;
  }
}

/** What the upstreams' TLS logs to and counts in. */
export interface TlsDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** Every configured upstream with its pools, built once at start. */
export class Upstreams {
  readonly #byId = new Map<string, Upstream>();
  readonly #defaultId: string;

  constructor(settings: ReadonlyMap<string, UpstreamSettings>, defaultId: string, deps: TlsDeps) {
    for (const [id, s] of settings) this.#byId.set(id, new Upstream(s, deps));
    this.#defaultId = defaultId;
  }

  /** The client certificates the upstreams present (mTLS), each reloaded like the server's. */
  certificates(): CertificateReloader[] {
    return [...this.#byId.values()].flatMap((u) => (u.tls?.reloader == null ? [] : [u.tls.reloader]));
  }

  /** A target for the domain's upstream (null id: the default); null when the id is unknown. */
  pick(upstreamId: string | null): PooledTarget | null {
    const u = this.#byId.get(upstreamId ?? this.#defaultId);
    return u === undefined ? null : u.pick();
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** Closes every pool, letting in-flight requests finish. */
  async close(): Promise<void> {
    await Promise.all([...this.#byId.values()].flatMap((u) => u.targets.map((t) => t.pool.close())));
  }

  /** Destroys every pool at once. */
  async destroy(): Promise<void> {
    await Promise.all([...this.#byId.values()].flatMap((u) => u.targets.map((t) => t.pool.destroy())));
  }
}
