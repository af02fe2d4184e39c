import type { RequestContext } from "../http/context.ts";

/**
 * The streamed responses being relayed now, so that a change to the grant
 * behind one (a revoke, a delete, a scope or membership removal) ends it too,
 * not only the requests that start after the change.
 */
export class LiveStreams {
  readonly #all = new Set<RequestContext>();

  add(ctx: RequestContext): void {
    this.#all.add(ctx);
  }

  remove(ctx: RequestContext): void {
    this.#all.delete(ctx);
  }

  get size(): number {
    return this.#all.size;
  }

  /**
   * Re-decides the streams `which` selects and cuts those no longer allowed.
   * A store failure counts as "cannot verify": the stream is cut (fail closed).
   */
  recheck(which: (ctx: RequestContext) => boolean, allowed: (ctx: RequestContext) => Promise<boolean>): void {
    for (const ctx of this.#all) {
      if (!which(ctx)) continue;
      allowed(ctx).then(
        (ok) => {
          if (!ok) this.#cut(ctx, "revoked_mid_stream");
        },
        () => this.#cut(ctx, "store_unavailable"),
      );
    }
  }

  #cut(ctx: RequestContext, reason: string): void {
    if (!this.#all.has(ctx) || ctx.res.destroyed) return;
    ctx.cutReason = reason;
    // Mid-body there is no in-band way to say why: the client sees the stream end abruptly.
    ctx.res.destroy();
  }
}
