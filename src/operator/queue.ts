// The work queue of the controller: keys, not events. A key added many times before a worker takes it
// is processed once; a key is never processed by two workers at once (added while in flight, it runs
// again after); a failing key comes back after a per-key exponential delay with a cap.
import { backoffDelay, type BackoffOptions } from '../kube/backoff.ts';

export const QUEUE_DEFAULTS = {
  /** First retry of a failed key after 100 ms, doubling up to 30 s. */
  backoff: { initialMs: 100, maxMs: 30_000 } satisfies BackoffOptions,
} as const;

export interface WorkQueueOptions {
  readonly backoff?: BackoffOptions;
}

export class WorkQueue<K = string> {
  private readonly ready: K[] = [];
  /** Keys waiting in `ready` or waiting to be re-queued once their worker is done. */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly delayed = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<K, number>();
  private readonly waiters: ((key: K | undefined) => void)[] = [];
  private readonly backoff: BackoffOptions;
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.backoff = options.backoff ?? QUEUE_DEFAULTS.backoff;
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.processing.has(key)) this.offer(key);
  }

  /** Adds key after `ms`; an earlier pending add of the same key wins. */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  /** Adds key after its backoff delay, which grows with each failure until `forget`. */
  addRateLimited(key: K): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const delay = backoffDelay(failures, this.backoff);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failure count: the next failure waits the initial delay again. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process, or undefined once the queue is shut down. Call `done` after. */
  get(): Promise<K | undefined> {
    const key = this.ready.shift();
    if (key !== undefined) {
      return Promise.resolve(this.claim(key));
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.offer(key);
  }

  /** Keys ready to be processed now. */
  get depth(): number {
    return this.ready.length;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.ready.length = 0;
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  /** Hands key to a waiting worker, or leaves it ready for the next `get`. */
  private offer(key: K): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(this.claim(key));
    else this.ready.push(key);
  }

  private claim(key: K): K {
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }
}
