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
 * Proxies one request. Never throws: a failure nobody foresaw is logged and the connection cut. The
 * caller runs `closeExchange(res)` when the response closes, so one 'close' listener serves both its
 * bookkeeping and this call's. Not an async function: the request is sent at once when its body is
 * already read (a GET's, or one that came with its headers), and the answer taken through then(), which
 * leaves less garbage per call than the layer of promises an async function is.
 */
export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  integration: Integration,
  target: { readonly rest: string; readonly path: string },
  context: ForwardContext,
): void {
  const ex = new Exchange(integration, req.method ?? 'GET', target.path, context);
  (res as TrackedResponse)[kExchange] = ex;
  try {
    const out = outboundHeaders(req.rawHeaders, integration);
    ex.requestId = out.requestId;
    ex.headers = out.headers;
    ex.idempotencyKey = out.hasIdempotencyKey;
    // After the request id is read: this answer's call line carries it too.
    if (!integration.secretsAvailable) {
      const message = `cannot read the ${integration.unavailableSecrets().join(' or the ')}; the vendor is not called`;
      ex.outcome = rescue(res, new CredentialsUnavailableError(message), integration, 0);
      return;
    }
    // retry.idempotencyKey generate: one key for the call, so every retry of it carries the same one.
    if (integration.policy.idempotency.addsKey(ex.method, ex.idempotencyKey)) {
      ex.headers.push(integration.idempotencyHeader, randomUUID());
      ex.idempotencyKey = true;
    }
    ex.path = integration.upstream.path(target.rest);
    let read;
    try {
      read = readBody(req, out.contentLength, out.chunked, context.limits);
    } catch (error) {
      bodyFailed(ex, res, error);
      return;
    }
    if (read instanceof Promise) {
      read.then(
        (body) => send(ex, res, body),
        (error: unknown) => bodyFailed(ex, res, error),
      );
    } else send(ex, res, read);
  } catch (error) {
    unforeseen(ex, res, error);
  }
}

/** The body is read: the call goes through the integration's policy. */
function send(ex: Exchange, res: ServerResponse, body: Buffer | Readable | null): void {
  try {
    ex.body = body;
    if (ex.closed) return;
    ex.bodyReplayable = body === null || Buffer.isBuffer(body);
    const integration = ex.integration;
    if (integration.logsAttempts) ex.onAttempt = attemptLogger(integration, ex);
    const call = integration.policy.execute(ex);
    ex.call = call;
    call.answer.then(
      (response) => answered(ex, res, response),
      (error: unknown) => failed(ex, res, error),
    );
  } catch (error) {
    unforeseen(ex, res, error);
  }
}

function answered(ex: Exchange, res: ServerResponse, response: UpstreamResponse): void {
  try {
    ex.outcome = 'upstream';
    if (ex.integration.observing) observedFallback(ex.integration, ex.call!.wouldFail);
    ex.upstream = response;
    ex.headersAt = performance.now();
    // The caller may have left in the ticks since the headers came; its close handler has already run.
    if (ex.closed) response.cancel();
    else response.forwardTo(res);
  } catch (error) {
    unforeseen(ex, res, error);
  }
}

function failed(ex: Exchange, res: ServerResponse, error: unknown): void {
  try {
    const call = ex.call!;
    ex.outcome = rescue(res, error, ex.integration, call.attempts, call.wouldFail);
    if (ex.outcome !== 'cancelled') ex.headersAt = performance.now();
  } catch (unexpected) {
    unforeseen(ex, res, unexpected);
  }
}

function bodyFailed(ex: Exchange, res: ServerResponse, error: unknown): void {
  try {
    if (error instanceof RequestTooLargeError) ex.outcome = rescue(res, error, ex.integration, 0);
    else res.destroy();
  } catch (unexpected) {
    unforeseen(ex, res, unexpected);
  }
}

function unforeseen(ex: Exchange, res: ServerResponse, error: unknown): void {
  ex.integration.logger.error({ err: error }, 'proxying failed');
  res.destroy();
}
