// A retry budget (Finagle/Linkerd style): retries in the last `windowMs` may be at most `percent`% of
// the calls in it, and `minPerSecond` retries per second are always allowed. Without it, N retries per
// call multiply the load on a vendor that is already failing.
// Counts live in one-second buckets of a ring, so recording a call is O(1) and a retry check reads
// `windowMs / 1000` buckets.

export interface RetryBudgetOptions {
  readonly percent: number;
  readonly minPerSecond: number;
  readonly windowMs: number;
  readonly now?: () => number;
}

const BUCKET_MS = 1000;

export class RetryBudget {
  private readonly percent: number;
  private readonly minPerSecond: number;
  private readonly now: () => number;
  private readonly seconds: Float64Array;
  private readonly calls: Uint32Array;
  private readonly retries: Uint32Array;

  constructor(options: RetryBudgetOptions) {
    this.percent = options.percent;
    this.minPerSecond = options.minPerSecond;
    this.now = options.now ?? Date.now;
    const buckets = Math.max(1, Math.round(options.windowMs / BUCKET_MS));
    this.seconds = new Float64Array(buckets).fill(-1);
    this.calls = new Uint32Array(buckets);
    this.retries = new Uint32Array(buckets);
  }

  /** Counts a first attempt. */
  recordCall(): void {
    this.calls[this.bucket(Math.floor(this.now() / BUCKET_MS))]!++;
  }

  /** Spends one retry when the budget allows it. */
  tryRetry(): boolean {
    const second = Math.floor(this.now() / BUCKET_MS);
    const current = this.bucket(second);
    let calls = 0;
    let retries = 0;
    for (let i = 0; i < this.seconds.length; i++) {
      if (this.seconds[i]! > second - this.seconds.length) {
        calls += this.calls[i]!;
        retries += this.retries[i]!;
      }
    }
    if (this.retries[current]! < this.minPerSecond || retries < (calls * this.percent) / 100) {
      this.retries[current]!++;
      return true;
    }
    return false;
  }

  /** The bucket for `second`, emptied first when it last held an older second. */
  private bucket(second: number): number {
    const i = second % this.seconds.length;
    if (this.seconds[i] !== second) {
      this.seconds[i] = second;
      this.calls[i] = 0;
      this.retries[i] = 0;
    }
    return i;
  }
}
