// A Controller: a work queue of namespace keys, workers that run the Reconciler on them, and the one
// function (`reconcileHandler`) that decides what happens to a key afterwards and counts it.
import type { Logger } from '../runtime/logger.ts';
import type { OperatorMetrics, ReconcileResult } from './metrics.ts';
import { WorkQueue, type WorkQueueOptions } from './queue.ts';
import type { Watch } from './source.ts';

export interface Result {
  /** Reconcile this key again after this long even if nothing changes. */
  readonly requeueAfterMs?: number;
}

/** Business logic for one key. Reads current state, never the event that enqueued the key. */
export type Reconciler = (key: string, signal: AbortSignal) => Promise<Result>;

/** A failure that retrying cannot fix: counted and logged, not requeued. */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
  readonly code = 'terminal';
}

export interface ControllerOptions {
  readonly name: string;
  readonly reconciler: Reconciler;
  /** Where keys come from; connected while the controller runs. */
  readonly watches: readonly Watch[];
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  /** Keys reconciled at the same time; one key never runs twice at once. */
  readonly workers?: number;
  readonly queue?: WorkQueueOptions;
}

export const CONTROLLER_DEFAULTS = { workers: 8 } as const;

export class Controller {
  readonly name: string;
  private readonly options: ControllerOptions;
  private queue: WorkQueue<string> | undefined;

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.options = options;
  }

  /**
   * Connects the watches, queues a key for everything already cached, and runs workers until signal
   * aborts; in-flight reconciles see the same signal. A fresh queue each run: nothing carries over
   * from an earlier term as leader.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const queue = new WorkQueue<string>(this.options.queue);
    this.queue = queue;
    const connections = this.options.watches.map((w) => w.connect((key) => this.enqueue(key)));
    for (const key of connections.flatMap((c) => c.initialKeys)) queue.add(key);
    this.updateDepth();
    const stop = () => queue.shutDown();
    signal.addEventListener('abort', stop, { once: true });
    const workers = Array.from({ length: this.options.workers ?? CONTROLLER_DEFAULTS.workers }, () => this.work(queue, signal));
    await Promise.all(workers);
    signal.removeEventListener('abort', stop);
    for (const connection of connections) connection.disconnect();
    if (this.queue === queue) this.queue = undefined;
    this.options.metrics.queueDepth.set(0);
  }

  /** Requests a reconcile of key; a no-op while the controller is not running. */
  private enqueue(key: string): void {
    this.queue?.add(key);
    this.updateDepth();
  }

  private async work(queue: WorkQueue<string>, signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      this.updateDepth();
      const end = this.options.metrics.reconcileDuration.startTimer();
      let outcome: { result: Result } | { error: unknown };
      try {
        outcome = { result: await this.options.reconciler(key, signal) };
      } catch (error) {
        outcome = { error };
      }
      end();
      if (!signal.aborted) this.reconcileHandler(queue, key, outcome);
      queue.done(key);
      this.updateDepth();
    }
  }

  /** The only place that decides requeueing and counts reconciles. */
  private reconcileHandler(queue: WorkQueue<string>, key: string, outcome: { result: Result } | { error: unknown }): void {
    const { metrics, logger } = this.options;
    let result: ReconcileResult;
    if ('error' in outcome) {
      metrics.reconcileErrors.inc();
      if (outcome.error instanceof TerminalError) {
        result = 'terminal_error';
        queue.forget(key);
        logger.error({ key, err: outcome.error }, 'reconcile failed for good');
      } else {
        result = 'error';
        const retryInMs = queue.addRateLimited(key);
        logger.warn({ key, err: outcome.error, retryInMs, retries: queue.retries(key) }, 'reconcile failed; will retry');
      }
    } else if (outcome.result.requeueAfterMs !== undefined) {
      result = 'requeue_after';
      queue.forget(key);
      queue.addAfter(key, outcome.result.requeueAfterMs);
    } else {
      result = 'success';
      queue.forget(key);
    }
    metrics.reconciles.inc({ result });
    logger.debug({ key, result }, 'reconciled');
  }

  private updateDepth(): void {
    this.options.metrics.queueDepth.set(this.queue?.depth ?? 0);
  }
}
