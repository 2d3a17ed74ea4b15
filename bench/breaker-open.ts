// Fail-fast with the breaker open: the vendor fails until the breaker opens, then every call should be
// answered `503 circuit_open` by the sidecar without touching the vendor. Measured serially on one
// connection, like serial-latency.ts, so the figure is the cost of the rejection itself.
import { Client } from 'undici';
import { percentiles, type Percentiles } from './support/stats.ts';

export interface BreakerOpenOptions {
  readonly requests: number;
  readonly warmup: number;
  readonly maxMs: number;
}

export interface BreakerOpenResult {
  /** Calls that failed at the vendor before the first circuit_open. */
  readonly callsToOpen: number;
  /** Milliseconds, circuit_open answers only. */
  readonly latency: Percentiles;
  /** Answers that were not `503 circuit_open` once the breaker had opened. */
  readonly unexpected: number;
}

const MAX_CALLS_TO_OPEN = 50;

async function call(client: Client, path: string): Promise<{ ms: number; open: boolean }> {
  const start = process.hrtime.bigint();
  const { statusCode, body } = await client.request({ path, method: 'GET' });
  const text = await body.text();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  return { ms, open: statusCode === 503 && (JSON.parse(text) as { error?: string }).error === 'circuit_open' };
}

/** `url` is an integration whose vendor always fails and whose breaker stays open once opened. */
export async function breakerOpen(url: string, options: BreakerOpenOptions): Promise<BreakerOpenResult> {
  const { origin, pathname, search } = new URL(url);
  const path = pathname + search;
  const client = new Client(origin, { keepAliveTimeout: 30_000 });
  try {
    let callsToOpen = 0;
    while (!(await call(client, path)).open) {
      if (++callsToOpen >= MAX_CALLS_TO_OPEN) throw new Error(`breaker did not open after ${MAX_CALLS_TO_OPEN} failing calls`);
    }
    for (let i = 0; i < options.warmup; i++) await call(client, path);
    const samples: number[] = [];
    let unexpected = 0;
    const deadline = performance.now() + options.maxMs;
    for (let i = 0; i < options.requests && performance.now() < deadline; i++) {
      const { ms, open } = await call(client, path);
      if (open) samples.push(ms);
      else unexpected++;
    }
    return { callsToOpen, latency: percentiles(samples), unexpected };
  } finally {
    await client.close();
  }
}
