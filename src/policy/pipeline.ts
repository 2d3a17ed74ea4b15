// Compiles a resolved spec into the policy pipeline of DESIGN's order, once per config load:
//   total deadline → rate limit → bulkhead → retry loop → circuit breaker → per-attempt timeout → vendor.
// The breaker sits inside the retry loop so every attempt counts, and the retry predicate never
// matches BrokenCircuitError or BulkheadRejectedError, so an open circuit or a full bulkhead ends the
// loop. A request that may not be replayed runs the same policies without the retry loop.
// The wait between attempts is ours, not Cockatiel's: RetryPolicy sleeps on a plain timer that ignores
// the abort signal, so a caller who left during a backoff or a Retry-After wait would keep its bulkhead
// slot until the timer ran out. The backoff hands Cockatiel a zero delay and parks the real one on the
// call; `afterBackoff` waits it out on a timer the call's signal ends.
import {
  BrokenCircuitError,
  bulkhead as cockatielBulkhead,
  CircuitState,
  circuitBreaker,
  ConsecutiveBreaker,
  DelegateBackoff,
  handleWhen,
  retry as cockatielRetry,
  timeout,
  TimeoutStrategy,
  wrap,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type IDefaultPolicyContext,
  type IPolicy,
  type IRetryBackoffContext,
  type RetryPolicy,
} from 'cockatiel';
import { RETRY_BUDGET_WINDOW } from '../api/defaults.ts';
import { parseDuration } from '../api/duration.ts';
import type { ResolvedSpec } from '../api/resolve.ts';
import { backoffDelay } from './backoff.ts';
import { Call } from './call.ts';
import { classifyError, FailureMatcher, isCertificateError } from './classify.ts';
import { delay } from './delay.ts';
import { CallCancelledError, UpstreamFailure } from './errors.ts';
import { FailureRateBreaker } from './failure-rate-breaker.ts';
import { IdempotencyRule } from './idempotency.ts';
import { RateLimiter } from './rate-limiter.ts';
import { retryAfterVerdict } from './retry-after.ts';
import { RetryBudget } from './retry-budget.ts';

/** What one attempt returns: a vendor response whose body has not been read yet. */
export interface AttemptResult {
  readonly call: Call;
  readonly statusCode: number;
  /** The Retry-After header, if any. */
  readonly retryAfter: string | readonly string[] | undefined;
  /** Releases the response (its body is not forwarded). */
  discard(): void;
}

/** One attempt: `request` is whatever the caller passed to `execute`, so no closure is made per call. */
export type Attempt<R extends AttemptResult, Q> = (call: Call, signal: AbortSignal, request: Q) => Promise<R>;

export interface PolicyOptions {
  /** Clock for deadlines, the rate limiter and the retry budget; Date.now by default. */
  readonly now?: () => number;
  /** Source of backoff jitter; Math.random by default. */
  readonly random?: () => number;
}

/** Thrown by the backoff to end the retry loop with the last outcome as the answer. */
class StopRetrying {
  readonly result: { error: unknown } | { value: unknown };
  constructor(result: { error: unknown } | { value: unknown }) {
    this.result = result;
  }
}

type AnyPolicy = IPolicy<IDefaultPolicyContext, never>;

const noop = () => {};
const discardLate = (result: AttemptResult) => result.discard();

export class CompiledPolicy {
  readonly spec: ResolvedSpec;
  readonly limiter: RateLimiter | undefined;
  readonly bulkhead: BulkheadPolicy | undefined;
  readonly breaker: CircuitBreakerPolicy;
  readonly retry: RetryPolicy;
  readonly budget: RetryBudget;
  readonly idempotency: IdempotencyRule;
  /** Bulkhead and retry loop; each turn waits out the backoff, then runs `oneAttempt`. */
  private readonly retrying: AnyPolicy;
  /** Breaker and per-attempt timeout: one attempt. */
  private readonly oneAttempt: AnyPolicy;
  /** Bulkhead, breaker and per-attempt timeout: a call that is never retried. */
  private readonly once: AnyPolicy;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(spec: ResolvedSpec, options: PolicyOptions = {}) {
    this.spec = spec;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    const { retry, circuitBreaker: cb, timeouts } = spec;

    this.limiter = spec.rateLimit && new RateLimiter({ ...spec.rateLimit, now: this.now });
    this.bulkhead = spec.bulkhead && cockatielBulkhead(spec.bulkhead.maxConcurrent, spec.bulkhead.maxQueued);
    this.budget = new RetryBudget({ ...retry.budget, windowMs: parseDuration(RETRY_BUDGET_WINDOW), now: this.now });
    this.idempotency = new IdempotencyRule(retry.methods, retry.idempotencyHeader);

    const failOn = new FailureMatcher(cb.failOn);
    this.breaker = circuitBreaker(
      handleWhen((e) => e instanceof UpstreamFailure && failOn.matchesKind(e.kind)).orWhenResult((r) =>
        failOn.matchesStatus((r as AttemptResult).statusCode),
      ),
      {
        halfOpenAfter: cb.halfOpenAfterMs,
        breaker:
          cb.mode.kind === 'consecutive'
            ? new ConsecutiveBreaker(cb.mode.failures)
            : new FailureRateBreaker({
                threshold: cb.mode.threshold,
                windowMs: cb.mode.windowMs,
                minimumRequests: cb.mode.minimumRequests,
                now: this.now,
              }),
      },
    );

    const retryOn = new FailureMatcher(retry.retryOn);
    this.retry = cockatielRetry(
      handleWhen((e) => e instanceof UpstreamFailure && e.retryable && retryOn.matchesKind(e.kind)).orWhenResult((r) =>
        retryOn.matchesStatus((r as AttemptResult).statusCode),
      ),
      // Cockatiel counts retries; the spec counts calls, the first one included.
      { maxAttempts: retry.maxAttempts - 1, backoff: new DelegateBackoff((ctx) => this.nextDelay(ctx)) },
    );

    // Cooperative: the attempt sees its signal abort and fails on its own. abortOnReturn: false, or
    // the signal would abort as soon as headers arrive and cut the streaming response body.
    const perAttempt = timeout(timeouts.perAttemptMs, { strategy: TimeoutStrategy.Cooperative, abortOnReturn: false });
    const outer = this.bulkhead ? [this.bulkhead] : [];
    this.retrying = wrap(...([...outer, this.retry] as AnyPolicy[]));
    this.oneAttempt = wrap(this.breaker as AnyPolicy, perAttempt as AnyPolicy);
    this.once = wrap(...([...outer, this.breaker, perAttempt] as AnyPolicy[]));
  }

  /** Starts the clock of a new call and counts it for the retry budget. */
  startCall(): Call {
    this.budget.recordCall();
    return new Call(this.spec.timeouts.totalMs, this.now());
  }

  /**
   * Runs `attempt` under the whole pipeline. Resolves with the response to forward (the last one when
   * retries ran out); rejects with UpstreamFailure, DeadlineExceededError, CallCancelledError,
   * RateLimitedError, BrokenCircuitError or BulkheadRejectedError.
   */
  async execute<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q, replayable: boolean): Promise<R> {
    const fn = (context: IDefaultPolicyContext) => this.attemptOnce(call, attempt, request, context.signal);
    const retrying = replayable && this.spec.retry.maxAttempts > 1;
    const policy = retrying ? this.retrying : this.once;
    const run = retrying ? () => this.afterBackoff(call, fn) : fn;
    const inner = (this.limiter ? this.limited(call, policy, run) : policy.execute(run, call.signal)) as Promise<R>;
    try {
      return await Promise.race([inner, call.aborted]);
    } catch (error) {
      if (error instanceof StopRetrying) {
        if ('value' in error.result) return error.result.value as R;
        throw error.result.error;
      }
      // A response that arrives after the deadline is nobody's: release its connection.
      if (error === call.signal.reason) inner.then(discardLate, noop);
      throw error;
    }
  }

  /** Milliseconds until an open circuit lets a probe through, or undefined when it is not open. */
  msUntilHalfOpen(): number | undefined {
    if (this.breaker.state !== CircuitState.Open) return undefined;
    const { openedAt } = (this.breaker.toJSON() as { ownState: { openedAt: number } }).ownState;
    // Cockatiel stamps openedAt with Date.now, whatever clock the rest of the policy uses.
    return Math.max(0, openedAt + this.spec.circuitBreaker.halfOpenAfterMs - Date.now());
  }

  private async limited(call: Call, policy: AnyPolicy, fn: (context: IDefaultPolicyContext) => Promise<AttemptResult>) {
    const wait = this.limiter!.acquire(call.signal);
    if (wait) await wait;
    return policy.execute(fn, call.signal);
  }

  /** One turn of the retry loop: the wait the backoff asked for, then one attempt. */
  private async afterBackoff(call: Call, fn: (context: IDefaultPolicyContext) => Promise<AttemptResult>): Promise<AttemptResult> {
    if (call.backoffMs > 0) {
      const ms = call.backoffMs;
      call.backoffMs = 0;
      await delay(ms, call.signal);
    }
    return this.oneAttempt.execute(fn, call.signal) as Promise<AttemptResult>;
  }

  private async attemptOnce<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q, signal: AbortSignal): Promise<R> {
    if (call.signal.aborted) throw call.signal.reason;
    call.attempts++;
    try {
      return await attempt(call, signal, request);
    } catch (error) {
      // The caller left: not the vendor's fault, so neither retried nor counted by the breaker.
      if (call.signal.reason instanceof CallCancelledError) throw call.signal.reason;
      if (signal.aborted) {
        throw new UpstreamFailure('timeout', `no response headers within ${this.spec.timeouts.perAttemptMs}ms`, { cause: error, call });
      }
      throw new UpstreamFailure(classifyError(error), describe(error), { cause: error, call, retryable: !isCertificateError(error) });
    }
  }

  private nextDelay(context: IRetryBackoffContext<unknown>): number {
    const result = context.result;
    const response = 'value' in result ? (result.value as AttemptResult) : undefined;
    const call = response ? response.call : ((result as { error: UpstreamFailure }).error.call as Call);
    // The attempt that just failed opened the circuit: no further attempts (DESIGN).
    if (this.breaker.state === CircuitState.Open) {
      response?.discard();
      throw new BrokenCircuitError();
    }
    const now = this.now();
    const retry = this.spec.retry;
    let waitMs = backoffDelay(retry.backoff, context.attempt, this.random);
    if (response && retry.respectRetryAfter) {
      const verdict = retryAfterVerdict(response.retryAfter, now, retry.maxRetryAfterMs);
      if (verdict.kind === 'too-long') throw new StopRetrying(result);
      if (verdict.kind === 'wait') waitMs = verdict.ms;
    }
    // A retry that could not start before the deadline only turns an answer into deadline_exceeded.
    if (now + waitMs >= call.deadlineAt || !this.budget.tryRetry()) throw new StopRetrying(result);
    response?.discard();
    call.backoffMs = waitMs;
    return 0;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
}
