import { Pool } from "undici";
import type { Target, UpstreamSettings } from "../config/config.ts";

/** One target's pooled keep-alive connections. */
export interface PooledTarget {
  readonly pool: Pool;
  readonly target: Target;
  readonly upstream: UpstreamSettings;
}

class Upstream {
  readonly settings: UpstreamSettings;
  readonly targets: readonly PooledTarget[];
  #next = 0;

  constructor(settings: UpstreamSettings) {
    this.settings = settings;
    this.targets = settings.targets.map((target) => ({
      target,
      upstream: settings,
      pool: new Pool(target.origin, {
        connections: settings.connections,
        connectTimeout: settings.connectTimeoutMs,
        headersTimeout: settings.headersTimeoutMs,
        bodyTimeout: settings.bodyTimeoutMs,
        keepAliveTimeout: 30_000,
        // Proxied requests are never pipelined: one slow stream must not hold others back.
        pipelining: 1,
        // Verification stays on unless the operator turned it off explicitly (validated at load).
        connect: { rejectUnauthorized: settings.tlsVerify },
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

/** Every configured upstream with its pools, built once at start. */
export class Upstreams {
  readonly #byId = new Map<string, Upstream>();
  readonly #defaultId: string;

  constructor(settings: ReadonlyMap<string, UpstreamSettings>, defaultId: string) {
    for (const [id, s] of settings) this.#byId.set(id, new Upstream(s));
    this.#defaultId = defaultId;
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
