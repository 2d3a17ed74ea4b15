// Scenarios written elsewhere (the operator's reconcile and the webhook's admission benchmarks) run as
// their own processes. Their report is kept (the tail of stdout, shown with the results); if their last
// line is a JSON object it is kept as their summary instead.
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { startChild } from './children.ts';

export interface ExternalResult {
  readonly script: string;
  readonly status: 'ok' | 'failed' | 'missing' | 'timed out';
  readonly exitCode?: number | null;
  readonly seconds?: number;
  readonly summary?: unknown;
  readonly outputTail?: string;
}

const TAIL = 4000;

export async function runExternal(file: string, script: string, timeoutMs: number): Promise<ExternalResult> {
  if (!existsSync(file)) return { script, status: 'missing' };
  const started = performance.now();
  const child = startChild(script, process.execPath, [file]);
  let output = '';
  child.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    output = (output + chunk).slice(-TAIL);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void child.stop();
  }, timeoutMs);
  const [exitCode] = (await once(child.process, 'exit')) as [number | null];
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  const lastLine = output.trim().split('\n').at(-1) ?? '';
  let summary: unknown;
  try {
    const parsed: unknown = JSON.parse(lastLine);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) summary = parsed;
  } catch {
    // A human-readable last line: the output tail is kept instead.
  }
  const status = timedOut ? 'timed out' : exitCode === 0 ? 'ok' : 'failed';
  return {
    script,
    status,
    exitCode,
    seconds,
    ...(summary === undefined ? { outputTail: output + (status === 'ok' ? '' : child.stderrTail()) } : { summary }),
  };
}
