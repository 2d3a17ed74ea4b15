// A token bucket: holds `burst` tokens, refills continuously at `requests` per `perMs`, each call takes
// one. With `queue`, a call that finds the bucket empty reserves the next token and waits for it, unless
// that wait (the callers queued ahead included) would exceed `maxQueueWaitMs`: then it is rejected at
// once instead of after waiting. Reservations drive the token count below zero, which is what keeps the
// queue FIFO without a list of waiters; an aborted waiter gives its token back.
import { delay } from './delay.ts';
import { RateLimitedError } from './errors.ts';

export interface RateLimiterOptions {
  readonly requests: number;
  readonly perMs: number;
  readonly burst: number;
  readonly whenExceeded: 'queue' | 'reject';
  readonly maxQueueWaitMs: number;
  readonly now?: () => number;
}

export class RateLimiter {
  private readonly options: RateLimiterOptions;
  private perMsRate: number;
  private burst: number;
  private share = 1;
  private readonly queue: boolean;
  private readonly maxQueueWaitMs: number;
  private readonly now: () => number;
  private tokens: number;
  private refilledAt: number;

  constructor(options: RateLimiterOptions) {
    this.options = options;
    this.perMsRate = options.requests / options.perMs;
    this.burst = options.burst;
    this.queue = options.whenExceeded === 'queue';
    this.maxQueueWaitMs = options.maxQueueWaitMs;
    this.now = options.now ?? Date.now;
    this.tokens = options.burst;
    this.refilledAt = this.now();
  }

  /**
   * Keeps this share (0 < share ≤ 1) of the configured rate and burst: a quota split across the pods
   * of a fleet. Tokens above the new burst are dropped; reservations already made stand.
   */
  setShare(share: number): void {
    if (!(share > 0 && share <= 1) || share === this.share) return;
    this.refill();
    this.share = share;
    this.perMsRate = (this.options.requests * share) / this.options.perMs;
    this.burst = Math.max(1, this.options.burst * share);
    this.tokens = Math.min(this.tokens, this.burst);
  }

  /** Tokens in the bucket now; negative while callers wait for reserved ones. */
  get available(): number {
    this.refill();
    return this.tokens;
  }

  /**
   * Takes a token. Returns undefined when one was free, or a promise that resolves when the reserved
   * token is due and rejects when `waiter`'s signal aborts first (read only then: most calls never wait).
   * Throws RateLimitedError (with reject, or when the wait would exceed maxQueueWait).
   */
  acquire(waiter?: { readonly signal: AbortSignal }): Promise<void> | undefined {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return undefined;
    }
    const waitMs = (1 - this.tokens) / this.perMsRate;
    if (!this.queue || waitMs > this.maxQueueWaitMs) throw new RateLimitedError(waitMs);
    this.tokens -= 1;
    return this.wait(waitMs, waiter?.signal);
  }

  /**
   * Takes a token as `acquire` would (reserving one it would wait for), without waiting; false where
   * `acquire` would throw RateLimitedError, and then nothing is taken.
   */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) {
      const waitMs = (1 - this.tokens) / this.perMsRate;
      if (!this.queue || waitMs > this.maxQueueWaitMs) return false;
    }
    this.tokens -= 1;
    return true;
  }

  private async wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    try {
      await delay(ms, signal);
    } catch (error) {
      this.tokens += 1;
      throw error;
    }
  }

  private refill(): void {
    const now = this.now();
    const elapsed = now - this.refilledAt;
    this.refilledAt = now;
    // A clock that steps back refills nothing rather than draining the bucket.
    if (elapsed > 0) this.tokens = Math.min(this.burst, this.tokens + elapsed * this.perMsRate);
  }
}
