import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RateLimitedError } from './errors.ts';
import { RateLimiter } from './rate-limiter.ts';

describe('RateLimiter', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  const limiter = (whenExceeded: 'queue' | 'reject', maxQueueWaitMs = 1000) =>
    new RateLimiter({ requests: 10, perMs: 1000, burst: 2, whenExceeded, maxQueueWaitMs, now: Date.now });

  it('starts full, spends the burst, then refills continuously at the rate', () => {
    const l = limiter('reject');
    expect(l.acquire()).toBeUndefined();
    expect(l.acquire()).toBeUndefined();
    expect(() => l.acquire()).toThrow(RateLimitedError);
    vi.advanceTimersByTime(99);
    expect(() => l.acquire()).toThrow(RateLimitedError);
    vi.advanceTimersByTime(1);
    expect(l.acquire()).toBeUndefined();
    vi.advanceTimersByTime(10_000);
    expect(l.available).toBe(2);
  });

  it('takes without waiting what acquire would take, reserving the tokens it would wait for', () => {
    const l = limiter('queue', 150);
    expect([l.take(), l.take()]).toEqual([true, true]);
    // acquire would wait 100 ms, then 200 ms (beyond maxQueueWait): one reserved, one refused.
    expect(l.take()).toBe(true);
    expect(l.available).toBe(-1);
    expect(l.take()).toBe(false);
    expect(l.available).toBe(-1);
    expect(() => l.acquire()).toThrow(RateLimitedError);
    const r = limiter('reject');
    expect([r.take(), r.take(), r.take()]).toEqual([true, true, false]);
  });

  it('keeps a share of its rate and burst, and gets the whole back', () => {
    const l = new RateLimiter({ requests: 30, perMs: 1000, burst: 6, whenExceeded: 'reject', maxQueueWaitMs: 0, now: Date.now });
    l.setShare(1 / 3);
    expect(l.available).toBe(2);
    vi.advanceTimersByTime(10_000);
    expect(l.available).toBe(2);
    l.acquire();
    l.acquire();
    expect(() => l.acquire()).toThrow(RateLimitedError);
    // 10 a second now: the next token is due in 100 ms.
    vi.advanceTimersByTime(99);
    expect(() => l.acquire()).toThrow(RateLimitedError);
    vi.advanceTimersByTime(1);
    expect(l.acquire()).toBeUndefined();
    l.setShare(1);
    vi.advanceTimersByTime(10_000);
    expect(l.available).toBe(6);
    l.setShare(0);
    expect(l.available).toBe(6);
  });

  it('reject: tells when the next token is due', () => {
    const l = limiter('reject');
    l.acquire();
    l.acquire();
    vi.advanceTimersByTime(30);
    try {
      l.acquire();
      expect.unreachable();
    } catch (error) {
      expect((error as RateLimitedError).retryAfterMs).toBeCloseTo(70);
    }
  });

  it('queue: waiters get tokens in order, one per 100 ms, and a wait beyond maxQueueWait is refused at once', async () => {
    const l = limiter('queue', 250);
    l.acquire();
    l.acquire();
    const order: number[] = [];
    const waits = [1, 2].map((n) => l.acquire()!.then(() => order.push(n)));
    // Two queued ahead: the third would wait 300 ms > 250 ms.
    expect(() => l.acquire()).toThrow(RateLimitedError);
    await vi.advanceTimersByTimeAsync(100);
    expect(order).toEqual([1]);
    await vi.advanceTimersByTimeAsync(100);
    expect(order).toEqual([1, 2]);
    await Promise.all(waits);
  });

  it('queue: an aborted waiter rejects with the reason and gives its token back', async () => {
    const l = limiter('queue');
    l.acquire();
    l.acquire();
    const controller = new AbortController();
    const wait = l.acquire(controller)!;
    expect(l.available).toBe(-1);
    controller.abort(new Error('gone'));
    await expect(wait).rejects.toThrow('gone');
    expect(l.available).toBe(0);
  });
});
