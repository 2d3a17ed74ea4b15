import { describe, expect, it } from 'vitest';
import { resolveSpec } from '../api/resolve.ts';
import { DeliverySchedule, type ScheduleSpec } from './schedule.ts';
import type { Delivery } from './store.ts';

const NOW = 1_800_000_000_000;
const spec = resolveSpec({
  upstream: { url: 'https://api.vendor.example' },
  retry: { backoff: { initial: '1s', max: '2s', multiplier: 2, jitter: 'none' } },
  delivery: { maxAge: '1h', maxBackoff: '10s' },
}) as ScheduleSpec;
const schedule = new DeliverySchedule(spec);

function delivery(attempts: number, expiresAt = NOW + 3_600_000): Delivery {
  return {
    id: 'd1', integration: 'v', idempotencyKey: 'd1', expiresAt, attempts, state: 'delivering',
    createdAt: NOW - 1000, updatedAt: NOW, nextAttemptAt: NOW,
    request: { method: 'POST', path: '/', headers: [], body: null },
  };
}

describe('DeliverySchedule', () => {
  it('ends a delivery delivered on 2xx and 3xx', () => {
    expect(schedule.next(delivery(0), { kind: 'response', status: 201, retryAfter: undefined }, NOW)).toEqual({ state: 'delivered' });
    expect(schedule.next(delivery(0), { kind: 'response', status: 302, retryAfter: undefined }, NOW)).toEqual({ state: 'delivered' });
  });

  it('ends it dead (refused) on a status retryOn does not name', () => {
    expect(schedule.next(delivery(0), { kind: 'response', status: 422, retryAfter: undefined }, NOW)).toEqual({
      state: 'dead', reason: 'refused', error: 'the vendor answered 422',
    });
    expect(schedule.next(delivery(0), { kind: 'response', status: 500, retryAfter: undefined }, NOW)).toMatchObject({ state: 'dead' });
  });

  it('backs off exponentially up to delivery.maxBackoff, past retry.backoff.max', () => {
    const waits = [0, 1, 2, 3, 4, 5].map((attempts) => {
      const next = schedule.next(delivery(attempts), { kind: 'response', status: 503, retryAfter: undefined }, NOW);
      return next.state === 'queued' ? next.at - NOW : -1;
    });
    expect(waits).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it("waits as long as the vendor's Retry-After asks", () => {
    expect(schedule.next(delivery(0), { kind: 'response', status: 429, retryAfter: '7' }, NOW)).toMatchObject({ state: 'queued', at: NOW + 7000 });
  });

  it('retries the failures retryOn names and ends the others dead', () => {
    expect(schedule.next(delivery(0), { kind: 'failure', failure: 'reset', retryable: true, message: 'socket hang up' }, NOW)).toEqual({
      state: 'queued', at: NOW + 1000, error: 'socket hang up',
    });
    expect(schedule.next(delivery(0), { kind: 'failure', failure: 'connect-failure', retryable: false, message: 'bad certificate' }, NOW)).toMatchObject({
      state: 'dead', reason: 'refused',
    });
  });

  it('puts a turn that sent nothing back untried, and never schedules past maxAge', () => {
    expect(schedule.next(delivery(3), { kind: 'not-sent', reason: 'circuit_open', retryInMs: 500 }, NOW)).toEqual({ state: 'queued', at: NOW + 500, error: 'circuit_open' });
    expect(schedule.next(delivery(0, NOW + 300), { kind: 'response', status: 503, retryAfter: undefined }, NOW)).toMatchObject({ state: 'queued', at: NOW + 300 });
    expect(schedule.expired(delivery(0, NOW + 300), NOW + 299)).toBe(false);
    expect(schedule.expired(delivery(0, NOW + 300), NOW + 300)).toBe(true);
  });
});
