// The stages of docs/design.md's order, each `(call, next)`: it does its part of the policy and runs the
// rest of the stack with `next`, or answers without it. `compose` links them once per config load, so
// the request path runs a fixed chain of calls and decides nothing about its own shape. The retry
// stage is in retry.ts.
import type { BulkheadPolicy, CircuitBreakerPolicy } from 'cockatiel';
import { expireCall, type AttemptHandle, type AttemptResult, type Call, type PolicyRequest } from './call.ts';
import { classifyError, isCertificateError } from './classify.ts';
import { CallCancelledError, UpstreamFailure } from './errors.ts';
import type { GlobalLimiter } from './global-limiter.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { TimeoutList } from './timeout-list.ts';

export type Next<Q extends PolicyRequest, R extends AttemptResult> = (call: Call<Q, R>) => Promise<R>;
export type Stage<Q extends PolicyRequest, R extends AttemptResult> = (call: Call<Q, R>, next: Next<Q, R>) => Promise<R>;

/** Starts one attempt of `call.request` at the vendor. */
export type StartAttempt<Q extends PolicyRequest, R extends AttemptResult> = (call: Call<Q, R>) => AttemptHandle<R>;

/** Links `stages`, outermost first, in front of `last`. */
export function compose<Q extends PolicyRequest, R extends AttemptResult>(stages: readonly Stage<Q, R>[], last: Next<Q, R>): Next<Q, R> {
  return stages.reduceRight<Next<Q, R>>((next, stage) => (call) => stage(call, next), last);
}

/** timeouts.total: the call's answer, or its abort when the deadline passes first. */
export function deadline<Q extends PolicyRequest, R extends AttemptResult>(totalMs: number): Stage<Q, R> {
  const deadlines = new TimeoutList<Call>(totalMs, expireCall);
  return (call, next) => {
    call.startDeadline(deadlines);
    return call.settleWith(next(call));
  };
}

/** rateLimit: a token now, a wait for one (which the call's abort ends), or RateLimitedError. */
export function rateLimit<Q extends PolicyRequest, R extends AttemptResult>(limiter: RateLimiter): Stage<Q, R> {
  return (call, next) => {
    let wait;
    try {
      wait = limiter.acquire(call);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return wait ? wait.then(() => next(call)) : next(call);
  };
}

/** rateLimit.scope global: a token of the shared bucket (or of the local one while it does not answer). */
export function globalRateLimit<Q extends PolicyRequest, R extends AttemptResult>(limiter: GlobalLimiter): Stage<Q, R> {
  return (call, next) => limiter.acquire(call).then(() => next(call));
}

/**
 * bulkhead: a slot, a place in the queue, or BulkheadRejectedError. No signal for Cockatiel: a call
 * aborted while queued is answered by the deadline stage, and its turn ends at once in the breaker stage.
 */
export function bulkhead<Q extends PolicyRequest, R extends AttemptResult>(policy: BulkheadPolicy): Stage<Q, R> {
  return (call, next) => policy.execute(() => next(call));
}

/**
 * The circuit breaker, around each attempt, so every attempt counts. A call aborted while it waited (in
 * the bulkhead queue, or a backoff) does not reach the breaker, where it could become the half-open probe.
 */
export function breaker<Q extends PolicyRequest, R extends AttemptResult>(policy: CircuitBreakerPolicy): Stage<Q, R> {
  return (call, next) => {
    if (call.reason) return Promise.reject(call.reason);
    return policy.execute(() => next(call));
  };
}

/**
 * circuitBreaker.slowCall, under the breaker: an attempt whose outcome, a response or an error, took
 * longer than `durationMs` goes into `slow`, where the breaker's filter and window find it.
 */
export function markSlow<Q extends PolicyRequest, R extends AttemptResult>(durationMs: number, slow: WeakSet<object>, now: () => number): Stage<Q, R> {
  return (call, next) => {
    const startedAt = now();
    return next(call).then(
      (response) => {
        if (now() - startedAt > durationMs) slow.add(response);
        return response;
      },
      (error: unknown) => {
        if (now() - startedAt > durationMs && typeof error === 'object' && error !== null) slow.add(error);
        throw error;
      },
    );
  };
}

/**
 * timeouts.perAttempt, and the attempt itself: the time to the vendor's response headers. The timeout
 * ends when they arrive, so a streaming body may take longer; the call can still abort it. No timer and
 * no AbortController of its own: the attempt takes a place in the stage's TimeoutList, and the call
 * aborts the attempt in flight directly.
 */
export function attemptTimeout<Q extends PolicyRequest, R extends AttemptResult>(perAttemptMs: number, start: StartAttempt<Q, R>): Next<Q, R> {
  const timeouts = new TimeoutList<Call>(perAttemptMs, (call) => call.timeOutAttempt(perAttemptMs));
  return (call) => runAttempt(call, start, timeouts);
}

/**
 * The attempt itself, in enforce and observe mode alike: started, held as the call's attempt in
 * flight (cut short when `timeouts` has one expire), and its answer passed on; a failure becomes the
 * caller's cancellation or an UpstreamFailure. Not an async function: it would be a layer of promises
 * more on every attempt, for no await of its own.
 */
export function runAttempt<Q extends PolicyRequest, R extends AttemptResult>(
  call: Call<Q, R>,
  start: StartAttempt<Q, R>,
  timeouts?: TimeoutList<Call>,
): Promise<R> {
  // Cockatiel runs this again for a call that waited out a half-open probe; its caller may be gone.
  if (call.aborted) return Promise.reject(call.reason!);
  call.attemptStarting();
  const timeout = timeouts?.start(call);
  let attempt: AttemptHandle<R>;
  try {
    attempt = start(call);
  } catch (error) {
    timeout?.clear();
    return Promise.reject(attemptFailure(call, error));
  }
  call.inFlight = attempt;
  return attempt.answer.then(
    (response) => {
      timeout?.clear();
      call.inFlight = undefined;
      return response;
    },
    (error: unknown) => {
      timeout?.clear();
      call.inFlight = undefined;
      throw attemptFailure(call, error);
    },
  );
}

function attemptFailure(call: Call, error: unknown): Error {
  // The caller left: not the vendor's fault, so neither retried nor counted by the breaker.
  if (call.reason instanceof CallCancelledError) return call.reason;
  // Its timeout, or the call's deadline, cut it short: the vendor was too slow either way.
  if (call.attemptAborted) return new UpstreamFailure('timeout', call.attemptAborted.message, { cause: error });
  return new UpstreamFailure(classifyError(error), describe(error), { cause: error, retryable: !isCertificateError(error) });
}

/** An upstream client's error for a message: its code, where it has one, and what it says. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
}
