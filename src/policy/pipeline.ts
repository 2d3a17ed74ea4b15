// Compiles a resolved spec into the policy pipeline of docs/design.md's order, once per config load:
//   total deadline → rate limit → bulkhead → retry loop → circuit breaker → per-attempt timeout → vendor.
// The breaker sits inside the retry loop so every attempt counts, and the loop never retries
// BrokenCircuitError or BulkheadRejectedError, so an open circuit or a full bulkhead ends it. A request
// that may not be replayed runs the same policies without the loop; a bulkhead or rate limit that is
// not configured is not in the composition at all.
// Cockatiel keeps the breaker and the bulkhead, whose state machines it owns. The retry loop and the
// per-attempt timeout are ours because of what they cost on every call: Cockatiel's timeout() derives
// an AbortController from the call's signal and adds two abort listeners per attempt, and wrap() adds
// a layer of promises per policy. Here an attempt has one timer, the call aborts the attempt in flight
// itself through an AttemptControl (no AbortController, no listener), and the wait between attempts is
// a timer the call's signal ends, so a caller who leaves during a backoff frees its bulkhead slot at once.
import {
  BrokenCircuitError,
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
import type { ResolvedSpec } from '../api/resolve.ts';
import { AttemptControl } from './attempt-control.ts';
import type { AttemptReport, RetryStop } from './attempt-report.ts';
import { backoffDelay } from './backoff.ts';
import { Call } from './call.ts';
import { classifyError, FailureMatcher, isCertificateError } from './classify.ts';
import { delay } from './delay.ts';
import { CallCancelledError, DeadlineExceededError, UpstreamFailure } from './errors.ts';
import { FailureRateBreaker } from './failure-rate-breaker.ts';
import { IdempotencyRule } from './idempotency.ts';
import { RateLimiter } from './rate-limiter.ts';
import { retryAfterVerdict } from './retry-after.ts';
import { RetryBudget } from './retry-budget.ts';

/** What one attempt returns: a vendor response whose body has not been read yet. */
export interface AttemptResult {
  readonly statusCode: number;
  /** The Retry-After header, if any. */
  readonly retryAfter: string | readonly string[] | undefined;
  /** Releases the response (its body is not forwarded). */
  discard(): void;
}

/**
 * One attempt: `request` is whatever the caller passed to `execute`, so no closure is made per call.
 * It must stop (reject) when `control` is aborted.
 */
export type Attempt<R extends AttemptResult, Q> = (call: Call, control: AttemptControl, request: Q) => Promise<R>;

/** How a call's attempts run: with the retry loop, or once, for the reason it may not be retried. */
type Plan = 'retry' | Extract<RetryStop, 'not-replayable' | 'attempts'>;

export interface PolicyOptions {
  /** Clock for deadlines, the rate limiter and the retry budget; Date.now by default. */
  readonly now?: () => number;
  /** Source of backoff jitter; Math.random by default. */
  readonly random?: () => number;
}

export class CompiledPolicy {
  readonly spec: ResolvedSpec;
  readonly limiter: RateLimiter | undefined;
  readonly bulkhead: BulkheadPolicy | undefined;
  readonly breaker: CircuitBreakerPolicy;
  readonly budget: RetryBudget;
  readonly idempotency: IdempotencyRule;
  /** Fires as each retry is decided, before its wait. */
  readonly onRetry: Event<void>;
  private readonly retryEmitter = new EventEmitter<void>();
  private readonly retryOn: FailureMatcher;
  private readonly now: () => number;
  private readonly random: () => number;
  /** When the circuit last opened (Date.now), for the Retry-After of circuit_open. */
  private openedAt = 0;

  constructor(spec: ResolvedSpec, options: PolicyOptions = {}) {
    this.spec = spec;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.onRetry = this.retryEmitter.addListener;
    const { retry, circuitBreaker: cb } = spec;

    this.limiter = spec.rateLimit && new RateLimiter({ ...spec.rateLimit, now: this.now });
    this.bulkhead = spec.bulkhead && cockatielBulkhead(spec.bulkhead.maxConcurrent, spec.bulkhead.maxQueued);
    this.budget = new RetryBudget({ ...retry.budget, now: this.now });
    this.idempotency = new IdempotencyRule(retry.methods, retry.idempotencyHeader);
    this.retryOn = new FailureMatcher(retry.retryOn);

    const failOn = new FailureMatcher(cb.failOn);
    // A caller who leaves is not the vendor's fault, so it never counts, except during the one
    // half-open probe: Cockatiel takes any error it is not told to handle as the probe's success and
    // closes the circuit, though the vendor has shown nothing. Counted as a failure, it keeps the
    // circuit open until the next probe.
    const probeCancelled = (e: unknown) => e instanceof CallCancelledError && this.breaker.state === CircuitState.HalfOpen;
    this.breaker = circuitBreaker(
      handleWhen((e) => (e instanceof UpstreamFailure && failOn.matchesKind(e.kind)) || probeCancelled(e)).orWhenResult((r) =>
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
    // Cockatiel stamps its own openedAt with Date.now, whatever clock the rest of the policy uses,
    // just before it announces the break; reading it back would mean serialising the breaker.
    this.breaker.onBreak(() => {
      this.openedAt = Date.now();
    });
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
  execute<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q, replayable: boolean): Promise<R> {
    const plan: Plan = !replayable ? 'not-replayable' : this.spec.retry.maxAttempts > 1 ? 'retry' : 'attempts';
    return call.race(this.limiter ? this.limited(call, attempt, request, plan) : this.admitted(call, attempt, request, plan));
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

  private limited<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q, plan: Plan): Promise<R> {
    let wait;
    try {
      wait = this.limiter!.acquire(call);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return wait ? wait.then(() => this.admitted(call, attempt, request, plan)) : this.admitted(call, attempt, request, plan);
  }

  /** Past the rate limit: the bulkhead, when there is one, then the attempts. */
  private admitted<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q, plan: Plan): Promise<R> {
    // No signal for Cockatiel: a call aborted while queued is answered by Call.race, and its turn ends
    // at once in attemptOnce.
    if (this.bulkhead) return this.bulkhead.execute(() => this.attempts(call, attempt, request, plan));
    return this.attempts(call, attempt, request, plan);
  }

  private attempts<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q, plan: Plan): Promise<R> {
    if (plan === 'retry') return this.retryLoop(call, attempt, request);
    return call.onAttempt ? this.reportedOnce(call, attempt, request, plan) : this.guarded(call, attempt, request);
  }

  /**
   * Attempts until one is not worth retrying, attempts run out, or the backoff says stop; the answer
   * is then the last attempt's outcome. Every response it does not return is discarded.
   */
  private async retryLoop<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q): Promise<R> {
    for (let sent = 1; ; sent++) {
      let response: R | undefined;
      let failure: UpstreamFailure | undefined;
      try {
        response = await this.guarded(call, attempt, request);
        if (!this.retryOn.matchesStatus(response.statusCode)) {
          call.onAttempt?.(report(call, response, undefined, 'done'));
          return response;
        }
      } catch (error) {
        if (!(error instanceof UpstreamFailure)) throw error;
        if (!this.worthRetrying(error)) {
          call.onAttempt?.(report(call, undefined, error, 'done'));
          throw error;
        }
        failure = error;
      }
      const next = this.nextStep(call, sent, response);
      call.onAttempt?.(report(call, response, failure, next));
      if (typeof next === 'number') {
        this.retryEmitter.emit();
        if (next > 0) await delay(next, call.signal);
        continue;
      }
      call.retryStop = next;
      if (next === 'circuit-open') {
        // docs/design.md: once the circuit opens, no further attempts; the caller gets circuit_open.
        response?.discard();
        throw new BrokenCircuitError();
      }
      if (response) return response;
      throw failure!;
    }
  }

  /** One attempt, no retries, with its outcome reported: `stop` says why it is not retried. */
  private async reportedOnce<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q, stop: RetryStop): Promise<R> {
    let response: R;
    try {
      response = await this.guarded(call, attempt, request);
    } catch (error) {
      if (error instanceof UpstreamFailure) call.onAttempt?.(report(call, undefined, error, this.worthRetrying(error) ? stop : 'done'));
      throw error;
    }
    call.onAttempt?.(report(call, response, undefined, this.retryOn.matchesStatus(response.statusCode) ? stop : 'done'));
    return response;
  }

  private worthRetrying(failure: UpstreamFailure): boolean {
    return failure.retryable && this.retryOn.matchesKind(failure.kind);
  }

  /**
   * One attempt through the circuit breaker. A call aborted while it waited (in the bulkhead queue)
   * does not reach the breaker, where it could become the half-open probe.
   */
  private guarded<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q): Promise<R> {
    if (call.aborted) return Promise.reject(call.reason!);
    return this.breaker.execute(() => this.attemptOnce(call, attempt, request));
  }

  /**
   * One attempt under the per-attempt timeout: the time to the vendor's response headers. The timer
   * stops when they arrive, so a streaming body may take longer; the call can still abort it.
   */
  private async attemptOnce<R extends AttemptResult, Q>(call: Call, attempt: Attempt<R, Q>, request: Q): Promise<R> {
    // Cockatiel runs this again for a call that waited out a half-open probe; its caller may be gone.
    if (call.aborted) throw call.reason;
    call.attempts++;
    const control = new AttemptControl();
    const perAttemptMs = this.spec.timeouts.perAttemptMs;
    const timer = setTimeout(timeOut, perAttemptMs, control, perAttemptMs);
    call.inFlight = control;
    try {
      return await attempt(call, control, request);
    } catch (error) {
      // The caller left: not the vendor's fault, so neither retried nor counted by the breaker.
      if (call.reason instanceof CallCancelledError) throw call.reason;
      // Its timeout, or the call's deadline, cut it short: the vendor was too slow either way.
      if (control.aborted) throw new UpstreamFailure('timeout', control.reason!.message, { cause: error });
      throw new UpstreamFailure(classifyError(error), describe(error), { cause: error, retryable: !isCertificateError(error) });
    } finally {
      clearTimeout(timer);
      call.inFlight = undefined;
    }
  }

  /**
   * The wait before the next attempt, or why there is none and this attempt's outcome is the answer.
   * A response it lets go to a retry is discarded.
   */
  private nextStep(call: Call, sent: number, response: AttemptResult | undefined): number | RetryStop {
    if (sent >= this.spec.retry.maxAttempts) return 'attempts';
    if (call.aborted) return call.reason instanceof DeadlineExceededError ? 'deadline' : 'cancelled';
    if (this.breaker.state === CircuitState.Open) return 'circuit-open';
    const now = this.now();
    const retry = this.spec.retry;
    let waitMs = backoffDelay(retry.backoff, sent, this.random);
    if (response && retry.respectRetryAfter) {
      const verdict = retryAfterVerdict(response.retryAfter, now, retry.maxRetryAfterMs);
      if (verdict.kind === 'too-long') return 'retry-after';
      if (verdict.kind === 'wait') waitMs = verdict.ms;
    }
    // A retry that could not start before the deadline only turns an answer into deadline_exceeded.
    if (now + waitMs >= call.deadlineAt) return 'deadline';
    if (!this.budget.tryRetry()) return 'budget';
    response?.discard();
    return waitMs;
  }
}

/** The last attempt's outcome (a response, or the failure when none came) and what follows: a wait, or a verdict. */
function report(call: Call, response: AttemptResult | undefined, failure: UpstreamFailure | undefined, next: number | AttemptReport['next']): AttemptReport {
  const outcome: Pick<AttemptReport, 'attempt' | 'outcome' | 'error'> = response
    ? { attempt: call.attempts, outcome: response.statusCode }
    : { attempt: call.attempts, outcome: failure!.kind ?? 'error', error: failure!.message };
  if (typeof next === 'number') return { ...outcome, next: 'retry', retryInMs: next };
  return next === 'retry-after' ? { ...outcome, next, retryAfter: String(response!.retryAfter) } : { ...outcome, next };
}

function timeOut(control: AttemptControl, ms: number): void {
  control.timeout(ms);
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
}
