import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from './queue.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('WorkQueue', () => {
  it('hands out a key once however often it was added before a worker took it', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.depth).toBe(0);
  });

  it('never hands out a key that is in flight; added meanwhile, it comes back after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    q.add('a');
    expect(q.depth).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(key!);
    await Promise.resolve();
    expect(second).toBe('a');
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add('x');
    expect(await next).toBe('x');
  });

  it('backs a failing key off exponentially up to the cap, and forget starts over', () => {
    const q = new WorkQueue({ backoff: { initialMs: 100, maxMs: 1_000 } });
    expect([1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('a'))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(q.retries('a')).toBe(6);
    q.forget('a');
    expect(q.addRateLimited('a')).toBe(100);
    expect(q.addRateLimited('b')).toBe(100);
  });

  it('adds a rate-limited key only when its delay has passed', async () => {
    const q = new WorkQueue({ backoff: { initialMs: 100, maxMs: 1_000 } });
    q.addRateLimited('a');
    q.addRateLimited('a');
    expect(q.depth).toBe(0);
    vi.advanceTimersByTime(99);
    expect(q.depth).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe('a');
  });

  it('keeps the earlier of two delayed adds of the same key', () => {
    const q = new WorkQueue();
    q.addAfter('a', 500);
    q.addAfter('a', 5_000);
    vi.advanceTimersByTime(500);
    expect(q.depth).toBe(1);
    q.addAfter('b', 5_000);
    q.addAfter('b', 200);
    vi.advanceTimersByTime(200);
    expect(q.depth).toBe(2);
  });

  it('shutDown releases waiting workers and drops pending work', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.addAfter('later', 1_000);
    q.shutDown();
    expect(await waiting).toBeUndefined();
    vi.advanceTimersByTime(1_000);
    q.add('after');
    expect(q.depth).toBe(0);
    expect(await q.get()).toBeUndefined();
  });
});
