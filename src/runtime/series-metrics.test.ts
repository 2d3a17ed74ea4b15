import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesCounter, SeriesHistogram } from './series-metrics.ts';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

describe('SeriesCounter and SeriesHistogram', () => {
  it("expose exactly what prom-client's Counter and Histogram expose for the same updates and removals", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const counter = new SeriesCounter({ name: 'calls_total', help: 'Calls "answered" \\ by kind.', labelNames: ['integration', 'outcome'], registers: [ours] });
    const histogram = new SeriesHistogram({ name: 'call_seconds', help: 'Call time.', labelNames: ['integration', 'outcome'], buckets: BUCKETS, registers: [ours] });
    const promCounter = new Counter({ name: 'calls_total', help: 'Calls "answered" \\ by kind.', labelNames: ['integration', 'outcome'], registers: [theirs] });
    const promHistogram = new Histogram({ name: 'call_seconds', help: 'Call time.', labelNames: ['integration', 'outcome'], buckets: BUCKETS, registers: [theirs] });
    // On a bound, between bounds, below the first and above the last; a label value that needs escaping.
    const values = [0, 1e-9, 0.005, 0.0051, 0.1, 0.3, 10, 31];
    for (const [integration, outcome] of [['a', 'upstream'], ['b"\\x', 'timeout'], ['a', 'timeout']] as const) {
      const count = counter.labels(integration, outcome);
      const observe = histogram.labels(integration, outcome);
      for (const value of values) {
        count.inc();
        observe.observe(value);
        promCounter.labels(integration, outcome).inc();
        promHistogram.labels(integration, outcome).observe(value);
      }
    }
    counter.remove('a', 'timeout');
    histogram.remove('a', 'timeout');
    promCounter.remove('a', 'timeout');
    promHistogram.remove('a', 'timeout');

    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('call_seconds_bucket{le="0.005",integration="a",outcome="upstream"} 3');
    expect(text).not.toContain('integration="a",outcome="timeout"');
  });

  it('does not bring back a removed series through a reference kept to it', async () => {
    const registry = new Registry();
    const counter = new SeriesCounter({ name: 'calls_total', help: 'Calls.', labelNames: ['integration'], registers: [registry] });
    const kept = counter.labels('gone');
    kept.inc();
    counter.remove('gone');
    kept.inc();
    expect(await registry.metrics()).not.toContain('gone');
    expect((await counter.get()).values).toEqual([]);
    counter.labels('back').inc();
    expect((await counter.get()).values).toEqual([{ labels: { integration: 'back' }, value: 1 }]);
  });
});
