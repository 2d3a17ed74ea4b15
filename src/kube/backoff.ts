// Exponential backoff with a cap: the informer's reconnects and the work queue's retries both use it.
import { setTimeout as delay } from 'node:timers/promises';

export interface BackoffOptions {
  /** Delay after the first failure. */
  readonly initialMs: number;
  /** No delay is ever longer than this. */
  readonly maxMs: number;
  /** Growth per consecutive failure; 2 unless given. */
  readonly factor?: number;
  /**
   * A uniform delay in [computed/2, computed): spreads the reconnects of many clients after an API
   * server restart, while the lower half-bound keeps a client from retrying a dead server in a loop.
   */
  readonly jitter?: boolean;
}

/** Delay before retry number `attempt` (1 after the first failure). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const computed = Math.min(options.maxMs, options.initialMs * (options.factor ?? 2) ** exponent);
  return options.jitter ? Math.floor(computed / 2 + (random() * computed) / 2) : computed;
}

/** Waits `ms`, or less when `signal` aborts first; never rejects, so a stopping loop just ends. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}
