import { CircuitState, isBrokenCircuitError } from 'cockatiel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveSpec } from '../api/resolve.ts';
import type { ExternalIntegrationSpec } from '../api/schema.ts';
import type { AttemptControl } from './attempt-control.ts';
import type { AttemptReport } from './attempt-report.ts';
import type { Call } from './call.ts';
import { CallCancelledError, DeadlineExceededError, UpstreamFailure } from './errors.ts';
import { CompiledPolicy, type AttemptResult } from './pipeline.ts';

interface Scripted extends AttemptResult {
  discarded: boolean;
}

/** Attempts answer from a script: a status, or an error code thrown like undici would. */
function scripted(steps: (number | string)[]) {
  const log: string[] = [];
  const attempt = async (_call: Call, _control: AttemptControl, _request: null): Promise<Scripted> => {
    const step = steps.shift() ?? 200;
    log.push(String(step));
    if (typeof step === 'string') throw Object.assign(new Error(step), { code: step });
    const result: Scripted = {
      statusCode: step,
      retryAfter: undefined,
      discarded: false,
      discard: () => {
        result.discarded = true;
      },
    };
    return result;
  };
  return { attempt, log };
}

const policy = (spec: Partial<ExternalIntegrationSpec>) =>
  new CompiledPolicy(resolveSpec({ upstream: { url: 'http://127.0.0.1:1' }, ...spec }), { now: Date.now, random: () => 1 });

describe('CompiledPolicy', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('retries retryable failures with backoff and returns the last response when attempts run out', async () => {
    const p = policy({ retry: { maxAttempts: 3, backoff: { initial: '100ms', max: '1s', jitter: 'none' } } });
    const { attempt, log } = scripted(['ECONNRESET', 503, 503]);
    const call = p.startCall();
    const done = p.execute(call, attempt, null, true);
    // Each wait is the backoff's, give or take the millisecond a timer turn costs.
    await vi.advanceTimersByTimeAsync(99);
    expect(log).toEqual(['ECONNRESET']);
    await vi.advanceTimersByTimeAsync(3);
    expect(log).toEqual(['ECONNRESET', '503']);
    await vi.advanceTimersByTimeAsync(197);
    expect(log).toEqual(['ECONNRESET', '503']);
    await vi.advanceTimersByTimeAsync(3);
    const result = await done;
    expect(log).toEqual(['ECONNRESET', '503', '503']);
    expect(result.statusCode).toBe(503);
    expect((result as Scripted).discarded).toBe(false);
    expect(call.attempts).toBe(3);
  });

  it('runs a non-replayable call once', async () => {
    const p = policy({});
    const { attempt, log } = scripted([503, 200]);
    expect((await p.execute(p.startCall(), attempt, null, false)).statusCode).toBe(503);
    expect(log).toEqual(['503']);
  });

  it('goes closed → open when the breaker trips mid-retry, stops, then half-open → closed after halfOpenAfter', async () => {
    const p = policy({
      retry: { maxAttempts: 5, backoff: { initial: '10ms', max: '10ms', jitter: 'none' } },
      circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '1s' },
    });
    const states: CircuitState[] = [];
    p.breaker.onStateChange((s) => states.push(s));
    const { attempt, log } = scripted([503, 503]);
    const call = p.startCall();
    const done = p.execute(call, attempt, null, true).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    expect(isBrokenCircuitError(await done)).toBe(true);
    expect(log).toEqual(['503', '503']);
    expect(states).toEqual([CircuitState.Open]);
    expect(p.msUntilHalfOpen()).toBe(1000);

    await expect(p.execute(p.startCall(), attempt, null, true)).rejects.toSatisfy(isBrokenCircuitError);
    expect(log).toHaveLength(2);

    vi.advanceTimersByTime(1000);
    expect((await p.execute(p.startCall(), attempt, null, true)).statusCode).toBe(200);
    expect(states).toEqual([CircuitState.Open, CircuitState.HalfOpen, CircuitState.Closed]);
  });

  it('reports each attempt and why the last one worth retrying was not retried', async () => {
    const reports = (p: CompiledPolicy) => {
      const call = p.startCall();
      const seen: AttemptReport[] = [];
      call.onAttempt = (r) => seen.push(r);
      return { call, seen };
    };

    const breaks = policy({
      retry: { maxAttempts: 5, backoff: { initial: '10ms', max: '10ms', jitter: 'none' } },
      circuitBreaker: { consecutiveFailures: 2 },
    });
    const opened = reports(breaks);
    const done = breaks.execute(opened.call, scripted(['ECONNRESET', 503]).attempt, null, true).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    expect(isBrokenCircuitError(await done)).toBe(true);
    expect(opened.seen).toEqual([
      { attempt: 1, outcome: 'reset', error: 'ECONNRESET: ECONNRESET', next: 'retry', retryInMs: 10 },
      { attempt: 2, outcome: 503, next: 'circuit-open' },
    ]);
    expect(opened.call.retryStop).toBe('circuit-open');

    const slow = policy({ timeouts: { total: '1s' }, retry: { maxAttempts: 3, backoff: { initial: '2s', max: '2s', jitter: 'none' } } });
    const late = reports(slow);
    expect((await slow.execute(late.call, scripted([502]).attempt, null, true)).statusCode).toBe(502);
    expect(late.seen).toEqual([{ attempt: 1, outcome: 502, next: 'deadline' }]);

    // Without the retry loop: once, and the reason it ran once.
    const once = policy({});
    const post = reports(once);
    await once.execute(post.call, scripted([503]).attempt, null, false);
    expect(post.seen).toEqual([{ attempt: 1, outcome: 503, next: 'not-replayable' }]);
    const fine = reports(once);
    await once.execute(fine.call, scripted([201]).attempt, null, false);
    expect(fine.seen).toEqual([{ attempt: 1, outcome: 201, next: 'done' }]);
    expect(fine.call.retryStop).toBeUndefined();
  });

  it('never counts a 4xx against the breaker', async () => {
    const p = policy({ circuitBreaker: { consecutiveFailures: 2 } });
    const { attempt } = scripted([404, 404, 404]);
    for (let i = 0; i < 3; i++) await p.execute(p.startCall(), attempt, null, true);
    expect(p.breaker.state).toBe(CircuitState.Closed);
  });

  it('opens the failure-rate breaker only once the window holds minimumRequests calls', async () => {
    const p = policy({ retry: { maxAttempts: 1 }, circuitBreaker: { failureRate: { threshold: 0.5, window: '10s', minimumRequests: 4 } } });
    const { attempt } = scripted([500, 500, 500, 500]);
    for (let i = 0; i < 3; i++) await p.execute(p.startCall(), attempt, null, true);
    expect(p.breaker.state).toBe(CircuitState.Closed);
    await p.execute(p.startCall(), attempt, null, true);
    expect(p.breaker.state).toBe(CircuitState.Open);
  });

  it('opens the failure-rate breaker when the failed share reaches the threshold exactly', async () => {
    const p = policy({ retry: { maxAttempts: 1 }, circuitBreaker: { failureRate: { threshold: 0.5, window: '10s', minimumRequests: 4 } } });
    const states: CircuitState[] = [];
    p.breaker.onStateChange((s) => states.push(s));
    const { attempt } = scripted([200, 500, 200, 500]);
    for (let i = 0; i < 3; i++) {
      await p.execute(p.startCall(), attempt, null, true);
      vi.advanceTimersByTime(1000);
    }
    expect(states).toEqual([]);
    await p.execute(p.startCall(), attempt, null, true); // 2 of 4 failed: 50%
    expect(states).toEqual([CircuitState.Open]);
  });

  it('ends a backoff wait, and frees the bulkhead slot, the moment the caller leaves', async () => {
    const p = policy({ bulkhead: { maxConcurrent: 1 }, retry: { maxAttempts: 3, backoff: { initial: '5s', max: '5s', jitter: 'none' } } });
    const { attempt, log } = scripted([503]);
    const call = p.startCall();
    const done = p.execute(call, attempt, null, true).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual(['503']);
    expect(p.bulkhead!.executionSlots).toBe(0);
    call.cancel();
    await vi.advanceTimersByTimeAsync(1);
    expect(p.bulkhead!.executionSlots).toBe(1);
    expect(await done).toBeInstanceOf(CallCancelledError);
    expect((await p.execute(p.startCall(), attempt, null, true)).statusCode).toBe(200);
    expect(log).toEqual(['503', '200']);
  });

  it('stops retrying when the next backoff would pass the deadline, and rejects at the deadline', async () => {
    const p = policy({ timeouts: { perAttempt: '1s', total: '1s' }, retry: { maxAttempts: 3, backoff: { initial: '2s', max: '2s', jitter: 'none' } } });
    const { attempt, log } = scripted([503]);
    expect((await p.execute(p.startCall(), attempt, null, true)).statusCode).toBe(503);
    expect(log).toEqual(['503']);

    const hang = async (): Promise<Scripted> => new Promise(() => {});
    const pending = p.execute(p.startCall(), hang, null, true).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await pending).toBeInstanceOf(DeadlineExceededError);
  });

  it('classifies a per-attempt timeout as a timeout failure', async () => {
    const p = policy({ timeouts: { perAttempt: '100ms', total: '10s' }, retry: { maxAttempts: 1 } });
    const slow = (_call: Call, control: AttemptControl): Promise<Scripted> =>
      new Promise((_, reject) => control.listen({ attemptAborted: reject }));
    const pending = p.execute(p.startCall(), slow, null, true).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    const error = await pending;
    expect(error).toBeInstanceOf(UpstreamFailure);
    expect((error as UpstreamFailure).kind).toBe('timeout');
  });

  it('aborts the attempt in flight with the call: a caller who leaves, or the deadline', async () => {
    const p = policy({ timeouts: { perAttempt: '5s', total: '1s' }, retry: { maxAttempts: 3 } });
    const seen: unknown[] = [];
    const watch = (_call: Call, control: AttemptControl): Promise<Scripted> =>
      new Promise((_, reject) =>
        control.listen({
          attemptAborted(reason) {
            seen.push(reason);
            reject(reason);
          },
        }),
      );
    const left = p.startCall();
    const cancelled = p.execute(left, watch, null, true).catch((e: unknown) => e);
    left.cancel();
    expect(await cancelled).toBeInstanceOf(CallCancelledError);
    expect(seen[0]).toBeInstanceOf(CallCancelledError);

    const late = p.execute(p.startCall(), watch, null, true).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await late).toBeInstanceOf(DeadlineExceededError);
    expect(seen[1]).toBeInstanceOf(DeadlineExceededError);
    expect(seen).toHaveLength(2);
  });

  it('counts an attempt the deadline cut short as a vendor timeout for the breaker, and one the caller left as nothing', async () => {
    const p = policy({ timeouts: { perAttempt: '5s', total: '1s' }, retry: { maxAttempts: 1 }, circuitBreaker: { consecutiveFailures: 1 } });
    const hang = (_call: Call, control: AttemptControl): Promise<Scripted> => new Promise((_, reject) => control.listen({ attemptAborted: reject }));
    const left = p.startCall();
    const cancelled = p.execute(left, hang, null, true).catch((e: unknown) => e);
    left.cancel();
    expect(await cancelled).toBeInstanceOf(CallCancelledError);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.breaker.state).toBe(CircuitState.Closed);

    const late = p.execute(p.startCall(), hang, null, true).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await late).toBeInstanceOf(DeadlineExceededError);
    expect(p.breaker.state).toBe(CircuitState.Open);
  });

  it('keeps the circuit open when the caller of the half-open probe leaves: the vendor has not shown it is back', async () => {
    const p = policy({ retry: { maxAttempts: 1 }, circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '100ms' } });
    await p.execute(p.startCall(), scripted(['ECONNRESET']).attempt, null, true).catch(() => undefined);
    expect(p.breaker.state).toBe(CircuitState.Open);
    await vi.advanceTimersByTimeAsync(150);

    const hang = (_call: Call, control: AttemptControl): Promise<Scripted> => new Promise((_, reject) => control.listen({ attemptAborted: reject }));
    const probeCall = p.startCall();
    const probe = p.execute(probeCall, hang, null, true).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.breaker.state).toBe(CircuitState.HalfOpen);
    probeCall.cancel();
    expect(await probe).toBeInstanceOf(CallCancelledError);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.breaker.state).toBe(CircuitState.Open);

    // The next probe decides: the vendor answers, and the circuit closes.
    await vi.advanceTimersByTimeAsync(150);
    expect((await p.execute(p.startCall(), scripted([200]).attempt, null, true)).statusCode).toBe(200);
    expect(p.breaker.state).toBe(CircuitState.Closed);
  });

  it('reports each retry once, as it is decided, and none for a call that needed no retry', async () => {
    const p = policy({ retry: { maxAttempts: 3, backoff: { initial: '10ms', max: '10ms', jitter: 'none' } } });
    let retries = 0;
    p.onRetry(() => retries++);
    const { attempt } = scripted([503, 'ECONNRESET', 200, 200]);
    const done = p.execute(p.startCall(), attempt, null, true);
    await vi.advanceTimersByTimeAsync(25);
    expect((await done).statusCode).toBe(200);
    expect(retries).toBe(2);
    await p.execute(p.startCall(), attempt, null, true);
    expect(retries).toBe(2);
  });
});
