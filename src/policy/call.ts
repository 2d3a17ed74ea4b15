// One call through an integration's policy. Its AbortSignal carries the total deadline and the caller's
// departure, and aborting it also aborts the attempt in flight, so one abort stops the vendor request,
// the rate-limit wait and the retry loop alike. `aborted` lets the pipeline answer at once even where a
// waiter ignores the signal (a bulkhead queue, a half-open breaker's probe).
import type { AttemptControl } from './attempt-control.ts';
import { CallCancelledError, DeadlineExceededError } from './errors.ts';

const noop = () => {};

export class Call {
  readonly signal: AbortSignal;
  /** On the policy clock. */
  readonly deadlineAt: number;
  /** Attempts sent to the vendor so far. */
  attempts = 0;
  /** The attempt waiting for response headers, aborted with the call; set by the pipeline. */
  inFlight: AttemptControl | undefined = undefined;
  /** Rejects with the abort reason when the call is aborted. */
  readonly aborted: Promise<never>;
  private readonly controller: AbortController;
  private readonly timer: NodeJS.Timeout;
  private reject!: (reason: Error) => void;

  constructor(totalMs: number, now: number) {
    this.controller = new AbortController();
    this.signal = this.controller.signal;
    this.deadlineAt = now + totalMs;
    this.aborted = new Promise<never>((_, reject) => {
      this.reject = reject;
    });
    this.aborted.catch(noop);
    this.timer = setTimeout(expire, totalMs, this);
  }

  /** The caller went away: abort everything, retry nothing. */
  cancel(): void {
    this.abort(new CallCancelledError('the caller went away'));
  }

  /** The call has its answer (or gave up): the deadline no longer applies, e.g. to a streaming body. */
  settle(): void {
    clearTimeout(this.timer);
  }

  abort(reason: Error): void {
    if (this.signal.aborted) return;
    clearTimeout(this.timer);
    this.controller.abort(reason);
    this.inFlight?.abort(reason);
    this.reject(reason);
  }
}

function expire(call: Call): void {
  call.abort(new DeadlineExceededError('timeouts.total passed before the vendor answered'));
}
