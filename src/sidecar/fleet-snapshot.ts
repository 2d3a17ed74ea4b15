// What the fleet reporter samples, and where the shares it gets back go. Samples come from what the
// sidecar already observes: the metrics registry (breaker state, calls by outcome, delivery backlog)
// and, for each integration in service, whether a Secret it names was mounted into this pod at all.
import type { Registry } from 'prom-client';
import { CIRCUIT_STATES, type CircuitStateName } from '../api/fleet-report.ts';
import { METRIC_PREFIX } from '../runtime/metrics.ts';
import type { Integration } from './integration.ts';

/** One integration at one moment; the counters are cumulative since the sidecar started. */
export interface IntegrationSample {
  readonly name: string;
  readonly circuit: CircuitStateName;
  readonly calls: number;
  /** Failed calls by what failed: the sidecar's error code, or vendor_5xx. */
  readonly failures: ReadonlyMap<string, number>;
  readonly backlog: number;
  readonly needsRestart: boolean;
}

export type Snapshot = () => Promise<readonly IntegrationSample[]>;

interface Sample {
  readonly labels: Partial<Record<string, string | number>>;
  readonly value: number;
}

/** Outcomes that are the caller's own doing or a fast local answer, never the vendor's failure. */
const NOT_FAILURES = new Set(['upstream', 'cancelled', 'rate_limited', 'bulkhead_full', 'bad_request', 'request_too_large', 'unknown_integration']);

/**
 * A call failed when the vendor answered 5xx, or when the sidecar answered for it with an error that
 * means the vendor could not be reached in time (or a fallback that stands in for one).
 */
function failureOf(labels: Sample['labels']): string | undefined {
  const outcome = String(labels.outcome ?? '');
  if (outcome === 'upstream') return labels.code_class === '5xx' ? 'vendor_5xx' : undefined;
  return NOT_FAILURES.has(outcome) ? undefined : outcome;
}

export function fleetSnapshot(
  registry: Registry,
  table: { names(): string[]; get(name: string): Integration | undefined },
): Snapshot {
  const values = async (name: string): Promise<readonly Sample[]> => (await registry.getSingleMetric(`${METRIC_PREFIX}${name}`)?.get())?.values ?? [];
  return async () => {
    const [states, requests, backlogs] = await Promise.all([values('circuit_state'), values('requests_total'), values('delivery_backlog')]);
    return table.names().flatMap((name) => {
      const integration = table.get(name);
      if (!integration) return [];
      const mine = (samples: readonly Sample[]) => samples.filter((s) => s.labels.integration === name);
      const gauge = mine(states)[0]?.value ?? 0;
      let calls = 0;
      const failures = new Map<string, number>();
      for (const sample of mine(requests)) {
        calls += sample.value;
        const failure = failureOf(sample.labels);
        if (failure) failures.set(failure, (failures.get(failure) ?? 0) + sample.value);
      }
      return [
        {
          name,
          circuit: CIRCUIT_STATES[gauge] ?? 'open',
          calls,
          failures,
          backlog: mine(backlogs)[0]?.value ?? 0,
          needsRestart: integration.needsRestart,
        },
      ];
    });
  };
}

/**
 * Applies the operator's shares to the rate limiters of integrations whose quota is fleet-scoped, and
 * of global ones, whose local bucket limits calls while the shared one does not answer.
 */
export function fleetShares(table: { names(): string[]; get(name: string): Integration | undefined }): (shares: ReadonlyMap<string, number>) => void {
  return (shares) => {
    for (const name of table.names()) {
      const integration = table.get(name);
      const share = shares.get(name);
      if (share !== undefined && integration?.spec.rateLimit !== undefined && integration.spec.rateLimit.scope !== 'pod') integration.policy.limiter?.setShare(share);
    }
  };
}
