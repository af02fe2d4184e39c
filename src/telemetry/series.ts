import type { Registry } from "prom-client";

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** What prom-client's registry reads from a metric at scrape time. */
interface MetricValue {
  readonly metricName?: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/**
 * A histogram or counter for the per-request path: one Map lookup by a caller-built
 * key and a few array writes per observation, turned into prom-client's exposition
 * only at scrape time. prom-client's own observe validates and hashes a label
 * object on every call, which costs more than the request's other bookkeeping.
 */
export class HotSeries {
  readonly name: string;
  readonly help: string;
  readonly type: "histogram" | "counter";
  readonly aggregator = "sum" as const;
  readonly #labelNames: readonly string[];
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(registry: Registry, opts: { name: string; help: string; labelNames: readonly string[]; buckets?: readonly number[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.type = opts.buckets === undefined ? "counter" : "histogram";
    this.#labelNames = opts.labelNames;
    this.#bounds = opts.buckets ?? [];
    // prom-client's registry formats any object with name, help, type and get().
    registry.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  /** Records `value` (a histogram observation, or a counter increment) for the label values; `key` identifies them. */
  observe(key: string, labelValues: readonly string[], value: number): void {
    let s = this.#series.get(key);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.#labelNames.forEach((n, i) => (labels[n] = labelValues[i] ?? ""));
      s = { labels, counts: new Float64Array(this.#bounds.length), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    s.sum += value;
    s.count++;
    const b = this.#bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= (b[i] as number)) {
        s.counts[i]!++;
        break;
      }
    }
  }

  /** The scrape-time view, in prom-client's metric shape. */
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const s of this.#series.values()) {
      if (this.type === "counter") {
        values.push({ labels: s.labels, value: s.sum });
        continue;
      }
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: "+Inf" }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#series.clear();
  }
}
