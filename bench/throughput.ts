// Throughput at 32 connections, closed loop, with autocannon run as its own process so the load
// generator shares an event loop with neither the proxy nor the origin. Each target gets a warm-up,
// then rounds interleaved across targets (order rotated); the figures are the medians of the rounds'
// (2xx per second, and the proxy's CPU seconds per 1,000 requests, read from /proc around each round),
// as the goals are stated: one round that the shared machine slowed down does not move them. Peak RSS
// is the highest of any round.
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { startChild } from './support/children.ts';
import { measureUsage } from './support/proc.ts';
import { median } from './support/stats.ts';
import type { Target } from './support/target.ts';

const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

export interface ThroughputOptions {
  readonly connections: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly rounds: number;
}

export interface ThroughputResult {
  /** The median round's 2xx per second. */
  readonly requestsPerSecond: number;
  /** Requests per second of each round, to show the spread. */
  readonly rounds: number[];
  readonly non2xx: number;
  readonly errors: number;
  /** CPU seconds of the proxy per 1,000 requests, the median round's; absent for direct. */
  readonly cpuSecondsPer1k?: number;
  readonly peakRssBytes?: number;
}

interface AutocannonJson {
  readonly duration: number;
  readonly requests: { readonly total: number };
  readonly '2xx': number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
}

async function autocannon(url: string, connections: number, seconds: number): Promise<AutocannonJson> {
  const child = startChild('autocannon', process.execPath, [AUTOCANNON, '-c', String(connections), '-d', String(seconds), '-j', '-n', url]);
  let out = '';
  child.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child.process, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`autocannon exited ${code}: ${child.stderrTail()}`);
  return JSON.parse(out) as AutocannonJson;
}

export async function throughput(targets: readonly Target[], options: ThroughputOptions): Promise<Map<string, ThroughputResult>> {
  const totals = new Map(targets.map((t) => [t.name, { non2xx: 0, errors: 0, peak: 0, rounds: [] as number[], cpuPer1k: [] as number[] }]));
  for (const target of targets) await autocannon(target.url, options.connections, options.warmupSeconds);
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round) % targets.length]!;
      const { result, usage } = await measureUsage(target.child?.pid, () => autocannon(target.url, options.connections, options.seconds));
      const total = totals.get(target.name)!;
      total.non2xx += result.non2xx;
      total.errors += result.errors + result.timeouts;
      total.rounds.push(Math.round(result['2xx'] / result.duration));
      if (usage) {
        total.cpuPer1k.push(usage.cpuSeconds / (result.requests.total / 1000));
        total.peak = Math.max(total.peak, usage.peakRssBytes);
      }
    }
  }
  return new Map(
    targets.map((t) => {
      const total = totals.get(t.name)!;
      const result: ThroughputResult = {
        requestsPerSecond: median(total.rounds),
        rounds: total.rounds,
        non2xx: total.non2xx,
        errors: total.errors,
        ...(t.child ? { cpuSecondsPer1k: median(total.cpuPer1k), peakRssBytes: total.peak } : {}),
      };
      return [t.name, result];
    }),
  );
}
