// A counter and a histogram for the series every proxied call updates. prom-client validates and hashes
// the labels on every update, even through a child from labels(): for the three updates of a call that
// was about 1.5 µs, as much as the rest of the policy stack. Here a series is an object the caller
// looks up once and keeps, so an update is an addition (and, for a histogram, a bucket search). They
// register in a prom-client registry like its own metrics, which reads them through get() only, so
// the exposition (and promtool's view of it) is prom-client's.
import type { Metric, Registry } from 'prom-client';

/** The type line of the exposition (prom-client's typings say an enum; its metrics carry these strings). */
type SeriesType = 'counter' | 'histogram';

interface Sample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

interface FamilyConfig<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
}

/** The series of one metric by label values, in the order of `labelNames`. */
abstract class Family<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum';
  abstract readonly type: SeriesType;
  protected readonly labelNames: readonly L[];
  protected series = new Map<string, { readonly labels: Record<L, string>; readonly series: S }>();

  constructor(config: FamilyConfig<L>) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    // The registry's type lists prom-client's own classes; what it calls on a metric is name, get() and reset().
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values, made on first use. Keep it: looking it up is what costs. */
  labels(...values: string[]): S {
    const key = values.join('\0');
    let entry = this.series.get(key);
    if (entry === undefined) {
      if (values.length !== this.labelNames.length) throw new RangeError(`${this.name}: expected labels ${this.labelNames.join(', ')}`);
      const labels = {} as Record<L, string>;
      this.labelNames.forEach((name, i) => (labels[name] = values[i]!));
      entry = { labels, series: this.create() };
      this.series.set(key, entry);
    }
    return entry.series;
  }

  /** Drops a series; an update through a reference kept to it no longer shows. */
  remove(...values: string[]): void {
    this.series.delete(values.join('\0'));
  }

  reset(): void {
    this.series = new Map();
  }

  get(): Promise<{ name: string; help: string; type: SeriesType; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const { labels, series } of this.series.values()) this.samples(labels, series, values);
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  protected abstract create(): S;
  protected abstract samples(labels: Record<L, string>, series: S, into: Sample[]): void;
}

export class CounterSeries {
  value = 0;

  inc(): void {
    this.value++;
  }
}

export class SeriesCounter<L extends string> extends Family<L, CounterSeries> {
  readonly type = 'counter';

  protected create(): CounterSeries {
    return new CounterSeries();
  }

  protected samples(labels: Record<L, string>, series: CounterSeries, into: Sample[]): void {
    into.push({ labels, value: series.value });
  }
}

export class HistogramSeries {
  /** Observations per bucket, not cumulative; the last counts those above every bound. */
  readonly counts: number[];
  sum = 0;
  count = 0;
  private readonly bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class SeriesHistogram<L extends string> extends Family<L, HistogramSeries> {
  readonly type = 'histogram';
  private readonly buckets: readonly number[];

  constructor(config: FamilyConfig<L> & { readonly buckets: readonly number[] }) {
    super(config);
    this.buckets = [...config.buckets].sort((a, b) => a - b);
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.buckets);
  }

  /** As prom-client writes a histogram: cumulative buckets with `le` first, then +Inf, sum and count. */
  protected samples(labels: Record<L, string>, series: HistogramSeries, into: Sample[]): void {
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    this.buckets.forEach((le, i) => {
      cumulative += series.counts[i]!;
      into.push({ labels: { le, ...labels }, value: cumulative, metricName: bucket });
    });
    into.push(
      { labels: { le: '+Inf', ...labels }, value: series.count, metricName: bucket },
      { labels, value: series.sum, metricName: `${this.name}_sum` },
      { labels, value: series.count, metricName: `${this.name}_count` },
    );
  }
}
