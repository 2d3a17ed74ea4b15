// Failure classification: what kind of failure an upstream error is (from undici's and Node's error
// codes), and whether a `retryOn`/`failOn` list matches a kind or a status. Lists are compiled once per
// config load into a kind set and a status table, so matching on the request path is two lookups.

export type FailureKind = 'connect-failure' | 'reset' | 'timeout';

// A certificate the vendor presented failed verification (OpenSSL's verify codes, and Node's own host
// check). Nothing reached the vendor, so it is a connect failure and counts for the breaker: an expired
// vendor certificate is an outage like any other, and the fallback should stand in. It is never
// retried, whatever retryOn says: the next handshake gets the same certificate and fails the same way,
// only later.
const CERTIFICATE = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_REVOKED', 'INVALID_CA', 'INVALID_PURPOSE', 'PATH_LENGTH_EXCEEDED', 'CERT_CHAIN_TOO_LONG',
]);
// No connection was made: nothing reached the vendor, so even a non-idempotent call is safe to resend.
const CONNECT_FAILURE = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT', 'ERR_SSL_WRONG_VERSION_NUMBER', ...CERTIFICATE,
]);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);
const TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** The failure kind of an error thrown by the upstream client, or undefined when it is none of them. */
export function classifyError(error: unknown): FailureKind | undefined {
  const code = findCode(error, (c) => CONNECT_FAILURE.has(c) || RESET.has(c) || TIMEOUT.has(c));
  if (code === undefined) return undefined;
  return CONNECT_FAILURE.has(code) ? 'connect-failure' : RESET.has(code) ? 'reset' : 'timeout';
}

/** The vendor's certificate failed verification: a connect failure that is never retried. */
export function isCertificateError(error: unknown): boolean {
  return findCode(error, (c) => CERTIFICATE.has(c)) !== undefined;
}

/** The first error `code` in the chain of causes that `matches`. */
function findCode(error: unknown, matches: (code: string) => boolean): string | undefined {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && matches(code)) return code;
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
