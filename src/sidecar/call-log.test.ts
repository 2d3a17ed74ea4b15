import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchedOutput } from '../runtime/batched-output.ts';
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

  it("writes the same line in parts into the process's batched output", () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2026-01-31T12:34:56.007Z') });
    const dir = mkdtempSync(join(tmpdir(), 'breakwater-call-log-'));
    const fd = openSync(join(dir, 'log'), 'w');
    try {
      const output = new BatchedOutput({ fd, batchChars: 1 << 16, flushEveryMs: 60_000, maxPendingBytes: 1 << 20 });
      const logger = createLogger({ level: 'info', name: 'breakwater-sidecar', destination: output }).child({ integration: 'vendor' });
      const calls: CallLine[] = [
        { method: 'GET', path: '/v1/items', status: 200, outcome: 'upstream', attempts: 1, durationMs: 0, requestId: '6f1c2a4e-1b2c-4d5e-8f90-0123456789ab' },
        { method: 'M-SEARCH', path: '/a"b\\c\u0001/\u00e9\ud83d\ude00\ud800', status: 504, outcome: 'deadline_exceeded', attempts: 3, durationMs: 10_001, requestId: 'id\t"quoted"' },
      ];
      const log = new CallLog(logger);
      const inParts = vi.spyOn(output, 'writeParts');
      for (const call of calls) {
        log.write(call);
        logger.info({ ...call }, 'call');
      }
      expect(inParts).toHaveBeenCalledTimes(calls.length);
      output.close();
      const lines = readFileSync(join(dir, 'log'), 'utf8').split('\n');
      expect(lines).toHaveLength(5);
      expect(lines[0]).toBe(lines[1]);
      expect(lines[2]).toBe(lines[3]);
      expect(JSON.parse(lines[2]!)).toMatchObject({ path: calls[1]!.path, requestId: calls[1]!.requestId, status: 504 });
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes nothing when the level leaves info out', () => {
    const { logger, lines } = capture('warn');
    new CallLog(logger).write({ method: 'GET', path: '/', status: 200, outcome: 'upstream', attempts: 1, durationMs: 1, requestId: 'r' });
    expect(lines).toEqual([]);
  });
});
