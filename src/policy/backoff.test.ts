import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';

describe('backoffDelay', () => {
  const spec = { initialMs: 100, maxMs: 1000, multiplier: 3, jitter: 'none' as const };

  it('grows by the multiplier up to the maximum', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(spec, n, () => 0.5))).toEqual([100, 300, 900, 1000]);
  });

  it('with full jitter draws between 0 and the computed delay', () => {
    expect(backoffDelay({ ...spec, jitter: 'full' }, 2, () => 0.5)).toBe(150);
    expect(backoffDelay({ ...spec, jitter: 'full' }, 2, () => 0)).toBe(0);
  });
});
