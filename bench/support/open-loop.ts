// An open-loop load generator: request i is due at start + i/rate and is sent then, whether or not
// earlier requests have answered, and its latency is measured from that due time. A closed-loop tool
// (autocannon: N connections, each waiting for its answer before sending again) sends less while the
// server stalls, so the stall shows up in a handful of samples instead of in every request that should
// have been sent meanwhile ("coordinated omission"); its rate option papers over that with synthetic
// samples at millisecond resolution. Here a stalled target accumulates every late request in the pool's
// queue and each one is charged the full wait.
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

export interface OpenLoopOptions {
  readonly url: string;
  readonly rate: number;
  readonly durationMs: number;
  /** Keep-alive connections the requests are spread over; late requests queue behind them. */
  readonly connections?: number;
  /** How long after the last send stragglers may still answer before they count as timed out. */
  readonly graceMs?: number;
}

export interface OpenLoopResult {
  readonly scheduled: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timedOut: number;
  readonly statuses: Record<string, number>;
  /** From the due time to the end of the body, in ms, one per answered request. */
  readonly latencyMs: number[];
  /** How late each send left because of timer granularity, in ms: the generator's own error. */
  readonly sendLagMs: number[];
}

export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { origin, pathname, search } = new URL(options.url);
  const path = pathname + search;
  const pool = new Pool(origin, { connections: options.connections ?? 32, keepAliveTimeout: 30_000 });
  const total = Math.floor((options.rate * options.durationMs) / 1000);
  const intervalNs = 1e9 / options.rate;
  const stop = new AbortController();
  const latencyMs: number[] = [];
  const sendLagMs: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let settled = 0;
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let allSettled!: () => void;
  const done = new Promise<void>((resolve) => (allSettled = resolve));
  const start = process.hrtime.bigint();
  const elapsedNs = () => Number(process.hrtime.bigint() - start);

  const send = (index: number) => {
    const due = index * intervalNs;
    sendLagMs.push((elapsedNs() - due) / 1e6);
    pool
      .request({ path, method: 'GET', signal: stop.signal })
      .then(async ({ statusCode, body }) => {
        await body.dump();
        latencyMs.push((elapsedNs() - due) / 1e6);
        statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
        if (statusCode >= 200 && statusCode < 300) ok++;
        else non2xx++;
      })
      .catch(() => {
        if (!stop.signal.aborted) errors++;
      })
      .finally(() => {
        if (++settled === total) allSettled();
      });
  };
  const tick = () => {
    const now = elapsedNs();
    while (sent < total && sent * intervalNs <= now) send(sent++);
    if (sent < total) timer = setTimeout(tick, Math.max(0, (sent * intervalNs - elapsedNs()) / 1e6));
  };

  tick();
  const deadline = sleep(options.durationMs + (options.graceMs ?? 5000), undefined, { signal: stop.signal }).catch(() => {});
  await Promise.race([done, deadline]);
  clearTimeout(timer);
  const timedOut = total - settled;
  stop.abort();
  await pool.destroy();
  return { scheduled: total, ok, non2xx, errors, timedOut, statuses, latencyMs, sendLagMs };
}
