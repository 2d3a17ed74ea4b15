import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../runtime/logger.ts';
import { Controller, TerminalError, type Reconciler, type Result } from './controller.ts';
import { createOperatorMetrics } from './metrics.ts';
import type { Watch } from './source.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const silent = createLogger({ level: 'silent', name: 'test', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

/** A watch whose cache holds `keys`. */
function cached(keys: string[]): Watch {
  return { connect: () => ({ initialKeys: keys, disconnect: () => undefined }) };
}

function setup(reconciler: Reconciler, keys: string[]) {
  const registry = new Registry();
  const metrics = createOperatorMetrics(registry);
  const controller = new Controller({
    name: 'test',
    reconciler,
    watches: [cached(keys)],
    logger: silent,
    metrics,
    workers: 2,
    queue: { backoff: { initialMs: 100, maxMs: 1_000 } },
  });
  const stop = new AbortController();
  const running = controller.run(stop.signal);
  const count = async (result: string) =>
    (await registry.getSingleMetric('breakwater_operator_reconcile_total')!.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  return { controller, stop, running, count };
}

describe('Controller', () => {
  it('reconciles every cached key at start', async () => {
    const seen: string[] = [];
    const { stop, running } = setup(async (key) => {
      seen.push(key);
      return {};
    }, ['a', 'b', 'a']);
    await vi.advanceTimersByTimeAsync(0);
    expect(seen.sort()).toEqual(['a', 'b']);
    stop.abort();
    await running;
  });

  it('retries a failing key with growing delays, then forgets its failures on success', async () => {
    const attempts: number[] = [];
    let failures = 2;
    const { stop, running, count } = setup(async () => {
      attempts.push(Date.now());
      if (failures-- > 0) throw new Error('API server unavailable');
      return {};
    }, ['a']);
    await vi.advanceTimersByTimeAsync(1_000);
    const start = attempts[0]!;
    expect(attempts.map((t) => t - start)).toEqual([0, 100, 300]);
    expect(await count('error')).toBe(2);
    expect(await count('success')).toBe(1);
    stop.abort();
    await running;
  });

  it('does not retry a TerminalError', async () => {
    let calls = 0;
    const { stop, running, count } = setup(async () => {
      calls += 1;
      throw new TerminalError('cannot be fixed by retrying');
    }, ['a']);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls).toBe(1);
    expect(await count('terminal_error')).toBe(1);
    stop.abort();
    await running;
  });

  it('requeues after the asked delay', async () => {
    const at: number[] = [];
    const { stop, running, count } = setup(async (): Promise<Result> => {
      at.push(Date.now());
      return at.length < 3 ? { requeueAfterMs: 250 } : {};
    }, ['a']);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(at.map((t) => t - at[0]!)).toEqual([0, 250, 500]);
    expect(await count('requeue_after')).toBe(2);
    stop.abort();
    await running;
  });

  it('stops its workers and aborts in-flight reconciles when the leading signal aborts', async () => {
    let aborted = false;
    const { stop, running } = setup(
      (_key, signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve({});
          }),
        ),
      ['a'],
    );
    await vi.advanceTimersByTimeAsync(0);
    stop.abort();
    await running;
    expect(aborted).toBe(true);
  });
});
