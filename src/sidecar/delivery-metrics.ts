// docs/design.md's durable-delivery metrics. The gauges are read from the store (every sidecar on a shared
// store reports the same backlog), the counters count what this sidecar did. Labels are bounded: the
// integration, a result of three, an outcome that is a status class or a failure kind.
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../runtime/metrics.ts';

export const DELIVERY_RESULTS = ['delivered', 'dead', 'expired'] as const;
export type DeliveryResult = (typeof DELIVERY_RESULTS)[number];

export class DeliveryMetrics {
  readonly deliveries: Counter<'integration' | 'result'>;
  readonly backlog: Gauge<'integration'>;
  readonly oldestSeconds: Gauge<'integration'>;
  readonly attempts: Counter<'integration' | 'outcome'>;
  readonly deadLetters: Gauge<'integration'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const p = METRIC_PREFIX;
    this.deliveries = new Counter({
      name: `${p}deliveries_total`,
      help: 'Durable deliveries ended by this sidecar: delivered, dead (refused by the vendor) or expired (maxAge passed).',
      labelNames: ['integration', 'result'],
      registers,
    });
    this.backlog = new Gauge({ name: `${p}delivery_backlog`, help: 'Deliveries queued or being delivered, in the store.', labelNames: ['integration'], registers });
    this.oldestSeconds = new Gauge({
      name: `${p}delivery_oldest_seconds`,
      help: 'Age of the oldest delivery not yet ended; 0 when there is none.',
      labelNames: ['integration'],
      registers,
    });
    this.attempts = new Counter({
      name: `${p}delivery_attempts_total`,
      help: 'Delivery attempts sent, by outcome: the status class of the answer, or the failure (connect-failure, reset, timeout, error).',
      labelNames: ['integration', 'outcome'],
      registers,
    });
    this.deadLetters = new Gauge({ name: `${p}dead_letters`, help: 'Deliveries ended dead and not purged.', labelNames: ['integration'], registers });
  }

  /** Drops every series of an integration that no longer delivers here. */
  remove(integration: string): void {
    for (const result of DELIVERY_RESULTS) this.deliveries.remove(integration, result);
    for (const gauge of [this.backlog, this.oldestSeconds, this.deadLetters]) gauge.remove(integration);
    this.attempts.remove({ integration });
  }
}
