// One proxied call: headers and body prepared once, then the integration's policy stack runs attempts
// against its pool, and the answer (the vendor's response, streamed, or the sidecar's own error) goes
// back. When the caller goes away, the call is cancelled: the vendor request is aborted and nothing
// is retried.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { AttemptReport } from '../policy/attempt-report.ts';
import type { Call } from '../policy/call.ts';
import { randomUUID } from '../runtime/random-uuid.ts';
import { attemptLogger } from './attempt-log.ts';
import { readBody, RequestTooLargeError, type BodyLimits } from './body.ts';
import { CredentialsUnavailableError } from './credentials.ts';
import { outboundHeaders } from './headers.ts';
import type { Integration } from './integration.ts';
import { observedFallback, rescue } from './rescue.ts';
import type { Outbound, UpstreamResponse } from './upstream-response.ts';

export interface ForwardContext {
  readonly limits: BodyLimits;
  /** Share of calls logged at info. */
  readonly logSampleRate: number;
}

/**
 * One proxied call: the request every attempt sends, and what the close handler needs to finish the
 * call's bookkeeping (metrics, the access log, cancellation).
 */
class Exchange implements Outbound {
  readonly integration: Integration;
  readonly method: string;
  /** The path the caller asked for, without its query: what logs show. */
  readonly loggedPath: string;
  readonly startedAt = performance.now();
  readonly context: ForwardContext;
  path = '';
  headers: string[] = [];
  body: Buffer | Readable | null = null;
  idempotencyKey = false;
  bodyReplayable = true;
  onAttempt: ((report: AttemptReport) => void) | undefined = undefined;
  requestId = '';
  call: Call<Outbound, UpstreamResponse> | undefined = undefined;
  upstream: UpstreamResponse | undefined = undefined;
  outcome = 'cancelled';
  headersAt = 0;
  closed = false;

  constructor(integration: Integration, method: string, loggedPath: string, context: ForwardContext) {
    this.integration = integration;
    this.method = method;
    this.loggedPath = loggedPath;
    this.context = context;
  }
}

const kExchange = Symbol('exchange');
type TrackedResponse = ServerResponse & { [kExchange]: Exchange };

/** The response closed: cancels what is still running, counts and logs the call. */
export function closeExchange(res: ServerResponse): void {
  const ex = (res as Partial<TrackedResponse>)[kExchange];
  if (ex === undefined) return;
  ex.closed = true;
  if (!res.writableFinished) {
    ex.call?.cancel();
    ex.upstream?.cancel();
    ex.outcome = 'cancelled';
  }
  const status = res.headersSent ? res.statusCode : 499;
  const seconds = ((ex.headersAt || performance.now()) - ex.startedAt) / 1000;
  ex.integration.metrics.request(ex.method, status, ex.outcome, seconds);
  const rate = ex.context.logSampleRate;
  if (rate >= 1 || (rate > 0 && Math.random() < rate)) {
    ex.integration.callLog.write({
      method: ex.method,
      path: ex.loggedPath,
      status,
      outcome: ex.outcome,
      attempts: ex.call?.attempts ?? 0,
      durationMs: Math.round(seconds * 1000),
      requestId: ex.requestId,
    });
  }
}

/**
 * Proxies one request. Never rejects: a failure nobody foresaw is logged and the connection cut. The
 * caller runs `closeExchange(res)` when the response closes, so one 'close' listener serves both its
 * bookkeeping and this call's.
 */
export async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  integration: Integration,
  target: { readonly rest: string; readonly path: string },
  context: ForwardContext,
): Promise<void> {
  const ex = new Exchange(integration, req.method ?? 'GET', target.path, context);
  (res as TrackedResponse)[kExchange] = ex;
  try {
    if (!integration.secretsAvailable) {
      const message = `cannot read the ${integration.unavailableSecrets().join(' or the ')}; the vendor is not called`;
      ex.outcome = rescue(res, new CredentialsUnavailableError(message), integration, 0);
      return;
    }
    const out = outboundHeaders(req.rawHeaders, integration);
    ex.requestId = out.requestId;
    ex.headers = out.headers;
    ex.idempotencyKey = out.hasIdempotencyKey;
    // retry.idempotencyKey generate: one key for the call, so every retry of it carries the same one.
    if (integration.policy.idempotency.addsKey(ex.method, ex.idempotencyKey)) {
      ex.headers.push(integration.idempotencyHeader, randomUUID());
      ex.idempotencyKey = true;
    }
    ex.path = integration.upstream.path(target.rest);
    try {
      const read = readBody(req, out.contentLength, out.chunked, context.limits);
      ex.body = read instanceof Promise ? await read : read;
    } catch (error) {
      if (error instanceof RequestTooLargeError) ex.outcome = rescue(res, error, integration, 0);
      else res.destroy();
      return;
    }
    if (ex.closed) return;
    ex.bodyReplayable = ex.body === null || Buffer.isBuffer(ex.body);
    if (integration.logsAttempts) ex.onAttempt = attemptLogger(integration, ex);

    const call = integration.policy.execute(ex);
    ex.call = call;
    let response: UpstreamResponse;
    try {
      response = await call.answer;
    } catch (error) {
      ex.outcome = rescue(res, error, integration, call.attempts, call.wouldFail);
      if (ex.outcome !== 'cancelled') ex.headersAt = performance.now();
      return;
    }
    ex.outcome = 'upstream';
    if (integration.observing) observedFallback(integration, call.wouldFail);
    ex.upstream = response;
    ex.headersAt = performance.now();
    // The caller may have left in the ticks since the headers came; its close handler has already run.
    if (ex.closed) response.cancel();
    else response.forwardTo(res);
  } catch (error) {
    integration.logger.error({ err: error }, 'proxying failed');
    res.destroy();
  }
}
