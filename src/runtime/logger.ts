// pino JSON to stdout for both programs. Credentials never reach a log line: request headers are not
// logged at all, and the redaction below is a second line of defence for code that logs objects.
import pino, { type Logger } from 'pino';
import { BatchedOutput } from './batched-output.ts';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const REDACT = [
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'secret',
  'token',
  'body',
];

let isoMs = 0;
let isoTime = '';
let isoSecond = Number.NaN;
/** `,"time":"2026-01-31T12:34:56.` of the second in isoSecond. */
let isoSecondPrefix = '';

/**
 * pino's ISO timestamp, formatted once per millisecond, and the date and time of day once per second:
 * under load many call lines share a millisecond, and Date#toISOString was about a tenth of each
 * line's CPU; at 1,000 calls a second nearly every line has a millisecond of its own.
 */
function cachedIsoTime(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    const ms = now % 1000;
    const second = now - ms;
    if (second !== isoSecond) {
      isoSecond = second;
      isoSecondPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
    }
    isoTime = `${isoSecondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  }
  return isoTime;
}

export interface LoggerOptions {
  readonly level: string;
  readonly name: string;
  /** Where lines go; stdout unless a test captures them. */
  readonly destination?: pino.DestinationStream;
}

/** Every logger of the process writes through one batch, so their lines stay in order. */
let stdout: BatchedOutput | undefined;

export function createLogger(options: LoggerOptions): Logger {
  if (!(LOG_LEVELS as readonly string[]).includes(options.level)) {
    throw new RangeError(`log level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(options.level)}`);
  }
  return pino(
    {
      name: options.name,
      level: options.level,
      base: { pid: process.pid },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: cachedIsoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous batches rather than asynchronous writes, whose hop through libuv's thread pool cost
    // each call line about 2 µs of CPU and the process a context switch per batch.
    options.destination ?? (stdout ??= new BatchedOutput({ fd: 1, batchChars: 4096, flushEveryMs: 1000, maxPendingBytes: 1024 * 1024 })),
  );
}
