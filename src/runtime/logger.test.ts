import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from './logger.ts';

describe('createLogger', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes each line's time as Date#toISOString would, across milliseconds, seconds and days", () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', name: 'test', destination: { write: (line: string) => lines.push(line) } });
    const start = Date.parse('1999-12-31T23:59:59.989Z');
    // Two lines in one millisecond, then each step across a digit, a second and a day.
    const times = [start, start, start + 1, start + 10, start + 11, start + 1000, start + 1011, start + 86_400_000 + 1];
    for (const time of times) {
      vi.setSystemTime(time);
      logger.info('tick');
    }
    expect(lines.map((line) => (JSON.parse(line) as { time: string }).time)).toEqual(times.map((time) => new Date(time).toISOString()));
  });
});
