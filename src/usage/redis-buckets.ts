/**
 * Usage buckets in Redis: one hash per bucket (`usage:1h:<start ms>`), one
 * field per series and total, incremented by one Lua call per bucket and flush
 * (atomic, so replicas flushing at once add up), expiring with the retention.
 */
import type { Cluster, Redis } from "ioredis";
import { TOTAL_FIELDS, WIDTH_MS, bucketStart, parseSeriesId, seriesId, zeroTotals, type BucketWidth, type UsageBuckets, type UsageRow } from "./buckets.ts";

// KEYS[1]: the bucket. ARGV: expire-at ms, then field, increment pairs.
const ADD = `
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`;

// At most this many buckets are read for one query (GET /usage asks for one page: at most 168).
const MAX_BUCKETS_READ = 1000;

type Client = (Redis | Cluster) & { patgateUsageAdd(key: string, ...argv: (string | number)[]): Promise<number> };

/** Buckets in Redis, shared by every replica. */
export class RedisBuckets implements UsageBuckets {
  readonly #client: Client;
  readonly #prefix: string;
  readonly #retention: Readonly<Record<BucketWidth, number>>;

  constructor(client: Redis | Cluster, prefix: string, retention: Readonly<Record<BucketWidth, number>>) {
    client.defineCommand("patgateUsageAdd", { numberOfKeys: 1, lua: ADD });
    this.#client = client as Client;
    this.#prefix = prefix;
    this.#retention = retention;
  }

  #key(width: BucketWidth, start: number): string {
    return `${this.#prefix}usage:${width}:${start}`;
  }

  async add(rows: readonly UsageRow[]): Promise<void> {
    const calls: Promise<number>[] = [];
    for (const width of ["1h", "1d"] as const) {
      const byStart = new Map<number, (string | number)[]>();
      for (const r of rows) {
        const start = bucketStart(r.start, width);
        let argv = byStart.get(start);
        if (argv === undefined) byStart.set(start, (argv = [start + WIDTH_MS[width] + this.#retention[width]]));
        const id = seriesId(r);
        TOTAL_FIELDS.forEach((f, i) => {
          const v = r.totals[f];
          if (v !== 0) argv.push(`${id}\x1e${i}`, v);
        });
      }
      for (const [start, argv] of byStart) calls.push(this.#client.patgateUsageAdd(this.#key(width, start), ...argv));
    }
    await Promise.all(calls);
  }

  async read(width: BucketWidth, from: number, to: number, userId: string | null): Promise<UsageRow[]> {
    const starts: number[] = [];
    for (let s = bucketStart(from, width) + (from % WIDTH_MS[width] === 0 ? 0 : WIDTH_MS[width]); s < to && starts.length < MAX_BUCKETS_READ; s += WIDTH_MS[width]) starts.push(s);
    const hashes = await Promise.all(starts.map((s) => this.#client.hgetall(this.#key(width, s))));
    const out: UsageRow[] = [];
    hashes.forEach((h, i) => {
      const start = starts[i] as number;
      const rows = new Map<string, UsageRow>();
      for (const field in h) {
        const sep = field.lastIndexOf("\x1e");
        const id = field.slice(0, sep);
        const k = parseSeriesId(id);
        const f = TOTAL_FIELDS[Number(field.slice(sep + 1))];
        if (k === null || f === undefined || (userId !== null && k.userId !== userId)) continue;
        let row = rows.get(id);
        if (row === undefined) rows.set(id, (row = { ...k, start, totals: zeroTotals() }));
        row.totals[f] += Number(h[field]);
      }
      out.push(...rows.values());
    });
    return out;
  }

  close(): Promise<void> {
    this.#client.disconnect();
    return Promise.resolve();
  }
}
