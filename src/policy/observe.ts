// The stages of spec.mode observe, composed in place of the enforcing ones: every call goes to the
// vendor once, unchanged, and each stage only says what it would have done. The policy's state still
// evolves as it would: the rate limiter spends its tokens, the breaker is fed every attempt's outcome,
// the retry budget is spent, so the decisions counted are the ones enforce mode would take on the same
// traffic. The first decision that would have ended a call (a refusal, an open circuit, the deadline)
// ends its evaluation too, as it would have ended the call: the rest of the stack passes it through
// without feeding the breaker, spending a retry or counting anything more.
import { CircuitState, isBrokenCircuitError, type CircuitBreakerPolicy } from 'cockatiel';
import type { SidecarErrorCode } from '../api/errors.ts';
import type { AttemptResult, Call, PolicyRequest } from './call.ts';
import { UpstreamFailure } from './errors.ts';
import type { GlobalLimiter } from './global-limiter.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { nextStep, worthRetrying, type RetryContext } from './retry.ts';
import { runAttempt, type Next, type Stage, type StartAttempt } from './stages.ts';

/** What observe mode counts: each is something enforce mode would have done to the call. */
export const OBSERVED_DECISIONS = ['retry', 'circuit_open', 'rate_limited', 'bulkhead_full', 'attempt_timeout', 'deadline_exceeded', 'fallback'] as const;
export type ObservedDecision = (typeof OBSERVED_DECISIONS)[number];

/** Told of each decision the stack would have taken. */
export type Observe = (decision: ObservedDecision) => void;

/** The decisions that would have answered the call themselves, with the error enforce mode answers. */
const ENDS_CALL: Partial<Record<ObservedDecision, SidecarErrorCode>> = {
  circuit_open: 'circuit_open',
  rate_limited: 'rate_limited',
  bulkhead_full: 'bulkhead_full',
  deadline_exceeded: 'deadline_exceeded',
};

/**
 * The vendor's answer came after timeouts.perAttempt: enforce mode would have cut the attempt, so for
 * the breaker and the retry decision it is a timeout, but the caller still gets the answer.
 */
export class LateAnswer<R extends AttemptResult> extends UpstreamFailure {
  readonly response: R;

  constructor(response: R, perAttemptMs: number) {
    super('timeout', `response headers after more than ${perAttemptMs}ms (timeouts.perAttempt)`);
    this.response = response;
  }
}

function decide(call: Call, decision: ObservedDecision, observe: Observe): void {
  call.wouldFail ??= ENDS_CALL[decision];
  observe(decision);
}

/**
 * timeouts.total, measured and not enforced; the outermost stage, so it also hands over the answer of
 * a LateAnswer no retry would have followed: enforce mode would have answered upstream_unreachable,
 * or deadline_exceeded where the deadline is the sooner of the two limits.
 */
export function observeDeadline<Q extends PolicyRequest, R extends AttemptResult>(
  timeouts: { readonly perAttemptMs: number; readonly totalMs: number },
  now: () => number,
  observe: Observe,
): Stage<Q, R> {
  return (call, next) => {
    const startedAt = now();
    const late = () => call.wouldFail === undefined && now() - startedAt >= timeouts.totalMs;
    const outcome = next(call).then(
      (response) => {
        if (late()) decide(call, 'deadline_exceeded', observe);
        return response;
      },
      (error: unknown) => {
        if (!(error instanceof LateAnswer)) throw error;
        if (timeouts.perAttemptMs < timeouts.totalMs) call.wouldFail ??= 'upstream_unreachable';
        else if (late()) decide(call, 'deadline_exceeded', observe);
        return error.response as R;
      },
    );
    return call.settleWith(outcome);
  };
}

/** rateLimit: the token enforce mode would take (or reserve, to wait for it), taken now; never a wait. */
export function observeRateLimit<Q extends PolicyRequest, R extends AttemptResult>(limiter: RateLimiter, observe: Observe): Stage<Q, R> {
  return (call, next) => {
    if (!limiter.take()) decide(call, 'rate_limited', observe);
    return next(call);
  };
}

/** rateLimit.scope global: the shared bucket's decision, its token taken, as observeRateLimit's. */
export function observeGlobalRateLimit<Q extends PolicyRequest, R extends AttemptResult>(limiter: GlobalLimiter, observe: Observe): Stage<Q, R> {
  return async (call, next) => {
    if (!(await limiter.take(call))) decide(call, 'rate_limited', observe);
    return next(call);
  };
}

/**
 * bulkhead: the calls it would hold, counted; one beyond maxConcurrent + maxQueued would have been
 * refused. The queued ones run at once here, so they count for as long as they run rather than wait.
 */
export function observeBulkhead<Q extends PolicyRequest, R extends AttemptResult>(maxConcurrent: number, maxQueued: number, observe: Observe): Stage<Q, R> {
  let held = 0;
  return async (call, next) => {
    if (call.wouldFail !== undefined) return next(call);
    if (held >= maxConcurrent + maxQueued) {
      decide(call, 'bulkhead_full', observe);
      return next(call);
    }
    held++;
    try {
      return await next(call);
    } finally {
      held--;
    }
  };
}

/**
 * The retry stage's decision after the one attempt, without the retry: the retry it would have sent
 * next (its budget spent), or the open circuit that would have answered instead of this outcome.
 */
export function observeRetry<Q extends PolicyRequest, R extends AttemptResult>(context: RetryContext, observe: Observe): Stage<Q, R> {
  return async (call, next) => {
    let response: R | undefined;
    let failure: UpstreamFailure | undefined;
    try {
      response = await next(call);
      if (call.wouldFail !== undefined || !context.retryOn.matchesStatus(response.statusCode)) return response;
    } catch (error) {
      if (call.wouldFail !== undefined || !(error instanceof UpstreamFailure) || !worthRetrying(context.retryOn, error)) throw error;
      failure = error;
    }
    const step = nextStep(context, call, 1, response);
    if (typeof step === 'number') {
      decide(call, 'retry', observe);
      // What the retry would have answered is unknown: a late answer is passed on as the answer.
      if (failure instanceof LateAnswer) return failure.response as R;
    } else if (step === 'circuit-open') decide(call, 'circuit_open', observe);
    if (response) return response;
    throw failure!;
  };
}

/**
 * The breaker, fed each attempt's outcome as in enforce mode. Where it would reject, the attempt goes
 * out anyway and its outcome is not fed (enforce mode would have sent none). While a half-open probe
 * is in flight, enforce mode would hold the call until the probe ends; here it passes, unfed.
 */
export function observeBreaker<Q extends PolicyRequest, R extends AttemptResult>(policy: CircuitBreakerPolicy, observe: Observe): Stage<Q, R> {
  return async (call, next) => {
    if (call.wouldFail !== undefined || policy.state === CircuitState.HalfOpen) return next(call);
    let ran = false;
    try {
      return await policy.execute(() => {
        ran = true;
        return next(call);
      });
    } catch (error) {
      if (ran || !isBrokenCircuitError(error)) throw error;
      decide(call, 'circuit_open', observe);
      return next(call);
    }
  };
}

/**
 * The attempt, with no timer: an answer later than timeouts.perAttempt is counted, and reaches the
 * stages above as a LateAnswer (a timeout), which the deadline stage turns back into the answer.
 */
export function observeAttempt<Q extends PolicyRequest, R extends AttemptResult>(perAttemptMs: number, now: () => number, start: StartAttempt<Q, R>, observe: Observe): Next<Q, R> {
  return async (call) => {
    const startedAt = now();
    const response = await runAttempt(call, start);
    if (call.wouldFail !== undefined || now() - startedAt < perAttemptMs) return response;
    observe('attempt_timeout');
    throw new LateAnswer(response, perAttemptMs);
  };
}
