// The failure durable delivery exists for, compressed: the vendor is down for 20 s while the app keeps
// submitting Prefer: respond-async calls at a steady rate through a real sidecar process on a real
// SQLite file. Every call is acknowledged at once; after recovery each reaches the vendor exactly once
// per idempotency key, drained at the integration's rate limit; none is lost.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docs, integration } from '../sidecar/harness.ts';
import { startKeyedVendor, type KeyedVendor } from '../support/keyed-vendor.ts';
import { spawnSidecar, type SidecarProcess } from '../support/sidecar-process.ts';
import { percentiles } from '../../bench/support/stats.ts';

const OUTAGE_MS = 20_000;
const CALLS = 550;
const INTERVAL_MS = 40; // 25 calls a second: 22 s of submissions, 20 of them into the outage
const RATE = 100;
const BURST = 10;

describe('a 20 s vendor outage under steady async traffic', () => {
  let vendor: KeyedVendor;
  let dir: string;
  let sidecar: SidecarProcess;
  let pool: Pool;

  beforeAll(async () => {
    vendor = await startKeyedVendor();
    dir = await mkdtemp(join(tmpdir(), 'breakwater-outage-'));
    const config = join(dir, 'integrations.yaml');
    await writeFile(
      config,
      docs(
        integration('erp', {
          upstream: { url: vendor.url },
          timeouts: { perAttempt: '1s', total: '2s' },
          retry: { backoff: { initial: '250ms', max: '1s' } },
          circuitBreaker: { halfOpenAfter: '1s' },
          rateLimit: { requests: RATE, per: '1s', burst: BURST },
          delivery: { maxBackoff: '2s' },
        }),
      ),
    );
    sidecar = await spawnSidecar([
      '--config', config, '--port', '0', '--admin-port', '0', '--log-sample-rate', '0',
      '--delivery-store', `sqlite:${join(dir, 'deliveries.sqlite')}`, '--secrets-dir', dir,
    ]);
    pool = new Pool(`http://127.0.0.1:${sidecar.port}`, { connections: 4 });
  });

  afterAll(async () => {
    await pool?.close();
    sidecar?.child.kill('SIGTERM');
    await sidecar?.exited;
    await vendor?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('acknowledges every call at once, loses none, and drains each key once at the rate limit', async () => {
    // Warm the connections and the sidecar's code paths, as any app's first calls do.
    for (let i = 0; i < 20; i++) await (await pool.request({ path: '/_breakwater/deliveries/warm-up', method: 'GET' })).body.dump();
    vendor.setDown(true);
    const startedAt = performance.now();
    let recoveredAt = 0;
    let accepted = 0;
    let backlogAtRecovery = 0;
    const recovered = new Promise<void>((resolve) =>
      setTimeout(() => {
        vendor.setDown(false);
        recoveredAt = performance.now();
        backlogAtRecovery = accepted;
        resolve();
      }, OUTAGE_MS),
    );

    const latencies: number[] = [];
    const keys: string[] = [];
    const replies: Promise<void>[] = [];
    for (let i = 0; i < CALLS; i++) {
      const due = startedAt + i * INTERVAL_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      // Half the app's calls carry their own key; the others are keyed by their delivery id.
      const appKey = i % 2 === 0 ? `invoice-${i}` : undefined;
      const sent = performance.now();
      replies.push(
        pool
          .request({
            path: '/erp/v1/invoices',
            method: 'POST',
            headers: { prefer: 'respond-async', 'content-type': 'application/json', ...(appKey && { 'idempotency-key': appKey }) },
            body: JSON.stringify({ invoice: i }),
          })
          .then(async (res) => {
            latencies.push(performance.now() - sent);
            const body = (await res.body.json()) as { delivery: string };
            expect(res.statusCode).toBe(202);
            accepted++;
            keys.push(appKey ?? body.delivery);
          }),
      );
    }
    await Promise.all(replies);
    await recovered;

    const deadline = Date.now() + 60_000;
    while (vendor.processed.size < CALLS && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    const drainedAt = Math.max(...[...vendor.processed.values()].map((p) => p.at));

    const duringOutage = vendor.arrivals.filter((a) => a.at < recoveredAt).length;
    const afterRecovery = vendor.arrivals.filter((a) => a.at >= recoveredAt).map((a) => a.at);
    let busiestSecond = 0;
    for (let i = 0, j = 0; i < afterRecovery.length; i++) {
      while (afterRecovery[j]! < afterRecovery[i]! - 1000) j++;
      busiestSecond = Math.max(busiestSecond, i - j + 1);
    }
    const ack = percentiles(latencies);
    const figures = {
      loadAverage: loadavg()[0]!.toFixed(1),
      accepted: keys.length,
      ackP50Ms: +ack.p50.toFixed(2),
      ackP99Ms: +ack.p99.toFixed(2),
      ackMaxMs: +ack.max.toFixed(2),
      attemptsDuringOutage: duringOutage,
      backlogAtRecovery,
      drainSeconds: +((drainedAt - recoveredAt) / 1000).toFixed(2),
      busiestSecondAfterRecovery: busiestSecond,
      distinctKeysAtVendor: vendor.processed.size,
      repeats: vendor.repeats,
      conflicts: vendor.conflicts,
    };
    console.log(`outage figures: ${JSON.stringify(figures)}`);

    expect(keys).toHaveLength(CALLS);
    expect(new Set(keys).size).toBe(CALLS);
    // Acknowledged as soon as stored, whatever the vendor is doing: a call that waited for the vendor
    // would take at least timeouts.perAttempt (1 s), or fail. The typical ack is a few ms; the tail
    // bound leaves room for a busy shared 2-core machine, and the figures printed above are the
    // measurement.
    expect(figures.ackP50Ms).toBeLessThan(20);
    expect(figures.ackP99Ms).toBeLessThan(1000);
    // 0 lost: every accepted key reached the vendor, and the vendor saw no key that was not accepted.
    expect(new Set(vendor.processed.keys())).toEqual(new Set(keys));
    expect(vendor.arrivals.every((a) => a.key !== undefined && keys.includes(a.key))).toBe(true);
    expect(vendor.conflicts).toBe(0);
    // The breaker held the outage's attempts to its probes and the backoff: no stampede.
    expect(duringOutage).toBeLessThan(CALLS / 2);
    // No faster than the token bucket allows: `burst` at once, then `RATE` a second (5% for the jitter
    // between the sidecar sending and the vendor seeing a request).
    expect(busiestSecond).toBeLessThanOrEqual((RATE + BURST) * 1.05);
    expect(drainedAt - recoveredAt).toBeGreaterThanOrEqual(((backlogAtRecovery - BURST) / RATE) * 1000 * 0.95);
  });
});
