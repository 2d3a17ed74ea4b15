// The one place that writes a response the sidecar makes itself: docs/design.md's error JSON with its status
// from src/api/errors.ts, Retry-After where known, x-breakwater-attempts after any attempt, or the
// integration's fallback where it replaces the error, marked with the error it replaces. Whatever of
// the request body is still to come is read and dropped, so the caller gets to read the answer.
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { SIDECAR_ERRORS, type SidecarErrorCode } from '../api/errors.ts';
import { ATTEMPTS_HEADER, FALLBACK_HEADER } from '../api/names.ts';
import type { ResolvedSpec } from '../api/resolve.ts';
import { formatRetryAfter } from '../policy/retry-after.ts';
import { discardRest } from './body.ts';
import { SIDECAR_DEFAULTS } from './options.ts';

// node:http as CommonJS, not as an ES module: see eslint.config.js.
const { STATUS_CODES } = process.getBuiltinModule('node:http');

export interface SidecarError {
  readonly code: SidecarErrorCode;
  readonly message: string;
  readonly retryAfterMs?: number;
}

/**
 * The vendor gave no answer: the fallback stands in. Load shedding (rate_limited, bulkhead_full) tells
 * the caller to back off and is never replaced, nor is an answer the vendor did send, nor a secret file
 * that cannot be read (credentials_unavailable): that is a fault to fix, not an outage to ride out.
 */
const FALLBACK_REPLACES: ReadonlySet<SidecarErrorCode> = new Set(['circuit_open', 'upstream_unreachable', 'deadline_exceeded']);

/** The fallback, where configured, would answer a call that failed with `code`. */
export function fallbackReplaces(code: SidecarErrorCode): boolean {
  return FALLBACK_REPLACES.has(code);
}

/** An integration's fallback response, built once per config load. */
export interface PreparedFallback {
  readonly status: number;
  /** The spec's headers with the body's content-length. */
  readonly headers: Readonly<Record<string, string | number>>;
  readonly body: Buffer;
}

export function prepareFallback(fallback: NonNullable<ResolvedSpec['fallback']>): PreparedFallback {
  const body = Buffer.from(fallback.body);
  return { status: fallback.status, headers: { ...fallback.headers, 'content-length': body.length }, body };
}

export interface ErrorTarget {
  readonly name: string;
  readonly fallback?: PreparedFallback;
  /** Attempts sent to the vendor; 0 writes no x-breakwater-attempts. */
  readonly attempts: number;
}

/** docs/design.md's error JSON. */
export function errorBody(error: SidecarError, integration: string): Buffer {
  return Buffer.from(JSON.stringify({ error: error.code, integration, message: error.message }));
}

/**
 * For a connection with no response object: a request Node did not parse, or a CONNECT, which Node
 * hands over as a bare socket. The status line is written by hand and the connection closed.
 */
export function writeRawError(socket: Duplex, error: SidecarError): void {
  const body = errorBody(error, '');
  const status = SIDECAR_ERRORS[error.code].status;
  socket.end(
    Buffer.concat([
      Buffer.from(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`),
      body,
    ]),
  );
}

/** Writes the response and returns the call's outcome label: `fallback` or the error code. */
export function toErrorResponse(res: ServerResponse, error: SidecarError, target: ErrorTarget): string {
  if (res.headersSent) {
    // The vendor's answer is already on its way; a broken connection is the only honest signal left.
    res.destroy();
    return error.code;
  }
  discardRest(res.req, SIDECAR_DEFAULTS.refusedBodyLingerMs);
  const attempts = target.attempts > 0 ? { [ATTEMPTS_HEADER]: String(target.attempts) } : undefined;
  const fallback = target.fallback;
  if (fallback && FALLBACK_REPLACES.has(error.code)) {
    // Marked, or a caller (and whoever debugs it) would take the stand-in for the vendor's answer.
    res.writeHead(fallback.status, { ...fallback.headers, [FALLBACK_HEADER]: error.code, ...attempts }).end(fallback.body);
    return 'fallback';
  }
  const body = errorBody(error, target.name);
  res.writeHead(SIDECAR_ERRORS[error.code].status, {
    'content-type': 'application/json',
    'content-length': body.length,
    ...(error.retryAfterMs !== undefined && { 'retry-after': formatRetryAfter(error.retryAfterMs) }),
    ...attempts,
  });
  res.end(body);
  return error.code;
}
