// One proxied call: headers and body prepared once, then the integration's pipeline runs attempts
// against its pool, and the answer (the vendor's response, streamed, or the sidecar's own error) goes
// back. When the caller goes away, the call is cancelled: the vendor request is aborted and nothing
// is retried.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { isBrokenCircuitError, isBulkheadRejectedError } from 'cockatiel';
import type { Dispatcher } from 'undici';
import type { AttemptControl, AttemptListener } from '../policy/attempt-control.ts';
import type { Call } from '../policy/call.ts';
import { CallCancelledError, DeadlineExceededError, RateLimitedError, UpstreamFailure } from '../policy/errors.ts';
import type { AttemptResult } from '../policy/pipeline.ts';
import { attemptLogger } from './attempt-log.ts';
import { readBody, RequestTooLargeError, type BodyLimits } from './body.ts';
import { toErrorResponse, type SidecarError } from './error-response.ts';
import { inboundHeaders, outboundHeaders } from './headers.ts';
import type { Integration } from './integration.ts';

export interface ForwardContext {
  readonly limits: BodyLimits;
  /** Share of calls logged at info. */
  readonly logSampleRate: number;
}

/** Past this many bytes a response being discarded is aborted rather than read to its end. */
const DISCARD_LIMIT = 128 * 1024;

/**
 * One attempt on undici's handler API: undici calls these methods directly as the response arrives,
 * with no Readable, pipe or stream listeners in between (with undici's `request()` + pipe, the sidecar
 * spent about a fifth more CPU per call). The promise settles at the response headers, as the per-attempt timeout
 * measures; the body arriving before `forwardTo()` is kept, and after it goes straight to `res.write()`
 * with backpressure.
 */
export class UpstreamResponse implements AttemptResult, AttemptListener, Dispatcher.DispatchHandler {
  readonly call: Call;
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  private readonly out: Outbound;
  private readonly started = performance.now();
  private readonly control: AttemptControl;
  private controller: Dispatcher.DispatchController | undefined;
  private resolve!: (response: UpstreamResponse) => void;
  private reject!: (error: Error) => void;
  readonly headersReceived: Promise<UpstreamResponse>;
  /** The body received before `forwardTo()`. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  private res: ServerResponse | undefined;
  private ended = false;
  private failure: Error | undefined;
  private discarded = false;
  private collector: Collector | undefined;

  constructor(call: Call, control: AttemptControl, out: Outbound) {
    this.call = call;
    this.control = control;
    this.out = out;
    this.headersReceived = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    control.listen(this);
  }

  get retryAfter(): string | undefined {
    const value = this.headers['retry-after'];
    return typeof value === 'string' ? value : undefined;
  }

  /**
   * The timeout, the deadline or the caller's departure. Settles the attempt at once even while it
   * waits for a free connection, where undici gives a handler no way to leave its queue;
   * onRequestStart then aborts it.
   */
  attemptAborted(reason: Error): void {
    if (this.controller) this.controller.abort(reason);
    else this.reject(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.control.reason) controller.abort(this.control.reason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // An informational answer (100 Continue, 103 Early Hints) is followed by the real one.
    if (statusCode < 200) return;
    this.statusCode = statusCode;
    this.headers = headers;
    this.out.integration.metrics.attempt('response', (performance.now() - this.started) / 1000);
    this.resolve(this);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.collector) {
      if (!this.collector.take(chunk)) controller.abort(new Error('response body far over the kept limit'));
    } else if (this.res) {
      if (!this.res.write(chunk)) {
        controller.pause();
        this.res.once('drain', this.resumeUpstream);
      }
    } else if (this.discarded) {
      this.buffered += chunk.length;
      if (this.buffered > DISCARD_LIMIT) controller.abort(new Error('discarded response body too large'));
    } else {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      // The forwarder takes the response within a few ticks; until then, do not read unboundedly.
      if (this.buffered > DISCARD_LIMIT) controller.pause();
    }
  }

  onResponseEnd(): void {
    this.ended = true;
    this.res?.end();
    this.collector?.finish(false);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (this.statusCode === 0) {
      this.out.integration.metrics.attempt('error', (performance.now() - this.started) / 1000);
      this.reject(error);
      return;
    }
    this.failure = error;
    // The body broke after the headers went out: the caller sees a cut connection, not a short body.
    this.res?.destroy();
    this.collector?.finish(true);
  }

  private readonly resumeUpstream = (): void => this.controller?.resume();

  /** Sends the response to the caller: headers, what has arrived, then the rest as it arrives. */
  forwardTo(res: ServerResponse): void {
    const chunks = this.chunks;
    this.chunks = [];
    res.writeHead(this.statusCode, inboundHeaders(this.headers, this.call.attempts));
    if (this.failure) {
      res.destroy();
      return;
    }
    // A small answer usually arrives whole with its headers: handing it to `end()` writes headers and
    // body in one go.
    if (this.ended) {
      res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      return;
    }
    for (const chunk of chunks) res.write(chunk);
    this.res = res;
    if (this.controller?.paused) this.controller.resume();
  }

  /**
   * Reads the body into memory instead of forwarding it (a durable delivery keeps the vendor's answer),
   * keeping at most `limit` bytes; `truncated` when there was more, or the body broke off.
   */
  collect(limit: number): Promise<{ body: Buffer; truncated: boolean }> {
    return new Promise((resolve) => {
      const collector = new Collector(limit, resolve);
      for (const chunk of this.chunks) collector.take(chunk);
      this.chunks = [];
      if (this.ended || this.failure) {
        collector.finish(this.failure !== undefined);
        return;
      }
      this.collector = collector;
      if (this.controller?.paused) this.controller.resume();
    });
  }

  /** The caller went away while the body streamed: stop reading it. */
  cancel(): void {
    if (!this.ended && !this.failure) this.controller?.abort(new CallCancelledError('the caller went away'));
  }

  /** Releases a response that is not forwarded: reads a short body to its end so the connection is reused. */
  discard(): void {
    this.discarded = true;
    this.chunks = [];
    if (this.ended || this.failure) return;
    if (this.buffered > DISCARD_LIMIT) this.controller?.abort(new Error('discarded response body too large'));
    else if (this.controller?.paused) this.controller.resume();
  }
}

/** Keeps the first `limit` bytes of a body, reads on past them a little, and gives up far beyond. */
class Collector {
  private readonly limit: number;
  private readonly done: (result: { body: Buffer; truncated: boolean }) => void;
  private readonly kept: Buffer[] = [];
  private size = 0;
  private seen = 0;

  constructor(limit: number, done: (result: { body: Buffer; truncated: boolean }) => void) {
    this.limit = limit;
    this.done = done;
  }

  /** False once so much was sent that reading on is a waste: the caller aborts the body. */
  take(chunk: Buffer): boolean {
    this.seen += chunk.length;
    if (this.size < this.limit) {
      const part = chunk.subarray(0, this.limit - this.size);
      this.kept.push(part);
      this.size += part.length;
    }
    return this.seen <= this.limit + DISCARD_LIMIT;
  }

  finish(broken: boolean): void {
    this.done({ body: Buffer.concat(this.kept, this.size), truncated: broken || this.seen > this.size });
  }
}

export interface Outbound {
  readonly integration: Integration;
  readonly path: string;
  readonly method: string;
  readonly headers: string[];
  readonly body: Buffer | Readable | null;
}

export function sendAttempt(call: Call, control: AttemptControl, out: Outbound): Promise<UpstreamResponse> {
  const attempt = new UpstreamResponse(call, control, out);
  out.integration.upstream.pool.dispatch({ path: out.path, method: out.method, headers: out.headers, body: out.body }, attempt);
  return attempt.headersReceived;
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
  upstream: UpstreamResponse | undefined;
  outcome = 'cancelled';
  headersAt = 0;
  closed = false;

  constructor(integration: Integration, method: string, path: string, context: ForwardContext) {
    this.integration = integration;
    this.method = method;
    this.path = path;
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
  const method = req.method ?? 'GET';
  const ex = new Exchange(integration, method, target.path, context);
  (res as TrackedResponse)[kExchange] = ex;
  try {
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
    const buffered = body === null || Buffer.isBuffer(body);
    const replayable = buffered && policy.idempotency.allowsRetry(method, out.hasIdempotencyKey);
    if (integration.logsAttempts) {
      call.onAttempt = attemptLogger(integration, {
        method,
        path: target.path,
        requestId: out.requestId,
        notReplayable: replayable
          ? undefined
          : buffered
            ? `${method} is not in retry.methods and the request carries no usable ${integration.idempotencyHeader} header`
            : `the body is larger than --retry-buffer and was streamed, so it cannot be sent again`,
      });
    }
    const outbound: Outbound = { integration, path: integration.upstream.path(target.rest), method, headers: out.headers, body };
    let response: UpstreamResponse;
    try {
      response = await policy.execute(call, sendAttempt, outbound, replayable);
    } catch (error) {
      settle(call, integration);
      if (error instanceof CallCancelledError) return;
      const failure = describeFailure(error, integration, call);
      if (failure.code === 'upstream_unreachable' && !(error instanceof UpstreamFailure)) {
        integration.logger.error({ err: error }, 'unexpected failure while proxying');
      }
      ex.outcome = toErrorResponse(res, failure, { name: integration.name, fallback: integration.fallback, attempts: call.attempts });
      ex.headersAt = performance.now();
      if (ex.outcome === 'fallback') integration.metrics.fallback();
      else if (ex.outcome === 'rate_limited') integration.metrics.rateLimited();
      return;
    }
    settle(call, integration);
    ex.outcome = 'upstream';
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

/** Ends the call's accounting, counting a retry the budget refused. */
function settle(call: Call, integration: Integration): void {
  call.settle();
  if (call.retryStop === 'budget') integration.metrics.retryBudgetExhausted();
}
