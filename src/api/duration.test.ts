import { describe, expect, it } from 'vitest';
import { formatDuration, isDuration, parseDuration } from './duration.ts';

describe('durations', () => {
  it.each([
    ['250ms', 250],
    ['2s', 2000],
    ['1.5s', 1500],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
  ])('parses %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '10', '1d', '-1s', '1 s', 's', '1.s'])('rejects %j', (text) => {
    expect(isDuration(text)).toBe(false);
    expect(() => parseDuration(text)).toThrow(RangeError);
  });

  it('formats whole seconds as seconds and the rest as milliseconds', () => {
    expect([formatDuration(2000), formatDuration(1500), formatDuration(90_000)]).toEqual(['2s', '1500ms', '90s']);
  });
});
