// The failure-rate breaker of docs/design.md: the circuit opens once the window holds at least `minimumRequests`
// calls and the failed share reaches `threshold`. Cockatiel's SamplingBreaker has the same sliding window
// but differs in three ways that matter here:
// - it opens only strictly above the threshold;
// - it takes the volume as a rate, and `window × (minimumRequests / window_s)` in floating point can land
//   just above the whole count (10 calls in a 17 s window come to 10.000000000000002, so 11 are needed);
// - after a quiet spell it keeps counting buckets older than the window until later calls rotate them out.
// This one plugs into Cockatiel's circuitBreaker() through its IBreaker interface, with the same buckets
// (at most one second each, at least five per window), and counts the volume as a whole number.
// It also counts slow calls (circuitBreaker.slowCall), as Resilience4j's slow-call rate does: Cockatiel
// reports a slow success through failure() like a failed call, and `outcome` says which it was.
import { CircuitState, type IBreaker } from 'cockatiel';

export interface FailureRateBreakerOptions {
  /** Failed share of the window's calls that opens the circuit, 0 < threshold < 1. */
  readonly threshold: number;
  /** Length of the sliding window. */
  readonly windowMs: number;
  /** Calls the window must hold before the circuit may open: minimumRps × window, as a whole count. */
  readonly minimumRequests: number;
  /** Slow share of the window's calls that opens the circuit, 0 < slowThreshold ≤ 1; no slow-call rate without it. */
  readonly slowThreshold?: number;
  /**
   * What the outcome failure() is told of was: failed, slow, or both. Cockatiel sets its lastFailure just
   * before, so this reads it; every such outcome is a plain failure without it.
   */
  readonly outcome?: () => Outcome;
  readonly now?: () => number;
}

export interface Outcome {
  readonly failed: boolean;
  readonly slow: boolean;
}

const FAILED: Outcome = { failed: true, slow: false };

/** Serialisable (Cockatiel's toJSON/initialState carry it across a reload): one entry per bucket. */
interface WindowState {
  /** Which bucket-length slot of time (`floor(now / bucketMs)`) each bucket counts; -1 when empty. */
  slots: number[];
  failures: number[];
  successes: number[];
  /** Calls of either kind that were slow. */
  slow: number[];
}

const MAX_BUCKET_MS = 1000;
const MIN_BUCKETS = 5;

export class FailureRateBreaker implements IBreaker {
  private readonly threshold: number;
  private readonly minimumRequests: number;
  private readonly slowThreshold: number;
  private readonly outcome: () => Outcome;
  private readonly bucketMs: number;
  private readonly now: () => number;
  private slots: number[];
  private failures: number[];
  private successes: number[];
  private slow: number[];

  constructor(options: FailureRateBreakerOptions) {
    if (!(options.threshold > 0 && options.threshold < 1)) throw new RangeError(`threshold must lie in (0, 1), got ${options.threshold}`);
    const slowThreshold = options.slowThreshold;
    if (slowThreshold !== undefined && !(slowThreshold > 0 && slowThreshold <= 1)) throw new RangeError(`slowThreshold must lie in (0, 1], got ${slowThreshold}`);
    this.threshold = options.threshold;
    this.minimumRequests = options.minimumRequests;
    // Above any share: the slow rate never opens the circuit.
    this.slowThreshold = slowThreshold ?? Infinity;
    this.outcome = options.outcome ?? (() => FAILED);
    const buckets = Math.max(MIN_BUCKETS, Math.ceil(options.windowMs / MAX_BUCKET_MS));
    this.bucketMs = options.windowMs / buckets;
    this.now = options.now ?? Date.now;
    this.slots = new Array<number>(buckets).fill(-1);
    this.failures = new Array<number>(buckets).fill(0);
    this.successes = new Array<number>(buckets).fill(0);
    this.slow = new Array<number>(buckets).fill(0);
  }

  get state(): unknown {
    return { slots: [...this.slots], failures: [...this.failures], successes: [...this.successes], slow: [...this.slow] } satisfies WindowState;
  }

  set state(value: unknown) {
    const restored = value as WindowState;
    // A window of another length (the spec changed) cannot be mapped onto this one: it starts empty.
    if (restored.slots.length !== this.slots.length) return;
    this.slots = [...restored.slots];
    this.failures = [...restored.failures];
    this.successes = [...restored.successes];
    this.slow = [...restored.slow];
  }

  success(state: CircuitState): void {
    // The probe succeeded and the circuit closes: failures from before the outage no longer count.
    if (state === CircuitState.HalfOpen) this.clear();
    this.successes[this.bucket()]!++;
  }

  failure(state: CircuitState): boolean {
    const outcome = this.outcome();
    const i = this.bucket();
    if (outcome.failed) this.failures[i]!++;
    else this.successes[i]!++;
    if (outcome.slow) this.slow[i]!++;
    // A failed (or slow) probe reopens the circuit whatever the window holds.
    if (state !== CircuitState.Closed) return true;
    const oldest = this.slot() - this.slots.length;
    let failures = 0;
    let slow = 0;
    let total = 0;
    for (let j = 0; j < this.slots.length; j++) {
      if (this.slots[j]! > oldest) {
        failures += this.failures[j]!;
        slow += this.slow[j]!;
        total += this.failures[j]! + this.successes[j]!;
      }
    }
    // A division, not `failures >= threshold × total`: a share equal to the threshold (7/25 and 0.28)
    // rounds to the very same double, where the product may be off by one ulp (0.28 × 25 = 7.000000000000001).
    return total >= this.minimumRequests && (failures / total >= this.threshold || slow / total >= this.slowThreshold);
  }

  private slot(): number {
    return Math.floor(this.now() / this.bucketMs);
  }

  /** The bucket for now, emptied first when it last counted an older slot. */
  private bucket(): number {
    const slot = this.slot();
    const i = slot % this.slots.length;
    if (this.slots[i] !== slot) {
      this.slots[i] = slot;
      this.failures[i] = 0;
      this.successes[i] = 0;
      this.slow[i] = 0;
    }
    return i;
  }

  private clear(): void {
    this.slots.fill(-1);
    this.failures.fill(0);
    this.successes.fill(0);
    this.slow.fill(0);
  }
}
