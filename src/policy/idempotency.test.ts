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

  it('adds a key only with generate, to a call of an unlisted method that carries none', () => {
    const generating = new IdempotencyRule(['GET', 'PUT'], 'Idempotency-Key', true);
    expect(generating.addsKey('POST', false)).toBe(true);
    expect(generating.addsKey('PATCH', false)).toBe(true);
    expect(generating.addsKey('POST', true)).toBe(false);
    expect(generating.addsKey('GET', false)).toBe(false);
    expect(new IdempotencyRule(['GET', 'PUT'], 'Idempotency-Key').addsKey('POST', false)).toBe(false);
  });
});
