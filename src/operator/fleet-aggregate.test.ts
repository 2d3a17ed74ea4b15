import { describe, expect, it } from 'vitest';
import type { IntegrationReport } from '../api/fleet-report.ts';
import { aggregate, headline, sharesFor, vendorHealthy, type PodReport } from './fleet-aggregate.ts';

function pod(name: string, report: Partial<IntegrationReport>, sharedStore = false): PodReport {
  return {
    pod: name,
    sharedStore,
    report: { name: 'stripe', circuit: 'closed', since: '2026-12-05T10:00:00.000Z', calls: 0, failures: 0, backlog: 0, needsRestart: false, ...report },
  };
}

describe('aggregate', () => {
  it('counts breakers, keeps the earliest since of the pods not closed and the newest error with its pod', () => {
    const fleet = aggregate([
      pod('a', { circuit: 'closed', since: '2026-12-05T09:00:00.000Z', calls: 10 }),
      pod('b', { circuit: 'open', since: '2026-12-05T10:00:05.000Z', calls: 5, failures: 5, lastError: { time: '2026-12-05T10:00:04.000Z', error: 'vendor_5xx' } }),
      pod('c', { circuit: 'half-open', since: '2026-12-05T10:00:01.000Z', calls: 4, failures: 3, lastError: { time: '2026-12-05T10:00:09.000Z', error: 'upstream_unreachable' } }),
    ]);
    expect(fleet.circuit).toEqual({
      open: 1,
      halfOpen: 1,
      closed: 1,
      since: '2026-12-05T10:00:01.000Z',
      lastError: { time: '2026-12-05T10:00:09.000Z', error: 'upstream_unreachable', pod: 'c' },
    });
    expect(fleet.lastMinute).toEqual({ calls: 19, failures: 8 });
    expect(fleet.pods).toEqual({ reporting: 3, needRestart: 0 });
  });

  it('sums local backlogs and counts a shared store once', () => {
    const fleet = aggregate([pod('a', { backlog: 3 }), pod('b', { backlog: 4 }), pod('c', { backlog: 40 }, true), pod('d', { backlog: 40 }, true)]);
    expect(fleet.backlog).toBe(47);
  });

  it('counts pods that need a restart', () => {
    expect(aggregate([pod('a', { needsRestart: true }), pod('b', {})]).pods).toEqual({ reporting: 2, needRestart: 1 });
  });
});

describe('vendorHealthy', () => {
  it('is Unknown without reports, True when every breaker is closed, False with the count otherwise', () => {
    expect(vendorHealthy(aggregate([]))).toMatchObject({ status: 'Unknown', reason: 'NoReports' });
    expect(vendorHealthy(aggregate([pod('a', {}), pod('b', {})]))).toEqual({
      type: 'VendorHealthy',
      status: 'True',
      reason: 'CircuitClosed',
      message: 'circuit closed in all 2 pods',
    });
    const open = aggregate([
      pod('a', {}),
      pod('b', { circuit: 'open', since: '2026-12-05T10:00:05.000Z', lastError: { time: '2026-12-05T10:00:04.000Z', error: 'vendor_5xx' } }),
      pod('c', { circuit: 'open', since: '2026-12-05T10:00:06.000Z' }),
    ]);
    expect(vendorHealthy(open)).toEqual({
      type: 'VendorHealthy',
      status: 'False',
      reason: 'CircuitOpen',
      message: 'circuit open in 2/3 pods since 2026-12-05T10:00:05.000Z; last error vendor_5xx at 2026-12-05T10:00:04.000Z in pod b',
    });
  });

  it('names circuitBreaker.forceOpen when it holds the breakers open, and says nothing of it while they are still closed', () => {
    const held = aggregate([pod('a', { circuit: 'open', since: '2026-12-05T10:00:05.000Z' }), pod('b', { circuit: 'open', since: '2026-12-05T10:00:05.000Z' }), pod('c', {})]);
    expect(vendorHealthy(held, true)).toEqual({
      type: 'VendorHealthy',
      status: 'False',
      reason: 'CircuitForcedOpen',
      message: 'circuit held open by circuitBreaker.forceOpen in 2/3 pods',
    });
    expect(vendorHealthy(aggregate([pod('a', {})]), true)).toMatchObject({ status: 'True', reason: 'CircuitClosed' });
  });

  it('words half-open pods apart from open ones', () => {
    expect(headline(aggregate([pod('a', { circuit: 'half-open' }), pod('b', {})]))).toBe('circuit half-open in 1/2 pods');
    expect(headline(aggregate([pod('a', { circuit: 'half-open' }), pod('b', { circuit: 'open' }), pod('c', {})]))).toBe(
      'circuit open in 1/3 pods, half-open in 1/3',
    );
  });
});

describe('sharesFor', () => {
  const report = (...names: string[]) => ({
    heartbeatSeconds: 10,
    sharedStore: false,
    integrations: names.map((name) => ({ name, circuit: 'closed' as const, since: '2026-12-05T10:00:00.000Z', calls: 0, failures: 0, backlog: 0, needsRestart: false })),
  });
  const record = (podUid: string, integrations: string[], lapsesAt = 10_000, podNamespace = 'shop') => ({ podNamespace, podUid, lapsesAt, integrations });

  it('splits each integration over the live pods of the namespace that serve it, the reporter included', () => {
    const records = [
      record('me', ['stripe']),
      record('b', ['stripe', 'fan']),
      record('c', ['stripe']),
      record('lapsed', ['stripe'], 999),
      record('elsewhere', ['stripe'], 10_000, 'other'),
    ];
    expect(sharesFor({ namespace: 'shop', podUid: 'me' }, report('stripe', 'fan', 'mail'), records, 1_000)).toEqual({ stripe: 1 / 3, fan: 1 / 2, mail: 1 });
  });
});
