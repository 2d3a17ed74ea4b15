// Percentiles over every recorded sample (no histogram buckets): at a few thousand samples per target
// sorting is cheap, and microsecond figures keep their resolution.

export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentiles of `samples` (any unit; the caller keeps track of which). */
export function percentiles(samples: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(samples).sort();
  const count = sorted.length;
  if (count === 0) return { count, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN };
  const rank = (q: number) => sorted[Math.min(count - 1, Math.max(0, Math.ceil(q * count) - 1))]!;
  let sum = 0;
  for (const value of sorted) sum += value;
  return { count, p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), p999: rank(0.999), max: sorted[count - 1]!, mean: sum / count };
}

/**
 * The middle value; of an even count, the mean of the two middle ones, so that with two rounds
 * neither the faster nor the slower one is the figure. NaN for none.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const half = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
}
