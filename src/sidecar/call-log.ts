// The info line of every proxied call (docs/design.md: one per completed call, sampled by
// --log-sample-rate). pino's `info(fields, msg)` walks the fields object and serialises every key and
// checks every value's type on each line; this line's keys never change, so it is put together from
// pino's own parts of a line (the level's opening, the time, the logger's bindings) around keys written
// once: about 0.25 µs of a call instead of 0.65, and a third of the garbage. A test holds it to the line
// pino writes for the same fields, so a change to the logger's options shows there. Into the process's
// batched output the line goes in its parts, never joined (batched-output.ts), and a value that needs no
// JSON escape goes as it is, so a line leaves no strings of its own behind.
import pino from 'pino';
import { BatchedOutput } from '../runtime/batched-output.ts';
import type { Logger } from '../runtime/logger.ts';

/** pino's level number of info. */
const INFO = 30;

/** What JSON.stringify writes other than as it is: quotes, backslashes, control characters and (lone) surrogates. */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `value` as it goes between the quotes of a JSON string. */
function jsonInner(value: string): string {
  return ESCAPED.test(value) ? JSON.stringify(value).slice(1, -1) : value;
}

/** What a call line says: docs/design.md's fields of the call log. */
export interface CallLine {
  readonly method: string;
  /** The caller's path without its query. */
  readonly path: string;
  readonly status: number;
  readonly outcome: string;
  readonly attempts: number;
  readonly durationMs: number;
  readonly requestId: string;
}

export class CallLog {
  /** The logger's level leaves info in; a logger's level is set once, when it is made. */
  private readonly enabled: boolean;
  private readonly time: () => string;
  /** Writes the line's parts: into the process's batched output as they are, to any other stream joined. */
  private readonly emit: (parts: readonly string[]) => void;
  /** The line's parts, filled anew for each line. */
  private readonly parts: string[];

  constructor(logger: Logger) {
    this.enabled = logger.isLevelEnabled('info');
    // pino.symbols are pino's handles on these for code that extends it; a child logger's never change.
    const internals = logger as unknown as Record<symbol, unknown>;
    const { lsCacheSym, timeSym, chindingsSym, streamSym } = pino.symbols;
    /** `{"level":"info"`, as the logger's level formatter makes it. */
    const opening = (internals[lsCacheSym] as Record<number, string>)[INFO]!;
    /** The logger's bindings: `,"pid":…,"name":…,"integration":…`. */
    const bindings = internals[chindingsSym] as string;
    this.time = internals[timeSym] as () => string;
    const stream = internals[streamSym] as { write(line: string): unknown };
    this.emit = stream instanceof BatchedOutput ? (parts) => stream.writeParts(parts) : (parts) => stream.write(parts.join(''));
    this.parts = [
      opening, '', bindings,
      ',"method":"', '', '","path":"', '', '","status":', '', ',"outcome":"', '',
      '","attempts":', '', ',"durationMs":', '', ',"requestId":"', '', '","msg":"call"}\n',
    ];
  }

  write(line: CallLine): void {
    if (!this.enabled) return;
    const parts = this.parts;
    parts[1] = this.time();
    parts[4] = jsonInner(line.method);
    parts[6] = jsonInner(line.path);
    parts[8] = String(line.status);
    parts[10] = jsonInner(line.outcome);
    parts[12] = String(line.attempts);
    parts[14] = String(line.durationMs);
    parts[16] = jsonInner(line.requestId);
    this.emit(parts);
  }
}
