// The contract every DeliveryStore keeps, run against each implementation on a real backend (a SQLite
// file, a redis-server). `backend.open()` must return a store on the same data each time it is
// called, so the suite can close one and check that a new one still sees what was acknowledged.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BacklogFullError,
  DeliveryNotFoundError,
  DeliveryNotReplayableError,
  LeaseLostError,
} from '../../src/delivery/errors.ts';
import type { DeliveryStore, NewDelivery, StoredResponse } from '../../src/delivery/store.ts';

export interface StoreBackend {
  /** A store on this backend's data; called more than once per test. */
  open(): Promise<DeliveryStore>;
  /** Removes the data (after every store opened on it was closed). */
  destroy(): Promise<void>;
}

const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;
const SIDECAR = 'contract-sidecar';
const submitAt = (now: number, maxBacklog = 1000) => ({ now, maxBacklog, sidecar: SIDECAR });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const claimAs = (owner: string, now: number, limit = 10, leaseMs = 30_000) => ({ owner, now, limit, leaseMs });

let counter = 0;
function newDelivery(overrides: Partial<NewDelivery> = {}): NewDelivery {
  const id = overrides.id ?? `d-${++counter}-${randomUUID()}`;
  return {
    id,
    integration: 'invoicing',
    idempotencyKey: id,
    request: {
      method: 'POST',
      path: '/v1/invoices?draft=1',
      headers: [
        ['content-type', 'application/json'],
        ['x-request-id', `r-${counter}`],
        ['X-Custom', 'a'],
        ['x-custom', 'b'],
      ],
      body: Buffer.from(`{"n":${counter}}`),
    },
    expiresAt: T0 + 24 * HOUR,
    ...overrides,
  };
}

const OK: StoredResponse = { status: 201, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"ok":true}'), truncated: false };

export function describeStoreContract(name: string, makeBackend: () => Promise<StoreBackend>): void {
  describe(`DeliveryStore contract: ${name}`, () => {
    let backend: StoreBackend;
    let store: DeliveryStore;
    const opened: DeliveryStore[] = [];
    const open = async () => {
      const s = await backend.open();
      opened.push(s);
      return s;
    };

    beforeEach(async () => {
      backend = await makeBackend();
      store = await open();
    });

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
      await backend.destroy();
    });

    describe('submit', () => {
      it('keeps the request exactly as given, queued and due at once, with a first history line', async () => {
        const body = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
        const input = newDelivery({ orderingKey: 'customer-7', callbackUrl: 'http://127.0.0.1:9/cb', request: { ...newDelivery().request, body } });
        const { delivery, created } = await store.submit(input, submitAt(T0));
        expect(created).toBe(true);
        const got = await store.get(input.id);
        expect(got).toEqual(delivery);
        expect(got).toMatchObject({
          id: input.id,
          integration: 'invoicing',
          idempotencyKey: input.id,
          orderingKey: 'customer-7',
          callbackUrl: 'http://127.0.0.1:9/cb',
          state: 'queued',
          attempts: 0,
          createdAt: T0,
          nextAttemptAt: T0,
          expiresAt: input.expiresAt,
        });
        expect(got!.request.method).toBe('POST');
        expect(got!.request.path).toBe('/v1/invoices?draft=1');
        expect(got!.request.headers).toEqual(input.request.headers);
        expect(Buffer.compare(got!.request.body!, body)).toBe(0);
        expect(await store.history(input.id)).toEqual([{ at: T0, event: 'queued', sidecar: SIDECAR }]);
      });

      it('keeps a request without a body as null, and a delivery without keys without them', async () => {
        const input = newDelivery({ request: { method: 'DELETE', path: '/v1/x', headers: [], body: null } });
        await store.submit(input, submitAt(T0));
        const got = await store.get(input.id);
        expect(got!.request.body).toBeNull();
        expect(got!.orderingKey).toBeUndefined();
        expect(got!.callbackUrl).toBeUndefined();
      });

      it('returns the live delivery for a key already submitted to the same integration, and stores nothing new', async () => {
        const first = newDelivery({ idempotencyKey: 'inv-42' });
        await store.submit(first, submitAt(T0));
        const again = await store.submit(newDelivery({ idempotencyKey: 'inv-42' }), submitAt(T0 + HOUR));
        expect(again.created).toBe(false);
        expect(again.delivery.id).toBe(first.id);
        expect(await store.list({ integration: 'invoicing' })).toHaveLength(1);
        const elsewhere = await store.submit(newDelivery({ idempotencyKey: 'inv-42', integration: 'courier' }), submitAt(T0));
        expect(elsewhere.created).toBe(true);
      });

      it('gives a key to a new delivery once the old one expired', async () => {
        const first = newDelivery({ idempotencyKey: 'inv-43', expiresAt: T0 + HOUR });
        await store.submit(first, submitAt(T0));
        const later = await store.submit(newDelivery({ idempotencyKey: 'inv-43' }), submitAt(T0 + HOUR));
        expect(later.created).toBe(true);
        expect(later.delivery.id).not.toBe(first.id);
      });

      it('stores one delivery for concurrent submissions of one key', async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, () => store.submit(newDelivery({ idempotencyKey: 'race' }), submitAt(T0))),
        );
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(results.map((r) => r.delivery.id)).size).toBe(1);
      });

      it('refuses a delivery past maxBacklog with BacklogFullError, counting only those not ended', async () => {
        const a = newDelivery();
        await store.submit(a, submitAt(T0, 2));
        await store.submit(newDelivery(), submitAt(T0, 2));
        const refused = newDelivery();
        await expect(store.submit(refused, submitAt(T0, 2))).rejects.toBeInstanceOf(BacklogFullError);
        await expect(store.submit(refused, submitAt(T0, 2))).rejects.toMatchObject({ code: 'backlog_full' });
        expect(await store.get(refused.id)).toBeUndefined();
        // Another integration has its own backlog.
        await store.submit(newDelivery({ integration: 'courier' }), submitAt(T0, 2));
        const [claimed] = await store.claim('invoicing', claimAs('s1', T0, 1));
        await store.settle(claimed!.id, 's1', { at: T0, attempt: { outcome: '201', durationMs: 3 }, next: { state: 'delivered' }, response: OK });
        expect((await store.submit(refused, submitAt(T0, 2))).created).toBe(true);
      });

      it('of submissions made at once, stores those within maxBacklog and refuses only the rest', async () => {
        const results = await Promise.allSettled(Array.from({ length: 5 }, () => store.submit(newDelivery(), submitAt(T0, 3))));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(BacklogFullError);
        expect(await store.list({ integration: 'invoicing' })).toHaveLength(3);
        expect((await store.stats('invoicing')).backlog).toBe(3);
      });

      it('still holds every acknowledged delivery after the store is closed and opened again', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 50; i++) {
          const d = newDelivery();
          ids.push(d.id);
          await store.submit(d, submitAt(T0 + i));
        }
        await store.close();
        opened.splice(opened.indexOf(store), 1);
        const reopened = await open();
        const listed = await reopened.list({ integration: 'invoicing' });
        expect(listed.map((d) => d.id)).toEqual(ids);
      });
    });

    describe('claim', () => {
      it('hands out due deliveries oldest first, up to the limit, to one owner at a time', async () => {
        const ds = [newDelivery(), newDelivery(), newDelivery()];
        for (const [i, d] of ds.entries()) await store.submit(d, submitAt(T0 + i));
        const first = await store.claim('invoicing', claimAs('s1', T0 + 10, 2));
        expect(first.map((d) => d.id)).toEqual([ds[0]!.id, ds[1]!.id]);
        expect(first[0]).toMatchObject({ state: 'delivering', owner: 's1', leaseUntil: T0 + 10 + 30_000 });
        const second = await store.claim('invoicing', claimAs('s2', T0 + 10, 10));
        expect(second.map((d) => d.id)).toEqual([ds[2]!.id]);
        expect(await store.claim('invoicing', claimAs('s3', T0 + 10))).toEqual([]);
        expect(await store.claim('courier', claimAs('s3', T0 + 10))).toEqual([]);
      });

      it('lets another owner take over a lease that passed; the old owner can then settle nothing', async () => {
        // On the real clock: Redis measures a lease on its own (the claimed entry's idle time).
        const leaseMs = 1000;
        const d = newDelivery({ expiresAt: Date.now() + HOUR });
        await store.submit(d, submitAt(Date.now()));
        const claimedAt = Date.now();
        await store.claim('invoicing', claimAs('dead-sidecar', claimedAt, 10, leaseMs));
        expect(await store.claim('invoicing', claimAs('s2', Date.now(), 10, leaseMs))).toEqual([]);
        const due = await store.nextDueAt('invoicing', Date.now());
        expect(due).toBeGreaterThanOrEqual(claimedAt + leaseMs - 20);
        expect(due).toBeLessThanOrEqual(Date.now() + leaseMs);
        await sleep(Math.max(0, due! - Date.now()) + 20);
        const taken = await store.claim('invoicing', claimAs('s2', Date.now(), 10, leaseMs));
        expect(taken.map((x) => x.owner)).toEqual(['s2']);
        const settle = store.settle(d.id, 'dead-sidecar', { at: Date.now(), attempt: { outcome: '201', durationMs: 1 }, next: { state: 'delivered' } });
        await expect(settle).rejects.toBeInstanceOf(LeaseLostError);
        expect(await store.get(d.id)).toMatchObject({ state: 'delivering', owner: 's2' });
        expect((await store.history(d.id)).map((e) => [e.event, e.sidecar, e.outcome])).toEqual([
          ['queued', SIDECAR, undefined],
          ['taken-over', 's2', 'from dead-sidecar'],
        ]);
      });

      it('gives a holder its own passed lease again without calling it a takeover', async () => {
        const leaseMs = 300;
        const d = newDelivery({ expiresAt: Date.now() + HOUR });
        await store.submit(d, submitAt(Date.now()));
        await store.claim('invoicing', claimAs('s1', Date.now(), 10, leaseMs));
        await sleep(leaseMs + 100);
        expect((await store.claim('invoicing', claimAs('s1', Date.now(), 10, leaseMs))).map((x) => x.id)).toEqual([d.id]);
        expect((await store.history(d.id)).map((e) => e.event)).toEqual(['queued']);
      });

      it('does not hand out a delivery before its next attempt is due', async () => {
        const d = newDelivery();
        await store.submit(d, submitAt(T0));
        await store.claim('invoicing', claimAs('s1', T0));
        await store.settle(d.id, 's1', { at: T0 + 1, attempt: { outcome: '503', durationMs: 2 }, next: { state: 'queued', at: T0 + 1000, error: 'vendor answered 503' } });
        expect(await store.nextDueAt('invoicing', T0 + 1)).toBe(T0 + 1000);
        expect(await store.claim('invoicing', claimAs('s1', T0 + 999))).toEqual([]);
        expect(await store.claim('invoicing', claimAs('s1', T0 + 1000))).toHaveLength(1);
      });

      it('gives out deliveries that share an ordering key one at a time, in submission order', async () => {
        const a = [newDelivery({ orderingKey: 'A' }), newDelivery({ orderingKey: 'A' }), newDelivery({ orderingKey: 'A' })];
        const b = newDelivery({ orderingKey: 'B' });
        const free = newDelivery();
        for (const [i, d] of [a[0]!, a[1]!, b, a[2]!, free].entries()) await store.submit(d, submitAt(T0 + i));
        const claimed = await store.claim('invoicing', claimAs('s1', T0 + 10));
        expect(claimed.map((d) => d.id)).toEqual([a[0]!.id, b.id, free.id]);
        // The head waits for a retry: those behind it wait too.
        await store.settle(a[0]!.id, 's1', { at: T0 + 11, attempt: { outcome: 'reset', durationMs: 1 }, next: { state: 'queued', at: T0 + 5000 } });
        expect(await store.claim('invoicing', claimAs('s1', T0 + 12))).toEqual([]);
        const again = await store.claim('invoicing', claimAs('s1', T0 + 5000));
        expect(again.map((d) => d.id)).toEqual([a[0]!.id]);
        await store.settle(a[0]!.id, 's1', { at: T0 + 5001, attempt: { outcome: '201', durationMs: 1 }, next: { state: 'delivered' } });
        expect((await store.claim('invoicing', claimAs('s1', T0 + 5002))).map((d) => d.id)).toEqual([a[1]!.id]);
        // A dead head no longer holds the key.
        await store.settle(a[1]!.id, 's1', { at: T0 + 5003, attempt: { outcome: '422', durationMs: 1 }, next: { state: 'dead', reason: 'refused' } });
        expect((await store.claim('invoicing', claimAs('s1', T0 + 5004))).map((d) => d.id)).toEqual([a[2]!.id]);
      });

      it('counts no backlog twice and reports the oldest and the dead letters', async () => {
        expect(await store.stats('invoicing')).toEqual({ backlog: 0, oldestCreatedAt: undefined, dead: 0 });
        const ds = [newDelivery(), newDelivery(), newDelivery()];
        for (const [i, d] of ds.entries()) await store.submit(d, submitAt(T0 + i * 1000));
        const [c] = await store.claim('invoicing', claimAs('s1', T0 + 5000, 1));
        await store.settle(c!.id, 's1', { at: T0 + 5001, attempt: { outcome: '400', durationMs: 1 }, next: { state: 'dead', reason: 'refused' } });
        expect(await store.stats('invoicing')).toEqual({ backlog: 2, oldestCreatedAt: T0 + 1000, dead: 1 });
        expect(await store.nextDueAt('invoicing', T0 + 5002)).toBe(T0 + 1000);
      });
    });

    describe('settle', () => {
      it('ends a delivery delivered with the response kept and every step in the history, in order', async () => {
        const d = newDelivery();
        await store.submit(d, submitAt(T0));
        await store.claim('invoicing', claimAs('s1', T0));
        await store.settle(d.id, 's1', {
          at: T0 + 100,
          attempt: { outcome: 'timeout', durationMs: 2000 },
          next: { state: 'queued', at: T0 + 400, error: 'no response headers within 2000ms' },
        });
        await store.claim('invoicing', claimAs('s2', T0 + 400));
        const ended = await store.settle(d.id, 's2', { at: T0 + 500, attempt: { outcome: '201', durationMs: 12 }, next: { state: 'delivered' }, response: OK });
        expect(ended).toMatchObject({ state: 'delivered', attempts: 2, endedAt: T0 + 500, lastError: 'no response headers within 2000ms' });
        expect(ended.owner).toBeUndefined();
        expect(ended.response!.status).toBe(201);
        expect(ended.response!.headers).toEqual(OK.headers);
        expect(ended.response!.body!.toString()).toBe('{"ok":true}');
        expect(await store.get(d.id)).toEqual(ended);
        expect(await store.history(d.id)).toEqual([
          { at: T0, event: 'queued', sidecar: SIDECAR },
          { at: T0 + 100, event: 'attempt', sidecar: 's1', attempt: 1, outcome: 'timeout', durationMs: 2000 },
          { at: T0 + 100, event: 'retry', sidecar: 's1' },
          { at: T0 + 500, event: 'attempt', sidecar: 's2', attempt: 2, outcome: '201', durationMs: 12 },
          { at: T0 + 500, event: 'delivered', sidecar: 's2' },
        ]);
        await expect(store.settle(d.id, 's2', { at: T0 + 600, next: { state: 'delivered' } })).rejects.toBeInstanceOf(LeaseLostError);
      });

      it('ends a delivery dead with the refusal kept, or expired, and hands one back untried', async () => {
        const refused = newDelivery();
        const expired = newDelivery();
        const handedBack = newDelivery();
        for (const d of [refused, expired, handedBack]) await store.submit(d, submitAt(T0));
        await store.claim('invoicing', claimAs('s1', T0));
        const no: StoredResponse = { status: 422, headers: { 'content-type': 'text/plain' }, body: Buffer.from('bad vat number'), truncated: false };
        const r = await store.settle(refused.id, 's1', { at: T0 + 1, attempt: { outcome: '422', durationMs: 5 }, next: { state: 'dead', reason: 'refused', error: 'vendor answered 422' }, response: no });
        expect(r).toMatchObject({ state: 'dead', deadReason: 'refused', attempts: 1, lastError: 'vendor answered 422' });
        expect(r.response!.body!.toString()).toBe('bad vat number');
        const e = await store.settle(expired.id, 's1', { at: T0 + 2, next: { state: 'dead', reason: 'expired', error: 'maxAge passed' } });
        expect(e).toMatchObject({ state: 'dead', deadReason: 'expired', attempts: 0 });
        const h = await store.settle(handedBack.id, 's1', { at: T0 + 3, next: { state: 'queued', at: T0 + 3 } });
        expect(h).toMatchObject({ state: 'queued', attempts: 0, nextAttemptAt: T0 + 3 });
        expect((await store.history(handedBack.id)).map((x) => x.event)).toEqual(['queued', 'released']);
        expect((await store.history(expired.id)).map((x) => x.event)).toEqual(['queued', 'dead']);
      });

      it('rejects settling an unknown delivery with DeliveryNotFoundError', async () => {
        await expect(store.settle('nope', 's1', { at: T0, next: { state: 'delivered' } })).rejects.toBeInstanceOf(DeliveryNotFoundError);
      });
    });

    describe('replay, list, purge and compact', () => {
      it('replays a dead delivery under the same id and key, due at once', async () => {
        const d = newDelivery({ idempotencyKey: 'inv-77' });
        await store.submit(d, submitAt(T0));
        await store.claim('invoicing', claimAs('s1', T0));
        await store.settle(d.id, 's1', { at: T0 + 1, attempt: { outcome: '409', durationMs: 1 }, next: { state: 'dead', reason: 'refused' } });
        const replayed = await store.replay(d.id, { now: T0 + HOUR, sidecar: 'cli' });
        expect(replayed).toMatchObject({ id: d.id, idempotencyKey: 'inv-77', state: 'queued', nextAttemptAt: T0 + HOUR, attempts: 1 });
        expect(replayed.endedAt).toBeUndefined();
        expect(replayed.expiresAt).toBeGreaterThan(T0 + HOUR);
        expect((await store.claim('invoicing', claimAs('s1', T0 + HOUR))).map((x) => x.id)).toEqual([d.id]);
        expect((await store.history(d.id)).map((x) => x.event)).toEqual(['queued', 'attempt', 'dead', 'replayed']);
        await expect(store.replay(d.id, { now: T0 + HOUR, sidecar: 'cli' })).rejects.toBeInstanceOf(DeliveryNotReplayableError);
        await expect(store.replay('nope', { now: T0, sidecar: 'cli' })).rejects.toBeInstanceOf(DeliveryNotFoundError);
      });

      it('puts a replayed delivery behind those of its ordering key that are not ended', async () => {
        const a = newDelivery({ orderingKey: 'K' });
        const b = newDelivery({ orderingKey: 'K' });
        await store.submit(a, submitAt(T0));
        await store.claim('invoicing', claimAs('s1', T0 + 1));
        await store.settle(a.id, 's1', { at: T0 + 2, attempt: { outcome: '422', durationMs: 1 }, next: { state: 'dead', reason: 'refused' } });
        await store.submit(b, submitAt(T0 + 3));
        expect((await store.claim('invoicing', claimAs('s1', T0 + 4))).map((d) => d.id)).toEqual([b.id]);
        // b is in flight: the replayed a waits for it, as a new submission with the key would.
        await store.replay(a.id, { now: T0 + 5, sidecar: 'cli' });
        expect(await store.claim('invoicing', claimAs('s1', T0 + 6))).toEqual([]);
        await store.settle(b.id, 's1', { at: T0 + 7, attempt: { outcome: '201', durationMs: 1 }, next: { state: 'delivered' } });
        expect((await store.claim('invoicing', claimAs('s1', T0 + 8))).map((d) => d.id)).toEqual([a.id]);
      });

      it('lists by integration, state and creation time, oldest first', async () => {
        const a = newDelivery();
        const b = newDelivery({ integration: 'courier' });
        const c = newDelivery();
        await store.submit(a, submitAt(T0));
        await store.submit(b, submitAt(T0 + 10));
        await store.submit(c, submitAt(T0 + 20));
        await store.claim('invoicing', claimAs('s1', T0 + 30, 1));
        expect((await store.list({})).map((d) => d.id)).toEqual([a.id, b.id, c.id]);
        expect((await store.list({ integration: 'invoicing' })).map((d) => d.id)).toEqual([a.id, c.id]);
        expect((await store.list({ state: 'delivering' })).map((d) => d.id)).toEqual([a.id]);
        expect((await store.list({ since: T0 + 10 })).map((d) => d.id)).toEqual([b.id, c.id]);
        expect((await store.list({ limit: 1 })).map((d) => d.id)).toEqual([a.id]);
      });

      it('purges ended deliveries older than a time, with their history, and frees their keys', async () => {
        const old = newDelivery({ idempotencyKey: 'k-old' });
        const recent = newDelivery();
        const live = newDelivery();
        for (const d of [old, recent, live]) await store.submit(d, submitAt(T0));
        await store.claim('invoicing', claimAs('s1', T0, 2));
        await store.settle(old.id, 's1', { at: T0 + 1, attempt: { outcome: '200', durationMs: 1 }, next: { state: 'delivered' } });
        await store.settle(recent.id, 's1', { at: T0 + HOUR, attempt: { outcome: '200', durationMs: 1 }, next: { state: 'delivered' } });
        expect(await store.purge({ state: 'dead', endedBefore: T0 + 2 * HOUR })).toBe(0);
        expect(await store.purge({ state: 'delivered', endedBefore: T0 + 10 })).toBe(1);
        expect(await store.get(old.id)).toBeUndefined();
        expect(await store.history(old.id)).toEqual([]);
        expect(await store.get(recent.id)).toBeDefined();
        expect(await store.get(live.id)).toBeDefined();
        expect((await store.submit(newDelivery({ idempotencyKey: 'k-old' }), submitAt(T0 + 20))).created).toBe(true);
      });

      it('drops the bodies of deliveries that ended before a time and keeps everything else', async () => {
        const old = newDelivery();
        const live = newDelivery();
        for (const d of [old, live]) await store.submit(d, submitAt(T0));
        await store.claim('invoicing', claimAs('s1', T0, 1));
        await store.settle(old.id, 's1', { at: T0 + 1, attempt: { outcome: '201', durationMs: 1 }, next: { state: 'delivered' }, response: OK });
        expect(await store.compact('invoicing', T0 + 2)).toBe(1);
        const got = await store.get(old.id);
        expect(got!.request.body).toBeNull();
        expect(got!.response!.body).toBeNull();
        expect(got!.response!.status).toBe(201);
        expect((await store.get(live.id))!.request.body).not.toBeNull();
        await expect(store.replay(old.id, { now: T0 + 3, sidecar: 'cli' })).rejects.toBeInstanceOf(DeliveryNotReplayableError);
      });
    });

    describe('callbacks', () => {
      it('hands out an ended delivery with a callback until the callback is settled done', async () => {
        const d = newDelivery({ callbackUrl: 'http://127.0.0.1:9/cb' });
        const quiet = newDelivery();
        for (const x of [d, quiet]) await store.submit(x, submitAt(T0));
        expect(await store.claimCallbacks('invoicing', claimAs('s1', T0))).toEqual([]);
        await store.claim('invoicing', claimAs('s1', T0));
        for (const x of [d, quiet]) await store.settle(x.id, 's1', { at: T0 + 1, attempt: { outcome: '201', durationMs: 1 }, next: { state: 'delivered' } });
        const due = await store.claimCallbacks('invoicing', claimAs('s1', T0 + 1));
        expect(due.map((x) => x.id)).toEqual([d.id]);
        expect(due[0]!.callback).toMatchObject({ state: 'pending', attempts: 0 });
        expect(await store.claimCallbacks('invoicing', claimAs('s2', T0 + 2))).toEqual([]);
        await store.settleCallback(d.id, 's1', { at: T0 + 3, outcome: '503', durationMs: 1, next: { state: 'pending', at: T0 + 1000 } });
        expect(await store.claimCallbacks('invoicing', claimAs('s1', T0 + 999))).toEqual([]);
        await store.claimCallbacks('invoicing', claimAs('s1', T0 + 1000));
        const done = await store.settleCallback(d.id, 's1', { at: T0 + 1001, outcome: '204', durationMs: 1, next: { state: 'done' } });
        expect(done.callback).toMatchObject({ state: 'done', attempts: 2 });
        expect(await store.claimCallbacks('invoicing', claimAs('s1', T0 + 5000))).toEqual([]);
        expect((await store.history(d.id)).filter((x) => x.event === 'callback').map((x) => x.outcome)).toEqual(['503', '204']);
      });
    });
  });
}
