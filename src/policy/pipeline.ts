// Compiles a resolved spec into the policy stack of docs/design.md's order, once per config load:
//   total deadline → rate limit → bulkhead → retry → circuit breaker → (slow-call mark) → per-attempt timeout → vendor.
// Each is a stage `(call, next)` (stages.ts, retry.ts); a rate limit or bulkhead that is not configured
// is not in the stack at all. The breaker sits inside the retry stage so every attempt counts. Two
// stacks are composed: one with the retry stage, and one for a request that may not be sent twice,
// with `once` in its place; `execute` picks one by the request's method, idempotency key and body.
// With spec.mode observe, the stack is composed of observe.ts's stages instead, which count what each
// stage would have done and send every call once; `execute` is the same either way.
// Cockatiel keeps the breaker and the bulkhead, whose state machines it owns. Retry and the per-attempt
// timeout are ours because of what they cost on every call: Cockatiel's timeout() derives an
// AbortController from the call's signal and adds two abort listeners per attempt, and wrap() adds a
// layer of promises per policy.
import {
  bulkhead as cockatielBulkhead,
  CircuitState,
  circuitBreaker,
  ConsecutiveBreaker,
  EventEmitter,
  handleWhen,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type Event,
} from 'cockatiel';
import { GLOBAL_RATE_LIMIT_ANSWER_MS } from '../api/defaults.ts';
import type { ResolvedSpec } from '../api/resolve.ts';
import { Call, type AttemptResult, type PolicyRequest } from './call.ts';
import { FailureMatcher } from './classify.ts';
import { CallCancelledError, UpstreamFailure } from './errors.ts';
import { FailureRateBreaker } from './failure-rate-breaker.ts';
import { IdempotencyRule } from './idempotency.ts';
import { GlobalLimiter, type SharedBucket } from './global-limiter.ts';
import { observeAttempt, observeBreaker, observeBulkhead, observeDeadline, observeGlobalRateLimit, observeRateLimit, observeRetry, type ObservedDecision } from './observe.ts';
import { RateLimiter } from './rate-limiter.ts';
import { once, retry, type RetryContext } from './retry.ts';
import { RetryBudget } from './retry-budget.ts';
import { attemptTimeout, breaker, bulkhead, compose, deadline, globalRateLimit, markSlow, rateLimit, type Next, type Stage, type StartAttempt } from './stages.ts';

export interface PolicyOptions {
  /** Clock for deadlines, the rate limiter and the retry budget; Date.now by default. */
  readonly now?: () => number;
  /** Source of backoff jitter; Math.random by default. */
  readonly random?: () => number;
  /** The bucket every sidecar shares, for rateLimit.scope global; without it such a limit is the local one. */
  readonly sharedBucket?: SharedBucket;
}

/** The shared rate-limit bucket did not answer: the local one decided. */
export interface LimiterFallback {
  readonly error: Error;
  /** The first call of an outage: the shared bucket had answered the one before. */
  readonly outageStarts: boolean;
}

export class CompiledPolicy<Q extends PolicyRequest = PolicyRequest, R extends AttemptResult = AttemptResult> {
  readonly spec: ResolvedSpec;
  /** The local bucket: the limit itself, or, for rateLimit.scope global, what decides while the shared one does not answer. */
  readonly limiter: RateLimiter | undefined;
  /** rateLimit.scope global with a shared bucket. */
  readonly globalLimiter: GlobalLimiter | undefined;
  /** Enforce mode only: observe mode counts its calls in its own stage. */
  readonly bulkhead: BulkheadPolicy | undefined;
  readonly breaker: CircuitBreakerPolicy;
  readonly budget: RetryBudget;
  readonly idempotency: IdempotencyRule;
  /** Fires as each retry is decided, before its wait. */
  readonly onRetry: Event<void>;
  /** Fires when the retry budget refuses a retry the call was worth. */
  readonly onBudgetRefused: Event<void>;
  /** Observe mode: fires for each decision the policy would have taken. */
  readonly onObserved: Event<ObservedDecision>;
  /** rateLimit.scope global: fires for each call the local bucket decided because the shared one did not answer. */
  readonly onLimiterFallback: Event<LimiterFallback>;
  /** rateLimit.scope global: fires when the shared bucket answers again after an outage. */
  readonly onLimiterRecovered: Event<void>;
  private readonly retryEmitter = new EventEmitter<void>();
  private readonly budgetEmitter = new EventEmitter<void>();
  private readonly observedEmitter = new EventEmitter<ObservedDecision>();
  private readonly fallbackEmitter = new EventEmitter<LimiterFallback>();
  private readonly recoveredEmitter = new EventEmitter<void>();
  private readonly now: () => number;
  /** The stack with the retry stage, and the one for a request that may not be sent twice. */
  private readonly retrying: Next<Q, R>;
  private readonly single: Next<Q, R>;
  /** When the circuit last opened (Date.now), for the Retry-After of circuit_open. */
  private openedAt = 0;

  constructor(spec: ResolvedSpec, start: StartAttempt<Q, R>, options: PolicyOptions = {}) {
    this.spec = spec;
    this.now = options.now ?? Date.now;
    const random = options.random ?? Math.random;
    this.onRetry = this.retryEmitter.addListener;
    this.onBudgetRefused = this.budgetEmitter.addListener;
    this.onObserved = this.observedEmitter.addListener;
    this.onLimiterFallback = this.fallbackEmitter.addListener;
    this.onLimiterRecovered = this.recoveredEmitter.addListener;
    const { retry: retrySpec, circuitBreaker: cb } = spec;

    this.limiter = spec.rateLimit && new RateLimiter({ ...spec.rateLimit, now: this.now });
    this.globalLimiter =
      this.limiter && spec.rateLimit?.scope === 'global' && options.sharedBucket
        ? new GlobalLimiter(options.sharedBucket, this.limiter, {
            ...spec.rateLimit,
            answerWithinMs: GLOBAL_RATE_LIMIT_ANSWER_MS,
            now: this.now,
            onFallback: (error, outageStarts) => this.fallbackEmitter.emit({ error, outageStarts }),
            onRecovered: () => this.recoveredEmitter.emit(),
          })
        : undefined;
    this.bulkhead = spec.bulkhead && spec.mode === 'enforce' ? cockatielBulkhead(spec.bulkhead.maxConcurrent, spec.bulkhead.maxQueued) : undefined;
    this.budget = new RetryBudget({ ...retrySpec.budget, now: this.now });
    this.idempotency = new IdempotencyRule(retrySpec.methods, retrySpec.idempotencyHeader, retrySpec.idempotencyKey === 'generate');
    const retryOn = new FailureMatcher(retrySpec.retryOn);

    const failOn = new FailureMatcher(cb.failOn);
    // circuitBreaker.slowCall: the stage under the breaker marks each outcome (response or error) that
    // came too late, and the breaker's filter and window read the mark.
    const slow = new WeakSet<object>();
    const failedStatus = (r: unknown) => failOn.matchesStatus((r as AttemptResult).statusCode);
    // A caller who leaves is not the vendor's fault, so it never counts, except during the one
    // half-open probe: Cockatiel takes any error it is not told to handle as the probe's success and
    // closes the circuit, though the vendor has shown nothing. Counted as a failure, it keeps the
    // circuit open until the next probe.
    const probeCancelled = (e: unknown) => e instanceof CallCancelledError && this.breaker.state === CircuitState.HalfOpen;
    this.breaker = circuitBreaker(
      handleWhen((e) => (e instanceof UpstreamFailure && failOn.matchesKind(e.kind)) || probeCancelled(e)).orWhenResult(
        cb.slowCall ? (r) => failedStatus(r) || slow.has(r as object) : failedStatus,
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
                ...(cb.slowCall && {
                  slowThreshold: cb.slowCall.threshold,
                  outcome: () => {
                    const last = this.breaker.lastFailure!;
                    if ('error' in last) return { failed: true, slow: slow.has(last.error as object) };
                    return { failed: failedStatus(last.value), slow: slow.has(last.value as object) };
                  },
                }),
                now: this.now,
              }),
      },
    );
    // Cockatiel stamps its own openedAt with Date.now, whatever clock the rest of the policy uses,
    // just before it announces the break; reading it back would mean serialising the breaker.
    this.breaker.onBreak(() => {
      this.openedAt = Date.now();
    });
    // circuitBreaker.forceOpen: held open for this policy's life. The handle is never disposed: setting
    // it back changes the spec, and a reload builds a new policy with a breaker of its own.
    if (cb.forceOpen) this.breaker.isolate();

    const retryContext: RetryContext = {
      retry: retrySpec,
      retryOn,
      budget: this.budget,
      breaker: this.breaker,
      now: this.now,
      random,
      onRetry: () => this.retryEmitter.emit(),
      onBudgetRefused: () => this.budgetEmitter.emit(),
    };
    const slowStage: Stage<Q, R>[] = cb.slowCall ? [markSlow<Q, R>(cb.slowCall.durationMs, slow, this.now)] : [];
    // The stages around the retry stage are built once and shared by both chains (retrying, and not
    // replayable): one deadline list and one attempt-timeout list per integration, each with its one
    // timer, and in observe mode one observed bulkhead that counts the calls of both, as the real one
    // holds them in one.
    let before: Stage<Q, R>[], after: Stage<Q, R>[], attempt: Next<Q, R>, retrying: Stage<Q, R>[], single: Stage<Q, R>[];
    if (spec.mode === 'observe') {
      const observe = (decision: ObservedDecision) => this.observedEmitter.emit(decision);
      before = [
        observeDeadline(spec.timeouts, this.now, observe),
        ...this.rateLimitStage(() => observeGlobalRateLimit<Q, R>(this.globalLimiter!, observe), () => observeRateLimit<Q, R>(this.limiter!, observe)),
        ...(spec.bulkhead ? [observeBulkhead<Q, R>(spec.bulkhead.maxConcurrent, spec.bulkhead.maxQueued, observe)] : []),
      ];
      // A person's forceOpen is obeyed in either mode: isolating a vendor is an order, not a policy to try out.
      after = [cb.forceOpen ? breaker<Q, R>(this.breaker) : observeBreaker<Q, R>(this.breaker, observe), ...slowStage];
      attempt = observeAttempt(spec.timeouts.perAttemptMs, this.now, start, observe);
      retrying = retrySpec.maxAttempts > 1 ? [observeRetry(retryContext, observe)] : [];
      single = [];
    } else {
      before = [
        deadline(spec.timeouts.totalMs),
        ...this.rateLimitStage(() => globalRateLimit<Q, R>(this.globalLimiter!), () => rateLimit<Q, R>(this.limiter!)),
        ...(this.bulkhead ? [bulkhead<Q, R>(this.bulkhead)] : []),
      ];
      after = [breaker(this.breaker), ...slowStage];
      attempt = attemptTimeout(spec.timeouts.perAttemptMs, start);
      retrying = [retrySpec.maxAttempts > 1 ? retry(retryContext) : once(retryOn, 'attempts')];
      single = [once(retryOn, 'not-replayable')];
    }
    this.retrying = compose([...before, ...retrying, ...after], attempt);
    this.single = compose([...before, ...single, ...after], attempt);
  }

  /** The rate-limit stage, if any: the shared bucket's where there is one, else the local one's. */
  private rateLimitStage(global: () => Stage<Q, R>, local: () => Stage<Q, R>): Stage<Q, R>[] {
    if (this.globalLimiter) return [global()];
    return this.limiter ? [local()] : [];
  }

  /**
   * Starts a call of `request` through the stack and counts it for the retry budget. Its `answer`
   * resolves with the response to forward (the last one when retries ran out), or rejects with
   * UpstreamFailure, DeadlineExceededError, CallCancelledError, RateLimitedError, BrokenCircuitError or
   * BulkheadRejectedError. Once it settles, the deadline no longer applies.
   */
  execute(request: Q): Call<Q, R> {
    this.budget.recordCall();
    const call = new Call<Q, R>(request, this.now() + this.spec.timeouts.totalMs);
    void (this.mayResend(request) ? this.retrying : this.single)(call);
    return call;
  }

  /** The request may be sent more than once: its body can be, and its method or idempotency key allows it. */
  mayResend(request: PolicyRequest): boolean {
    return request.bodyReplayable && request.scheduled !== true && this.idempotency.allowsRetry(request.method, request.idempotencyKey);
  }

  /**
   * The breaker's state as a caller meets it. Cockatiel leaves an open breaker open until the next
   * call; once halfOpenAfter has passed, that call is the probe, so the circuit is half-open already.
   */
  circuitState(): CircuitState {
    return this.msUntilHalfOpen() === 0 ? CircuitState.HalfOpen : this.breaker.state;
  }

  /** Milliseconds until an open circuit lets a probe through, or undefined when it is not open. */
  msUntilHalfOpen(): number | undefined {
    if (this.breaker.state !== CircuitState.Open) return undefined;
    return Math.max(0, this.openedAt + this.spec.circuitBreaker.halfOpenAfterMs - Date.now());
  }
}
