/**
 * Usage buckets in the embedded store's SQLite file (table `usage_buckets`,
 * schema version 4), so they survive a restart and every gateway on the file
 * adds to the same totals. Each flush is one transaction on the store's
 * writer thread: every row upserted into its hourly and its daily bucket
 * (totals added, never overwritten: two processes flushing at once sum up),
 * then the buckets past their retention deleted. The writer thread is also
 * where a wait for another process's lock happens (its busy timeout is the
 * store's lock timeout), so a flush never holds up the event loop; a second
 * connection of our own on this thread would either block it on that lock or
 * fail at once. Reads run on the store's reading connection (one range search
 * of the primary key, or of usage_by_user for one user).
 */
import type { EmbeddedStore } from "../store/embedded.ts";
import type { UsageBucketRow } from "../store/embedded-writes.ts";
import { WIDTH_MS, bucketStart, type BucketWidth, type UsageBuckets, type UsageRow } from "./buckets.ts";

const WIDTHS = ["1h", "1d"] as const;

/** UsageBuckets on an EmbeddedStore's database. */
export class SqliteBuckets implements UsageBuckets {
  readonly #store: EmbeddedStore;
  readonly #retention: Readonly<Record<BucketWidth, number>>;
  readonly #now: () => number;

  constructor(store: EmbeddedStore, retention: Readonly<Record<BucketWidth, number>>, now: () => number = Date.now) {
    this.#store = store;
    this.#retention = retention;
    this.#now = now;
  }

  /**
   * The oldest bucket start still kept, per width: a bucket lives until its
   * end plus the retention, as RedisBuckets' keys expire. Reads apply it too,
   * so a bucket past it is gone even before the next flush deletes it.
   */
  #keepFrom(): Record<BucketWidth, number> {
    const now = this.#now();
    return { "1h": now - WIDTH_MS["1h"] - this.#retention["1h"] + 1, "1d": now - WIDTH_MS["1d"] - this.#retention["1d"] + 1 };
  }

  async add(rows: readonly UsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    const out: UsageBucketRow[] = [];
    for (const width of WIDTHS) for (const r of rows) out.push({ width, row: { ...r, start: bucketStart(r.start, width) } });
    await this.#store.addUsage(out, this.#keepFrom());
  }

  read(width: BucketWidth, from: number, to: number, userId: string | null): Promise<UsageRow[]> {
    return this.#store.readUsage(width, Math.max(from, this.#keepFrom()[width]), to, userId);
  }

  /** The database belongs to the store, which closes it (after the meter's last flush). */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
