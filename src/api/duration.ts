// Durations are Go-style strings (`250ms`, `2s`, `1m30s`, `1.5s`) because that is what the API server's
// CEL `duration()` parses: the CRD and this parser must accept exactly the same strings.

export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';
const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function isDuration(value: string): boolean {
  return DURATION_RE.test(value);
}

/** Milliseconds in a duration string; throws on a string that `isDuration` rejects. */
export function parseDuration(value: string): number {
  if (!DURATION_RE.test(value)) throw new RangeError(`not a duration: ${JSON.stringify(value)}`);
  let ms = 0;
  for (const [, amount, unit] of value.matchAll(PART_RE)) ms += Number(amount) * UNIT_MS[unit!]!;
  return ms;
}

/** The shortest exact spelling of whole milliseconds: 1500 → `1500ms`, 2000 → `2s`, 90000 → `90s`. */
export function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
