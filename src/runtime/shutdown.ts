// SIGTERM/SIGINT handling shared by both programs: stop once, drain within a bound, flush logs, exit.
import type { Logger } from './logger.ts';

export interface ShutdownOptions {
  readonly logger: Logger;
  /** Longest time `drain` may take before the process exits anyway. */
  readonly graceMs: number;
  /** Stops accepting work and resolves when in-flight work is done. */
  readonly drain: () => Promise<void>;
}

/** Resolves with the exit code once a signal has arrived and the drain finished or ran out of time. */
export function waitForShutdown(options: ShutdownOptions): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      options.logger.info({ signal, graceMs: options.graceMs }, 'shutting down');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), options.graceMs);
      });
      Promise.race([options.drain().then(() => 'drained' as const), timedOut]).then(
        (outcome) => {
          clearTimeout(timer);
          if (outcome === 'timeout') options.logger.warn({ graceMs: options.graceMs }, 'drain did not finish in time');
          else options.logger.info('drained');
          options.logger.flush();
          resolve(0);
        },
        (error: Error) => {
          clearTimeout(timer);
          options.logger.error({ err: error }, 'drain failed');
          options.logger.flush();
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
