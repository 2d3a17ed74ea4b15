// Latency at a fixed 1,000 req/s, open loop (see support/open-loop.ts for why not autocannon): the
// tail a caller sees at a realistic sidecar load, with stalls (GC, a slow event loop) charged to every
// request that was due during them. The proxy's CPU per 1,000 requests and its RSS at this rate are
// the figures comparable with Istio's and Dapr's published per-1,000-req/s sidecar costs.
import { openLoop } from './support/open-loop.ts';
import { measureUsage } from './support/proc.ts';
import { median, percentiles, type Percentiles } from './support/stats.ts';
import type { Target } from './support/target.ts';

export interface FixedRateOptions {
  readonly rate: number;
  /** In all, per target, split evenly over the rounds. */
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Interleaved across targets, order rotated, like the other scenarios. */
  readonly rounds: number;
}

export interface FixedRateResult {
  /** Milliseconds from each request's due time to its last body byte. */
  readonly latency: Percentiles;
  /** The generator's own timer lateness, the same for every target; subtracting direct removes it. */
  readonly sendLag: Percentiles;
  readonly scheduled: number;
  readonly failed: number;
  /** The proxy's CPU seconds per 1,000 requests, the median round's, as the goals are stated. */
  readonly cpuSecondsPer1k?: number;
  readonly peakRssBytes?: number;
}

export async function fixedRateLatency(targets: readonly Target[], options: FixedRateOptions): Promise<Map<string, FixedRateResult>> {
  const runs = new Map(targets.map((t) => [t.name, { latency: [] as number[], lag: [] as number[], scheduled: 0, failed: 0, cpuPer1k: [] as number[], peak: 0 }]));
  for (const target of targets) await openLoop({ url: target.url, rate: options.rate, durationMs: options.warmupSeconds * 1000 });
  const durationMs = (options.seconds * 1000) / options.rounds;
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round) % targets.length]!;
      const { result, usage } = await measureUsage(target.child?.pid, () => openLoop({ url: target.url, rate: options.rate, durationMs }));
      const run = runs.get(target.name)!;
      run.latency.push(...result.latencyMs);
      run.lag.push(...result.sendLagMs);
      run.scheduled += result.scheduled;
      run.failed += result.non2xx + result.errors + result.timedOut;
      if (usage) run.cpuPer1k.push(usage.cpuSeconds / (result.scheduled / 1000));
      run.peak = Math.max(run.peak, usage?.peakRssBytes ?? 0);
    }
  }
  return new Map(
    targets.map((t) => {
      const run = runs.get(t.name)!;
      const result: FixedRateResult = {
        latency: percentiles(run.latency),
        sendLag: percentiles(run.lag),
        scheduled: run.scheduled,
        failed: run.failed,
        ...(t.child ? { cpuSecondsPer1k: median(run.cpuPer1k), peakRssBytes: run.peak } : {}),
      };
      return [t.name, result];
    }),
  );
}
