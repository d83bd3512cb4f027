/**
 * A tiny Prometheus registry: labelled counters, gauges read at scrape time and histograms,
 * rendered in the text exposition format (version 0.0.4). Small enough that a client library
 * would be more code to configure than this is to read.
 */
type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function sample(name: string, key: string, value: number): string {
  return `${name}${key ? `{${key}}` : ''} ${Number.isFinite(value) ? value : value > 0 ? '+Inf' : '-Inf'}`;
}

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, v] of this.values) lines.push(sample(this.name, key, v));
    return lines;
  }
}

/**
 * A value read when scraped (queue length, RSS), so it is never stale. `type: 'counter'` is for
 * totals another component already keeps (the pool's rejections), exposed without a copy.
 */
export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly read: () => number, readonly type: 'gauge' | 'counter' = 'gauge') {}
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, sample(this.name, '', this.read())];
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  /** `buckets`: upper bounds, ascending; +Inf is implied. */
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}
  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.series) {
      const sep = key ? ',' : '';
      this.buckets.forEach((le, i) => lines.push(sample(`${this.name}_bucket`, `${key}${sep}le="${le}"`, s.counts[i]!)));
      lines.push(sample(`${this.name}_bucket`, `${key}${sep}le="+Inf"`, s.count));
      lines.push(sample(`${this.name}_sum`, key, s.sum), sample(`${this.name}_count`, key, s.count));
    }
    return lines;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  register<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }
  render(): string {
    return this.metrics.flatMap((m) => m.render()).join('\n') + '\n';
  }
}

/** Content type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
