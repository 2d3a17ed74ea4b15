import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryBudget } from './retry-budget.ts';

describe('RetryBudget', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('allows retries up to percent of the calls in the window', () => {
    const budget = new RetryBudget({ percent: 20, minPerSecond: 0, windowMs: 10_000, now: Date.now });
    for (let i = 0; i < 10; i++) budget.recordCall();
    expect([budget.tryRetry(), budget.tryRetry(), budget.tryRetry()]).toEqual([true, true, false]);
  });

  it('always allows minPerSecond retries per second', () => {
    const budget = new RetryBudget({ percent: 0, minPerSecond: 2, windowMs: 10_000, now: Date.now });
    expect([budget.tryRetry(), budget.tryRetry(), budget.tryRetry()]).toEqual([true, true, false]);
    vi.advanceTimersByTime(1000);
    expect(budget.tryRetry()).toBe(true);
  });

  it('forgets calls and retries older than the window', () => {
    const budget = new RetryBudget({ percent: 50, minPerSecond: 0, windowMs: 10_000, now: Date.now });
    budget.recordCall();
    budget.recordCall();
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
    vi.advanceTimersByTime(10_000);
    expect(budget.tryRetry()).toBe(false);
    budget.recordCall();
    budget.recordCall();
    expect(budget.tryRetry()).toBe(true);
  });
});
