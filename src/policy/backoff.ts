// Exponential backoff between attempts: `initial × multiplier^(n-1)`, capped at `max`, with full jitter
// (a uniform draw between 0 and that) unless jitter is `none`.
import type { ResolvedSpec } from '../api/resolve.ts';

export type BackoffSpec = ResolvedSpec['retry']['backoff'];

/** Delay before retry number `retry` (1 for the first retry). */
export function backoffDelay(spec: BackoffSpec, retry: number, random: () => number): number {
  const ceiling = Math.min(spec.maxMs, spec.initialMs * spec.multiplier ** (retry - 1));
  return spec.jitter === 'full' ? random() * ceiling : ceiling;
}
