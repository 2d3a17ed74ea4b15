// rateLimit.scope global: one bucket for every sidecar that shares it (a Redis, see
// src/sidecar/redis-rate-limits.ts), asked once per call. A call that would wait reserves its slot in
// the shared bucket and waits here, so the calls of the whole fleet go in the order they asked, with
// one round trip each; a wait beyond what the call can afford (maxQueueWait, the deadline, nothing
// with reject) is refused at once and reserves nothing. When the bucket does not answer in time the
// call is not failed: it goes through the local bucket instead (the pod's fleet share of the quota),
// until the shared one answers again.
import { delay } from './delay.ts';
import { RateLimitedError } from './errors.ts';
import type { RateLimiter } from './rate-limiter.ts';

/** The shared bucket's answer: a token (now, or after `waitMs`), or a refusal and the wait it would need. */
export interface SharedTake {
  readonly taken: boolean;
  readonly waitMs: number;
}

export interface SharedBucket {
  /** Takes a token due within `maxWaitMs`; rejects when the store cannot answer. */
  take(maxWaitMs: number): Promise<SharedTake>;
}

export interface GlobalLimiterOptions {
  readonly whenExceeded: 'queue' | 'reject';
  readonly maxQueueWaitMs: number;
  /** Longest wait for the shared bucket's answer before the call falls back to the local one. */
  readonly answerWithinMs: number;
  readonly now: () => number;
  /** Each call the local bucket decided; `outageStarts` for the first since the shared one last answered. */
  readonly onFallback: (error: Error, outageStarts: boolean) => void;
  /** The shared bucket answers again after an outage. */
  readonly onRecovered: () => void;
}

export class GlobalLimiter {
  private readonly bucket: SharedBucket;
  private readonly local: RateLimiter;
  private readonly options: GlobalLimiterOptions;
  private failing = false;

  constructor(bucket: SharedBucket, local: RateLimiter, options: GlobalLimiterOptions) {
    this.bucket = bucket;
    this.local = local;
    this.options = options;
  }

  /** A token now, a wait for one (which the call's abort ends), or RateLimitedError. */
  async acquire(call: { readonly deadlineAt: number; readonly signal: AbortSignal }): Promise<void> {
    const answer = await this.ask(call.deadlineAt);
    if (answer === undefined) return this.local.acquire(call);
    if (!answer.taken) throw new RateLimitedError(answer.waitMs);
    // The slot reserved is not given back when the caller leaves: the fleet sends one call fewer, never one more.
    if (answer.waitMs > 0) await delay(answer.waitMs, call.signal);
  }

  /** Observe mode: takes the token `acquire` would (reserving one it would wait for), without waiting; false where it would refuse. */
  async take(call: { readonly deadlineAt: number }): Promise<boolean> {
    const answer = await this.ask(call.deadlineAt);
    return answer === undefined ? this.local.take() : answer.taken;
  }

  /** The shared bucket's answer, or undefined when the local bucket must decide. */
  private async ask(deadlineAt: number): Promise<SharedTake | undefined> {
    const o = this.options;
    const maxWaitMs = o.whenExceeded === 'queue' ? Math.max(0, Math.min(o.maxQueueWaitMs, deadlineAt - o.now())) : 0;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        this.bucket.take(maxWaitMs),
        new Promise<never>((_, reject) => {
          // Through setImmediate: when the event loop was held up past the timer, an answer that came
          // meanwhile is read (in the poll phase, after timers) before the call is given up on.
          timer = setTimeout(() => setImmediate(() => reject(new Error(`no answer within ${o.answerWithinMs}ms`))), o.answerWithinMs);
        }),
      ]);
      if (this.failing) {
        this.failing = false;
        o.onRecovered();
      }
      return answer;
    } catch (error) {
      // A late answer still spends its token in the shared bucket: the fleet sends less, never more.
      o.onFallback(error as Error, !this.failing);
      this.failing = true;
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
