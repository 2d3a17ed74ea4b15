import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Call, expireCall } from './call.ts';
import { DeadlineExceededError } from './errors.ts';
import { TimeoutList } from './timeout-list.ts';

describe('Call', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('answers deadline_exceeded when the attempt timeout and the deadline fall due together, whichever timer runs first', async () => {
    // The attempts' list is made first, so its timer runs first when both are due.
    const attempts = new TimeoutList<Call>(1000, (call) => call.timeOutAttempt(1000));
    const deadlines = new TimeoutList<Call>(1000, expireCall);
    const call = new Call({ method: 'GET', idempotencyKey: false, bodyReplayable: true }, Date.now() + 1000);
    const answer = call.answer.catch((e: unknown) => e);
    const aborted: Error[] = [];
    call.attemptStarting();
    attempts.start(call);
    call.startDeadline(deadlines);
    call.inFlight = { answer: new Promise(() => {}), abort: (reason) => aborted.push(reason) };
    await vi.advanceTimersByTimeAsync(999);
    expect(aborted).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(aborted).toHaveLength(1);
    expect(aborted[0]).toBeInstanceOf(DeadlineExceededError);
    expect(await answer).toBeInstanceOf(DeadlineExceededError);
  });

  it('times out only the attempt while the deadline is still ahead', async () => {
    const attempts = new TimeoutList<Call>(100, (call) => call.timeOutAttempt(100));
    const deadlines = new TimeoutList<Call>(1000, expireCall);
    const call = new Call({ method: 'GET', idempotencyKey: false, bodyReplayable: true }, Date.now() + 1000);
    const aborted: Error[] = [];
    call.startDeadline(deadlines);
    call.attemptStarting();
    attempts.start(call);
    call.inFlight = { answer: new Promise(() => {}), abort: (reason) => aborted.push(reason) };
    await vi.advanceTimersByTimeAsync(100);
    expect(aborted.map((e) => e.message)).toEqual(['no response headers within 100ms (timeouts.perAttempt)']);
    expect(call.aborted).toBe(false);
  });
});
