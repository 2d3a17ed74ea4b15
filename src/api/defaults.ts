// The one table of defaults. Schema descriptions (and so `kubectl explain` and docs/reference.md),
// the CEL rules that compare effective values, and `resolveSpec()` all read it from here.

/** Failure classes that are not HTTP statuses. `5xx` stands for every 5xx status. */
export const FAILURE_KINDS = ['connect-failure', 'reset', 'timeout'] as const;
export const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'] as const;
export const HTTP_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'POST', 'PATCH', 'TRACE'] as const;
export const JITTER_MODES = ['full', 'none'] as const;
export const WHEN_EXCEEDED = ['queue', 'reject'] as const;
/**
 * pod: each sidecar has the whole quota; fleet: the pods reporting for the integration share it;
 * global: one bucket in the delivery store's Redis serves every sidecar using that Redis.
 */
export const RATE_LIMIT_SCOPES = ['pod', 'fleet', 'global'] as const;
/** scope global: the longest wait for the shared bucket's answer before a call is limited locally. */
export const GLOBAL_RATE_LIMIT_ANSWER_MS = 50;
/** enforce: the policy acts on every call; observe: it only counts what it would have done. */
export const POLICY_MODES = ['enforce', 'observe'] as const;
/** caller: only a key the app sends makes another method retryable; generate: the sidecar adds one when it sends none. */
export const IDEMPOTENCY_KEY_MODES = ['caller', 'generate'] as const;

export const DEFAULTS = {
  mode: 'enforce' as (typeof POLICY_MODES)[number],
  timeouts: {
    /** TCP (and TLS) connect to the vendor. */
    connect: '2s',
    /** Until response headers, for one attempt. */
    perAttempt: '10s',
    /** The whole call: every attempt and every backoff. */
    total: '30s',
  },
  retry: {
    /** Calls in all, the first one included: 3 means up to 2 retries. */
    maxAttempts: 3,
    backoff: { initial: '200ms', max: '5s', multiplier: 2, jitter: 'full' as (typeof JITTER_MODES)[number] },
    retryOn: ['connect-failure', 'reset', 'timeout', '502', '503', '504', '429'],
    methods: [...IDEMPOTENT_METHODS] as string[],
    idempotencyHeader: 'Idempotency-Key',
    idempotencyKey: 'caller' as (typeof IDEMPOTENCY_KEY_MODES)[number],
    respectRetryAfter: true,
    maxRetryAfter: '30s',
    /** Retries in the last 10 s may be at most `percent`% of the calls in those 10 s, plus `minPerSecond`. */
    budget: { percent: 20, minPerSecond: 5 },
  },
  circuitBreaker: {
    consecutiveFailures: 5,
    halfOpenAfter: '30s',
    failOn: ['connect-failure', 'reset', 'timeout', '5xx'],
    forceOpen: false,
  },
  rateLimit: {
    scope: 'pod' as (typeof RATE_LIMIT_SCOPES)[number],
    per: '1s',
    whenExceeded: 'queue' as (typeof WHEN_EXCEEDED)[number],
    maxQueueWait: '1s',
  },
  bulkhead: { maxQueued: 0 },
  fallback: { status: 503, headers: {} as Record<string, string>, body: '' },
  auth: { header: 'Authorization', prefix: '' },
  delivery: {
    /** How long a delivery is tried before it is dead (expired); also how long its idempotency key holds. */
    maxAge: '24h',
    /** Longest wait between two attempts of one delivery. */
    maxBackoff: '5m',
    /** Deliveries not yet ended, per integration; beyond them, 503 backlog_full. */
    maxBacklog: 100_000,
    /** How long an ended delivery keeps its request and response bodies: 7 days. */
    retain: '168h',
  },
} as const;

/** How far back the retry budget looks. */
export const RETRY_BUDGET_WINDOW = '10s';
