import { describe, expect, it } from 'vitest';
import { formatRetryAfter, parseRetryAfter, retryAfterVerdict } from './retry-after.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('Retry-After', () => {
  it('reads delta-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('3', NOW)).toBe(3000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', NOW)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter(['2', '9'], NOW)).toBe(2000);
  });

  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-1', NOW)).toBeUndefined();
  });

  it('caps at maxRetryAfter: a longer wait ends the retries', () => {
    expect(retryAfterVerdict('30', NOW, 30_000)).toEqual({ kind: 'wait', ms: 30_000 });
    expect(retryAfterVerdict('31', NOW, 30_000)).toEqual({ kind: 'too-long', ms: 31_000 });
    expect(retryAfterVerdict(undefined, NOW, 30_000)).toEqual({ kind: 'absent' });
  });

  it('formats whole seconds, rounded up, at least 1', () => {
    expect(formatRetryAfter(0)).toBe('1');
    expect(formatRetryAfter(1001)).toBe('2');
  });
});
