// Failures talking to the API server, with a stable `code` to match on.

export type KubeErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'gone'
  | 'invalid'
  | 'too_many_requests'
  | 'server_error'
  | 'unreachable'
  | 'no_config';

export class KubeError extends Error {
  override readonly name = 'KubeError';
  readonly code: KubeErrorCode;
  /** HTTP status, or 0 when no response came. */
  readonly status: number;

  constructor(status: number, message: string, options?: { cause?: unknown; code?: KubeErrorCode }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.code = options?.code ?? codeFor(status);
  }
}

function codeFor(status: number): KubeErrorCode {
  switch (status) {
    case 0:
      return 'unreachable';
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 410:
      return 'gone';
    case 422:
      return 'invalid';
    case 429:
      return 'too_many_requests';
    default:
      return status >= 500 ? 'server_error' : 'bad_request';
  }
}

/** The HTTP status behind a failed request, or 0 when there was no response (or it was no KubeError). */
export function statusOf(error: unknown): number {
  return error instanceof KubeError ? error.status : 0;
}

export const isNotFound = (error: unknown): boolean => statusOf(error) === 404;
export const isConflict = (error: unknown): boolean => statusOf(error) === 409;
export const isGone = (error: unknown): boolean => statusOf(error) === 410;

/** The API server's own explanation from a `Status` body, else the raw text. */
export function statusMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.slice(0, 500);
}
