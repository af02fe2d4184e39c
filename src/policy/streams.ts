import type { RequestContext } from "../http/context.ts";
import type { ErrorCode } from "../errors.ts";

// setTimeout holds at most 2^31-1 ms (~24.8 days); a later deadline is re-armed when that fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The streamed responses being relayed now, so that a change to the grant
 * behind one (a revoke, a delete, a scope or membership removal) ends it too,
 * not only the requests that start after the change; and so that each ends
 * at its token's own deadline (expiry, or the end of a rotated-out secret's
 * grace period) even when nothing changes.
 *
 * Deadlines sit in one indexed min-heap under one timer: a stream costs
 * O(log n) when it starts, ends, or a re-check moves its deadline; nothing per chunk.
 */
export class LiveStreams {
  readonly #all = new Set<RequestContext>();
  readonly #deadlines = new DeadlineHeap();
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A stream starts: it is re-decided on changes and cut at `ctx.until`. */
  add(ctx: RequestContext): void {
    this.#all.add(ctx);
    this.#schedule(ctx);
  }

  remove(ctx: RequestContext): void {
    this.#all.delete(ctx);
    this.#deadlines.delete(ctx);
  }

  get size(): number {
    return this.#all.size;
  }

  /**
   * Re-decides the streams `which` selects and cuts those no longer allowed.
   * A store failure counts as "cannot verify": the stream is cut (fail closed).
   * One still allowed keeps going until its (possibly new) `ctx.until`.
   */
  recheck(which: (ctx: RequestContext) => boolean, allowed: (ctx: RequestContext) => Promise<boolean>): void {
    for (const ctx of this.#all) {
      if (!which(ctx)) continue;
      allowed(ctx).then(
        (ok) => {
          if (!ok) this.#cut(ctx, "stream_revoked");
          else if (this.#all.has(ctx)) this.#schedule(ctx);
        },
        () => this.#cut(ctx, "store_unavailable"),
      );
    }
  }

  /** Ends every running stream with `code` (the drain deadline at shutdown). */
  cutAll(code: ErrorCode): void {
    for (const ctx of [...this.#all]) this.#cut(ctx, code);
  }

  /** Stops the deadline timer (at close). */
  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
  }

  #cut(ctx: RequestContext, code: ErrorCode): void {
    if (!this.#all.has(ctx) || ctx.res.destroyed) return;
    this.remove(ctx);
    ctx.cutReason = code;
    if (ctx.relay !== null) ctx.relay.cut(code);
    else ctx.res.destroy();
  }

  #schedule(ctx: RequestContext): void {
    if (ctx.until <= 0) return;
    this.#deadlines.set(ctx, ctx.until);
    if (ctx.until < this.#timerAt) this.#arm(ctx.until);
  }

  #arm(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#fire, Math.min(MAX_TIMER_MS, Math.max(0, at - this.#now())));
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = this.#now();
    for (let top = this.#deadlines.peek(); top !== null; top = this.#deadlines.peek()) {
      if (top.at > now) {
        this.#arm(top.at);
        return;
      }
      this.#deadlines.delete(top.ctx);
      this.#cut(top.ctx, "stream_expired");
    }
  };
}

interface Entry {
  at: number;
  readonly ctx: RequestContext;
  /** Its place in the heap array, kept up to date so an entry can be moved or removed in O(log n). */
  i: number;
}

/** A min-heap of deadlines, one per stream, indexed by stream. */
class DeadlineHeap {
  readonly #heap: Entry[] = [];
  readonly #of = new Map<RequestContext, Entry>();

  peek(): Entry | null {
    return this.#heap[0] ?? null;
  }

  set(ctx: RequestContext, at: number): void {
    const e = this.#of.get(ctx);
    if (e === undefined) {
      const n: Entry = { at, ctx, i: this.#heap.length };
      this.#of.set(ctx, n);
      this.#heap.push(n);
      this.#up(n.i);
    } else if (e.at !== at) {
      e.at = at;
      this.#up(e.i);
      this.#down(e.i);
    }
  }

  delete(ctx: RequestContext): void {
    const e = this.#of.get(ctx);
    if (e === undefined) return;
    this.#of.delete(ctx);
    const last = this.#heap.pop() as Entry;
    if (last === e) return;
    this.#heap[e.i] = last;
    last.i = e.i;
    this.#up(last.i);
    this.#down(last.i);
  }

  #up(i: number): void {
    const h = this.#heap;
    const e = h[i] as Entry;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = h[p] as Entry;
      if (pe.at <= e.at) break;
      h[i] = pe;
      pe.i = i;
      i = p;
    }
    h[i] = e;
    e.i = i;
  }

  #down(i: number): void {
    const h = this.#heap;
    const e = h[i] as Entry;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as Entry).at < (h[l] as Entry).at ? r : l;
      const ce = h[c] as Entry;
      if (ce.at >= e.at) break;
      h[i] = ce;
      ce.i = i;
      i = c;
    }
    h[i] = e;
    e.i = i;
  }
}
