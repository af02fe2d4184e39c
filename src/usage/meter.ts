/**
 * Usage metering: one record per finished, forwarded request (PAT, user,
 * domain, model, operation, input / output / cached tokens, estimated or not),
 * summed in process and written to the buckets every flush interval and on
 * drain. A crash loses at most one flush interval of this process's records
 * (docs/limits.md). Series per flush are bounded (usage.max_series): beyond
 * it, records are summed into one overflow series per user.
 */
import type { Logger } from "pino";
import type { UsageSettings } from "../config/limits.ts";
import type { RequestContext } from "../http/context.ts";
import type { PatRecord } from "../store/types.ts";
import { RequestFactsCache } from "../util/request-facts-cache.ts";
import { addTotals, bucketStart, seriesId, zeroTotals, type UsageBuckets, type UsageRow, type UsageTotals } from "./buckets.ts";

/** The model and operation of the overflow series. */
export const OVERFLOW = "(other)";

interface Pending {
  readonly row: UsageRow;
  readonly totals: UsageTotals;
}

/** Series ids per (PAT record, domain, model, operation), built once: the same string object every time, so Map lookups find it hashed. */
function seriesIds(): RequestFactsCache<PatRecord, string> {
  return new RequestFactsCache((rec, domainId, model, operation) => `${rec.id}\x1f${rec.userId}\x1f${domainId}\x1f${model}\x1f${operation}`);
}

/** Sums records and writes them to `buckets`. */
export class Meter {
  readonly #buckets: UsageBuckets;
  readonly #log: Logger;
  readonly #maxSeries: number;
  #pending = new Map<string, Pending>();
  readonly #ids = seriesIds();
  #hour = 0;
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();
  /** Rows that could not be written are kept for the next flush, up to this many. */
  readonly #onError: (n: number) => void;

  constructor(settings: UsageSettings, buckets: UsageBuckets, log: Logger, onFlushError: (rows: number) => void = () => undefined) {
    this.#buckets = buckets;
    this.#log = log;
    this.#maxSeries = settings.maxSeries;
    this.#onError = onFlushError;
    this.#timer = setInterval(() => void this.flush(), settings.flushIntervalMs);
    this.#timer.unref();
  }

  /** Records a finished request, if it reached an upstream. */
  record(ctx: RequestContext): void {
    const pat = ctx.pat;
    const route = ctx.route;
    if (pat === null || route === null || ctx.upstreamStartedAt === 0) return;
    const now = Date.now();
    const hour = bucketStart(now, "1h");
    // An hour that turned is written out first, so every pending row lies in one hour.
    if (hour !== this.#hour) {
      if (this.#pending.size > 0) void this.flush();
      this.#hour = hour;
    }
    const model = route.entityType === "models" ? ctx.entityId : "";
    const id = this.#ids.get(pat.record, ctx.domainId, model, route.operation);
    let p = this.#pending.get(id);
    if (p === undefined) {
      const key = this.#pending.size < this.#maxSeries
        ? { patId: pat.record.id, userId: pat.record.userId, domainId: ctx.domainId, model, operation: route.operation }
        : { patId: OVERFLOW, userId: pat.record.userId, domainId: OVERFLOW, model: OVERFLOW, operation: OVERFLOW };
      const overflowId = key.patId === OVERFLOW ? seriesId(key) : id;
      p = this.#pending.get(overflowId);
      if (p === undefined) {
        const totals = zeroTotals();
        p = { row: { ...key, start: hour, totals }, totals };
        this.#pending.set(overflowId, p);
      }
    }
    const t = p.totals;
    t.requests++;
    const u = ctx.usage;
    if (u !== null) {
      t.inputTokens += u.inputTokens;
      t.outputTokens += u.outputTokens;
      t.cachedTokens += u.cachedTokens;
      return;
    }
    // No usage reported: charged its reservation, marked estimated, never zero.
    const a = ctx.admission;
    const input = a === null ? 0 : a.input;
    const output = a === null ? 0 : a.output;
    t.estimatedRequests++;
    t.inputTokens += input;
    t.outputTokens += output;
    t.estimatedInputTokens += input;
    t.estimatedOutputTokens += output;
  }

  /** Writes what was summed; rows a failed write held are summed into the next flush. */
  flush(): Promise<void> {
    // Taken now, so records that come while an earlier write is under way start a new batch (and a new hour's rows never join an old hour's).
    const batch = this.#pending;
    if (batch.size > 0) this.#pending = new Map();
    const next = this.#flushing.then(() => this.#write(batch));
    this.#flushing = next;
    return next;
  }

  async #write(batch: Map<string, Pending>): Promise<void> {
    if (batch.size === 0) return;
    const rows = [...batch.values()].map((p) => p.row);
    try {
      await this.#buckets.add(rows);
    } catch (err) {
      this.#onError(rows.length);
      this.#log.warn({ problem: (err as Error).message, rows: rows.length }, "usage: could not write buckets; keeping them for the next flush");
      for (const [id, p] of batch) {
        const cur = this.#pending.get(id);
        if (cur === undefined && p.row.start === this.#hour) this.#pending.set(id, p);
        else if (cur !== undefined && cur.row.start === p.row.start) addTotals(cur.totals, p.totals);
        else this.#pending.set(`${id}\x1f${p.row.start}`, p);
      }
    }
  }

  /** Stops the timer and writes what is pending (drain). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
