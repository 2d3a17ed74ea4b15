// Failure classification: what kind of failure an upstream error is (from undici's and Node's error
// codes), and whether a `retryOn`/`failOn` list matches a kind or a status. Lists are compiled once per
// config load into a kind set and a status table, so matching on the request path is two lookups.

export type FailureKind = 'connect-failure' | 'reset' | 'timeout';

// No connection was made: nothing reached the vendor, so even a non-idempotent call is safe to resend.
const CONNECT_FAILURE = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'ERR_SSL_WRONG_VERSION_NUMBER',
]);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);
const TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** The failure kind of an error thrown by the upstream client, or undefined when it is none of them. */
export function classifyError(error: unknown): FailureKind | undefined {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (CONNECT_FAILURE.has(code)) return 'connect-failure';
      if (RESET.has(code)) return 'reset';
      if (TIMEOUT.has(code)) return 'timeout';
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A compiled `retryOn` or `failOn` list: failure kinds, status codes and the `5xx` shorthand. */
export class FailureMatcher {
  private readonly kinds: ReadonlySet<string>;
  private readonly statuses = new Uint8Array(600);

  constructor(list: readonly string[]) {
    this.kinds = new Set(list.filter((entry) => !/^\d/.test(entry)));
    for (const entry of list) {
      if (entry === '5xx') this.statuses.fill(1, 500, 600);
      else if (/^\d{3}$/.test(entry)) this.statuses[Number(entry)] = 1;
    }
  }

  matchesKind(kind: FailureKind | undefined): boolean {
    return kind !== undefined && this.kinds.has(kind);
  }

  matchesStatus(status: number): boolean {
    return this.statuses[status] === 1;
  }
}
