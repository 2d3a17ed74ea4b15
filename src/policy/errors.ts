// Typed failures of one call. Each carries a stable `code` the sidecar turns into docs/design.md's error JSON;
// cockatiel's own errors (BrokenCircuitError, BulkheadRejectedError) are matched with its guards.
import type { SidecarErrorCode } from '../api/errors.ts';
import type { FailureKind } from './classify.ts';

export interface UpstreamFailureOptions extends ErrorOptions {
  /** False when trying again cannot help (a certificate that fails verification); true by default. */
  readonly retryable?: boolean;
}

/** The vendor gave no usable answer to one attempt: connect failure, reset or timeout. */
export class UpstreamFailure extends Error {
  override readonly name = 'UpstreamFailure';
  readonly code = 'upstream_unreachable' satisfies SidecarErrorCode;
  readonly kind: FailureKind | undefined;
  readonly retryable: boolean;

  constructor(kind: FailureKind | undefined, message: string, options: UpstreamFailureOptions = {}) {
    super(message, options);
    this.kind = kind;
    this.retryable = options.retryable ?? true;
  }
}

/** timeouts.total passed before the call had an answer. */
export class DeadlineExceededError extends Error {
  override readonly name = 'DeadlineExceededError';
  readonly code = 'deadline_exceeded' satisfies SidecarErrorCode;
}

/** No rate-limit token in time; `retryAfterMs` is when the next one is due. */
export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';
  readonly code = 'rate_limited' satisfies SidecarErrorCode;
  readonly retryAfterMs: number;

  constructor(retryAfterMs: number) {
    super(`no rate-limit token available; next in ${Math.ceil(retryAfterMs)}ms`);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The caller went away: the call is abandoned, never retried, and not held against the vendor. */
export class CallCancelledError extends Error {
  override readonly name = 'CallCancelledError';
  readonly code = 'cancelled';
}
