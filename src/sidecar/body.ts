// Request bodies: buffered up to the retry buffer because a retry replays them; a larger body streams
// through (and is attempted once); beyond the hard maximum the call gets 413 request_too_large. A
// chunked body is counted as it arrives: while it is still being buffered nothing has reached the
// vendor; once it streams, crossing the maximum aborts the vendor's request mid-body.
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';

export class RequestTooLargeError extends Error {
  override readonly name = 'RequestTooLargeError';
  readonly code = 'request_too_large';

  constructor(maxBytes: number) {
    super(`the request body exceeds ${maxBytes} bytes`);
  }
}

export interface BodyLimits {
  readonly retryBufferBytes: number;
  readonly maxRequestBodyBytes: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * A Buffer (replayable), a stream (sent once) or null (no body). Throws RequestTooLargeError at once
 * when Content-Length already says too much.
 */
export function readBody(
  req: IncomingMessage,
  contentLength: number,
  chunked: boolean,
  limits: BodyLimits,
): Buffer | Readable | null | Promise<Buffer | Readable> {
  if (contentLength > limits.maxRequestBodyBytes) throw new RequestTooLargeError(limits.maxRequestBodyBytes);
  if (!chunked) {
    if (contentLength < 0) return null;
    if (contentLength === 0) return EMPTY;
    // The HTTP parser holds the body to Content-Length, so the stream needs no byte count of its own.
    if (contentLength > limits.retryBufferBytes) return req;
  }
  return buffer(req, limits);
}

function buffer(req: IncomingMessage, limits: BodyLimits): Promise<Buffer | Readable> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      if (size > limits.maxRequestBodyBytes) {
        cleanup();
        reject(new RequestTooLargeError(limits.maxRequestBodyBytes));
        return;
      }
      if (size <= limits.retryBufferBytes) return;
      // Too big to replay: hand over what we have plus the rest as one stream, counted against the maximum.
      cleanup();
      const body = new LimitedBody(limits.maxRequestBodyBytes);
      for (const c of chunks) body.write(c);
      req.on('error', (error) => body.destroy(error));
      req.pipe(body);
      resolve(body);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

class LimitedBody extends Transform {
  private readonly maxBytes: number;
  private seen = 0;

  constructor(maxBytes: number) {
    super();
    this.maxBytes = maxBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.maxBytes) callback(new RequestTooLargeError(this.maxBytes));
    else callback(null, chunk);
  }
}

/**
 * After an answer to a request whose body is still arriving: read and drop the rest. Closing the
 * connection on unread data makes TCP reset it, and a caller still sending may then never see the
 * answer. Bounded, like nginx's lingering close: after `limitMs` the connection is closed regardless.
 */
export function discardRest(req: IncomingMessage, limitMs: number): void {
  if (req.complete || req.destroyed) return;
  const timer = setTimeout(() => req.destroy(), limitMs);
  const done = () => clearTimeout(timer);
  req.once('end', done).once('close', done);
  req.resume();
}
