import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { FleetReport, parseFleetReport } from './fleet-report.ts';

const report = (integration: Record<string, unknown>) => ({
  heartbeatSeconds: 10,
  sharedStore: false,
  integrations: [{ name: 'stripe', circuit: 'closed', since: '2026-12-05T10:00:00.123Z', calls: 1, failures: 0, backlog: 0, needsRestart: false, ...integration }],
});

describe('parseFleetReport', () => {
  it('takes what a sidecar sends', () => {
    expect(parseFleetReport(report({})).ok).toBe(true);
    expect(parseFleetReport(report({ since: '2026-12-05T10:00:00Z', lastError: { time: '2026-12-05T10:00:01.5Z', error: 'reset' } })).ok).toBe(true);
  });

  // The status these end up in is the CRD's: one the API server refuses would fail the write of every
  // integration of the namespace with it.
  it('refuses times and counts the status could not hold', () => {
    expect(parseFleetReport(report({ since: '2026-12-05T99Z' }))).toMatchObject({ ok: false, message: expect.stringMatching(/^\/integrations\/0\/since: /) });
    expect(parseFleetReport(report({ since: '2026-13-05T10:00:00Z' }))).toEqual({ ok: false, message: "/integrations/0/since: Expected string to match 'date-time' format" });
    expect(parseFleetReport(report({ lastError: { time: '2026-02-30T10:00:00Z', error: 'reset' } }))).toEqual({
      ok: false,
      message: "/integrations/0/lastError/time: Expected string to match 'date-time' format",
    });
    // The schema itself refuses them, so the operator's check of the records it stored does too.
    expect(Value.Check(FleetReport, report({ since: '2026-13-05T10:00:00Z' }))).toBe(false);
    expect(parseFleetReport(report({ calls: 1e21 }))).toMatchObject({ ok: false, message: expect.stringMatching(/^\/integrations\/0\/calls: /) });
  });
});
