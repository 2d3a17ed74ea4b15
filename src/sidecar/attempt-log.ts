// The debug log of one call's attempts (`--log-level debug`): each attempt's outcome and what followed,
// a retry after a wait or the reason there was none, in the integration's own terms (retry.methods,
// retry.budget, retry.maxRetryAfter) so the line says which setting to look at.
import type { AttemptReport, RetryStop } from '../policy/attempt-report.ts';
import type { Integration } from './integration.ts';

export interface LoggedCall {
  readonly method: string;
  /** The caller's path without its query. */
  readonly loggedPath: string;
  readonly requestId: string;
  /** False when the body was streamed, so the request could not be sent twice. */
  readonly bodyReplayable: boolean;
}

export function attemptLogger(integration: Integration, call: LoggedCall): (report: AttemptReport) => void {
  return (report) => {
    const reason = report.next === 'retry' || report.next === 'done' ? undefined : whyNotRetried(integration, call, report, report.next);
    const head = `attempt ${report.attempt}: ${report.outcome}`;
    integration.logger.debug(
      {
        method: call.method,
        path: call.loggedPath,
        requestId: call.requestId,
        attempt: report.attempt,
        outcome: report.outcome,
        ...(report.error !== undefined && { error: report.error }),
        next: report.next,
        ...(report.retryInMs !== undefined && { retryInMs: Math.round(report.retryInMs) }),
        ...(reason !== undefined && { reason }),
      },
      report.next === 'retry' ? `${head}, retrying in ${Math.round(report.retryInMs!)}ms` : reason ? `${head}, not retried: ${reason}` : head,
    );
  };
}

function whyNotRetried(integration: Integration, call: LoggedCall, report: AttemptReport, stop: RetryStop): string {
  const { retry, timeouts } = integration.spec;
  switch (stop) {
    case 'not-replayable':
      return call.bodyReplayable
        ? `${call.method} is not in retry.methods and the request carries no usable ${integration.idempotencyHeader} header`
        : 'the body is larger than --retry-buffer and was streamed, so it cannot be sent again';
    case 'attempts':
      return `retry.maxAttempts (${retry.maxAttempts}) reached`;
    case 'budget':
      return `the retry budget is spent (retry.budget: ${retry.budget.percent}% of the calls in the last ${retry.budget.windowMs / 1000}s, ${retry.budget.minPerSecond}/s always)`;
    case 'retry-after':
      return `Retry-After ${report.retryAfter} is longer than retry.maxRetryAfter (${retry.maxRetryAfterMs}ms)`;
    case 'deadline':
      return `the next attempt could not start before timeouts.total (${timeouts.totalMs}ms)`;
    case 'cancelled':
      return 'the caller went away';
    case 'circuit-open':
      return 'the circuit opened';
  }
}
