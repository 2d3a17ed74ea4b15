import { CircuitState } from 'cockatiel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FailureRateBreaker, type Outcome } from './failure-rate-breaker.ts';

const { Closed, HalfOpen } = CircuitState;

describe('FailureRateBreaker', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  const breaker = (threshold: number, minimumRequests: number, windowMs = 10_000) =>
    new FailureRateBreaker({ threshold, windowMs, minimumRequests, now: Date.now });

  it('opens when the failed share reaches the threshold exactly, once the window holds minimumRequests', () => {
    const b = breaker(0.5, 4);
    b.success(Closed);
    b.success(Closed);
    expect(b.failure(Closed)).toBe(false); // 1 of 3: below the minimum volume
    expect(b.failure(Closed)).toBe(true); // 2 of 4: exactly 50%
  });

  it('stays closed just below the threshold, and below the minimum volume whatever the share', () => {
    const b = breaker(0.5, 5);
    for (let i = 0; i < 3; i++) b.success(Closed);
    expect(b.failure(Closed)).toBe(false); // 1 of 4, and 4 < 5 calls
    expect(b.failure(Closed)).toBe(false); // 2 of 5 = 40%
    const few = breaker(0.5, 5);
    expect([1, 2, 3, 4].map(() => few.failure(Closed))).toEqual([false, false, false, false]);
    expect(few.failure(Closed)).toBe(true); // 5 of 5
  });

  it('compares the share exactly where the float product would not (7 of 25 at 0.28; 0.28 × 25 = 7.000000000000001)', () => {
    const b = breaker(0.28, 25);
    for (let i = 0; i < 18; i++) b.success(Closed);
    const opened = Array.from({ length: 7 }, () => b.failure(Closed));
    expect(opened).toEqual([false, false, false, false, false, false, true]);
  });

  it('forgets calls older than the window, even after a quiet spell', () => {
    const b = breaker(0.5, 4);
    for (let i = 0; i < 3; i++) b.failure(Closed);
    vi.advanceTimersByTime(9_999);
    expect(b.failure(Closed)).toBe(true); // 4 of 4 within 10 s
    vi.advanceTimersByTime(60_000);
    expect(b.failure(Closed)).toBe(false); // the old four fell out of the window
    for (let i = 0; i < 2; i++) expect(b.failure(Closed)).toBe(false);
    expect(b.failure(Closed)).toBe(true);
  });

  it('reopens on a failed probe, and starts afresh after a successful one', () => {
    const b = breaker(0.5, 4);
    expect(b.failure(HalfOpen)).toBe(true);
    for (let i = 0; i < 3; i++) b.failure(Closed);
    b.success(HalfOpen);
    expect(b.failure(Closed)).toBe(false); // 1 of 2 since the probe
  });

  const slowBreaker = (slowThreshold: number, outcome: () => Outcome) =>
    new FailureRateBreaker({ threshold: 0.5, windowMs: 10_000, minimumRequests: 4, slowThreshold, outcome, now: Date.now });
  const SLOW_SUCCESS: Outcome = { failed: false, slow: true };

  it('opens when the slow share reaches slowThreshold exactly, once the window holds minimumRequests', () => {
    const b = slowBreaker(0.75, () => SLOW_SUCCESS);
    b.success(Closed);
    expect(b.failure(Closed)).toBe(false); // 1 slow of 2
    expect(b.failure(Closed)).toBe(false); // 2 slow of 3: below the minimum volume
    expect(b.failure(Closed)).toBe(true); // 3 slow of 4 = 75%
  });

  it('counts a slow success as a call that did not fail, and a slow failure as both', () => {
    let last = SLOW_SUCCESS;
    const b = slowBreaker(1, () => last);
    b.success(Closed);
    // 3 slow of 4 stays below 100%; counted as failures they would be 75% ≥ 50%.
    for (let i = 0; i < 3; i++) expect(b.failure(Closed)).toBe(false);
    last = { failed: true, slow: true };
    // Failed shares 1/5, 2/6, 3/7, then 4/8 = 50%; the slow share never reaches 100%.
    expect([1, 2, 3, 4].map(() => b.failure(Closed))).toEqual([false, false, false, true]);
  });

  it('refuses a slowThreshold outside (0, 1]', () => {
    expect(() => slowBreaker(0, () => SLOW_SUCCESS)).toThrow('slowThreshold must lie in (0, 1], got 0');
    expect(() => slowBreaker(1.5, () => SLOW_SUCCESS)).toThrow('slowThreshold must lie in (0, 1], got 1.5');
  });

  it('carries its window across a round trip of state, and only into a window of the same shape', () => {
    const b = breaker(0.5, 4);
    for (let i = 0; i < 3; i++) b.failure(Closed);
    const copy = breaker(0.5, 4);
    copy.state = b.state;
    expect(copy.failure(Closed)).toBe(true);
    const other = breaker(0.5, 4, 60_000);
    other.state = b.state;
    expect(other.failure(Closed)).toBe(false);
  });
});
