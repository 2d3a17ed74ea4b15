// One integration compiled from its resource: the policy stack, the upstream pool, the credential
// and the precomputed header rules. Built once per config load (and kept across loads while its spec
// is unchanged); the request path only reads it.
import { createHash } from 'node:crypto';
import { CircuitState, type IDisposable } from 'cockatiel';
import { resolveSpec, type ResolvedSpec } from '../api/resolve.ts';
import type { ExternalIntegration } from '../api/schema.ts';
import { CompiledPolicy, type PolicyOptions } from '../policy/pipeline.ts';
import type { Logger } from '../runtime/logger.ts';
import { CallLog } from './call-log.ts';
import { SecretFile } from './credentials.ts';
import { prepareFallback, type PreparedFallback } from './error-response.ts';
import type { HeaderRules } from './headers.ts';
import { CIRCUIT_GAUGE, type IntegrationMetrics, type SidecarMetrics } from './metrics.ts';
import type { RedisRateLimits } from './redis-rate-limits.ts';
import { Upstream } from './upstream.ts';
import { sendAttempt, type Outbound, type UpstreamResponse } from './upstream-response.ts';

export interface IntegrationContext {
  /** The integrations this sidecar serves (the pod's selection); every one in the file when undefined. */
  readonly only?: ReadonlySet<string>;
  readonly secretsDir: string;
  readonly secretPollMs: number;
  readonly maxConnectionsPerUpstream: number;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  readonly policy: PolicyOptions;
  /** The shared buckets of rateLimit.scope global: there when the delivery store is a Redis. */
  readonly sharedLimits?: RedisRateLimits;
}

const STATE_NAMES: Record<CircuitState, keyof typeof CIRCUIT_GAUGE> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'open',
};

const readable = (file: SecretFile | undefined): boolean => file === undefined || file.value !== undefined;

/** Identity of an integration's configuration: equal keys mean nothing about it changed. */
export function integrationKey(doc: ExternalIntegration): string {
  return createHash('sha256').update(doc.metadata.name).update('\0').update(JSON.stringify(doc.spec)).digest('hex');
}

export class Integration implements HeaderRules {
  readonly name: string;
  readonly key: string;
  readonly spec: ResolvedSpec;
  /** Every call and delivery of this integration goes through this one stack, composed at load. */
  readonly policy: CompiledPolicy<Outbound, UpstreamResponse>;
  readonly upstream: Upstream;
  readonly metrics: IntegrationMetrics;
  readonly logger: Logger;
  /** The info line of each call, on `logger`. */
  readonly callLog: CallLog;
  /** spec.mode observe: calls pass through, and the policy only counts what it would have done. */
  readonly observing: boolean;
  /** Attempts are logged one by one (`--log-level debug`). */
  readonly logsAttempts: boolean;
  readonly idempotencyHeader: string;
  readonly authHeader: string | undefined;
  readonly fallback: PreparedFallback | undefined;
  private readonly authPrefix: string;
  private readonly secret: SecretFile | undefined;
  private readonly subscriptions: IDisposable[];

  constructor(doc: ExternalIntegration, key: string, context: IntegrationContext) {
    this.name = doc.metadata.name;
    this.key = key;
    this.spec = resolveSpec(doc.spec);
    this.observing = this.spec.mode === 'observe';
    this.logger = context.logger.child({ integration: this.name });
    this.callLog = new CallLog(this.logger);
    this.logsAttempts = this.logger.isLevelEnabled('debug');
    const rateLimit = this.spec.rateLimit;
    const global = rateLimit?.scope === 'global';
    const bucketName = doc.metadata.namespace ? `${doc.metadata.namespace}/${this.name}` : this.name;
    const sharedBucket = global && context.sharedLimits?.bucket(bucketName, rateLimit);
    this.policy = new CompiledPolicy(this.spec, sendAttempt, sharedBucket ? { ...context.policy, sharedBucket } : context.policy);
    if (global && !sharedBucket) {
      this.logger.warn(
        'rateLimit.scope global needs the Redis of a redis:// delivery store, and this sidecar has none: the quota is split across the pods as with scope fleet',
      );
    }
    this.upstream = new Upstream(this.spec, {
      secretsDir: context.secretsDir,
      secretPollMs: context.secretPollMs,
      // In observe mode the bulkhead only counts: a pool its size would still make calls wait.
      maxConnections: this.spec.bulkhead && !this.observing ? this.spec.bulkhead.maxConcurrent : context.maxConnectionsPerUpstream,
      logger: this.logger,
    });
    this.idempotencyHeader = this.policy.idempotency.header;
    this.fallback = this.spec.fallback && prepareFallback(this.spec.fallback);
    const auth = this.spec.auth;
    this.authHeader = auth?.header.toLowerCase();
    this.authPrefix = auth?.prefix ?? '';
    this.secret = auth && new SecretFile(context.secretsDir, auth.secretRef, { what: 'auth credential', pollMs: context.secretPollMs, logger: this.logger });

    const m = context.metrics;
    this.metrics = m.forIntegration(this.name);
    const labels = { integration: this.name };
    this.subscriptions = [
      this.policy.breaker.onStateChange((state) => {
        const to = STATE_NAMES[state];
        m.circuitTransitions.inc({ integration: this.name, to });
        this.logger.warn({ circuit: to }, `circuit ${to}`);
      }),
      this.policy.onRetry(() => m.retries.inc(labels)),
      this.policy.onBudgetRefused(() => this.metrics.retryBudgetExhausted()),
      this.policy.onObserved((decision) => this.metrics.observed(decision)),
      this.policy.onLimiterFallback(({ error, outageStarts }) => {
        this.metrics.rateLimitFallback();
        if (outageStarts) this.logger.warn({ err: error }, "the shared rate-limit bucket does not answer: this pod's share of the quota limits calls until it does");
      }),
      this.policy.onLimiterRecovered(() => this.logger.info('the shared rate-limit bucket answers again')),
      ...(this.policy.bulkhead ? [this.policy.bulkhead.onReject(() => m.bulkheadRejected.inc(labels))] : []),
    ];
    // Held open from the start, so no transition announces it.
    if (this.spec.circuitBreaker.forceOpen) this.logger.warn({ circuit: 'open' }, 'circuit held open by circuitBreaker.forceOpen');
  }

  /** The breaker's state for the circuit_state gauge. */
  get circuitGauge(): number {
    return CIRCUIT_GAUGE[STATE_NAMES[this.policy.circuitState()]];
  }

  /** The credential header's value, read from the (possibly rotated) Secret file. */
  get authValue(): string | undefined {
    const value = this.secret?.value;
    return value === undefined ? undefined : this.authPrefix + value;
  }

  /**
   * Every secret file this integration needs can be read. Without one, a call would reach the vendor
   * unauthenticated (or trusting the wrong certificates), so none is sent: credentials_unavailable.
   */
  get secretsAvailable(): boolean {
    return readable(this.secret) && readable(this.upstream.ca);
  }

  /** A secret file it needs is not mounted into this pod, so only a restart brings it. */
  get needsRestart(): boolean {
    return this.secret?.notMounted === true || this.upstream.ca?.notMounted === true;
  }

  /** Each secret file it cannot read: what it holds and why, for the error message. */
  unavailableSecrets(): string[] {
    return [this.secret, this.upstream.ca].filter((file) => !readable(file)).map((file) => `${file!.what}: ${file!.problem}`);
  }

  /**
   * Taken out of service by a reload. Calls in flight finish on the pool, which closes after them.
   * `removeSeries` drops its metrics unless a successor with the same name keeps reporting them.
   */
  retire(removeSeries: boolean): void {
    for (const s of this.subscriptions) s.dispose();
    this.secret?.close();
    if (removeSeries) this.metrics.remove();
    this.upstream.close().catch((error: Error) => this.logger.warn({ err: error }, 'closing the upstream pool failed'));
  }
}
