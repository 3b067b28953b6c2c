// The tallies' exposition against prom-client's own Counter and Histogram fed the same values: line for line.
import { describe, expect, it } from 'vitest';
import { Counter, Histogram, Registry } from 'prom-client';
import { tallyCounter, TallyHistogram } from './tally.ts';

// Not -1: prom-client counts a value above every bound in a bucket of bound -1 (its "none" is -1), see below.
const BUCKETS = [-2, -1.5, -0.5, -0.1, 0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60];

/** Values on, between and beyond the bounds, negative ones and zero included. */
const values = (n: number) => Array.from({ length: n }, (_, i) => [...BUCKETS, 0.003, -7, 120, 0.5000001][i % 19]! * (1 + (i % 3) / 1e6));

describe('TallyHistogram', () => {
  it('exposes what prom-client Histogram exposes for the same observations, labelled and unlabelled', async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const lag = new TallyHistogram({ name: 'x_lag_seconds', help: 'lag', labelName: 'type', buckets: BUCKETS, registers: [mine] });
    const ack = new TallyHistogram({ name: 'x_ack_seconds', help: 'ack', buckets: [0.001, 0.01, 1], registers: [mine] });
    const lagRef = new Histogram({ name: 'x_lag_seconds', help: 'lag', labelNames: ['type'], buckets: BUCKETS, registers: [theirs] });
    const ackRef = new Histogram({ name: 'x_ack_seconds', help: 'ack', buckets: [0.001, 0.01, 1], registers: [theirs] });
    // Before any observation: the unlabelled series at zero, no labelled series.
    expect(await mine.metrics()).toBe(await theirs.metrics());
    for (const [i, v] of values(5_000).entries()) {
      const type = ['trade', 'aggTrade', 'bookTicker'][i % 3]!;
      lag.labels(type).observe(v);
      lagRef.labels(type).observe(v);
      ack.observe(Math.abs(v));
      ackRef.observe(Math.abs(v));
    }
    expect(await mine.metrics()).toBe(await theirs.metrics());
    // As JSON too, but for prom-client's empty exemplar fields.
    const withoutExemplars = (ms: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) => ms.map((m) => ({ ...m, values: m.values.map((v) => ({ ...v, exemplar: undefined })) }));
    expect(withoutExemplars(await mine.getMetricsAsJSON())).toEqual(withoutExemplars(await theirs.getMetricsAsJSON()));
    // A child held across a reset counts again, from zero, as prom-client's do.
    const lagChild = lag.labels('trade');
    const lagRefChild = lagRef.labels('trade');
    mine.resetMetrics();
    theirs.resetMetrics();
    expect(await mine.metrics()).toBe(await theirs.metrics());
    for (const v of [0.003, 7, -3]) {
      lagChild.observe(v);
      lagRefChild.observe(v);
    }
    ack.observe(0.5);
    ackRef.observe(0.5);
    expect(await mine.metrics()).toBe(await theirs.metrics());
    expect(await mine.metrics()).toContain('x_lag_seconds_count{type="trade"} 3');
  });

  it('counts a value above every bound only in +Inf, with a bound of -1 too (prom-client 15 puts it in le="-1")', async () => {
    const r = new Registry();
    const h = new TallyHistogram({ name: 'x_lag_seconds', help: 'lag', buckets: [-2, -1, 0, 60], registers: [r] });
    h.observe(61);
    expect((await r.metrics()).split('\n').filter((l) => l.startsWith('x_lag_seconds_bucket'))).toEqual([
      'x_lag_seconds_bucket{le="-2"} 0',
      'x_lag_seconds_bucket{le="-1"} 0',
      'x_lag_seconds_bucket{le="0"} 0',
      'x_lag_seconds_bucket{le="60"} 0',
      'x_lag_seconds_bucket{le="+Inf"} 1',
    ]);
  });

  it('refuses what prom-client refuses: a value that is not a finite number', () => {
    const h = new TallyHistogram({ name: 'x', help: 'x', buckets: [1], registers: [] });
    expect(() => h.observe(Number.NaN)).toThrow(/not a valid number/);
    expect(() => h.observe(Number.POSITIVE_INFINITY)).toThrow(/not a valid number/);
  });
});

describe('tallyCounter', () => {
  it('exposes what prom-client Counter exposes, at every read', async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const received = tallyCounter({ name: 'x_received_total', help: 'frames', labelName: 'stream', registers: [mine] });
    const ref = new Counter({ name: 'x_received_total', help: 'frames', labelNames: ['stream'], registers: [theirs] });
    const streams = ['btcusdt@trade', 'ethusdt@bookTicker'];
    const children = streams.map((s) => received.labels(s));
    streams.forEach((s) => ref.labels(s).inc(0));
    expect(await mine.metrics()).toBe(await theirs.metrics());
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1_000 * (round + 1); i++) {
        children[i % 2]!.inc();
        ref.labels(streams[i % 2]!).inc();
      }
      children[0]!.inc(5);
      ref.labels(streams[0]!).inc(5);
      expect(await mine.metrics()).toBe(await theirs.metrics());
    }
  });

  it('refuses a negative or non-finite increment at the call, and the registry stays readable', async () => {
    const r = new Registry();
    const c = tallyCounter({ name: 'x_total', help: 'x', labelName: 'l', registers: [r] }).labels('a');
    expect(() => c.inc(-1)).toThrow(/not possible/);
    expect(() => c.inc(Number.NaN)).toThrow(/not possible/);
    c.inc(2);
    expect(await r.metrics()).toContain('x_total{l="a"} 2');
  });
});
