// The Redis store against the store contract on a real redis-server, plus what only Redis shows: a
// lease is judged by the server's clock, not the claimer's; a server that stops answers
// store_unavailable, and what was acknowledged survives its restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '@redis/client';
import { StoreUnavailableError } from '../../src/delivery/errors.ts';
import { RedisStore } from '../../src/delivery/redis-store.ts';
import { describeStoreContract } from '../support/delivery-store-contract.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.destroy();
});

describeStoreContract('redis', async () => {
  // Each test starts from an empty database.
  const admin = createClient({ url: redis.url });
  await admin.connect();
  await admin.flushAll();
  await admin.close();
  return { open: async () => new RedisStore(redis.url), destroy: async () => {} };
});

describe('RedisStore on a server that requires a password', () => {
  it('without it, answers store_unavailable saying the server wants one; with it, stores', async () => {
    const guarded = await startRedis({ password: 's3cret' });
    const without = new RedisStore(guarded.url);
    const withIt = new RedisStore(guarded.url, 's3cret');
    const delivery = (id: string) => ({ id, integration: 'invoicing', idempotencyKey: id, request: { method: 'POST', path: '/v1/x', headers: [], body: null }, expiresAt: Date.now() + 60_000 });
    try {
      const refused = without.submit(delivery('a'), { now: Date.now(), maxBacklog: 10, sidecar: 't' });
      await expect(refused).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(refused).rejects.toThrow(/cannot be reached: NOAUTH/);
      expect((await withIt.submit(delivery('b'), { now: Date.now(), maxBacklog: 10, sidecar: 't' })).created).toBe(true);
    } finally {
      await without.close();
      await withIt.close();
      await guarded.destroy();
    }
  });
});

describe('RedisStore leases', () => {
  it("are measured on the server: a sidecar whose clock runs an hour ahead takes over nothing before the holder's lease passed", async () => {
    const admin = createClient({ url: redis.url });
    await admin.connect();
    await admin.flushAll();
    await admin.close();
    const store = new RedisStore(redis.url);
    const hour = 3_600_000;
    try {
      const id = 'held';
      await store.submit(
        { id, integration: 'invoicing', idempotencyKey: id, request: { method: 'POST', path: '/v1/x', headers: [], body: null }, expiresAt: Date.now() + 2 * hour },
        { now: Date.now(), maxBacklog: 10, sidecar: 't' },
      );
      const claim = (owner: string, now: number) => store.claim('invoicing', { owner, now, limit: 10, leaseMs: 500 });
      expect((await claim('holder', Date.now())).map((d) => d.id)).toEqual([id]);
      expect(await claim('ahead', Date.now() + hour)).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await claim('ahead', Date.now() + hour)).map((d) => d.owner)).toEqual(['ahead']);
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore when the server goes away', () => {
  it('answers store_unavailable while Redis is stopped, and keeps what it acknowledged across the restart', async () => {
    const store = new RedisStore(redis.url);
    const delivery = (id: string) => ({
      id,
      integration: 'invoicing',
      idempotencyKey: id,
      request: { method: 'POST', path: '/v1/x', headers: [] as [string, string][], body: Buffer.from('{}') },
      expiresAt: Date.now() + 60_000,
    });
    try {
      expect((await store.submit(delivery('kept'), { now: Date.now(), maxBacklog: 10, sidecar: 't' })).created).toBe(true);
      await redis.stop();
      await expect(store.submit(delivery('refused'), { now: Date.now(), maxBacklog: 10, sidecar: 't' })).rejects.toMatchObject({ code: 'store_unavailable' });
      await redis.start();
      const deadline = Date.now() + 10_000;
      let kept;
      while (Date.now() < deadline) {
        try {
          kept = await store.get('kept');
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      expect(kept?.request.body?.toString()).toBe('{}');
      expect(await store.get('refused')).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
