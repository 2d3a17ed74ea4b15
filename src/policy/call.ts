// One call through an integration's policy stack, from `CompiledPolicy.execute` to its answer. Aborting
// it (the caller's departure, or the total deadline) aborts the attempt in flight, the wait for the
// answer, and any rate-limit or backoff wait, so one abort stops the vendor request and the retry loop
// alike. The common call waits for nothing but the vendor, so it carries no AbortController: one is
// made only for a wait that takes a signal.
import type { SidecarErrorCode } from '../api/errors.ts';
import type { AttemptReport, RetryStop } from './attempt-report.ts';
import { CallCancelledError, DeadlineExceededError } from './errors.ts';
import type { ListedTimeout, TimeoutList } from './timeout-list.ts';

/** What an attempt answers with: a vendor response whose body has not been read yet. */
export interface AttemptResult {
  readonly statusCode: number;
  /** The Retry-After header, if any. */
  readonly retryAfter: string | readonly string[] | undefined;
  /** Releases the response (its body is not forwarded). */
  discard(): void;
}

/** One attempt in flight, as the stack sees it: its answer at the response headers, and how to stop it. */
export interface AttemptHandle<R extends AttemptResult> {
  /** Settles at the vendor's response headers. */
  readonly answer: Promise<R>;
  /** The attempt's timeout, or the call's abort: the answer must reject soon after. */
  abort(reason: Error): void;
}

/** What the stack reads of a request: whether it may be sent twice, and who hears of each attempt. */
export interface PolicyRequest {
  readonly method: string;
  /** The caller sent a usable idempotency header: the vendor deduplicates, so any method may be resent. */
  readonly idempotencyKey: boolean;
  /** The body can be sent again: there is none, or it is held in memory (a streamed one cannot). */
  readonly bodyReplayable: boolean;
  /** Its owner retries it on a schedule of its own (a durable delivery records each attempt): one attempt. */
  readonly scheduled?: boolean;
  /** Told the outcome of each attempt and what follows; set only when someone logs it. */
  readonly onAttempt?: ((report: AttemptReport) => void) | undefined;
}

export class Call<Q extends PolicyRequest = PolicyRequest, R extends AttemptResult = AttemptResult> {
  readonly request: Q;
  /** On the policy clock. */
  readonly deadlineAt: number;
  /** The answer: the response to forward, or the failure that ended the call. */
  readonly answer: Promise<R>;
  /** Attempts sent to the vendor so far. */
  attempts = 0;
  /** The attempt waiting for response headers; set by the stack's attempt stage. */
  inFlight: AttemptHandle<R> | undefined = undefined;
  /** Why the attempt in flight was aborted (its timeout, or the call's reason); reset for each attempt. */
  attemptAborted: Error | undefined = undefined;
  /** Why the call was aborted; undefined while it runs. */
  reason: Error | undefined = undefined;
  /** Why the retry stage sent no more attempts although the last outcome was worth retrying. */
  retryStop: RetryStop | undefined = undefined;
  /** Observe mode: the error enforce mode would have answered instead of the vendor's outcome. */
  wouldFail: SidecarErrorCode | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private deadline: ListedTimeout<Call> | undefined = undefined;
  /** The answer went out (or the call was aborted first): nothing more reaches the caller. */
  private settled = false;
  // Typed for any result, so a Call<Q, R> is a Call: each is only ever handed an R.
  private resolveAnswer!: (response: AttemptResult) => void;
  private rejectAnswer!: (reason: Error) => void;

  constructor(request: Q, deadlineAt: number) {
    this.request = request;
    this.deadlineAt = deadlineAt;
    this.answer = new Promise<R>((resolve, reject) => {
      this.resolveAnswer = resolve as (response: AttemptResult) => void;
      this.rejectAnswer = reject;
    });
  }

  get aborted(): boolean {
    return this.reason !== undefined;
  }

  /** For a wait that takes a signal (a rate-limit token, a backoff); made on first use. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** The deadline stage, before the rest of the stack runs: when `deadlines`' time is up, the call is aborted. */
  startDeadline(deadlines: TimeoutList<Call>): void {
    this.deadline = deadlines.start(this);
  }

  /**
   * The deadline stage: `outcome` answers the call unless an abort comes first. The abort answers at
   * once even where a waiter ignores it (a bulkhead queue, a half-open breaker's probe). Once
   * answered, the deadline no longer applies (e.g. to a streaming body) and an abort no longer touches
   * the answer.
   */
  settleWith(outcome: Promise<R>): Promise<R> {
    outcome.then(this.answered, this.failed);
    return this.answer;
  }

  /** The caller went away: abort everything, retry nothing. */
  cancel(): void {
    this.abort(new CallCancelledError('the caller went away'));
  }

  abort(reason: Error): void {
    if (this.reason) return;
    this.reason = reason;
    this.deadline?.clear();
    this.controller?.abort(reason);
    if (this.inFlight) {
      this.attemptAborted = reason;
      this.inFlight.abort(reason);
    }
    if (!this.settled) {
      this.settled = true;
      this.rejectAnswer(reason);
    }
  }

  /** The attempt stage is about to send an attempt, to be set as `inFlight` once started. */
  attemptStarting(): void {
    this.attempts++;
    this.attemptAborted = undefined;
  }

  /** The attempt in flight ran out of time to its response headers. */
  timeOutAttempt(ms: number): void {
    if (this.inFlight === undefined || this.attemptAborted) return;
    // The deadline has passed as well, its timer not run yet (each stage's timeouts have a timer of
    // their own): the caller hears of the sooner limit, as when the deadline's timer comes first.
    if (this.deadline?.due()) {
      expireCall(this);
      return;
    }
    this.attemptAborted = new Error(`no response headers within ${ms}ms (timeouts.perAttempt)`);
    this.inFlight.abort(this.attemptAborted);
  }

  private readonly answered = (response: AttemptResult): void => {
    // A response that comes after its call was aborted is nobody's: release its connection.
    if (this.settled) {
      response.discard();
      return;
    }
    this.settled = true;
    this.deadline?.clear();
    this.resolveAnswer(response);
  };

  private readonly failed = (error: Error): void => {
    if (this.settled) return;
    this.settled = true;
    this.deadline?.clear();
    this.rejectAnswer(error);
  };
}

/** For the deadline stage's TimeoutList. */
export function expireCall(call: Call): void {
  call.abort(new DeadlineExceededError('timeouts.total passed before the vendor answered'));
}
