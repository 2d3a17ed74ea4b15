// docs/design.md's sidecar metrics. Label values are bounded: integration names come from the config, methods
// from a fixed set (anything else is OTHER), status classes and outcomes from short fixed lists. An
// integration retired by a reload takes its series with it.
import { Counter, Gauge, type Registry } from 'prom-client';
import { HTTP_METHODS } from '../api/defaults.ts';
import { OBSERVED_DECISIONS, type ObservedDecision } from '../policy/observe.ts';
import { METRIC_PREFIX } from '../runtime/metrics.ts';
import { SeriesCounter, SeriesHistogram, type CounterSeries, type HistogramSeries } from '../runtime/series-metrics.ts';
import { DeliveryMetrics } from './delivery-metrics.ts';

const METHODS = new Set<string>(HTTP_METHODS);
const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** The index of `status`'s class in CODE_CLASSES; a status outside 100–599 counts as 5xx. */
function statusClassIndex(status: number): number {
  const index = Math.floor(status / 100) - 1;
  return index >= 0 && index < CODE_CLASSES.length ? index : CODE_CLASSES.length - 1;
}

/** The `code` label of a status: `2xx` … `5xx`. */
export function statusClass(status: number): string {
  return CODE_CLASSES[statusClassIndex(status)]!;
}
// Third-party calls take milliseconds to tens of seconds; the top bucket sits above a 10s deadline.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Circuit state gauge values (docs/design.md): 0 closed, 1 half-open, 2 open. */
export const CIRCUIT_GAUGE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** The circuit state of each integration in service, as gauge values, read at every scrape. */
export type CircuitStates = () => Iterable<readonly [integration: string, value: number]>;

export class SidecarMetrics {
  // Updated by every call: series the call's path holds (series-metrics.ts), not prom-client's.
  readonly requests: SeriesCounter<'integration' | 'method' | 'code_class' | 'outcome'>;
  readonly requestDuration: SeriesHistogram<'integration' | 'outcome'>;
  readonly attemptDuration: SeriesHistogram<'integration' | 'outcome'>;
  readonly retries: Counter<'integration'>;
  readonly retryBudgetExhausted: Counter<'integration'>;
  readonly circuitState: Gauge<'integration'>;
  readonly circuitTransitions: Counter<'integration' | 'to'>;
  readonly rateLimited: Counter<'integration'>;
  readonly rateLimitFallbacks: Counter<'integration'>;
  readonly bulkheadRejected: Counter<'integration'>;
  readonly fallbacks: Counter<'integration'>;
  readonly observedDecisions: Counter<'integration' | 'decision'>;
  readonly configReloads: Counter<'result'>;
  readonly unknownIntegration: Counter;
  readonly delivery: DeliveryMetrics;

  constructor(registry: Registry, circuitStates: CircuitStates = () => []) {
    const registers = [registry];
    const p = METRIC_PREFIX;
    this.requests = new SeriesCounter({
      name: `${p}requests_total`,
      help: 'Calls answered, by status class and outcome (upstream, fallback, cancelled or a sidecar error code).',
      labelNames: ['integration', 'method', 'code_class', 'outcome'],
      registers,
    });
    this.requestDuration = new SeriesHistogram({
      name: `${p}request_duration_seconds`,
      help: 'Time from request to response headers, every attempt and wait included.',
      labelNames: ['integration', 'outcome'],
      buckets: BUCKETS,
      registers,
    });
    this.attemptDuration = new SeriesHistogram({
      name: `${p}attempt_duration_seconds`,
      help: 'Time of one attempt to response headers (outcome response) or failure (outcome error).',
      labelNames: ['integration', 'outcome'],
      buckets: BUCKETS,
      registers,
    });
    this.retries = new Counter({ name: `${p}retries_total`, help: 'Retries sent.', labelNames: ['integration'], registers });
    this.retryBudgetExhausted = new Counter({
      name: `${p}retry_budget_exhausted_total`,
      help: 'Calls not retried because the retry budget was spent; the caller got the last attempt\'s outcome.',
      labelNames: ['integration'],
      registers,
    });
    // Read at scrape time rather than set on the breaker's events: an open breaker only turns
    // half-open when a call arrives, so an idle integration would report open long after
    // halfOpenAfter let the next call through as the probe.
    this.circuitState = new Gauge({
      name: `${p}circuit_state`,
      help: 'Circuit breaker state: 0 closed, 1 half-open (also: open, but the next call will be the probe), 2 open.',
      labelNames: ['integration'],
      registers,
      collect() {
        for (const [integration, value] of circuitStates()) this.set({ integration }, value);
      },
    });
    this.circuitTransitions = new Counter({
      name: `${p}circuit_transitions_total`,
      help: 'Circuit breaker state changes, by the state entered.',
      labelNames: ['integration', 'to'],
      registers,
    });
    this.rateLimited = new Counter({ name: `${p}rate_limited_total`, help: 'Calls rejected by the rate limiter.', labelNames: ['integration'], registers });
    this.rateLimitFallbacks = new Counter({
      name: `${p}rate_limit_fallback_total`,
      help: "rateLimit.scope global: calls the local bucket (this pod's share of the quota) limited because the shared one in Redis did not answer in time.",
      labelNames: ['integration'],
      registers,
    });
    this.bulkheadRejected = new Counter({ name: `${p}bulkhead_rejected_total`, help: 'Calls rejected by a full bulkhead.', labelNames: ['integration'], registers });
    this.fallbacks = new Counter({ name: `${p}fallbacks_total`, help: 'Fallback responses served.', labelNames: ['integration'], registers });
    this.observedDecisions = new Counter({
      name: `${p}observed_decisions_total`,
      help: `Integrations in mode observe: what the policy would have done and did not, by decision (${OBSERVED_DECISIONS.join(', ')}). Each compares with what enforce mode counts: retries_total, requests_total by outcome (circuit_open, deadline_exceeded, upstream_unreachable), rate_limited_total, bulkhead_rejected_total, fallbacks_total.`,
      labelNames: ['integration', 'decision'],
      registers,
    });
    this.configReloads = new Counter({ name: `${p}config_reloads_total`, help: 'Config loads, by result.', labelNames: ['result'], registers });
    // No label for the name: it comes from the caller, so its values would be unbounded.
    this.unknownIntegration = new Counter({
      name: `${p}unknown_integration_total`,
      help: 'Calls answered 404 unknown_integration: the path names no integration this sidecar serves (a typo, or one the pod was not given).',
      registers,
    });
    this.delivery = new DeliveryMetrics(registry);
  }

  forIntegration(name: string): IntegrationMetrics {
    return new IntegrationMetrics(this, name);
  }
}

/**
 * One integration's series; remembers every label set it used so that `remove()` can drop them all.
 * The per-call series are kept by outcome, then method (both strings from fixed sets, whose hashes V8
 * keeps), then status class, so a call's updates build no key and hash nothing.
 * A call still in flight when its integration is retired records nothing when it ends: its update
 * would bring back a series that nothing removes any more.
 */
export class IntegrationMetrics {
  readonly name: string;
  private readonly metrics: SidecarMetrics;
  private removed = false;
  private readonly requestSeries = new Map<string, Map<string, (CounterSeries | undefined)[]>>();
  private readonly durationSeries = new Map<string, HistogramSeries>();
  private readonly observedChildren = new Map<ObservedDecision, { inc(): void }>();
  private readonly attemptSeries: { response?: HistogramSeries; error?: HistogramSeries } = {};

  constructor(metrics: SidecarMetrics, name: string) {
    this.metrics = metrics;
    this.name = name;
  }

  request(method: string, status: number, outcome: string, seconds: number): void {
    if (this.removed) return;
    const m = METHODS.has(method) ? method : 'OTHER';
    const classIndex = statusClassIndex(status);
    let byMethod = this.requestSeries.get(outcome);
    if (byMethod === undefined) this.requestSeries.set(outcome, (byMethod = new Map()));
    let byClass = byMethod.get(m);
    if (byClass === undefined) byMethod.set(m, (byClass = []));
    (byClass[classIndex] ??= this.metrics.requests.labels(this.name, m, CODE_CLASSES[classIndex]!, outcome)).inc();
    let duration = this.durationSeries.get(outcome);
    if (duration === undefined) this.durationSeries.set(outcome, (duration = this.metrics.requestDuration.labels(this.name, outcome)));
    duration.observe(seconds);
  }

  fallback(): void {
    if (this.removed) return;
    this.metrics.fallbacks.inc({ integration: this.name });
  }

  rateLimited(): void {
    if (this.removed) return;
    this.metrics.rateLimited.inc({ integration: this.name });
  }

  rateLimitFallback(): void {
    if (this.removed) return;
    this.metrics.rateLimitFallbacks.inc({ integration: this.name });
  }

  retryBudgetExhausted(): void {
    if (this.removed) return;
    this.metrics.retryBudgetExhausted.inc({ integration: this.name });
  }

  observed(decision: ObservedDecision): void {
    if (this.removed) return;
    let child = this.observedChildren.get(decision);
    if (child === undefined) {
      child = this.metrics.observedDecisions.labels(this.name, decision);
      this.observedChildren.set(decision, child);
    }
    child.inc();
  }

  attempt(outcome: 'response' | 'error', seconds: number): void {
    if (this.removed) return;
    (this.attemptSeries[outcome] ??= this.metrics.attemptDuration.labels(this.name, outcome)).observe(seconds);
  }

  remove(): void {
    this.removed = true;
    const m = this.metrics;
    for (const [outcome, byMethod] of this.requestSeries) {
      for (const [method, byClass] of byMethod) byClass.forEach((_, i) => m.requests.remove(this.name, method, CODE_CLASSES[i]!, outcome));
    }
    for (const outcome of this.durationSeries.keys()) m.requestDuration.remove(this.name, outcome);
    for (const outcome of ['response', 'error']) m.attemptDuration.remove(this.name, outcome);
    for (const decision of this.observedChildren.keys()) m.observedDecisions.remove(this.name, decision);
    for (const to of Object.keys(CIRCUIT_GAUGE)) m.circuitTransitions.remove(this.name, to);
    for (const metric of [m.retries, m.retryBudgetExhausted, m.circuitState, m.rateLimited, m.rateLimitFallbacks, m.bulkheadRejected, m.fallbacks]) metric.remove(this.name);
  }
}
