// Prometheus series for hot paths, kept as plain numbers and turned into series only when the registry is read.
// prom-client's own inc() and observe() build a label object and hash it on every call (about 0.2 µs each); ingestion
// counts and observes three times per message. The exposition is prom-client's, line for line (tally.test.ts).
import { Counter, type Registry } from 'prom-client';

/** A counter child whose increments are summed here and added to prom-client's series when the registry is read. */
export interface TallyCounter {
  inc(n?: number): void;
}

/**
 * A labelled prom-client Counter whose children count in plain numbers; `collect` (run by prom-client on every read)
 * adds what was counted since the last read.
 */
export function tallyCounter(config: { name: string; help: string; labelName: string; registers: Registry[] }): { labels(value: string): TallyCounter } {
  const pending: { n: number; inc(n?: number): void; child: { inc(n: number): void } }[] = [];
  const counter = new Counter({
    name: config.name,
    help: config.help,
    labelNames: [config.labelName],
    registers: config.registers,
    collect() {
      for (const p of pending) {
        if (p.n === 0) continue;
        const n = p.n;
        p.n = 0;
        p.child.inc(n);
      }
    },
  });
  return {
    labels(value: string): TallyCounter {
      const p = {
        n: 0,
        child: counter.labels(value),
        inc(n = 1) {
          // As prom-client's inc(): refused at the call, so a bad increment never reaches (and breaks) a scrape.
          if (!(n >= 0) || !Number.isFinite(n)) throw new Error(`It is not possible to decrease a counter or add ${n}`);
          this.n += n;
        },
      };
      p.child.inc(0); // the series exists from its first use, at zero
      pending.push(p);
      return p;
    },
  };
}

/** One label set's buckets (not cumulative), sum and count. */
class Tally {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  /** Listed in the exposition: from its first observation until a reset (as prom-client's series). */
  listed = false;

  constructor(private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length);
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
    this.listed = false;
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    this.listed = true;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

interface SeriesValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName: string;
}

/**
 * A Prometheus histogram with at most one label: observe() is a bucket search and two additions. It registers in a
 * prom-client Registry as a metric of its own (name, help, type, get, reset: what the registry reads).
 */
export class TallyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly bounds: Float64Array;
  private readonly labelName: string | undefined;
  private readonly tallies = new Map<string, Tally>();

  constructor(config: { name: string; help: string; buckets: readonly number[]; labelName?: string; registers: Registry[] }) {
    this.name = config.name;
    this.help = config.help;
    this.labelName = config.labelName;
    this.bounds = Float64Array.from([...config.buckets].sort((a, b) => a - b));
    for (const r of config.registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
    // As prom-client's: an unlabelled histogram has its series, at zero, from the start.
    if (this.labelName === undefined) (this.labels('') as Tally).listed = true;
  }

  /** The tally of one label value (a labelled histogram). */
  labels(value: string): { observe(value: number): void } {
    let t = this.tallies.get(value);
    if (t === undefined) this.tallies.set(value, (t = new Tally(this.bounds)));
    return t;
  }

  /** Observes into the series without labels (an unlabelled histogram). */
  observe(value: number): void {
    this.labels('').observe(value);
  }

  /** The series as prom-client's Histogram gives them: per label set the cumulative buckets, +Inf, sum and count. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: SeriesValue[] }> {
    const values: SeriesValue[] = [];
    for (const [label, t] of this.tallies) {
      if (!t.listed) continue;
      const labels = this.labelName === undefined ? {} : { [this.labelName]: label };
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += t.counts[i]!;
        values.push({ value: acc, labels: { le: this.bounds[i]!, ...labels }, metricName: `${this.name}_bucket` });
      }
      values.push({ value: t.count, labels: { le: '+Inf', ...labels }, metricName: `${this.name}_bucket` });
      values.push({ value: t.sum, labels, metricName: `${this.name}_sum` });
      values.push({ value: t.count, labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }

  /** Every series gone, as prom-client's reset; children already handed out count again from zero. */
  reset(): void {
    for (const t of this.tallies.values()) t.reset();
  }
}
