/**
 * A Prometheus histogram with one label, cheap enough to observe once per query: an observation
 * is a bucket search over a few bounds and three typed-array updates. prom-client's Histogram
 * hashes the label object into a string and reaches its buckets through number-keyed properties
 * on every observe, which cost about as much as the rest of forwarding a point select.
 *
 * Built with prom-client's config (`name`, `help`, `labelNames` — exactly one —, `buckets`,
 * `registers`), it registers itself like a prom-client metric (`get`, `getForPromString`,
 * `reset`) and exposes exactly what prom-client's Histogram would for the same observations:
 * per series, in the order the series were first observed, the cumulative `_bucket` lines with
 * `le`, then `+Inf`, `_sum` and `_count`. `observe(labels, value)` keeps prom-client's signature
 * and checks (unknown label names, non-finite values throw); the hot path is
 * `observeSeries(series, value)` with a series index from `series(labelValue)`.
 */

import type { Registry } from 'prom-client';

type Labels = Record<string, string | number | undefined>;

interface ValuePair {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

export interface HistogramConfig {
  name: string;
  help: string;
  /** Exactly one label name. */
  labelNames: readonly [string];
  buckets: readonly number[];
  registers: Registry[];
}

export class Histogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly string[];
  private readonly label: string;
  private readonly bounds: Float64Array;
  private readonly upperBounds: readonly number[];
  /** Series by label value; index into the arrays below. */
  private readonly index = new Map<string, number>();
  private labelSets: Labels[] = [];
  /** Per series: observations per bucket (not cumulative), bounds.length + 1 wide (last: above all bounds). */
  private buckets = new Float64Array(0);
  private sums = new Float64Array(0);
  private counts = new Float64Array(0);
  /** Series indexes in the order they were first observed (prom-client's exposition order). */
  private order: number[] = [];

  constructor(config: HistogramConfig) {
    if (config.labelNames.length !== 1) throw new Error(`${config.name}: this histogram takes exactly one label name`);
    this.name = config.name;
    this.labelNames = Object.freeze([...config.labelNames]);
    this.label = config.labelNames[0];
    this.help = config.help;
    this.upperBounds = Object.freeze([...config.buckets]);
    this.bounds = Float64Array.from(config.buckets);
    for (const registry of config.registers) registry.registerMetric(this as never);
  }

  /** The series index for a label value (created, still unobserved, on first use). */
  series(value: string): number {
    let i = this.index.get(value);
    if (i !== undefined) return i;
    i = this.labelSets.length;
    this.index.set(value, i);
    this.labelSets.push({ [this.label]: value });
    const width = this.bounds.length + 1;
    const buckets = new Float64Array((i + 1) * width);
    buckets.set(this.buckets);
    this.buckets = buckets;
    const sums = new Float64Array(i + 1);
    sums.set(this.sums);
    this.sums = sums;
    const counts = new Float64Array(i + 1);
    counts.set(this.counts);
    this.counts = counts;
    return i;
  }

  /** Hot path: one observation for a series from `series()`. */
  observeSeries(series: number, value: number): void {
    const bounds = this.bounds;
    const n = bounds.length;
    let b = 0;
    while (b < n && value > bounds[b]) b++;
    if (this.counts[series] === 0) this.order.push(series);
    this.buckets[series * (n + 1) + b]++;
    this.sums[series] += value;
    this.counts[series]++;
  }

  /** prom-client's signature: `observe({ label: value }, v)` or `observe(v)` (no label). */
  observe(labels: Labels | number, value?: number): void {
    let l: Labels;
    let v: number | undefined;
    if (typeof labels === 'number') {
      l = {};
      v = labels;
    } else {
      l = labels ?? {};
      v = value;
    }
    for (const key of Object.keys(l)) {
      if (key !== this.label) throw new Error(`Added label "${key}" is not included in initial labelset: [ '${this.label}' ]`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`Value is not a valid number: ${String(v)}`);
    // A series without the label is its own series, as in prom-client.
    const labelValue = l[this.label];
    const key = labelValue === undefined ? '\u0000' : String(labelValue);
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.series(key);
      this.labelSets[i] = labelValue === undefined ? {} : { [this.label]: String(labelValue) };
    }
    this.observeSeries(i, v);
  }

  reset(): void {
    this.buckets.fill(0);
    this.sums.fill(0);
    this.counts.fill(0);
    this.order = [];
  }

  async getForPromString(): Promise<{ name: string; help: string; type: string; values: ValuePair[]; aggregator: string }> {
    const values: ValuePair[] = [];
    const width = this.bounds.length + 1;
    const bucketName = `${this.name}_bucket`;
    for (const s of this.order) {
      const shared = this.labelSets[s] as Record<string, string>;
      let acc = 0;
      for (let b = 0; b < this.upperBounds.length; b++) {
        acc += this.buckets[s * width + b];
        values.push({ labels: { le: this.upperBounds[b] }, sharedLabels: shared, value: acc, metricName: bucketName, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: this.counts[s], metricName: bucketName, exemplar: null });
      values.push({ labels: {}, sharedLabels: shared, value: this.sums[s], metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: shared, value: this.counts[s], metricName: `${this.name}_count`, exemplar: undefined });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Like prom-client's `get()`: each value's labels include its series' labels. */
  async get(): Promise<{ name: string; help: string; type: string; values: ValuePair[]; aggregator: string }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }
}
