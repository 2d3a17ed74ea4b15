// Serial latency: one connection, one request at a time, so each sample is the full cost of one hop with
// nothing queued behind it. Timed here with process.hrtime in nanoseconds, because the goals are in
// microseconds and autocannon's histogram has millisecond resolution. Targets are interleaved in
// rounds (order rotated) so a burst of noise on the shared machine lands on all of them alike.
import { Client } from 'undici';
import { percentiles, type Percentiles } from './support/stats.ts';
import type { Target } from './support/target.ts';

export interface SerialOptions {
  readonly requests: number;
  readonly warmup: number;
  readonly rounds: number;
  /** Upper bound for one target's round, whatever the count. */
  readonly maxMsPerRound: number;
}

export interface SerialResult {
  /** Milliseconds. */
  readonly latency: Percentiles;
  readonly non2xx: number;
}

async function measure(url: string, count: number, maxMs: number, into: number[]): Promise<number> {
  const { origin, pathname, search } = new URL(url);
  const client = new Client(origin, { keepAliveTimeout: 30_000 });
  const path = pathname + search;
  const deadline = performance.now() + maxMs;
  let non2xx = 0;
  try {
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      const start = process.hrtime.bigint();
      const { statusCode, body } = await client.request({ path, method: 'GET' });
      await body.dump();
      into.push(Number(process.hrtime.bigint() - start) / 1e6);
      if (statusCode < 200 || statusCode > 299) non2xx++;
    }
  } finally {
    await client.close();
  }
  return non2xx;
}

export async function serialLatency(targets: readonly Target[], options: SerialOptions): Promise<Map<string, SerialResult>> {
  const samples = new Map(targets.map((t) => [t.name, [] as number[]]));
  const non2xx = new Map(targets.map((t) => [t.name, 0]));
  for (const target of targets) await measure(target.url, options.warmup, options.maxMsPerRound, []);
  const perRound = Math.ceil(options.requests / options.rounds);
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round) % targets.length]!;
      const failed = await measure(target.url, perRound, options.maxMsPerRound, samples.get(target.name)!);
      non2xx.set(target.name, non2xx.get(target.name)! + failed);
    }
  }
  return new Map(targets.map((t) => [t.name, { latency: percentiles(samples.get(t.name)!), non2xx: non2xx.get(t.name)! }]));
}
