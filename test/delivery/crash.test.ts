// A sidecar process killed (SIGKILL: no drain, no chance to hand anything back) in the middle of its
// backlog, then started again on the same SQLite file: nothing acknowledged is lost, no key is
// processed twice by the vendor, and a repeat (a delivery in flight at the kill) carries the same key
// and body. And SIGTERM: the sidecar stops taking work, hands back what it holds, and exits 0.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/delivery/sqlite-store.ts';
import { docs, integration } from '../sidecar/harness.ts';
import { startKeyedVendor, type KeyedVendor } from '../support/keyed-vendor.ts';
import { spawnSidecar, type SidecarProcess } from '../support/sidecar-process.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs}ms`);
    await sleep(50);
  }
}

describe('a sidecar that dies with a backlog', () => {
  let vendor: KeyedVendor;
  let dir: string;
  const running: SidecarProcess[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'breakwater-crash-'));
  });
  afterEach(async () => {
    for (const p of running.splice(0)) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
    await vendor.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(spec: Record<string, unknown>, extra: string[] = []): Promise<SidecarProcess> {
    const config = join(dir, 'integrations.yaml');
    await writeFile(config, docs(integration('erp', { upstream: { url: vendor.url }, ...spec })));
    const args = ['--config', config, '--port', '0', '--admin-port', '0', '--log-sample-rate', '0', '--delivery-store', `sqlite:${join(dir, 'deliveries.sqlite')}`, '--secrets-dir', dir, ...extra];
    const p = await spawnSidecar(args);
    running.push(p);
    return p;
  }

  async function submit(p: SidecarProcess, count: number): Promise<string[]> {
    const pool = new Pool(`http://127.0.0.1:${p.port}`, { connections: 4 });
    try {
      const ids = await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const res = await pool.request({ path: '/erp/v1/orders', method: 'POST', headers: { prefer: 'respond-async' }, body: `{"order":${i}}` });
          expect(res.statusCode).toBe(202);
          return ((await res.body.json()) as { delivery: string }).delivery;
        }),
      );
      return ids;
    } finally {
      await pool.close();
    }
  }

  it('kill -9 mid-backlog, restart on the same store: 0 lost, 0 keys processed twice', async () => {
    vendor = await startKeyedVendor({ delayMs: 40 });
    const spec = { timeouts: { perAttempt: '1s', total: '1s' }, rateLimit: { requests: 60, per: '1s', burst: 10 }, bulkhead: { maxConcurrent: 8 }, delivery: {} };
    const first = await start(spec);
    const ids = await submit(first, 300);
    await until(() => vendor.processed.size >= 80, 20_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = vendor.processed.size;

    // The claims the dead process held are taken over once their lease (timeouts.total + 5 s) passes.
    await start(spec);
    // Every delivery ends delivered in the store, those the dead process held included.
    const store = new SqliteStore(join(dir, 'deliveries.sqlite'));
    try {
      const deadline = Date.now() + 60_000;
      let delivered = 0;
      while (delivered < 300 && Date.now() < deadline) {
        await sleep(250);
        delivered = (await store.list({ state: 'delivered' })).length;
      }
      expect(delivered).toBe(300);
    } finally {
      await store.close();
    }
    console.log(`kill -9 figures: ${JSON.stringify({ accepted: ids.length, processedAtKill: atKill, distinctKeysAtVendor: vendor.processed.size, repeats: vendor.repeats, conflicts: vendor.conflicts })}`);
    expect(new Set(vendor.processed.keys())).toEqual(new Set(ids));
    expect(vendor.conflicts).toBe(0);
    // Only what was in flight at the kill can have been sent twice, and then with the same key and body.
    expect(vendor.repeats).toBeLessThanOrEqual(8);
  });

  it('SIGTERM stops taking work, hands back what it holds, exits 0; the next sidecar delivers it', async () => {
    vendor = await startKeyedVendor({ delayMs: 3000 });
    const spec = { timeouts: { perAttempt: '10s', total: '10s' }, bulkhead: { maxConcurrent: 4 }, delivery: {} };
    const first = await start(spec, ['--drain-timeout', '500ms']);
    const ids = await submit(first, 10);
    await until(() => vendor.arrivals.length >= 4, 5000);
    first.child.kill('SIGTERM');
    const code = await first.exited;
    running.splice(running.indexOf(first), 1);
    expect(code).toBe(0);

    const store = new SqliteStore(join(dir, 'deliveries.sqlite'));
    try {
      const left = await store.list({});
      expect(left.map((d) => d.id).sort()).toEqual([...ids].sort());
      expect(left.every((d) => d.state === 'queued' && d.owner === undefined)).toBe(true);
      const handedBack = left.filter((d) => d.attempts > 0);
      expect(handedBack.length).toBeGreaterThan(0);
      for (const d of handedBack) expect((await store.history(d.id)).map((e) => e.event)).toEqual(['queued', 'attempt', 'retry']);
    } finally {
      await store.close();
    }

    await start({ ...spec, bulkhead: { maxConcurrent: 10 } });
    await until(() => vendor.processed.size === 10, 20_000);
    expect(new Set(vendor.processed.keys())).toEqual(new Set(ids));
  });
});
