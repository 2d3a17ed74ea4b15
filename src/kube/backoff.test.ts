import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap', () => {
    const o = { initialMs: 500, maxMs: 30_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, o))).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('with jitter stays within the upper half of the computed delay', () => {
    const o = { initialMs: 1_000, maxMs: 30_000, jitter: true };
    expect(backoffDelay(3, o, () => 0)).toBe(2_000);
    expect(backoffDelay(3, o, () => 0.999)).toBe(3_998);
  });
});
