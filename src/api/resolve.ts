// A validated spec with every default filled in and every duration in milliseconds: what the policy
// compiler and the sidecar consume, so neither reads the defaults table nor parses a duration.
import { DEFAULTS, RETRY_BUDGET_WINDOW, type IDEMPOTENCY_KEY_MODES, type JITTER_MODES, type POLICY_MODES, type RATE_LIMIT_SCOPES, type WHEN_EXCEEDED } from './defaults.ts';
import { parseDuration } from './duration.ts';
import type { ExternalIntegrationSpec } from './schema.ts';

export interface SecretKeyRef {
  readonly name: string;
  readonly key: string;
}

export interface ResolvedSpec {
  readonly mode: (typeof POLICY_MODES)[number];
  readonly upstream: {
    readonly url: string;
    readonly tls?: { readonly serverName?: string; readonly caSecretRef?: SecretKeyRef; readonly insecureSkipVerify: boolean };
  };
  readonly timeouts: { readonly connectMs: number; readonly perAttemptMs: number; readonly totalMs: number };
  readonly retry: {
    readonly maxAttempts: number;
    readonly backoff: {
      readonly initialMs: number;
      readonly maxMs: number;
      readonly multiplier: number;
      readonly jitter: (typeof JITTER_MODES)[number];
    };
    readonly retryOn: readonly string[];
    readonly methods: readonly string[];
    readonly idempotencyHeader: string;
    readonly idempotencyKey: (typeof IDEMPOTENCY_KEY_MODES)[number];
    readonly respectRetryAfter: boolean;
    readonly maxRetryAfterMs: number;
    /** `windowMs` is fixed (RETRY_BUDGET_WINDOW), not part of the spec. */
    readonly budget: { readonly percent: number; readonly minPerSecond: number; readonly windowMs: number };
  };
  readonly circuitBreaker: {
    readonly mode:
      | { readonly kind: 'consecutive'; readonly failures: number }
      | { readonly kind: 'failure-rate'; readonly threshold: number; readonly windowMs: number; readonly minimumRequests: number };
    /** Only with the failure-rate mode: its window counts the slow calls too. */
    readonly slowCall?: { readonly durationMs: number; readonly threshold: number };
    readonly forceOpen: boolean;
    readonly halfOpenAfterMs: number;
    readonly failOn: readonly string[];
  };
  readonly rateLimit?: {
    readonly requests: number;
    readonly perMs: number;
    readonly burst: number;
    readonly whenExceeded: (typeof WHEN_EXCEEDED)[number];
    readonly maxQueueWaitMs: number;
    readonly scope: (typeof RATE_LIMIT_SCOPES)[number];
  };
  readonly bulkhead?: { readonly maxConcurrent: number; readonly maxQueued: number };
  readonly fallback?: { readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly body: string };
  readonly auth?: { readonly header: string; readonly prefix: string; readonly secretRef: SecretKeyRef };
  readonly delivery?: {
    readonly maxAgeMs: number;
    readonly maxBackoffMs: number;
    readonly maxBacklog: number;
    readonly retainMs: number;
    readonly callbackUrl?: string;
  };
}

export function resolveSpec(spec: ExternalIntegrationSpec): ResolvedSpec {
  const t = spec.timeouts ?? {};
  const r = spec.retry ?? {};
  const b = r.backoff ?? {};
  const cb = spec.circuitBreaker ?? {};
  const dr = DEFAULTS.retry;
  return {
    mode: spec.mode ?? DEFAULTS.mode,
    upstream: {
      url: spec.upstream.url,
      ...(spec.upstream.tls && {
        tls: { ...spec.upstream.tls, insecureSkipVerify: spec.upstream.tls.insecureSkipVerify ?? false },
      }),
    },
    timeouts: {
      connectMs: parseDuration(t.connect ?? DEFAULTS.timeouts.connect),
      perAttemptMs: parseDuration(t.perAttempt ?? DEFAULTS.timeouts.perAttempt),
      totalMs: parseDuration(t.total ?? DEFAULTS.timeouts.total),
    },
    retry: {
      maxAttempts: r.maxAttempts ?? dr.maxAttempts,
      backoff: {
        initialMs: parseDuration(b.initial ?? dr.backoff.initial),
        maxMs: parseDuration(b.max ?? dr.backoff.max),
        multiplier: b.multiplier ?? dr.backoff.multiplier,
        jitter: b.jitter ?? dr.backoff.jitter,
      },
      retryOn: r.retryOn ?? dr.retryOn,
      methods: r.methods ?? dr.methods,
      idempotencyHeader: r.idempotencyHeader ?? dr.idempotencyHeader,
      idempotencyKey: r.idempotencyKey ?? dr.idempotencyKey,
      respectRetryAfter: r.respectRetryAfter ?? dr.respectRetryAfter,
      maxRetryAfterMs: parseDuration(r.maxRetryAfter ?? dr.maxRetryAfter),
      budget: {
        percent: r.budget?.percent ?? dr.budget.percent,
        minPerSecond: r.budget?.minPerSecond ?? dr.budget.minPerSecond,
        windowMs: parseDuration(RETRY_BUDGET_WINDOW),
      },
    },
    circuitBreaker: {
      mode: cb.failureRate
        ? {
            kind: 'failure-rate',
            threshold: cb.failureRate.threshold,
            windowMs: parseDuration(cb.failureRate.window),
            minimumRequests: cb.failureRate.minimumRequests,
          }
        : { kind: 'consecutive', failures: cb.consecutiveFailures ?? DEFAULTS.circuitBreaker.consecutiveFailures },
      ...(cb.slowCall && { slowCall: { durationMs: parseDuration(cb.slowCall.duration), threshold: cb.slowCall.threshold } }),
      forceOpen: cb.forceOpen ?? DEFAULTS.circuitBreaker.forceOpen,
      halfOpenAfterMs: parseDuration(cb.halfOpenAfter ?? DEFAULTS.circuitBreaker.halfOpenAfter),
      failOn: cb.failOn ?? DEFAULTS.circuitBreaker.failOn,
    },
    ...(spec.rateLimit && {
      rateLimit: {
        requests: spec.rateLimit.requests,
        perMs: parseDuration(spec.rateLimit.per ?? DEFAULTS.rateLimit.per),
        burst: spec.rateLimit.burst ?? spec.rateLimit.requests,
        whenExceeded: spec.rateLimit.whenExceeded ?? DEFAULTS.rateLimit.whenExceeded,
        maxQueueWaitMs: parseDuration(spec.rateLimit.maxQueueWait ?? DEFAULTS.rateLimit.maxQueueWait),
        scope: spec.rateLimit.scope ?? DEFAULTS.rateLimit.scope,
      },
    }),
    ...(spec.bulkhead && {
      bulkhead: {
        maxConcurrent: spec.bulkhead.maxConcurrent,
        maxQueued: spec.bulkhead.maxQueued ?? DEFAULTS.bulkhead.maxQueued,
      },
    }),
    ...(spec.fallback && {
      fallback: {
        status: spec.fallback.status ?? DEFAULTS.fallback.status,
        headers: spec.fallback.headers ?? DEFAULTS.fallback.headers,
        body: spec.fallback.body ?? DEFAULTS.fallback.body,
      },
    }),
    ...(spec.auth && {
      auth: {
        header: spec.auth.header ?? DEFAULTS.auth.header,
        prefix: spec.auth.prefix ?? DEFAULTS.auth.prefix,
        secretRef: spec.auth.secretRef,
      },
    }),
    ...(spec.delivery && {
      delivery: {
        maxAgeMs: parseDuration(spec.delivery.maxAge ?? DEFAULTS.delivery.maxAge),
        maxBackoffMs: parseDuration(spec.delivery.maxBackoff ?? DEFAULTS.delivery.maxBackoff),
        maxBacklog: spec.delivery.maxBacklog ?? DEFAULTS.delivery.maxBacklog,
        retainMs: parseDuration(spec.delivery.retain ?? DEFAULTS.delivery.retain),
        ...(spec.delivery.callback && { callbackUrl: spec.delivery.callback.url }),
      },
    }),
  };
}
