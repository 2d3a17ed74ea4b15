// The operator's metrics, all in one place: what it reconciled, how long that took, how much work is
// waiting, whether this replica leads, and how it talks to the API server.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../runtime/metrics.ts';

const P = `${METRIC_PREFIX}operator_`;

export type ReconcileResult = 'success' | 'error' | 'requeue_after' | 'terminal_error';

export interface OperatorMetrics {
  readonly reconciles: Counter<'result'>;
  readonly reconcileErrors: Counter;
  readonly reconcileDuration: Histogram;
  readonly queueDepth: Gauge;
  readonly leader: Gauge;
  readonly apiRequests: Counter<'verb' | 'code'>;
  readonly informerEvents: Counter<'resource' | 'event'>;
}

export function createOperatorMetrics(registry: Registry): OperatorMetrics {
  const registers = [registry];
  return {
    reconciles: new Counter({
      name: `${P}reconcile_total`,
      help: 'Namespace reconciles by result.',
      labelNames: ['result'],
      registers,
    }),
    reconcileErrors: new Counter({ name: `${P}reconcile_errors_total`, help: 'Reconciles that failed.', registers }),
    reconcileDuration: new Histogram({
      name: `${P}reconcile_duration_seconds`,
      help: 'Time to reconcile one namespace.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    queueDepth: new Gauge({ name: `${P}queue_depth`, help: 'Namespaces waiting to be reconciled.', registers }),
    leader: new Gauge({ name: `${P}leader`, help: '1 while this replica holds the leader Lease, else 0.', registers }),
    apiRequests: new Counter({
      name: `${P}api_requests_total`,
      help: 'Requests to the Kubernetes API server by verb and HTTP status (0: no response).',
      labelNames: ['verb', 'code'],
      registers,
    }),
    informerEvents: new Counter({
      name: `${P}informer_events_total`,
      help: 'List/watch lifecycle events by resource (listed, watching, watch-ended, expired, stalled, error).',
      labelNames: ['resource', 'event'],
      registers,
    }),
  };
}
