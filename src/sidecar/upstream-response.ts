// One attempt at the vendor on undici's handler API: undici calls these methods directly as the response
// arrives, with no Readable, pipe or stream listeners in between (with undici's `request()` + pipe, the
// sidecar spent about a fifth more CPU per call). The answer settles at the response headers, as the
// per-attempt timeout measures. What becomes of the body is one state at a time: held until someone
// takes it, then forwarded to the caller with backpressure, collected (a durable delivery keeps it), or
// discarded.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AttemptHandle, AttemptResult, Call, PolicyRequest } from '../policy/call.ts';
import { CallCancelledError, DeadlineExceededError } from '../policy/errors.ts';
import { inboundHeaders } from './headers.ts';
import type { Integration } from './integration.ts';

/** The request of one call, as every attempt sends it. */
export interface Outbound extends PolicyRequest {
  readonly integration: Integration;
  /** The vendor's path, query included. */
  readonly path: string;
  readonly headers: string[];
  readonly body: Buffer | Readable | null;
}

/** Past this many bytes a response being discarded is aborted rather than read to its end. */
const DISCARD_LIMIT = 128 * 1024;

type BodyState =
  /** No response headers yet. */
  | { readonly kind: 'waiting' }
  /** Aborted before the headers came; the dispatch is aborted as soon as undici starts it. */
  | { readonly kind: 'aborted'; readonly reason: Error }
  /** Headers in; the body is held (up to DISCARD_LIMIT before pausing) until someone takes it. */
  | { readonly kind: 'held'; readonly chunks: Buffer[]; bytes: number }
  /** The body ended, or broke off (`error`), before anyone took it. */
  | { readonly kind: 'ended'; readonly chunks: Buffer[]; readonly error: Error | undefined }
  | { readonly kind: 'forwarding'; readonly res: ServerResponse }
  | { readonly kind: 'collecting'; readonly collector: Collector }
  | { readonly kind: 'discarding'; bytes: number }
  /** The body went where it was going, or was dropped. */
  | { readonly kind: 'done' };

const WAITING: BodyState = { kind: 'waiting' };
const DONE: BodyState = { kind: 'done' };

export class UpstreamResponse implements AttemptResult, AttemptHandle<UpstreamResponse>, Dispatcher.DispatchHandler {
  readonly answer: Promise<UpstreamResponse>;
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  private readonly call: Call<Outbound, UpstreamResponse>;
  private readonly started = performance.now();
  private state: BodyState = WAITING;
  private controller: Dispatcher.DispatchController | undefined = undefined;
  private resolve!: (response: UpstreamResponse) => void;
  private reject!: (error: Error) => void;

  constructor(call: Call<Outbound, UpstreamResponse>) {
    this.call = call;
    this.answer = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
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
  abort(reason: Error): void {
    if (this.controller) {
      this.controller.abort(reason);
    } else if (this.state.kind === 'waiting') {
      this.state = { kind: 'aborted', reason };
      this.reject(reason);
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.state.kind === 'aborted') controller.abort(this.state.reason);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // An informational answer (100 Continue, 103 Early Hints) is followed by the real one.
    if (statusCode < 200) return;
    this.statusCode = statusCode;
    this.headers = headers;
    this.state = { kind: 'held', chunks: [], bytes: 0 };
    this.call.request.integration.metrics.attempt('response', (performance.now() - this.started) / 1000);
    this.resolve(this);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const state = this.state;
    switch (state.kind) {
      case 'forwarding':
        if (!state.res.write(chunk)) {
          controller.pause();
          state.res.once('drain', (this.resumeUpstream ??= () => this.controller?.resume()));
        }
        return;
      case 'held':
        state.chunks.push(chunk);
        state.bytes += chunk.length;
        // The forwarder takes the response within a few ticks; until then, do not read unboundedly.
        if (state.bytes > DISCARD_LIMIT) controller.pause();
        return;
      case 'collecting':
        if (!state.collector.take(chunk)) controller.abort(new Error('response body far over the kept limit'));
        return;
      case 'discarding':
        state.bytes += chunk.length;
        if (state.bytes > DISCARD_LIMIT) controller.abort(new Error('discarded response body too large'));
        return;
    }
  }

  onResponseEnd(): void {
    this.finish(undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.state.kind === 'waiting' || this.state.kind === 'aborted') {
      this.call.request.integration.metrics.attempt('error', (performance.now() - this.started) / 1000);
      this.reject(error);
      return;
    }
    this.finish(error);
  }

  /** Sends the response to the caller: headers, what has arrived, then the rest as it arrives. */
  forwardTo(res: ServerResponse): void {
    const state = this.state;
    res.writeHead(this.statusCode, inboundHeaders(this.headers, this.call.attempts));
    if (state.kind === 'ended') {
      this.state = DONE;
      // The body broke after the headers went out: the caller sees a cut connection, not a short body.
      if (state.error) res.destroy();
      // A small answer usually arrives whole with its headers: handing it to `end()` writes headers
      // and body in one go.
      else res.end(state.chunks.length === 1 ? state.chunks[0] : Buffer.concat(state.chunks));
      return;
    }
    if (state.kind !== 'held') return;
    for (const chunk of state.chunks) res.write(chunk);
    this.state = { kind: 'forwarding', res };
    if (this.controller?.paused) this.controller.resume();
  }

  /**
   * Reads the body into memory instead of forwarding it (a durable delivery keeps the vendor's answer),
   * keeping at most `limit` bytes and reading for at most `withinMs`; `truncated` when there was more,
   * or the body broke off or ran out of time.
   */
  collect(limit: number, withinMs: number): Promise<{ body: Buffer; truncated: boolean }> {
    return new Promise((resolve, reject) => {
      const state = this.state;
      // A body is read once: forwarded, collected or discarded. A second reader would wait forever.
      if (state.kind !== 'held' && state.kind !== 'ended') return reject(new Error(`the vendor's body is already ${state.kind}`));
      // Cleared as the collector finishes, at once for a body that has already ended.
      const cut = setTimeout(() => this.controller?.abort(new DeadlineExceededError(`the response body did not end within ${Math.round(withinMs)}ms`)), Math.max(0, withinMs));
      const collector = new Collector(limit, (result) => {
        clearTimeout(cut);
        resolve(result);
      });
      for (const chunk of state.chunks) collector.take(chunk);
      if (state.kind === 'ended') {
        this.state = DONE;
        collector.finish(state.error !== undefined);
        return;
      }
      this.state = { kind: 'collecting', collector };
      if (this.controller?.paused) this.controller.resume();
    });
  }

  /** The caller went away while the body streamed: stop reading it. */
  cancel(): void {
    const kind = this.state.kind;
    if (kind === 'held' || kind === 'forwarding' || kind === 'collecting' || kind === 'discarding') {
      this.controller?.abort(new CallCancelledError('the caller went away'));
    }
  }

  /** Releases a response that is not forwarded: reads a short body to its end so the connection is reused. */
  discard(): void {
    const state = this.state;
    if (state.kind === 'ended') {
      this.state = DONE;
      return;
    }
    if (state.kind !== 'held') return;
    this.state = { kind: 'discarding', bytes: state.bytes };
    if (state.bytes > DISCARD_LIMIT) this.controller?.abort(new Error('discarded response body too large'));
    else if (this.controller?.paused) this.controller.resume();
  }

  private finish(error: Error | undefined): void {
    const state = this.state;
    switch (state.kind) {
      case 'held':
        this.state = { kind: 'ended', chunks: state.chunks, error };
        return;
      case 'forwarding':
        this.state = DONE;
        if (error) state.res.destroy();
        else state.res.end();
        return;
      case 'collecting':
        this.state = DONE;
        state.collector.finish(error !== undefined);
        return;
      case 'discarding':
        this.state = DONE;
        return;
    }
  }

  /** Made the first time the caller reads slower than the vendor sends, which most responses never do. */
  private resumeUpstream: (() => void) | undefined = undefined;
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

/** Starts one attempt of the call's request on the integration's pool. */
export function sendAttempt(call: Call<Outbound, UpstreamResponse>): UpstreamResponse {
  const attempt = new UpstreamResponse(call);
  const out = call.request;
  out.integration.upstream.pool.dispatch({ path: out.path, method: out.method, headers: out.headers, body: out.body }, attempt);
  return attempt;
}
