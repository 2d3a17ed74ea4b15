import { describe, expect, it } from 'vitest';
import { IdempotencyRule } from './idempotency.ts';

describe('IdempotencyRule', () => {
  it('retries the listed methods, and any other only with the idempotency header', () => {
    const rule = new IdempotencyRule(['GET', 'PUT'], 'Idempotency-Key');
    expect(rule.header).toBe('idempotency-key');
    expect(rule.allowsRetry('GET', false)).toBe(true);
    expect(rule.allowsRetry('POST', false)).toBe(false);
    expect(rule.allowsRetry('POST', true)).toBe(true);
  });
});
