// Durable delivery, per store (sqlite: on a file, redis:// on a local redis-server with AOF and fsync
// on every write): how many Prefer: respond-async calls a sidecar acknowledges per second, the ack
// latency at a steady 500/s (open loop, measured from each call's due time), and how fast the backlog
// drains once the vendor is back (no rate limit: the store and the sidecar are the limit). Aims: ≥ 2,000
// acks/s, p99 ack ≤ 10 ms at 500/s. A benchmark, not a test: it prints figures and asserts nothing.
// Each store's row is printed beside the same row of the previous run (bench/results/delivery.json,
// which this run then replaces), with the load average each was measured under, and beside the floor:
// the same open loop against the same sidecar for a path it answers 404 at once, with no store in the
// way, so a tail that the machine puts on every request is told apart from the store's.
//
//   node bench/delivery.ts [seconds per measurement, default 10]
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { RedisStore } from '../src/delivery/redis-store.ts';
import { SqliteStore } from '../src/delivery/sqlite-store.ts';
import type { DeliveryStore } from '../src/delivery/store.ts';
import { startKeyedVendor, type KeyedVendor } from '../test/support/keyed-vendor.ts';
import { startRedis } from '../test/support/redis.ts';
import { spawnSidecar } from '../test/support/sidecar-process.ts';
import { percentiles, type Percentiles } from './support/stats.ts';

const SECONDS = Number(process.argv[2] ?? 10);
if (process.argv.length > 3 || !(SECONDS > 0)) {
  console.error(`usage: node bench/delivery.ts [seconds per measurement, default 10]; got ${JSON.stringify(process.argv.slice(2).join(' '))}`);
  process.exit(64);
}
const CONCURRENCY = 32;
const STEADY_RATE = 500;
const AIM_ACKS_PER_SECOND = 2000;
const AIM_P99_MS = 10;
const RESULTS = join('bench', 'results', 'delivery.json');

interface Results {
  readonly seconds: number;
  readonly loadAverage: number;
  readonly runs: readonly StoreRun[];
}

interface StoreRun {
  readonly store: string;
  readonly acksPerSecond: number;
  readonly ackAtSteadyRateMs: Percentiles;
  /** The open loop against a path the sidecar answers 404 without its store (absent in older results). */
  readonly floorAtSteadyRateMs?: Percentiles;
  readonly drainPerSecond: number;
  readonly drained: number;
}

/** Answered 404 by the sidecar itself: no integration of that name, so no store and no vendor. */
const FLOOR_PATH = '/no-such-integration/v1/orders';

const post = (pool: Pool, i: number, path = '/erp/v1/orders') =>
  pool.request({ path, method: 'POST', headers: { prefer: 'respond-async', 'content-type': 'application/json' }, body: `{"order":${i}}` });

/** Closed loop: CONCURRENCY callers, each sending its next call when the last is acknowledged. */
async function maxAcks(pool: Pool, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let acked = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      for (let i = worker; performance.now() < end; i += CONCURRENCY) {
        const res = await post(pool, i);
        await res.body.dump();
        if (res.statusCode === 202) acked++;
      }
    }),
  );
  return acked / seconds;
}

/** Open loop at `rate`: call i is due at start + i/rate, and its latency counts from then. */
async function steadyAcks(pool: Pool, rate: number, seconds: number, path?: string): Promise<number[]> {
  const latencies: number[] = [];
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < rate * seconds; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(
      post(pool, i, path).then(async (res) => {
        await res.body.dump();
        latencies.push(performance.now() - due);
      }),
    );
  }
  await Promise.all(pending);
  return latencies;
}

async function measure(name: string, storeUrl: string, open: () => DeliveryStore, vendor: KeyedVendor, dir: string): Promise<StoreRun> {
  const config = join(dir, `${name}.yaml`);
  // The breaker opens on the vendor's first failures, so while acks are measured the sidecar spends
  // nothing on deliveries: the figure is the acknowledgement path alone.
  await writeFile(
    config,
    stringify({
      apiVersion: 'breakwater.dev/v1alpha1',
      kind: 'ExternalIntegration',
      metadata: { name: 'erp' },
      spec: { upstream: { url: vendor.url }, circuitBreaker: { halfOpenAfter: '1h' }, bulkhead: { maxConcurrent: 64 }, delivery: {} },
    }),
  );
  vendor.setDown(true);
  const sidecar = await spawnSidecar(['--config', config, '--port', '0', '--admin-port', '0', '--log-sample-rate', '0', '--delivery-store', storeUrl, '--secrets-dir', dir]);
  const pool = new Pool(`http://127.0.0.1:${sidecar.port}`, { connections: CONCURRENCY });
  let drained = 0;
  let drainPerSecond = 0;
  try {
    await maxAcks(pool, 1);
    const acksPerSecond = await maxAcks(pool, SECONDS);
    const steady = await steadyAcks(pool, STEADY_RATE, SECONDS);
    const floor = await steadyAcks(pool, STEADY_RATE, SECONDS, FLOOR_PATH);
    // The vendor comes back; a fresh sidecar (closed breaker) drains what the first one accepted.
    sidecar.child.kill('SIGTERM');
    await sidecar.exited;
    const store = open();
    try {
      const backlog = (await store.stats('erp')).backlog;
      vendor.setDown(false);
      const drainer = await spawnSidecar(['--config', config, '--port', '0', '--admin-port', '0', '--log-sample-rate', '0', '--delivery-store', storeUrl, '--secrets-dir', dir]);
      const started = performance.now();
      const deadline = started + 300_000;
      while ((await store.stats('erp')).backlog > 0 && performance.now() < deadline) await sleep(100);
      const drainSeconds = (performance.now() - started) / 1000;
      const left = (await store.stats('erp')).backlog;
      drainer.child.kill('SIGTERM');
      await drainer.exited;
      drained = backlog - left;
      drainPerSecond = Math.round(drained / drainSeconds);
    } finally {
      await store.close();
    }
    return { store: name, acksPerSecond: Math.round(acksPerSecond), ackAtSteadyRateMs: percentiles(steady), floorAtSteadyRateMs: percentiles(floor), drained, drainPerSecond };
  } finally {
    await pool.close();
    sidecar.child.kill('SIGKILL');
  }
}

const baseline = await readFile(RESULTS, 'utf8').then((text) => JSON.parse(text) as Results, () => undefined);
const dir = await mkdtemp(join(tmpdir(), 'breakwater-bench-delivery-'));
const vendor = await startKeyedVendor();
const redis = await startRedis();
try {
  const sqlitePath = join(dir, 'deliveries.sqlite');
  const runs = [
    await measure('sqlite', `sqlite:${sqlitePath}`, () => new SqliteStore(sqlitePath), vendor, dir),
    await measure('redis', redis.url, () => new RedisStore(redis.url), vendor, dir),
  ];
  const results: Results = { seconds: SECONDS, loadAverage: loadavg()[0]!, runs };
  const f = (n: number) => n.toFixed(2).padStart(8);
  const row = (label: string, r: StoreRun, load: number, aims: string) => {
    const a = r.ackAtSteadyRateMs;
    const floor = r.floorAtSteadyRateMs ? `${f(r.floorAtSteadyRateMs.p50)} ${f(r.floorAtSteadyRateMs.p99)}` : `${'-'.padStart(8)} ${'-'.padStart(8)}`;
    return `${label.padEnd(16)} ${load.toFixed(1).padStart(4)} ${String(r.acksPerSecond).padStart(7)}   ${f(a.p50)} ${f(a.p99)} ${f(a.max)} ms ${floor} ms ${String(r.drainPerSecond).padStart(7)} (${r.drained})${aims}`;
  };
  console.log(`\ndurable delivery, ${SECONDS}s per measurement; aims: ≥ ${AIM_ACKS_PER_SECOND} acks/s, p99 ≤ ${AIM_P99_MS} ms at ${STEADY_RATE}/s\n`);
  console.log('store            load  acks/s   ack@500/s p50      p99      max   floor p50    p99    drain/s (backlog)');
  for (const r of runs) {
    const before = baseline?.runs.find((b) => b.store === r.store);
    if (before) console.log(row(`${r.store}, previous`, before, baseline!.loadAverage, ''));
    const met = (ok: boolean) => (ok ? 'met' : 'missed');
    const floorMissed = r.floorAtSteadyRateMs !== undefined && r.floorAtSteadyRateMs.p99 > AIM_P99_MS;
    const p99 = `p99 ${met(r.ackAtSteadyRateMs.p99 <= AIM_P99_MS)}${floorMissed ? ' (so is the floor: the machine, not the store)' : ''}`;
    console.log(row(`${r.store}, this run`, r, results.loadAverage, `   acks ${met(r.acksPerSecond >= AIM_ACKS_PER_SECOND)}, ${p99}`));
  }
  await writeFile(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await vendor.close();
  await redis.destroy();
  await rm(dir, { recursive: true, force: true });
}
