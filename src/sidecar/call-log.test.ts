import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../runtime/logger.ts';
import { CallLog, type CallLine } from './call-log.ts';

describe('CallLog', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const capture = (level: string) => {
    const lines: string[] = [];
    const logger = createLogger({ level, name: 'breakwater-sidecar', destination: { write: (line: string) => lines.push(line) } }).child({ integration: 'vendor' });
    return { logger, lines };
  };

  it('writes the line pino writes for the same fields, escapes included', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2026-01-31T12:34:56.007Z') });
    const { logger, lines } = capture('info');
    const calls: CallLine[] = [
      { method: 'GET', path: '/v1/items', status: 200, outcome: 'upstream', attempts: 1, durationMs: 0, requestId: '6f1c2a4e-1b2c-4d5e-8f90-0123456789ab' },
      { method: 'PATCH', path: '/a"b\\c\u0001/\u00e9', status: 499, outcome: 'cancelled', attempts: 0, durationMs: 12_345, requestId: 'id "quoted" and a long value well past forty-two characters' },
    ];
    for (const call of calls) {
      new CallLog(logger).write(call);
      logger.info({ ...call }, 'call');
    }
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(lines[1]);
    expect(lines[2]).toBe(lines[3]);
    expect(JSON.parse(lines[2]!)).toMatchObject({ level: 'info', integration: 'vendor', path: calls[1]!.path, requestId: calls[1]!.requestId, msg: 'call' });
  });

  it('writes nothing when the level leaves info out', () => {
    const { logger, lines } = capture('warn');
    new CallLog(logger).write({ method: 'GET', path: '/', status: 200, outcome: 'upstream', attempts: 1, durationMs: 1, requestId: 'r' });
    expect(lines).toEqual([]);
  });
});
