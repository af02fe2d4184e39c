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

/** Label values, first to third: a label a series does not have is the empty string. */
type Levels = Map<string, Map<string, Map<string, Series>>>;

/**
 * A histogram or counter for the per-request path, with up to three labels: the
 * label values themselves are the keys of nested Maps (strings a request already
 * holds, so no key is built and nothing is allocated once a series exists) and
 * an observation is a few array writes, turned into prom-client's exposition
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
  readonly #root: Levels = new Map();
  readonly #all: Series[] = [];

  constructor(registry: Registry, opts: { name: string; help: string; labelNames: readonly string[]; buckets?: readonly number[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.type = opts.buckets === undefined ? "counter" : "histogram";
    if (opts.labelNames.length < 1 || opts.labelNames.length > 3) throw new RangeError(`${opts.name}: 1 to 3 label names`);
    this.#labelNames = opts.labelNames;
    this.#bounds = opts.buckets ?? [];
    // prom-client's registry formats any object with name, help, type and get().
    registry.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  /**
   * Records `value` (a histogram observation, or a counter increment) for the
   * label values, given in the order of the label names (as many as there are).
   */
  observe(value: number, a: string, b = "", c = ""): void {
    let byB = this.#root.get(a);
    if (byB === undefined) this.#root.set(a, (byB = new Map<string, Map<string, Series>>()));
    let byC = byB.get(b);
    if (byC === undefined) byB.set(b, (byC = new Map<string, Series>()));
    let s = byC.get(c);
    if (s === undefined) byC.set(c, (s = this.#newSeries([a, b, c])));
    s.sum += value;
    s.count++;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        s.counts[i]!++;
        break;
      }
    }
  }

  #newSeries(values: readonly string[]): Series {
    const labels: Record<string, string> = {};
    this.#labelNames.forEach((name, i) => (labels[name] = values[i] ?? ""));
    const s: Series = { labels, counts: new Float64Array(this.#bounds.length), sum: 0, count: 0 };
    this.#all.push(s);
    return s;
  }

  /** The scrape-time view, in prom-client's metric shape. */
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const s of this.#all) {
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
    this.#root.clear();
    this.#all.length = 0;
  }
}
