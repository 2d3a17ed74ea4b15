// The retry stage, between the bulkhead and the breaker: attempts until one is not worth retrying,
// attempts run out, or the next one should not be sent; the answer is then the last attempt's outcome,
// and every response it does not answer with is discarded. BrokenCircuitError and BulkheadRejectedError
// are never retried, so an open circuit or a full bulkhead ends it. A call that may not be sent twice
// goes through `once` in its place, which only says why its outcome, when worth retrying, was not.
// The wait between attempts is a timer the call's abort ends, so a caller who leaves during a backoff
// frees its bulkhead slot at once.
import { BrokenCircuitError, CircuitState, type CircuitBreakerPolicy } from 'cockatiel';
import type { ResolvedSpec } from '../api/resolve.ts';
import type { AttemptReport, RetryStop } from './attempt-report.ts';
import { backoffDelay } from './backoff.ts';
import type { AttemptResult, Call, PolicyRequest } from './call.ts';
import type { FailureMatcher } from './classify.ts';
import { delay } from './delay.ts';
import { DeadlineExceededError, UpstreamFailure } from './errors.ts';
import { retryAfterVerdict } from './retry-after.ts';
import type { RetryBudget } from './retry-budget.ts';
import type { Next, Stage } from './stages.ts';

export interface RetryContext {
  readonly retry: ResolvedSpec['retry'];
  readonly retryOn: FailureMatcher;
  readonly budget: RetryBudget;
  readonly breaker: CircuitBreakerPolicy;
  readonly now: () => number;
  readonly random: () => number;
  /** A retry was decided, before its wait. */
  readonly onRetry: () => void;
  /** The retry budget refused a retry. */
  readonly onBudgetRefused: () => void;
}

export function retry<Q extends PolicyRequest, R extends AttemptResult>(context: RetryContext): Stage<Q, R> {
  // Most calls end with their first attempt. Its outcome is taken through `then`, and the loop, an async
  // function and a layer of promises more, runs only for one worth retrying.
  return (call, next) =>
    next(call).then(
      (response) => (context.retryOn.matchesStatus(response.statusCode) ? retrying(context, call, next, response, undefined) : answer(call, response)),
      (error: unknown) => retrying(context, call, next, undefined, error),
    );
}

/** A response not worth retrying: the call's answer. */
function answer<R extends AttemptResult>(call: Call, response: R): R {
  call.request.onAttempt?.(report(call, response, undefined, 'done'));
  return response;
}

/**
 * From the first attempt's outcome, a response worth retrying or an error, attempts until one is the
 * answer or the next should not be sent.
 */
async function retrying<Q extends PolicyRequest, R extends AttemptResult>(
  context: RetryContext,
  call: Call<Q, R>,
  next: Next<Q, R>,
  response: R | undefined,
  error: unknown,
): Promise<R> {
  for (let sent = 1; ; sent++) {
    let failure: UpstreamFailure | undefined;
    if (response === undefined) {
      if (!(error instanceof UpstreamFailure)) throw error;
      if (!worthRetrying(context.retryOn, error)) {
        call.request.onAttempt?.(report(call, undefined, error, 'done'));
        throw error;
      }
      failure = error;
    }
    const step = nextStep(context, call, sent, response);
    call.request.onAttempt?.(report(call, response, failure, step));
    if (typeof step === 'number') {
      response?.discard();
      context.onRetry();
      if (step > 0) await delay(step, call.signal);
      try {
        response = await next(call);
        if (!context.retryOn.matchesStatus(response.statusCode)) return answer(call, response);
      } catch (thrown) {
        response = undefined;
        error = thrown;
      }
      continue;
    }
    call.retryStop = step;
    if (step === 'budget') context.onBudgetRefused();
    if (step === 'circuit-open') {
      // docs/design.md: once the circuit opens, no further attempts; the caller gets circuit_open.
      response?.discard();
      throw new BrokenCircuitError();
    }
    if (response) return response;
    throw failure!;
  }
}

/** In the retry stage's place: one attempt, its outcome reported; `stop` says why it is not retried. */
export function once<Q extends PolicyRequest, R extends AttemptResult>(retryOn: FailureMatcher, stop: RetryStop): Stage<Q, R> {
  return (call, next) => (call.request.onAttempt === undefined ? next(call) : onceReported(retryOn, stop, call, next, call.request.onAttempt));
}

async function onceReported<Q extends PolicyRequest, R extends AttemptResult>(
  retryOn: FailureMatcher,
  stop: RetryStop,
  call: Call<Q, R>,
  next: Next<Q, R>,
  onAttempt: (report: AttemptReport) => void,
): Promise<R> {
  let response: R;
  try {
    response = await next(call);
  } catch (error) {
    if (error instanceof UpstreamFailure) onAttempt(report(call, undefined, error, worthRetrying(retryOn, error) ? stop : 'done'));
    throw error;
  }
  onAttempt(report(call, response, undefined, retryOn.matchesStatus(response.statusCode) ? stop : 'done'));
  return response;
}

export function worthRetrying(retryOn: FailureMatcher, failure: UpstreamFailure): boolean {
  return failure.retryable && retryOn.matchesKind(failure.kind);
}

/**
 * The wait before the next attempt, or why there is none and this attempt's outcome is the answer.
 * A wait spends a retry of the budget.
 */
export function nextStep(context: RetryContext, call: Call, sent: number, response: AttemptResult | undefined): number | RetryStop {
  const retry = context.retry;
  if (sent >= retry.maxAttempts) return 'attempts';
  if (call.reason) return call.reason instanceof DeadlineExceededError ? 'deadline' : 'cancelled';
  if (context.breaker.state === CircuitState.Open) return 'circuit-open';
  const now = context.now();
  let waitMs = backoffDelay(retry.backoff, sent, context.random);
  if (response && retry.respectRetryAfter) {
    const verdict = retryAfterVerdict(response.retryAfter, now, retry.maxRetryAfterMs);
    if (verdict.kind === 'too-long') return 'retry-after';
    if (verdict.kind === 'wait') waitMs = verdict.ms;
  }
  // A retry that could not start before the deadline only turns an answer into deadline_exceeded.
  if (now + waitMs >= call.deadlineAt) return 'deadline';
  if (!context.budget.tryRetry()) return 'budget';
  return waitMs;
}

/** The last attempt's outcome (a response, or the failure when none came) and what follows: a wait, or a verdict. */
function report(call: Call, response: AttemptResult | undefined, failure: UpstreamFailure | undefined, next: number | AttemptReport['next']): AttemptReport {
  const outcome: Pick<AttemptReport, 'attempt' | 'outcome' | 'error'> = response
    ? { attempt: call.attempts, outcome: response.statusCode }
    : { attempt: call.attempts, outcome: failure!.kind ?? 'error', error: failure!.message };
  if (typeof next === 'number') return { ...outcome, next: 'retry', retryInMs: next };
  return next === 'retry-after' ? { ...outcome, next, retryAfter: String(response!.retryAfter) } : { ...outcome, next };
}
