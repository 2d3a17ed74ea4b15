// Two sidecar processes share one Redis store (as the pods of a Deployment do); one is killed with
// SIGKILL in the middle of the backlog. The other takes over what the dead one held once its lease
// passes and finishes every delivery: none lost, no key processed twice by the vendor.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/delivery/redis-store.ts';
import { docs, integration } from '../sidecar/harness.ts';
import { startKeyedVendor, type KeyedVendor } from '../support/keyed-vendor.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { spawnSidecar, type SidecarProcess } from '../support/sidecar-process.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CALLS = 200;

describe('two sidecars on one Redis store', () => {
  let redis: RedisServer;
  let vendor: KeyedVendor;
  let dir: string;
  const sidecars: SidecarProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    vendor = await startKeyedVendor({ delayMs: 40 });
    dir = await mkdtemp(join(tmpdir(), 'breakwater-redis-sidecars-'));
  });
  afterAll(async () => {
    for (const p of sidecars) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
    await vendor?.close();
    await redis?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('one killed mid-backlog: the other finishes its deliveries after the lease', async () => {
    const config = join(dir, 'integrations.yaml');
    await writeFile(
      config,
      docs(integration('erp', { upstream: { url: vendor.url }, timeouts: { perAttempt: '1s', total: '1s' }, rateLimit: { requests: 30, per: '1s', burst: 5 }, bulkhead: { maxConcurrent: 4 }, delivery: {} })),
    );
    const args = ['--config', config, '--port', '0', '--admin-port', '0', '--log-sample-rate', '0', '--delivery-store', redis.url, '--secrets-dir', dir];
    const [a, b] = [await spawnSidecar(args), await spawnSidecar(args)];
    sidecars.push(a!, b!);

    const ids: string[] = [];
    for (const [i, p] of [a!, b!].entries()) {
      const pool = new Pool(`http://127.0.0.1:${p.port}`, { connections: 4 });
      const replies = await Promise.all(
        Array.from({ length: CALLS / 2 }, async (_, n) => {
          const res = await pool.request({ path: '/erp/v1/orders', method: 'POST', headers: { prefer: 'respond-async' }, body: `{"from":${i},"n":${n}}` });
          expect(res.statusCode).toBe(202);
          return ((await res.body.json()) as { delivery: string }).delivery;
        }),
      );
      ids.push(...replies);
      await pool.close();
    }

    const deadline = Date.now() + 20_000;
    while (vendor.processed.size < 40 && Date.now() < deadline) await sleep(50);
    a!.child.kill('SIGKILL');
    await a!.exited;
    const atKill = vendor.processed.size;

    const store = new RedisStore(redis.url);
    try {
      const until = Date.now() + 90_000;
      let delivered = 0;
      while (delivered < CALLS && Date.now() < until) {
        await sleep(500);
        delivered = (await store.list({ state: 'delivered' })).length;
      }
      // Every delivery ended delivered, so those the killed sidecar had claimed were finished by the
      // survivor once their lease passed.
      expect(delivered).toBe(CALLS);
      console.log(`two sidecars figures: ${JSON.stringify({ accepted: ids.length, processedAtKill: atKill, distinctKeysAtVendor: vendor.processed.size, repeats: vendor.repeats, conflicts: vendor.conflicts })}`);
      expect(new Set(vendor.processed.keys())).toEqual(new Set(ids));
      expect(vendor.conflicts).toBe(0);
      expect(vendor.repeats).toBeLessThanOrEqual(4);
    } finally {
      await store.close();
    }
  });

  it('Redis stopped: 503 store_unavailable, nothing acknowledged that was not stored; back again, it delivers what it acknowledged', async () => {
    const config = join(dir, 'stopped.yaml');
    await writeFile(config, docs(integration('erp', { upstream: { url: vendor.url }, delivery: {} })));
    const p = await spawnSidecar(['--config', config, '--port', '0', '--admin-port', '0', '--delivery-store', redis.url, '--secrets-dir', dir]);
    sidecars.push(p);
    const pool = new Pool(`http://127.0.0.1:${p.port}`, { connections: 1 });
    const send = async (key: string) => {
      const res = await pool.request({ path: '/erp/v1/orders', method: 'POST', headers: { prefer: 'respond-async', 'idempotency-key': key }, body: '{}' });
      return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
    };
    try {
      expect((await send('before-stop')).status).toBe(202);
      await redis.stop();
      const refused = await send('while-stopped');
      expect(refused).toEqual({
        status: 503,
        body: { error: 'store_unavailable', integration: 'erp', message: 'the delivery store could not be written; the call was not accepted' },
      });
      await redis.start();
      const deadline = Date.now() + 15_000;
      let after = await send('after-restart');
      while (after.status !== 202 && Date.now() < deadline) {
        await sleep(250);
        after = await send('after-restart');
      }
      expect(after.status).toBe(202);
      while ((!vendor.processed.has('before-stop') || !vendor.processed.has('after-restart')) && Date.now() < deadline + 15_000) await sleep(100);
      expect(vendor.processed.has('before-stop')).toBe(true);
      expect(vendor.processed.has('after-restart')).toBe(true);
      expect(vendor.processed.has('while-stopped')).toBe(false);
    } finally {
      await pool.close();
    }
  });
});
