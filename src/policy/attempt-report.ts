// What the retry loop decided after each attempt, for a debug log that explains a call: the outcome of
// every attempt, and why the last one that was worth retrying (retry.retryOn) was not.
import type { FailureKind } from './classify.ts';

/** Why an outcome worth retrying was not retried. */
export type RetryStop =
  /**
   * The request may not be sent twice: its method, without an idempotency key, or a streamed body; or
   * its owner retries it on a schedule of its own.
   */
  | 'not-replayable'
  /** retry.maxAttempts attempts were sent. */
  | 'attempts'
  /** The retry budget is spent. */
  | 'budget'
  /** The vendor's Retry-After is longer than retry.maxRetryAfter. */
  | 'retry-after'
  /** The next attempt could not start before timeouts.total. */
  | 'deadline'
  /** The caller went away. */
  | 'cancelled'
  /** The attempt opened the circuit. */
  | 'circuit-open';

export interface AttemptReport {
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** The vendor's status, or the failure kind when no response came (`error` when unclassified). */
  readonly outcome: number | FailureKind | 'error';
  /** What went wrong when no response came. */
  readonly error?: string;
  /** `retry`, `done` when the outcome is not worth retrying, or why it is not retried. */
  readonly next: 'retry' | 'done' | RetryStop;
  /** The wait before the retry. */
  readonly retryInMs?: number;
  /** The vendor's Retry-After, when it ended the retries. */
  readonly retryAfter?: string;
}
