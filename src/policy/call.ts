// One call through an integration's policy. Aborting it (the caller's departure, or the total deadline)
// aborts the attempt in flight, the wait for the pipeline's answer, and any rate-limit or backoff wait,
// so one abort stops the vendor request and the retry loop alike. The common call waits for nothing
// but the vendor, so it carries no AbortController: one is made only for a wait that takes a signal.
import type { AttemptControl } from './attempt-control.ts';
import type { AttemptReport, RetryStop } from './attempt-report.ts';
import { CallCancelledError, DeadlineExceededError } from './errors.ts';

/** A response that comes after its call was aborted is nobody's: release its connection. */
const discardLate = (result: { discard(): void }) => result.discard();
const noop = () => {};

export class Call {
  /** On the policy clock. */
  readonly deadlineAt: number;
  /** Attempts sent to the vendor so far. */
  attempts = 0;
  /** The attempt waiting for response headers, aborted with the call; set by the pipeline. */
  inFlight: AttemptControl | undefined = undefined;
  /** Why the call was aborted; undefined while it runs. */
  reason: Error | undefined = undefined;
  /** Why the retry loop sent no more attempts although the last outcome was worth retrying. */
  retryStop: RetryStop | undefined = undefined;
  /** Told the outcome of each attempt and what follows; set only when someone logs it. */
  onAttempt: ((report: AttemptReport) => void) | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private readonly timer: NodeJS.Timeout;
  private rejectAnswer: ((reason: Error) => void) | undefined = undefined;
  private answer: Promise<{ discard(): void }> | undefined = undefined;

  constructor(totalMs: number, now: number) {
    this.deadlineAt = now + totalMs;
    this.timer = setTimeout(expire, totalMs, this);
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

  /**
   * `answer`, or a rejection with the abort reason as soon as the call is aborted, whichever comes
   * first; answers the pipeline at once even where a waiter ignores aborts (a bulkhead queue, a
   * half-open breaker's probe).
   */
  race<R extends { discard(): void }>(answer: Promise<R>): Promise<R> {
    if (this.reason) {
      answer.then(discardLate, noop);
      return Promise.reject(this.reason);
    }
    this.answer = answer;
    return new Promise<R>((resolve, reject) => {
      this.rejectAnswer = reject;
      answer.then(resolve, reject);
    });
  }

  /** The caller went away: abort everything, retry nothing. */
  cancel(): void {
    this.abort(new CallCancelledError('the caller went away'));
  }

  /**
   * The call has its answer (or gave up): the deadline no longer applies, e.g. to a streaming body,
   * and an abort no longer touches the answer.
   */
  settle(): void {
    this.answer = undefined;
    this.rejectAnswer = undefined;
    clearTimeout(this.timer);
  }

  abort(reason: Error): void {
    if (this.reason) return;
    this.reason = reason;
    clearTimeout(this.timer);
    this.controller?.abort(reason);
    this.inFlight?.abort(reason);
    if (this.rejectAnswer) {
      this.rejectAnswer(reason);
      this.answer!.then(discardLate, noop);
    }
  }
}

function expire(call: Call): void {
  call.abort(new DeadlineExceededError('timeouts.total passed before the vendor answered'));
}
