// docs/design.md's sidecar metrics. Label values are bounded: integration names come from the config, methods
// from a fixed set (anything else is OTHER), status classes and outcomes from short fixed lists. An
// integration retired by a reload takes its series with it.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { HTTP_METHODS } from '../api/defaults.ts';
import { OBSERVED_DECISIONS, type ObservedDecision } from '../policy/observe.ts';
import { METRIC_PREFIX } from '../runtime/metrics.ts';
import { DeliveryMetrics } from './delivery-metrics.ts';

const METHODS = new Set<string>(HTTP_METHODS);
const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];
// Third-party calls take milliseconds to tens of seconds; the top bucket sits above a 10s deadline.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Circuit state gauge values (docs/design.md): 0 closed, 1 half-open, 2 open. */
export const CIRCUIT_GAUGE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** The circuit state of each integration in service, as gauge values, read at every scrape. */
export type CircuitStates = () => Iterable<readonly [integration: string, value: number]>;

export class SidecarMetrics {
  readonly requests: Counter<'integration' | 'method' | 'code_class' | 'outcome'>;
  readonly requestDuration: Histogram<'integration' | 'outcome'>;
  readonly attemptDuration: Histogram<'integration' | 'outcome'>;
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
    this.requests = new Counter({
      name: `${p}requests_total`,
      help: 'Calls answered, by status class and outcome (upstream, fallback, cancelled or a sidecar error code).',
      labelNames: ['integration', 'method', 'code_class', 'outcome'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: `${p}request_duration_seconds`,
      help: 'Time from request to response headers, every attempt and wait included.',
      labelNames: ['integration', 'outcome'],
      buckets: BUCKETS,
      registers,
    });
    this.attemptDuration = new Histogram({
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
 * The per-call series are children looked up once per label set and kept, which saves building a
 * label object per call (prom-client still validates and hashes the child's labels on each update).
 * A call still in flight when its integration is retired records nothing when it ends: its update
 * would bring back a series that nothing removes any more.
 */
export class IntegrationMetrics {
  readonly name: string;
  private readonly metrics: SidecarMetrics;
  private removed = false;
  private readonly requestChildren = new Map<string, { inc(): void }>();
  private readonly durationChildren = new Map<string, { observe(seconds: number): void }>();
  private readonly observedChildren = new Map<ObservedDecision, { inc(): void }>();
  private readonly attemptChildren: { response?: { observe(seconds: number): void }; error?: { observe(seconds: number): void } } = {};

  constructor(metrics: SidecarMetrics, name: string) {
    this.metrics = metrics;
    this.name = name;
  }

  request(method: string, status: number, outcome: string, seconds: number): void {
    if (this.removed) return;
    const m = METHODS.has(method) ? method : 'OTHER';
    const codeClass = CODE_CLASSES[Math.floor(status / 100) - 1] ?? '5xx';
    const key = `${m} ${codeClass} ${outcome}`;
    let child = this.requestChildren.get(key);
    if (child === undefined) {
      child = this.metrics.requests.labels(this.name, m, codeClass, outcome);
      this.requestChildren.set(key, child);
    }
    child.inc();
    let duration = this.durationChildren.get(outcome);
    if (duration === undefined) {
      duration = this.metrics.requestDuration.labels(this.name, outcome);
      this.durationChildren.set(outcome, duration);
    }
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
    (this.attemptChildren[outcome] ??= this.metrics.attemptDuration.labels(this.name, outcome)).observe(seconds);
  }

  remove(): void {
    this.removed = true;
    const m = this.metrics;
    for (const key of this.requestChildren.keys()) {
      const [method, codeClass, outcome] = key.split(' ') as [string, string, string];
      m.requests.remove(this.name, method, codeClass, outcome);
    }
    for (const outcome of this.durationChildren.keys()) m.requestDuration.remove(this.name, outcome);
    for (const outcome of ['response', 'error']) m.attemptDuration.remove(this.name, outcome);
    for (const decision of this.observedChildren.keys()) m.observedDecisions.remove(this.name, decision);
    for (const to of Object.keys(CIRCUIT_GAUGE)) m.circuitTransitions.remove(this.name, to);
    for (const metric of [m.retries, m.retryBudgetExhausted, m.circuitState, m.rateLimited, m.rateLimitFallbacks, m.bulkheadRejected, m.fallbacks]) metric.remove(this.name);
  }
}
