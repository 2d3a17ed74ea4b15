import { describe, expect, it } from 'vitest';
import { classifyError, FailureMatcher, isCertificateError } from './classify.ts';

const err = (code: string, cause?: unknown) => Object.assign(new Error(code), { code, cause });

describe('classify', () => {
  it('maps undici and Node error codes to failure kinds, looking through causes', () => {
    expect(classifyError(err('ECONNREFUSED'))).toBe('connect-failure');
    expect(classifyError(err('UND_ERR_CONNECT_TIMEOUT'))).toBe('connect-failure');
    expect(classifyError(err('UND_ERR_SOCKET', err('ECONNRESET')))).toBe('reset');
    expect(classifyError(err('ECONNRESET'))).toBe('reset');
    expect(classifyError(err('UND_ERR_HEADERS_TIMEOUT'))).toBe('timeout');
    expect(classifyError(new Error('x', { cause: err('ECONNREFUSED') }))).toBe('connect-failure');
    expect(classifyError(err('UND_ERR_INVALID_ARG'))).toBeUndefined();
    expect(classifyError('nope')).toBeUndefined();
  });

  it('takes a certificate that fails verification for a connect failure that is not worth retrying', () => {
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED']) {
      expect(classifyError(err(code)), code).toBe('connect-failure');
      expect(isCertificateError(new Error('wrapped', { cause: err(code) })), code).toBe(true);
    }
    expect(isCertificateError(err('ECONNREFUSED'))).toBe(false);
    expect(isCertificateError(err('ERR_SSL_WRONG_VERSION_NUMBER'))).toBe(false);
  });

  it('matches kinds, exact statuses and the 5xx shorthand', () => {
    const m = new FailureMatcher(['reset', '503', '429']);
    expect(m.matchesKind('reset')).toBe(true);
    expect(m.matchesKind('timeout')).toBe(false);
    expect(m.matchesKind(undefined)).toBe(false);
    expect([503, 429, 500, 404].map((s) => m.matchesStatus(s))).toEqual([true, true, false, false]);
    const all = new FailureMatcher(['5xx']);
    expect([500, 599, 499].map((s) => all.matchesStatus(s))).toEqual([true, true, false]);
  });
});
