// What ended a proxied call, turned into the answer its caller gets, in one place: each typed failure
// becomes docs/design.md's error JSON (or the fallback, where it stands in), with its log line and
// its counter. A failure nobody foresaw is logged as such and answered as upstream_unreachable.
import type { ServerResponse } from 'node:http';
import { isBrokenCircuitError, isBulkheadRejectedError, isIsolatedCircuitError } from 'cockatiel';
import { CallCancelledError, DeadlineExceededError, RateLimitedError, UpstreamFailure } from '../policy/errors.ts';
import { RequestTooLargeError } from './body.ts';
import { CredentialsUnavailableError } from './credentials.ts';
import type { SidecarErrorCode } from '../api/errors.ts';
import { fallbackReplaces, toErrorResponse, type SidecarError } from './error-response.ts';
import type { Integration } from './integration.ts';

/**
 * Answers `res` for `error` after `attempts` attempts and returns the call's outcome label: `fallback`,
 * the error code, or `cancelled` (the caller left, so nothing is written). In observe mode the error
 * itself is answered, and the fallback that would have stood in for it (or for `wouldFail`, the error
 * enforce mode would have answered) is counted.
 */
export function rescue(res: ServerResponse, error: unknown, integration: Integration, attempts: number, wouldFail?: SidecarErrorCode): string {
  if (error instanceof CallCancelledError) return 'cancelled';
  let failure = describe(error, integration, attempts);
  if (failure === undefined) {
    integration.logger.error({ err: error }, 'unexpected failure while proxying');
    failure = { code: 'upstream_unreachable', message: `no response from the vendor after ${plural(attempts)}: ${(error as Error).message}` };
  }
  // forceOpen is obeyed in observe mode too, fallback included: only a policy's own decisions are observed.
  if (integration.observing && !isIsolatedCircuitError(error)) {
    observedFallback(integration, wouldFail ?? failure.code);
    return toErrorResponse(res, failure, { name: integration.name, attempts });
  }
  const outcome = toErrorResponse(res, failure, { name: integration.name, fallback: integration.fallback, attempts });
  if (outcome === 'fallback') integration.metrics.fallback();
  else if (outcome === 'rate_limited') integration.metrics.rateLimited();
  return outcome;
}

/** Observe mode: counts the fallback enforce mode would have served for a call it would have failed with `code`. */
export function observedFallback(integration: Integration, code: SidecarErrorCode | undefined): void {
  if (code !== undefined && integration.fallback && fallbackReplaces(code)) integration.metrics.observed('fallback');
}

/** The error JSON for a typed failure, or undefined for one nobody foresaw. */
function describe(error: unknown, integration: Integration, attempts: number): SidecarError | undefined {
  if (error instanceof UpstreamFailure) {
    if (error.cause instanceof RequestTooLargeError) return { code: 'request_too_large', message: error.cause.message };
    return { code: 'upstream_unreachable', message: `no response from the vendor after ${plural(attempts)}: ${error.message}` };
  }
  if (error instanceof RateLimitedError) return { code: 'rate_limited', message: error.message, retryAfterMs: error.retryAfterMs };
  if (isBulkheadRejectedError(error)) {
    const b = integration.spec.bulkhead!;
    return { code: 'bulkhead_full', message: `${b.maxConcurrent} calls in flight and ${b.maxQueued} waiting` };
  }
  if (isIsolatedCircuitError(error)) {
    return { code: 'circuit_open', message: 'the circuit is held open by circuitBreaker.forceOpen; the vendor is not called' };
  }
  if (isBrokenCircuitError(error)) {
    return {
      code: 'circuit_open',
      message: 'the circuit is open after repeated failures; the vendor is not called',
      retryAfterMs: integration.policy.msUntilHalfOpen(),
    };
  }
  if (error instanceof DeadlineExceededError) {
    return { code: 'deadline_exceeded', message: `no answer within ${integration.spec.timeouts.totalMs}ms (timeouts.total)` };
  }
  if (error instanceof RequestTooLargeError || error instanceof CredentialsUnavailableError) return { code: error.code, message: error.message };
  return undefined;
}

function plural(attempts: number): string {
  return attempts === 1 ? '1 attempt' : `${attempts} attempts`;
}
