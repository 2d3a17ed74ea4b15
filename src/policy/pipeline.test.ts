import { CircuitState, isBrokenCircuitError } from 'cockatiel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveSpec } from '../api/resolve.ts';
import type { ExternalIntegrationSpec } from '../api/schema.ts';
import type { AttemptReport } from './attempt-report.ts';
import type { AttemptHandle, AttemptResult, PolicyRequest } from './call.ts';
import { CallCancelledError, DeadlineExceededError, UpstreamFailure } from './errors.ts';
import { CompiledPolicy } from './pipeline.ts';

interface Scripted extends AttemptResult {
  discarded: boolean;
}

/** How a test attempt hears that the stack aborted it (its timeout, or the call's abort). */
interface AbortHook {
  listen(onAbort: (reason: Error) => void): void;
}
type TestAttempt = (hook: AbortHook) => Promise<Scripted>;

/** Attempts answer from a script: a status, or an error code thrown like undici would. */
function scripted(steps: (number | string)[]) {
  const log: string[] = [];
  const attempt: TestAttempt = async () => {
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

/** An attempt that never answers until the stack aborts it. */
const hang: TestAttempt = (hook) => new Promise((_, reject) => hook.listen(reject));

function handle(attempt: TestAttempt): AttemptHandle<Scripted> {
  let reason: Error | undefined;
  let listener: ((reason: Error) => void) | undefined;
  const answer = attempt({
    listen(onAbort) {
      listener = onAbort;
      if (reason) onAbort(reason);
    },
  });
  return {
    answer,
    abort(why) {
      reason = why;
      listener?.(why);
    },
  };
}

const GET: PolicyRequest = { method: 'GET', idempotencyKey: false, bodyReplayable: true };
const POST: PolicyRequest = { method: 'POST', idempotencyKey: false, bodyReplayable: true };

/** A policy whose attempts run `attempt` as passed to `run`, which starts a call of `request`. */
function policy(spec: Partial<ExternalIntegrationSpec>) {
  let current: TestAttempt = scripted([]).attempt;
  const p = new CompiledPolicy<PolicyRequest, Scripted>(
    resolveSpec({ upstream: { url: 'http://127.0.0.1:1' }, ...spec }),
    () => handle(current),
    { now: Date.now, random: () => 1 },
  );
  const run = (attempt: TestAttempt, request: PolicyRequest = GET) => {
    current = attempt;
    return p.execute(request);
  };
  return { p, run };
}

/** A GET whose attempts are reported into `seen`. */
function reported() {
  const seen: AttemptReport[] = [];
  return { request: { ...GET, onAttempt: (r: AttemptReport) => seen.push(r) }, seen };
}

describe('CompiledPolicy', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('retries retryable failures with backoff and returns the last response when attempts run out', async () => {
    const { run } = policy({ retry: { maxAttempts: 3, backoff: { initial: '100ms', max: '1s', jitter: 'none' } } });
    const { attempt, log } = scripted(['ECONNRESET', 503, 503]);
    const call = run(attempt);
    // Each wait is the backoff's, give or take the millisecond a timer turn costs.
    await vi.advanceTimersByTimeAsync(99);
    expect(log).toEqual(['ECONNRESET']);
    await vi.advanceTimersByTimeAsync(3);
    expect(log).toEqual(['ECONNRESET', '503']);
    await vi.advanceTimersByTimeAsync(197);
    expect(log).toEqual(['ECONNRESET', '503']);
    await vi.advanceTimersByTimeAsync(3);
    const result = await call.answer;
    expect(log).toEqual(['ECONNRESET', '503', '503']);
    expect(result.statusCode).toBe(503);
    expect(result.discarded).toBe(false);
    expect(call.attempts).toBe(3);
  });

  it('decides itself whether a request may be sent twice: its method, its idempotency key, its body', async () => {
    const { p, run } = policy({ retry: { maxAttempts: 2, backoff: { initial: '10ms', max: '10ms', jitter: 'none' } } });
    const once = async (request: PolicyRequest) => {
      const { attempt, log } = scripted([503, 200]);
      const call = run(attempt, request);
      await vi.advanceTimersByTimeAsync(20);
      expect((await call.answer).statusCode).toBe(log.length === 1 ? 503 : 200);
      return log;
    };
    expect(await once(POST)).toEqual(['503']);
    expect(await once({ ...POST, idempotencyKey: true })).toEqual(['503', '200']);
    expect(await once(GET)).toEqual(['503', '200']);
    expect(await once({ ...GET, bodyReplayable: false })).toEqual(['503']);
    expect(await once({ ...GET, scheduled: true })).toEqual(['503']);
    expect(p.mayResend({ ...POST, idempotencyKey: true })).toBe(true);
    expect(p.mayResend({ ...POST, idempotencyKey: true, bodyReplayable: false })).toBe(false);
  });

  it('goes closed → open when the breaker trips mid-retry, stops, then half-open → closed after halfOpenAfter', async () => {
    const { p, run } = policy({
      retry: { maxAttempts: 5, backoff: { initial: '10ms', max: '10ms', jitter: 'none' } },
      circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '1s' },
    });
    const states: CircuitState[] = [];
    p.breaker.onStateChange((s) => states.push(s));
    const { attempt, log } = scripted([503, 503]);
    const done = run(attempt).answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    expect(isBrokenCircuitError(await done)).toBe(true);
    expect(log).toEqual(['503', '503']);
    expect(states).toEqual([CircuitState.Open]);
    expect(p.msUntilHalfOpen()).toBe(1000);

    await expect(run(attempt).answer).rejects.toSatisfy(isBrokenCircuitError);
    expect(log).toHaveLength(2);

    vi.advanceTimersByTime(1000);
    expect((await run(attempt).answer).statusCode).toBe(200);
    expect(states).toEqual([CircuitState.Open, CircuitState.HalfOpen, CircuitState.Closed]);
  });

  it('reports each attempt and why the last one worth retrying was not retried', async () => {
    const breaks = policy({
      retry: { maxAttempts: 5, backoff: { initial: '10ms', max: '10ms', jitter: 'none' } },
      circuitBreaker: { consecutiveFailures: 2 },
    });
    const opened = reported();
    const openedCall = breaks.run(scripted(['ECONNRESET', 503]).attempt, opened.request);
    const done = openedCall.answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    expect(isBrokenCircuitError(await done)).toBe(true);
    expect(opened.seen).toEqual([
      { attempt: 1, outcome: 'reset', error: 'ECONNRESET: ECONNRESET', next: 'retry', retryInMs: 10 },
      { attempt: 2, outcome: 503, next: 'circuit-open' },
    ]);
    expect(openedCall.retryStop).toBe('circuit-open');

    const slow = policy({ timeouts: { total: '1s' }, retry: { maxAttempts: 3, backoff: { initial: '2s', max: '2s', jitter: 'none' } } });
    const late = reported();
    expect((await slow.run(scripted([502]).attempt, late.request).answer).statusCode).toBe(502);
    expect(late.seen).toEqual([{ attempt: 1, outcome: 502, next: 'deadline' }]);

    // Without the retry stage: once, and the reason it ran once.
    const once = policy({});
    const post = reported();
    await once.run(scripted([503]).attempt, { ...post.request, method: 'POST' }).answer;
    expect(post.seen).toEqual([{ attempt: 1, outcome: 503, next: 'not-replayable' }]);
    const fine = reported();
    const fineCall = once.run(scripted([201]).attempt, { ...fine.request, method: 'POST' });
    await fineCall.answer;
    expect(fine.seen).toEqual([{ attempt: 1, outcome: 201, next: 'done' }]);
    expect(fineCall.retryStop).toBeUndefined();

    const single = policy({ retry: { maxAttempts: 1 } });
    const capped = reported();
    await single.run(scripted([503]).attempt, capped.request).answer;
    expect(capped.seen).toEqual([{ attempt: 1, outcome: 503, next: 'attempts' }]);
  });

  it('never counts a 4xx against the breaker', async () => {
    const { p, run } = policy({ circuitBreaker: { consecutiveFailures: 2 } });
    const { attempt } = scripted([404, 404, 404]);
    for (let i = 0; i < 3; i++) await run(attempt).answer;
    expect(p.breaker.state).toBe(CircuitState.Closed);
  });

  it('opens the failure-rate breaker only once the window holds minimumRequests calls', async () => {
    const { p, run } = policy({ retry: { maxAttempts: 1 }, circuitBreaker: { failureRate: { threshold: 0.5, window: '10s', minimumRequests: 4 } } });
    const { attempt } = scripted([500, 500, 500, 500]);
    for (let i = 0; i < 3; i++) await run(attempt).answer;
    expect(p.breaker.state).toBe(CircuitState.Closed);
    await run(attempt).answer;
    expect(p.breaker.state).toBe(CircuitState.Open);
  });

  it('opens the failure-rate breaker when the failed share reaches the threshold exactly', async () => {
    const { p, run } = policy({ retry: { maxAttempts: 1 }, circuitBreaker: { failureRate: { threshold: 0.5, window: '10s', minimumRequests: 4 } } });
    const states: CircuitState[] = [];
    p.breaker.onStateChange((s) => states.push(s));
    const { attempt } = scripted([200, 500, 200, 500]);
    for (let i = 0; i < 3; i++) {
      await run(attempt).answer;
      vi.advanceTimersByTime(1000);
    }
    expect(states).toEqual([]);
    await run(attempt).answer; // 2 of 4 failed: 50%
    expect(states).toEqual([CircuitState.Open]);
  });

  it('ends a backoff wait, and frees the bulkhead slot, the moment the caller leaves', async () => {
    const { p, run } = policy({ bulkhead: { maxConcurrent: 1 }, retry: { maxAttempts: 3, backoff: { initial: '5s', max: '5s', jitter: 'none' } } });
    const { attempt, log } = scripted([503]);
    const call = run(attempt);
    const done = call.answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual(['503']);
    expect(p.bulkhead!.executionSlots).toBe(0);
    call.cancel();
    await vi.advanceTimersByTimeAsync(1);
    expect(p.bulkhead!.executionSlots).toBe(1);
    expect(await done).toBeInstanceOf(CallCancelledError);
    expect((await run(attempt).answer).statusCode).toBe(200);
    expect(log).toEqual(['503', '200']);
  });

  it('stops retrying when the next backoff would pass the deadline, and rejects at the deadline', async () => {
    const { run } = policy({ timeouts: { perAttempt: '1s', total: '1s' }, retry: { maxAttempts: 3, backoff: { initial: '2s', max: '2s', jitter: 'none' } } });
    const { attempt, log } = scripted([503]);
    expect((await run(attempt).answer).statusCode).toBe(503);
    expect(log).toEqual(['503']);

    const pending = run(hang).answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await pending).toBeInstanceOf(DeadlineExceededError);
  });

  it('lifts the deadline once the call has its answer, so a body may stream past it', async () => {
    const { run } = policy({ timeouts: { perAttempt: '1s', total: '1s' } });
    const call = run(scripted([200]).attempt);
    expect((await call.answer).statusCode).toBe(200);
    await vi.advanceTimersByTimeAsync(2000);
    expect(call.aborted).toBe(false);
    // A caller who leaves afterwards aborts what is left (the body), not the answer it already has.
    call.cancel();
    expect(call.reason).toBeInstanceOf(CallCancelledError);
    expect((await call.answer).statusCode).toBe(200);
  });

  it('classifies a per-attempt timeout as a timeout failure', async () => {
    const { run } = policy({ timeouts: { perAttempt: '100ms', total: '10s' }, retry: { maxAttempts: 1 } });
    const pending = run(hang).answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    const error = await pending;
    expect(error).toBeInstanceOf(UpstreamFailure);
    expect((error as UpstreamFailure).kind).toBe('timeout');
  });

  it('aborts the attempt in flight with the call: a caller who leaves, or the deadline', async () => {
    const { run } = policy({ timeouts: { perAttempt: '5s', total: '1s' }, retry: { maxAttempts: 3 } });
    const seen: unknown[] = [];
    const watch: TestAttempt = (hook) =>
      new Promise((_, reject) =>
        hook.listen((reason) => {
          seen.push(reason);
          reject(reason);
        }),
      );
    const left = run(watch);
    const cancelled = left.answer.catch((e: unknown) => e);
    left.cancel();
    expect(await cancelled).toBeInstanceOf(CallCancelledError);
    expect(seen[0]).toBeInstanceOf(CallCancelledError);

    const late = run(watch).answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await late).toBeInstanceOf(DeadlineExceededError);
    expect(seen[1]).toBeInstanceOf(DeadlineExceededError);
    expect(seen).toHaveLength(2);
  });

  it('counts an attempt the deadline cut short as a vendor timeout for the breaker, and one the caller left as nothing', async () => {
    const { p, run } = policy({ timeouts: { perAttempt: '5s', total: '1s' }, retry: { maxAttempts: 1 }, circuitBreaker: { consecutiveFailures: 1 } });
    const left = run(hang);
    const cancelled = left.answer.catch((e: unknown) => e);
    left.cancel();
    expect(await cancelled).toBeInstanceOf(CallCancelledError);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.breaker.state).toBe(CircuitState.Closed);

    const late = run(hang).answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await late).toBeInstanceOf(DeadlineExceededError);
    expect(p.breaker.state).toBe(CircuitState.Open);
  });

  it('keeps the circuit open when the caller of the half-open probe leaves: the vendor has not shown it is back', async () => {
    const { p, run } = policy({ retry: { maxAttempts: 1 }, circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '100ms' } });
    await run(scripted(['ECONNRESET']).attempt).answer.catch(() => undefined);
    expect(p.breaker.state).toBe(CircuitState.Open);
    await vi.advanceTimersByTimeAsync(150);

    const probeCall = run(hang);
    const probe = probeCall.answer.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.breaker.state).toBe(CircuitState.HalfOpen);
    probeCall.cancel();
    expect(await probe).toBeInstanceOf(CallCancelledError);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.breaker.state).toBe(CircuitState.Open);

    // The next probe decides: the vendor answers, and the circuit closes.
    await vi.advanceTimersByTimeAsync(150);
    expect((await run(scripted([200]).attempt).answer).statusCode).toBe(200);
    expect(p.breaker.state).toBe(CircuitState.Closed);
  });

  it('reports each retry once, as it is decided, and none for a call that needed no retry', async () => {
    const { p, run } = policy({ retry: { maxAttempts: 3, backoff: { initial: '10ms', max: '10ms', jitter: 'none' } } });
    let retries = 0;
    p.onRetry(() => retries++);
    const { attempt } = scripted([503, 'ECONNRESET', 200, 200]);
    const call = run(attempt);
    await vi.advanceTimersByTimeAsync(25);
    expect((await call.answer).statusCode).toBe(200);
    expect(retries).toBe(2);
    await run(attempt).answer;
    expect(retries).toBe(2);
  });

  it('tells when the retry budget refuses a retry, once for the call it ends', async () => {
    const { p, run } = policy({ retry: { maxAttempts: 3, budget: { percent: 0, minPerSecond: 0 }, backoff: { initial: '10ms', max: '10ms', jitter: 'none' } } });
    let refused = 0;
    p.onBudgetRefused(() => refused++);
    const call = run(scripted([503, 200]).attempt);
    expect((await call.answer).statusCode).toBe(503);
    expect(call.retryStop).toBe('budget');
    expect(refused).toBe(1);
    await run(scripted([200]).attempt).answer;
    expect(refused).toBe(1);
  });
});

describe('CompiledPolicy in mode observe', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  /** An attempt answered with `status` after `ms`, unless the policy aborts it first (as a real one would be). */
  const after =
    (ms: number, status: number): TestAttempt =>
    (hook) =>
      new Promise((resolve, reject) => {
        hook.listen(reject);
        setTimeout(() => void scripted([status]).attempt({ listen() {} }).then(resolve), ms);
      });

  function observing(spec: Partial<ExternalIntegrationSpec>) {
    const { p, run } = policy({ mode: 'observe', ...spec });
    const decisions: string[] = [];
    p.onObserved((d) => decisions.push(d));
    return { p, run, decisions };
  }

  it('hands over an answer later than perAttempt, as the timeout it would have been for the breaker', async () => {
    const { p, run, decisions } = observing({
      retry: { maxAttempts: 1 },
      timeouts: { perAttempt: '50ms', total: '1s' },
      circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '1h' },
    });
    const call = run(after(80, 200));
    await vi.advanceTimersByTimeAsync(80);
    expect((await call.answer).statusCode).toBe(200);
    expect(decisions).toEqual(['attempt_timeout']);
    expect(call.wouldFail).toBe('upstream_unreachable');
    expect(p.breaker.state).toBe(CircuitState.Open);

    const next = run(after(10, 200));
    await vi.advanceTimersByTimeAsync(10);
    expect((await next.answer).statusCode).toBe(200);
    expect(next.attempts).toBe(1);
    expect(decisions).toEqual(['attempt_timeout', 'circuit_open']);
    expect(next.wouldFail).toBe('circuit_open');
  });

  it('feeds slow answers to the breaker as enforce mode does, and keeps them', async () => {
    const { p, run, decisions } = observing({
      retry: { maxAttempts: 1 },
      timeouts: { perAttempt: '1s', total: '2s' },
      circuitBreaker: { failureRate: { threshold: 0.9, window: '10s', minimumRequests: 2 }, slowCall: { duration: '50ms', threshold: 0.5 }, halfOpenAfter: '1h' },
    });
    for (let i = 0; i < 2; i++) {
      const call = run(after(80, 200));
      await vi.advanceTimersByTimeAsync(80);
      expect((await call.answer).statusCode).toBe(200);
    }
    expect(p.breaker.state).toBe(CircuitState.Open);
    expect(decisions).toEqual([]);
  });

  it('obeys forceOpen: an isolated vendor is not called in either mode', async () => {
    const { run, decisions } = observing({ circuitBreaker: { consecutiveFailures: 5, forceOpen: true } });
    const { attempt, log } = scripted([200]);
    const call = run(attempt);
    await expect(call.answer).rejects.toSatisfy(isBrokenCircuitError);
    expect(log).toEqual([]);
    expect(decisions).toEqual([]);
  });

  it('counts the retry a late answer would have had, and keeps the answer', async () => {
    const { run, decisions } = observing({ retry: { maxAttempts: 2 }, timeouts: { perAttempt: '50ms', total: '1s' } });
    const call = run(after(80, 201));
    await vi.advanceTimersByTimeAsync(80);
    const answer = await call.answer;
    expect(answer.statusCode).toBe(201);
    expect(answer.discarded).toBe(false);
    expect(decisions).toEqual(['attempt_timeout', 'retry']);
    expect(call.wouldFail).toBeUndefined();
  });

  it('lets calls pass while a half-open probe is out, where enforce mode would hold them', async () => {
    const { p, run, decisions } = observing({ retry: { maxAttempts: 1 }, circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: '1s' } });
    expect((await run(scripted([503]).attempt).answer).statusCode).toBe(503);
    expect(p.breaker.state).toBe(CircuitState.Open);
    await vi.advanceTimersByTimeAsync(1000);
    const probe = run(after(100, 200));
    await vi.advanceTimersByTimeAsync(1);
    expect(p.breaker.state).toBe(CircuitState.HalfOpen);
    const passing = run(scripted([503]).attempt);
    expect((await passing.answer).statusCode).toBe(503);
    await vi.advanceTimersByTimeAsync(100);
    expect((await probe.answer).statusCode).toBe(200);
    // The passing call's 503 was not fed: the probe's success closed the circuit.
    expect(p.breaker.state).toBe(CircuitState.Closed);
    expect(decisions).toEqual([]);
  });
});
