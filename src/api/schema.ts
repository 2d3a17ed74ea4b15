// The ExternalIntegration schema: the single source of the TypeScript types (`Static`), the runtime
// validator (validate.ts) and the CRD's openAPIV3Schema (crd.ts → crds/). Field descriptions state unit
// and default, read from the defaults table, and reach `kubectl explain`.
import { Type, type Static } from '@sinclair/typebox';
import {
  DEFAULTS,
  FAILURE_KINDS,
  GLOBAL_RATE_LIMIT_ANSWER_MS,
  HTTP_METHODS,
  IDEMPOTENCY_KEY_MODES,
  JITTER_MODES,
  POLICY_MODES,
  RATE_LIMIT_SCOPES,
  RETRY_BUDGET_WINDOW,
  WHEN_EXCEEDED,
} from './defaults.ts';
import { DURATION_PATTERN, isDuration, parseDuration } from './duration.ts';
import './formats.ts';
import { HOP_BY_HOP_HEADERS } from './hop-by-hop.ts';
import { API_VERSION, FALLBACK_HEADER, INTEGRATION_NAME_MAX_LENGTH, INTEGRATION_NAME_PATTERN, KIND } from './names.ts';
import { celOr, celWithDurations, MESSAGE_KEY, RULES_KEY, type Rule } from './rules.ts';

const d = DEFAULTS;
const list = (values: readonly (string | number)[]) => values.join(', ');

// HTTP header field-name token (RFC 9110 §5.1).
const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
// What Node writes as a header value: tab, printable ASCII and Latin-1 (RFC 9110 §5.5 field-value).
const HEADER_VALUE_PATTERN = '^[\\t\\x20-\\x7e\\x80-\\xff]*$';
const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const SECRET_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
const RETRY_ON_PATTERN = '^(connect-failure|reset|timeout|5xx|4[0-9]{2}|5[0-9]{2})$';
const FAIL_ON_PATTERN = '^(connect-failure|reset|timeout|5xx|5[0-9]{2})$';
/** Headers the proxy owns on the vendor leg; a credential may not be smuggled in as one of them. */
const RESERVED_HEADERS = ['host', ...HOP_BY_HOP_HEADERS, 'content-length'];
/** RESERVED_HEADERS as a CEL list. */
const RESERVED_HEADERS_CEL = `[${RESERVED_HEADERS.map((h) => `'${h}'`).join(', ')}]`;
const HEADER_NAME_RE = new RegExp(HEADER_NAME_PATTERN);

function withRules(rules: Rule[]) {
  return { [RULES_KEY]: rules };
}

/** Every duration field carries this rule and this message; the field reference reads them to tell durations apart. */
export const positiveDuration: Rule = {
  cel: celWithDurations(['self'], "duration(self) > duration('0s')"),
  message: 'must be greater than 0',
  holds: (self: string) => !isDuration(self) || parseDuration(self) > 0,
};

export const DURATION_MESSAGE = 'must be a duration like 250ms, 2s or 1m';

function Duration(description: string, fallback?: string) {
  return Type.String({
    pattern: DURATION_PATTERN,
    maxLength: 32,
    description: fallback === undefined ? description : `${description} Defaults to ${fallback}.`,
    [MESSAGE_KEY]: DURATION_MESSAGE,
    ...withRules([positiveDuration]),
  });
}

/** Effective milliseconds of an optional duration field, for rules that compare two of them. */
function ms(value: string | undefined, fallback: string): number {
  return parseDuration(value ?? fallback);
}

const SecretKeyRef = (description: string) =>
  Type.Object(
    {
      name: Type.String({
        pattern: DNS_SUBDOMAIN_PATTERN,
        maxLength: 253,
        description: 'Name of a Secret in the integration\'s namespace.',
        [MESSAGE_KEY]: 'must be a Secret name (lower-case letters, digits, "-" and ".")',
      }),
      key: Type.String({
        pattern: SECRET_KEY_PATTERN,
        maxLength: 253,
        description: 'Key within the Secret; the sidecar reads the file <secrets-dir>/<name>/<key>.',
        [MESSAGE_KEY]: 'must be a Secret key (letters, digits, "-", "_" and ".")',
      }),
    },
    { additionalProperties: false, description },
  );

const url = Type.String({
  maxLength: 2048,
  pattern: '^[^\\s]+$',
  description:
    'Base URL of the vendor API: scheme, host, optional port and base path. The proxied path is appended to it. ' +
    'For https the sidecar originates TLS.',
  [MESSAGE_KEY]: 'must be a URL without spaces',
  ...withRules([
    {
      cel: "self.matches('^https?://')",
      message: 'must start with http:// or https://',
      holds: (self: string) => /^https?:\/\//.test(self),
    },
    {
      cel: "self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@:]+')",
      message: 'must name a host',
      holds: (self: string) => /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#@:]+/.test(self),
    },
    {
      cel: "!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",
      message: 'must not contain credentials (user:password@); use auth.secretRef',
      holds: (self: string) => !/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*@/.test(self),
    },
    {
      cel: "!self.contains('?') && !self.contains('#')",
      message: 'must not contain a query (?) or fragment (#)',
      holds: (self: string) => !self.includes('?') && !self.includes('#'),
    },
  ]),
});

const Upstream = Type.Object(
  {
    url,
    tls: Type.Optional(
      Type.Object(
        {
          serverName: Type.Optional(
            Type.String({
              maxLength: 253,
              description: 'SNI and certificate name to verify. Defaults to the URL\'s host.',
            }),
          ),
          caSecretRef: Type.Optional(
            SecretKeyRef('PEM CA bundle to trust for this vendor instead of the system roots.'),
          ),
          insecureSkipVerify: Type.Optional(
            Type.Boolean({
              description: 'Accept any certificate. Only for testing; logged at warn. Defaults to false.',
            }),
          ),
        },
        {
          additionalProperties: false,
          description: 'TLS towards the vendor; only for https upstreams.',
          ...withRules([
            {
              cel: '!(has(self.caSecretRef) && has(self.insecureSkipVerify) && self.insecureSkipVerify)',
              message: 'set caSecretRef or insecureSkipVerify, not both',
              holds: (self: { caSecretRef?: unknown; insecureSkipVerify?: boolean }) =>
                !(self.caSecretRef !== undefined && self.insecureSkipVerify === true),
            },
          ]),
        },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'Where the vendor API lives.',
    ...withRules([
      {
        cel: "!has(self.tls) || self.url.startsWith('https://')",
        fieldPath: '.tls',
        message: 'applies only to an https:// upstream',
        holds: (self: { url: string; tls?: unknown }) => self.tls === undefined || self.url.startsWith('https://'),
      },
    ]),
  },
);

const Timeouts = Type.Object(
  {
    connect: Type.Optional(Duration('TCP and TLS connect to the vendor.', d.timeouts.connect)),
    perAttempt: Type.Optional(Duration('Time to response headers for one attempt.', d.timeouts.perAttempt)),
    total: Type.Optional(
      Duration('Deadline for the whole call, every attempt and backoff included.', d.timeouts.total),
    ),
  },
  {
    additionalProperties: false,
    description: 'How long to wait for the vendor.',
    ...withRules([
      {
        cel: celWithDurations(
          [celOr('perAttempt', d.timeouts.perAttempt), celOr('total', d.timeouts.total)],
          `duration(${celOr('perAttempt', d.timeouts.perAttempt)}) <= duration(${celOr('total', d.timeouts.total)})`,
        ),
        fieldPath: '.perAttempt',
        message: 'must not exceed timeouts.total',
        holds: (self: { perAttempt?: string; total?: string }) =>
          ms(self.perAttempt, d.timeouts.perAttempt) <= ms(self.total, d.timeouts.total),
      },
    ]),
  },
);

const Backoff = Type.Object(
  {
    initial: Type.Optional(Duration('Delay before the first retry.', d.retry.backoff.initial)),
    max: Type.Optional(Duration('Longest delay between two attempts.', d.retry.backoff.max)),
    multiplier: Type.Optional(
      Type.Number({
        minimum: 1,
        maximum: 10,
        description: `Growth of the delay per retry. Defaults to ${d.retry.backoff.multiplier}.`,
      }),
    ),
    jitter: Type.Optional(
      Type.Union(
        JITTER_MODES.map((m) => Type.Literal(m)),
        {
          description: `full: a random delay between 0 and the computed one; none: exactly the computed one. Defaults to ${d.retry.backoff.jitter}.`,
        },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'Exponential backoff between attempts.',
    ...withRules([
      {
        cel: celWithDurations(
          [celOr('initial', d.retry.backoff.initial), celOr('max', d.retry.backoff.max)],
          `duration(${celOr('initial', d.retry.backoff.initial)}) <= duration(${celOr('max', d.retry.backoff.max)})`,
        ),
        fieldPath: '.initial',
        message: 'must not exceed backoff.max',
        holds: (self: { initial?: string; max?: string }) =>
          ms(self.initial, d.retry.backoff.initial) <= ms(self.max, d.retry.backoff.max),
      },
    ]),
  },
);

const Retry = Type.Object(
  {
    maxAttempts: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10,
        description: `Calls in all, the first one included; 1 means no retries. Defaults to ${d.retry.maxAttempts}.`,
      }),
    ),
    backoff: Type.Optional(Backoff),
    retryOn: Type.Optional(
      Type.Array(
        Type.String({
          pattern: RETRY_ON_PATTERN,
          maxLength: 16,
          [MESSAGE_KEY]: 'must be connect-failure, reset, timeout, 5xx or a 4xx/5xx status code like "503"',
        }),
        {
          uniqueItems: true,
          maxItems: 64,
          description: `Failures worth another attempt: ${list(FAILURE_KINDS)}, a status code, or 5xx. Defaults to ${list(d.retry.retryOn)}.`,
        },
      ),
    ),
    methods: Type.Optional(
      Type.Array(
        Type.Union(HTTP_METHODS.map((m) => Type.Literal(m))),
        {
          uniqueItems: true,
          description: `Methods retried without an idempotency header. Defaults to ${list(d.retry.methods)}.`,
        },
      ),
    ),
    idempotencyHeader: Type.Optional(
      Type.String({
        pattern: HEADER_NAME_PATTERN,
        maxLength: 128,
        description: `A request of any other method is retried only when it carries this header. Defaults to ${d.retry.idempotencyHeader}.`,
        [MESSAGE_KEY]: 'must be an HTTP header name',
      }),
    ),
    idempotencyKey: Type.Optional(
      Type.Union(
        IDEMPOTENCY_KEY_MODES.map((m) => Type.Literal(m)),
        {
          description:
            `caller: a method not in methods is retried only when the app sends idempotencyHeader. generate: when the app sends none, the sidecar adds one with a fresh UUID per call, the same on every attempt of it, so those methods are retried too; use it only with a vendor that deduplicates on that header. Defaults to ${d.retry.idempotencyKey}.`,
        },
      ),
    ),
    respectRetryAfter: Type.Optional(
      Type.Boolean({
        description: `Wait as long as the vendor's Retry-After asks before the next attempt. Defaults to ${d.retry.respectRetryAfter}.`,
      }),
    ),
    maxRetryAfter: Type.Optional(
      Duration(
        'A longer Retry-After ends the retries and the caller gets that response at once.',
        d.retry.maxRetryAfter,
      ),
    ),
    budget: Type.Optional(
      Type.Object(
        {
          percent: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 100,
              description: `Retries in the last ${RETRY_BUDGET_WINDOW} may be at most this share of the calls in it. Defaults to ${d.retry.budget.percent}.`,
            }),
          ),
          minPerSecond: Type.Optional(
            Type.Integer({
              minimum: 0,
              description: `Retries per second always allowed, whatever the share. Defaults to ${d.retry.budget.minPerSecond}.`,
            }),
          ),
        },
        { additionalProperties: false, description: 'Caps the extra load retries put on a failing vendor.' },
      ),
    ),
  },
  { additionalProperties: false, description: 'Which failures are retried, and how.' },
);

const CircuitBreaker = Type.Object(
  {
    consecutiveFailures: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: `Open after this many failures in a row. The default mode, with ${d.circuitBreaker.consecutiveFailures}.`,
      }),
    ),
    failureRate: Type.Optional(
      Type.Object(
        {
          threshold: Type.Number({
            exclusiveMinimum: 0,
            exclusiveMaximum: 1,
            description: 'Open when the failed share of calls in the window reaches this (0 < threshold < 1).',
          }),
          window: Duration('Sliding window the share is measured over.'),
          minimumRequests: Type.Integer({
            minimum: 1,
            description: 'Calls the window must hold before the breaker may open.',
          }),
        },
        { additionalProperties: false, description: 'Open on a failure rate instead of consecutive failures.' },
      ),
    ),
    slowCall: Type.Optional(
      Type.Object(
        {
          duration: Duration(
            'An attempt whose response headers take longer than this is slow, whatever its status. Must be below timeouts.perAttempt, which ends the attempt as a timeout failure.',
          ),
          threshold: Type.Number({
            exclusiveMinimum: 0,
            maximum: 1,
            description: 'Open when the slow share of calls in the failureRate window reaches this (0 < threshold ≤ 1), as failures do.',
          }),
        },
        {
          additionalProperties: false,
          description:
            'Also open on a vendor that answers, but too slowly. Needs failureRate: its window and minimumRequests apply. A slow half-open probe keeps the circuit open. None unless given.',
        },
      ),
    ),
    forceOpen: Type.Optional(
      Type.Boolean({
        description: `Hold every pod's circuit open: calls get circuit_open (or the fallback) and the vendor is not called, until this is set back to false. Defaults to ${d.circuitBreaker.forceOpen}.`,
      }),
    ),
    halfOpenAfter: Type.Optional(
      Duration(
        'How long the circuit stays open before one probe call is let through. A probe whose caller leaves before the vendor answers keeps it open for another round.',
        d.circuitBreaker.halfOpenAfter,
      ),
    ),
    failOn: Type.Optional(
      Type.Array(
        Type.String({
          pattern: FAIL_ON_PATTERN,
          maxLength: 16,
          [MESSAGE_KEY]: 'must be connect-failure, reset, timeout, 5xx or a 5xx status code like "503" (4xx never trip the breaker)',
        }),
        {
          uniqueItems: true,
          maxItems: 64,
          description: `Failures the breaker counts; 4xx are the caller's fault and never count. Defaults to ${list(d.circuitBreaker.failOn)}.`,
        },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'Stops calling a vendor that keeps failing, and probes it before trusting it again.',
    ...withRules([
      {
        cel: '!(has(self.consecutiveFailures) && has(self.failureRate))',
        message: 'set either consecutiveFailures or failureRate, not both',
        holds: (self: { consecutiveFailures?: number; failureRate?: unknown }) =>
          !(self.consecutiveFailures !== undefined && self.failureRate !== undefined),
      },
      {
        cel: '!has(self.slowCall) || has(self.failureRate)',
        fieldPath: '.slowCall',
        message: 'needs failureRate: the slow share is measured over its window',
        holds: (self: { slowCall?: unknown; failureRate?: unknown }) => self.slowCall === undefined || self.failureRate !== undefined,
      },
    ]),
  },
);

const RateLimit = Type.Object(
  {
    requests: Type.Integer({ minimum: 1, description: 'Calls allowed per `per`.' }),
    per: Type.Optional(Duration('The period `requests` refers to.', d.rateLimit.per)),
    burst: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Tokens the bucket holds, i.e. the largest burst. Defaults to requests.' }),
    ),
    whenExceeded: Type.Optional(
      Type.Union(
        WHEN_EXCEEDED.map((m) => Type.Literal(m)),
        {
          description: `queue: wait for a token up to maxQueueWait; reject: answer 429 rate_limited at once. Defaults to ${d.rateLimit.whenExceeded}.`,
        },
      ),
    ),
    maxQueueWait: Type.Optional(
      Duration('Longest wait for a token; a call that cannot get one in time is rejected at once.', d.rateLimit.maxQueueWait),
    ),
    scope: Type.Optional(
      Type.Union(
        RATE_LIMIT_SCOPES.map((m) => Type.Literal(m)),
        {
          description:
            `pod: every sidecar has the whole quota. fleet: the quota (requests and burst) is split evenly across the pods reporting for this integration, as the operator counts them; a pod learns its share with every report, and runs with the whole quota until its first one is answered. global: one exact limit for every sidecar sharing the Redis of a redis:// delivery store, kept in that Redis; while it does not answer (within ${GLOBAL_RATE_LIMIT_ANSWER_MS}ms), each pod limits with its fleet share, and without a Redis store global behaves as fleet. Defaults to ${d.rateLimit.scope}.`,
        },
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Token bucket in front of the vendor. Each sidecar keeps its own: with scope pod (the default) the limit is per pod, so N replicas of the app send up to N times `requests` per `per`; with scope fleet the replicas share it; with scope global one bucket in the Redis of the delivery store serves them all. None unless given.',
    ...withRules([
      {
        cel: "!has(self.maxQueueWait) || !has(self.whenExceeded) || self.whenExceeded == 'queue'",
        fieldPath: '.maxQueueWait',
        message: 'applies only when whenExceeded is queue',
        holds: (self: { maxQueueWait?: string; whenExceeded?: string }) =>
          self.maxQueueWait === undefined || self.whenExceeded === undefined || self.whenExceeded === 'queue',
      },
    ]),
  },
);

const Bulkhead = Type.Object(
  {
    maxConcurrent: Type.Integer({ minimum: 1, description: 'Calls in flight to the vendor at once.' }),
    maxQueued: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: `Calls waiting for a slot; beyond them, 503 bulkhead_full. Defaults to ${d.bulkhead.maxQueued}.`,
      }),
    ),
  },
  { additionalProperties: false, description: 'Caps concurrency towards the vendor. None unless given.' },
);

const Fallback = Type.Object(
  {
    status: Type.Optional(
      Type.Integer({ minimum: 200, maximum: 599, description: `Status of the fallback response. Defaults to ${d.fallback.status}.` }),
    ),
    headers: Type.Optional(
      Type.Record(
        Type.String(),
        Type.String({
          maxLength: 4096,
          pattern: HEADER_VALUE_PATTERN,
          [MESSAGE_KEY]: 'must be printable ASCII or Latin-1: no line breaks, control characters or characters past U+00FF',
        }),
        {
          description: 'Headers of the fallback response. Content-Length is the sidecar\'s: it is written from the body.',
          maxProperties: 32,
          // Node refuses to write a header it cannot send: with a bad one the fallback, served while
          // the vendor is down, would reset the caller's connection instead.
          ...withRules([
            {
              cel: `self.all(name, name.matches(r"${HEADER_NAME_PATTERN}"))`,
              message: 'must be HTTP header names',
              holds: (self: Record<string, string>) => Object.keys(self).every((name) => HEADER_NAME_RE.test(name)),
            },
            {
              cel: `self.all(name, !(name.lowerAscii() in ${RESERVED_HEADERS_CEL}))`,
              message: 'must not name Host, Content-Length or a hop-by-hop header',
              holds: (self: Record<string, string>) => Object.keys(self).every((name) => !RESERVED_HEADERS.includes(name.toLowerCase())),
            },
          ]),
        },
      ),
    ),
    body: Type.Optional(Type.String({ maxLength: 65536, description: 'Body of the fallback response. Defaults to empty.' })),
  },
  {
    additionalProperties: false,
    description: `Response served instead of circuit_open, upstream_unreachable and deadline_exceeded, with the header ${FALLBACK_HEADER} naming the one it replaces. None unless given.`,
  },
);

const Auth = Type.Object(
  {
    header: Type.Optional(
      Type.String({
        pattern: HEADER_NAME_PATTERN,
        maxLength: 128,
        description: `Header that carries the credential. Defaults to ${d.auth.header}.`,
        [MESSAGE_KEY]: 'must be an HTTP header name',
        ...withRules([
          {
            cel: `!(self.lowerAscii() in ${RESERVED_HEADERS_CEL})`,
            message: 'must not be Host, Content-Length or a hop-by-hop header',
            holds: (self: string) => !RESERVED_HEADERS.includes(self.toLowerCase()),
          },
        ]),
      }),
    ),
    prefix: Type.Optional(
      Type.String({ maxLength: 64, description: 'Written before the secret value, e.g. "Bearer ". Defaults to empty.' }),
    ),
    secretRef: SecretKeyRef('The credential. Mounted into the sidecar only; the app container never sees it.'),
  },
  { additionalProperties: false, description: 'Credential the sidecar adds to every call.' },
);

/**
 * A callback goes to the app in the same pod, never across the network: plain http to 127.0.0.0/8 or
 * localhost. `[.]` and `[!-~]` instead of backslash escapes, so the CEL string literal needs none.
 */
export const LOOPBACK_URL_PATTERN = '^http://(127[.][0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}|localhost)(:[0-9]{1,5})?(/[!-~]*)?$';
const LOOPBACK_URL_RE = new RegExp(LOOPBACK_URL_PATTERN);

const Delivery = Type.Object(
  {
    maxAge: Type.Optional(
      Duration(
        'How long a delivery is tried before it ends dead (expired); also how long its idempotency key maps to it.',
        d.delivery.maxAge,
      ),
    ),
    maxBackoff: Type.Optional(Duration('Longest wait between two attempts of one delivery.', d.delivery.maxBackoff)),
    maxBacklog: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: `Deliveries not yet ended this integration may hold; beyond them, 503 backlog_full. Defaults to ${d.delivery.maxBacklog}.`,
      }),
    ),
    retain: Type.Optional(
      Duration('How long an ended delivery keeps its request and response bodies in the store.', d.delivery.retain),
    ),
    callback: Type.Optional(
      Type.Object(
        {
          url: Type.String({
            maxLength: 2048,
            description: 'Where the outcome is POSTed when a delivery ends, retried until 2xx or maxAge: the app in the same pod.',
            ...withRules([
              {
                cel: `self.matches('${LOOPBACK_URL_PATTERN}')`,
                message: 'must be a loopback URL (http://127.0.0.1:PORT/… or http://localhost:PORT/…): the app in the same pod',
                holds: (self: string) => LOOPBACK_URL_RE.test(self),
              },
            ]),
          }),
        },
        { additionalProperties: false, description: 'Tells the app how each delivery ended.' },
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Durable delivery, opt-in: a call sent with Prefer: respond-async is stored, answered 202, and sent until the vendor takes it. None unless given.',
    ...withRules([
      {
        cel: `duration(${celOr('maxBackoff', d.delivery.maxBackoff)}) <= duration(${celOr('maxAge', d.delivery.maxAge)})`,
        fieldPath: '.maxBackoff',
        message: 'must not exceed delivery.maxAge',
        holds: (self: { maxBackoff?: string; maxAge?: string }) =>
          ms(self.maxBackoff, d.delivery.maxBackoff) <= ms(self.maxAge, d.delivery.maxAge),
      },
    ]),
  },
);

const Mode = Type.Union(
  POLICY_MODES.map((m) => Type.Literal(m)),
  {
    description: `enforce: the policy acts on every call. observe: every call goes to the vendor once, as a plain proxy with the credential added, and the sidecar only counts what the policy would have done (retried, failed fast on an open circuit, rate-limited, refused for a full bulkhead, timed out, answered with the fallback) in breakwater_observed_decisions_total, so a critical path can adopt the policy before it acts. Defaults to ${d.mode}.`,
  },
);

/**
 * An attempt is cut at timeouts.perAttempt and counted as a timeout failure, so a slowCall.duration at
 * or above it would never see a slow call: the setting would look active and do nothing.
 */
const perAttemptCel = `(has(self.timeouts) && has(self.timeouts.perAttempt) ? self.timeouts.perAttempt : '${d.timeouts.perAttempt}')`;
const SLOW_CALL_BELOW_PER_ATTEMPT: Rule = {
  cel: `!has(self.circuitBreaker) || !has(self.circuitBreaker.slowCall) || ${celWithDurations(
    ['self.circuitBreaker.slowCall.duration', perAttemptCel],
    `duration(self.circuitBreaker.slowCall.duration) < duration(${perAttemptCel})`,
  )}`,
  fieldPath: '.circuitBreaker.slowCall.duration',
  message: 'must be below timeouts.perAttempt: a longer attempt ends as a timeout failure',
  holds: (self: { timeouts?: { perAttempt?: string }; circuitBreaker?: { slowCall?: { duration: string } } }) => {
    const slow = self.circuitBreaker?.slowCall?.duration;
    const perAttempt = self.timeouts?.perAttempt ?? d.timeouts.perAttempt;
    return slow === undefined || !isDuration(slow) || !isDuration(perAttempt) || parseDuration(slow) < parseDuration(perAttempt);
  },
};

export const ExternalIntegrationSpec = Type.Object(
  {
    upstream: Upstream,
    mode: Type.Optional(Mode),
    timeouts: Type.Optional(Timeouts),
    retry: Type.Optional(Retry),
    circuitBreaker: Type.Optional(CircuitBreaker),
    rateLimit: Type.Optional(RateLimit),
    bulkhead: Type.Optional(Bulkhead),
    fallback: Type.Optional(Fallback),
    auth: Type.Optional(Auth),
    delivery: Type.Optional(Delivery),
  },
  {
    additionalProperties: false,
    description: 'The vendor API and the resilience policy applied to every call to it.',
    ...withRules([SLOW_CALL_BELOW_PER_ATTEMPT]),
  },
);

const Condition = Type.Object(
  {
    type: Type.String({ maxLength: 316, description: 'Ready or VendorHealthy.' }),
    status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
    message: Type.Optional(Type.String({ maxLength: 32768 })),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
    lastTransitionTime: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

const count = (description: string) => Type.Integer({ minimum: 0, description });

const FleetCircuit = Type.Object(
  {
    open: count('Reporting pods whose breaker is open.'),
    halfOpen: count('Reporting pods whose breaker is half-open (or open, with the next call as the probe).'),
    closed: count('Reporting pods whose breaker is closed.'),
    since: Type.Optional(
      Type.String({ format: 'date-time', description: 'When the longest-open of the pods now open or half-open left closed; absent while every one is closed.' }),
    ),
    lastError: Type.Optional(
      Type.Object(
        {
          time: Type.String({ format: 'date-time' }),
          pod: Type.String({ description: 'The pod whose sidecar saw it.' }),
          error: Type.String({ description: 'The sidecar\'s error code (upstream_unreachable, …) or the vendor\'s status class (vendor_5xx).' }),
        },
        { additionalProperties: false, description: 'The most recent failed call any reporting pod saw.' },
      ),
    ),
  },
  { additionalProperties: false, description: 'The breaker across the pods reporting for this integration.' },
);

const FleetPods = Type.Object(
  {
    reporting: count('Pods whose sidecar serves this integration and reported within its heartbeat.'),
    needRestart: count('Of those, pods that cannot read a Secret this integration names: it was referenced after the pod started, and only a new pod mounts it.'),
  },
  { additionalProperties: false, description: 'Sidecars reporting to the operator for this integration.' },
);

const FleetTraffic = Type.Object(
  {
    calls: count('Calls answered across the reporting pods.'),
    failures: count('Of those, answered 5xx or by the fallback.'),
  },
  { additionalProperties: false, description: 'Calls in the last minute, summed over the reporting pods.' },
);

export const ExternalIntegrationStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: 'Generation the status describes.' })),
    conditions: Type.Optional(
      Type.Array(Condition, {
        description: 'Ready (the spec is served) and VendorHealthy (no reporting pod has its breaker open), each with a reason and a precise message.',
      }),
    ),
    url: Type.Optional(Type.String({ description: 'Where apps in the namespace call this integration.' })),
    circuit: Type.Optional(FleetCircuit),
    pods: Type.Optional(FleetPods),
    lastMinute: Type.Optional(FleetTraffic),
    backlog: Type.Optional(count('Durable deliveries queued or being delivered, as the reporting pods see their stores (a shared store is counted once).')),
  },
  { additionalProperties: false },
);

export const Metadata = Type.Object(
  {
    name: Type.String({
      pattern: INTEGRATION_NAME_PATTERN,
      maxLength: INTEGRATION_NAME_MAX_LENGTH,
      [MESSAGE_KEY]: `must be a DNS label (lower-case letters, digits and "-", at most ${INTEGRATION_NAME_MAX_LENGTH} characters): it names the URL path and the env var`,
    }),
    namespace: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/** The CRD's twin of `Metadata.name`'s pattern: only the root object's CEL can read `metadata.name`. */
export const NAME_RULE: Omit<Rule, 'holds'> = {
  cel: `self.metadata.name.matches('${INTEGRATION_NAME_PATTERN}') && size(self.metadata.name) <= ${INTEGRATION_NAME_MAX_LENGTH}`,
  message: `metadata.name must be a DNS label (lower-case letters, digits and "-", at most ${INTEGRATION_NAME_MAX_LENGTH} characters): it names the URL path and the env var`,
};

export const ExternalIntegration = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION, { [MESSAGE_KEY]: `must be ${API_VERSION}` }),
    kind: Type.Literal(KIND, { [MESSAGE_KEY]: `must be ${KIND}` }),
    metadata: Metadata,
    spec: ExternalIntegrationSpec,
    status: Type.Optional(ExternalIntegrationStatus),
  },
  { additionalProperties: false },
);

export type ExternalIntegration = Static<typeof ExternalIntegration>;
export type ExternalIntegrationSpec = Static<typeof ExternalIntegrationSpec>;
export type ExternalIntegrationStatus = Static<typeof ExternalIntegrationStatus>;
export type Condition = Static<typeof Condition>;
export type FleetStatus = Pick<ExternalIntegrationStatus, 'circuit' | 'pods' | 'lastMinute' | 'backlog'>;
