// What becomes of a delivery after one turn (docs/design.md, "Durable delivery"): 2xx/3xx → delivered; a status
// or failure that `retry.retryOn` names → queued again after backoff (up to delivery.maxBackoff, or the
// vendor's Retry-After), until maxAge; any other status → dead (refused). A turn the policy did not let
// reach the vendor (rate limit, full bulkhead, open circuit, unreadable credential, shutdown) is no
// attempt: the delivery goes back untried, due when the obstacle is expected to lift.
import type { ResolvedSpec } from '../api/resolve.ts';
import { backoffDelay } from '../policy/backoff.ts';
import { FailureMatcher, type FailureKind } from '../policy/classify.ts';
import { parseRetryAfter } from '../policy/retry-after.ts';
import type { Delivery, Settlement } from './store.ts';

export type TurnReport =
  /** The vendor answered. */
  | { readonly kind: 'response'; readonly status: number; readonly retryAfter: string | undefined }
  /** An attempt was sent and no answer came. */
  | { readonly kind: 'failure'; readonly failure: FailureKind | undefined; readonly retryable: boolean; readonly message: string }
  /** Nothing was sent; `retryInMs` is when trying again makes sense. */
  | { readonly kind: 'not-sent'; readonly reason: string; readonly retryInMs: number };

/** The delivery parts of a resolved spec the schedule reads. */
export type ScheduleSpec = Pick<ResolvedSpec, 'retry'> & { readonly delivery: NonNullable<ResolvedSpec['delivery']> };

export class DeliverySchedule {
  private readonly spec: ScheduleSpec;
  private readonly retryOn: FailureMatcher;
  private readonly random: () => number;

  constructor(spec: ScheduleSpec, random: () => number = Math.random) {
    this.spec = spec;
    this.retryOn = new FailureMatcher(spec.retry.retryOn);
    this.random = random;
  }

  /** Dead (expired) before any attempt: maxAge has passed. */
  expired(delivery: Delivery, now: number): boolean {
    return now >= delivery.expiresAt;
  }

  /** The `next` of the settlement for this turn, decided at `now`. */
  next(delivery: Delivery, report: TurnReport, now: number): Settlement['next'] {
    if (report.kind === 'not-sent') return this.later(delivery, now + report.retryInMs, report.reason);
    if (report.kind === 'failure') {
      if (!report.retryable || !this.retryOn.matchesKind(report.failure)) return { state: 'dead', reason: 'refused', error: report.message };
      return this.later(delivery, now + this.backoff(delivery.attempts + 1), report.message);
    }
    if (report.status < 400) return { state: 'delivered' };
    const error = `the vendor answered ${report.status}`;
    if (!this.retryOn.matchesStatus(report.status)) return { state: 'dead', reason: 'refused', error };
    const askedMs = this.spec.retry.respectRetryAfter ? parseRetryAfter(report.retryAfter, now) : undefined;
    return this.later(delivery, now + (askedMs ?? this.backoff(delivery.attempts + 1)), error);
  }

  /** Queued again at `at`, unless that is past maxAge: then at maxAge, where the next turn ends it expired. */
  private later(delivery: Delivery, at: number, error: string): Settlement['next'] {
    return { state: 'queued', at: Math.min(Math.round(at), delivery.expiresAt), error };
  }

  /** Exponential from retry.backoff, capped at delivery.maxBackoff rather than retry.backoff.max. */
  private backoff(attempt: number): number {
    return backoffDelay({ ...this.spec.retry.backoff, maxMs: this.spec.delivery.maxBackoffMs }, attempt, this.random);
  }
}
