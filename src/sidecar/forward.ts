// One proxied call: headers and body prepared once, then the integration's pipeline runs attempts
// against its pool, and the answer (the vendor's response, streamed, or the sidecar's own error) goes
// back. When the caller goes away, the call is cancelled: the vendor request is aborted and nothing
// is retried.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { isBrokenCircuitError, isBulkheadRejectedError } from 'cockatiel';
import type { Call } from '../policy/call.ts';
import { CallCancelledError, DeadlineExceededError, RateLimitedError, UpstreamFailure } from '../policy/errors.ts';
import type { AttemptResult } from '../policy/pipeline.ts';
import { readBody, RequestTooLargeError, type BodyLimits } from './body.ts';
import { toErrorResponse, type SidecarError } from './error-response.ts';
import { inboundHeaders, outboundHeaders } from './headers.ts';
import type { Integration } from './integration.ts';

export interface ForwardContext {
  readonly limits: BodyLimits;
  /** Share of calls logged at info. */
  readonly logSampleRate: number;
}

interface UndiciBody extends Readable {
  dump(): Promise<void>;
}

class UpstreamResponse implements AttemptResult {
  readonly call: Call;
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: UndiciBody;

  constructor(call: Call, statusCode: number, headers: IncomingHttpHeaders, body: UndiciBody) {
    this.call = call;
    this.statusCode = statusCode;
    this.headers = headers;
    this.body = body;
  }

  get retryAfter(): string | undefined {
    const value = this.headers['retry-after'];
    return typeof value === 'string' ? value : undefined;
  }

  /** Reads the body to its end so the connection goes back to the pool. */
  discard(): void {
    this.body.dump().catch(noop);
  }
}

interface Outbound {
  readonly integration: Integration;
  readonly path: string;
  readonly method: string;
  readonly headers: string[];
  readonly body: Buffer | Readable | null;
}

const noop = () => {};

async function sendAttempt(call: Call, signal: AbortSignal, out: Outbound): Promise<UpstreamResponse> {
  const started = performance.now();
  try {
    const data = await out.integration.upstream.pool.request({
      path: out.path,
      method: out.method as 'GET',
      headers: out.headers,
      body: out.body,
      signal,
    });
    out.integration.metrics.attempt('response', (performance.now() - started) / 1000);
    return new UpstreamResponse(call, data.statusCode, data.headers as IncomingHttpHeaders, data.body as unknown as UndiciBody);
  } catch (error) {
    out.integration.metrics.attempt('error', (performance.now() - started) / 1000);
    throw error;
  }
}

/** What the close handler needs to finish the call's bookkeeping: metrics, the access log, cancellation. */
class Exchange {
  readonly integration: Integration;
  readonly method: string;
  readonly path: string;
  readonly startedAt = performance.now();
  readonly context: ForwardContext;
  requestId = '';
  call: Call | undefined;
  upstreamBody: Readable | undefined;
  outcome = 'cancelled';
  headersAt = 0;
  closed = false;

  constructor(integration: Integration, method: string, rest: string, context: ForwardContext) {
    this.integration = integration;
    this.method = method;
    const query = rest.indexOf('?');
    // The query string is left out of logs: vendors' APIs put keys and personal data there.
    this.path = query === -1 ? rest : rest.slice(0, query);
    this.context = context;
  }
}

const kExchange = Symbol('exchange');
type TrackedResponse = ServerResponse & { [kExchange]: Exchange };

function onResponseClose(this: TrackedResponse): void {
  const ex = this[kExchange];
  ex.closed = true;
  if (!this.writableFinished) {
    ex.call?.cancel();
    ex.upstreamBody?.destroy();
    ex.outcome = 'cancelled';
  }
  const status = this.headersSent ? this.statusCode : 499;
  const seconds = ((ex.headersAt || performance.now()) - ex.startedAt) / 1000;
  ex.integration.metrics.request(ex.method, status, ex.outcome, seconds);
  const rate = ex.context.logSampleRate;
  if (rate >= 1 || (rate > 0 && Math.random() < rate)) {
    ex.integration.logger.info(
      {
        method: ex.method,
        path: ex.path,
        status,
        outcome: ex.outcome,
        attempts: ex.call?.attempts ?? 0,
        durationMs: Math.round(seconds * 1000),
        requestId: ex.requestId,
      },
      'call',
    );
  }
}

function onUpstreamBodyError(this: Readable & { [kExchange]?: ServerResponse }): void {
  this[kExchange]?.destroy();
}

export async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  integration: Integration,
  rest: string,
  context: ForwardContext,
): Promise<void> {
  const method = req.method ?? 'GET';
  const ex = new Exchange(integration, method, rest, context);
  (res as TrackedResponse)[kExchange] = ex;
  res.on('close', onResponseClose);
  if (method === 'CONNECT') {
    ex.outcome = toErrorResponse(res, { code: 'bad_request', message: 'CONNECT is not proxied' }, { name: integration.name, attempts: 0 });
    return;
  }
  if (!integration.secretsAvailable) {
    const message = `cannot read the ${integration.unavailableSecrets().join(' or the ')}; the vendor is not called`;
    ex.outcome = toErrorResponse(res, { code: 'credentials_unavailable', message }, { name: integration.name, attempts: 0 });
    return;
  }
  const out = outboundHeaders(req.rawHeaders, integration);
  ex.requestId = out.requestId;

  let body: Buffer | Readable | null;
  try {
    const read = readBody(req, out.contentLength, out.chunked, context.limits);
    body = read instanceof Promise ? await read : read;
  } catch (error) {
    if (error instanceof RequestTooLargeError) {
      ex.outcome = toErrorResponse(res, error, { name: integration.name, attempts: 0 });
    } else {
      res.destroy();
    }
    return;
  }
  if (ex.closed) return;

  const policy = integration.policy;
  const call = policy.startCall();
  ex.call = call;
  const replayable = (body === null || Buffer.isBuffer(body)) && policy.idempotency.allowsRetry(method, out.hasIdempotencyKey);
  const outbound: Outbound = { integration, path: integration.upstream.path(rest), method, headers: out.headers, body };
  let response: UpstreamResponse;
  try {
    response = await policy.execute(call, sendAttempt, outbound, replayable);
  } catch (error) {
    call.settle();
    if (error instanceof CallCancelledError) return;
    const failure = describeFailure(error, integration, call);
    if (failure.code === 'upstream_unreachable' && !(error instanceof UpstreamFailure)) {
      integration.logger.error({ err: error }, 'unexpected failure while proxying');
    }
    ex.outcome = toErrorResponse(res, failure, { name: integration.name, fallback: integration.spec.fallback, attempts: call.attempts });
    ex.headersAt = performance.now();
    if (ex.outcome === 'fallback') integration.metrics.fallback();
    else if (ex.outcome === 'rate_limited') integration.metrics.rateLimited();
    return;
  }
  call.settle();
  ex.outcome = 'upstream';
  ex.upstreamBody = response.body;
  ex.headersAt = performance.now();
  const answer = response.body as UndiciBody & { [kExchange]?: ServerResponse };
  answer[kExchange] = res;
  answer.on('error', onUpstreamBodyError);
  res.writeHead(response.statusCode, inboundHeaders(response.headers, call.attempts));
  // A small answer usually arrives whole with its headers: handing it to `end()` writes headers and body
  // at once, without a pipe's listeners and ticks. A body still on its way streams as it arrives.
  const length = answer.readableLength;
  if (length > 0 && length === Number(response.headers['content-length'])) res.end(answer.read() as Buffer);
  else answer.pipe(res);
}

function describeFailure(error: unknown, integration: Integration, call: Call): SidecarError {
  if (error instanceof RateLimitedError) return { code: 'rate_limited', message: error.message, retryAfterMs: error.retryAfterMs };
  if (isBulkheadRejectedError(error)) {
    const b = integration.spec.bulkhead!;
    return { code: 'bulkhead_full', message: `${b.maxConcurrent} calls in flight and ${b.maxQueued} waiting` };
  }
  if (isBrokenCircuitError(error)) {
    return {
      code: 'circuit_open',
      message: 'the circuit is open after repeated failures; the vendor is not called',
      retryAfterMs: integration.policy.msUntilHalfOpen(),
    };
  }
  if (error instanceof DeadlineExceededError) {
    return { code: 'deadline_exceeded', message: `no answer within ${integration.spec.timeouts.totalMs}ms (timeouts.total)` };
  }
  if (error instanceof UpstreamFailure && error.cause instanceof RequestTooLargeError) {
    return { code: 'request_too_large', message: error.cause.message };
  }
  const attempts = call.attempts === 1 ? '1 attempt' : `${call.attempts} attempts`;
  return { code: 'upstream_unreachable', message: `no response from the vendor after ${attempts}: ${(error as Error).message}` };
}
