// Durable delivery, per store (sqlite: on a file, redis:// on a local redis-server with AOF and fsync
// on every write): how many Prefer: respond-async calls a sidecar acknowledges per second, the ack
// latency at a steady 500/s (open loop, measured from each call's due time), and how fast the backlog
// drains once the vendor is back (no rate limit: the store and the sidecar are the limit). Aims: ≥ 2,000
// acks/s, p99 ack ≤ 10 ms at 500/s. A benchmark, not a test: it prints figures and asserts nothing.
// Each store's row is printed beside the same row of the previous run (bench/results/delivery.json,
// which this run then replaces), with the load average each was measured under, and beside the floor:
// the same open loop against the same sidecar for a path it answers 404 at once, with no store in the
// way, so a tail that the machine puts on every request is told apart from the store's. A disk row
// first: fdatasync alone at the same rate on the stores' disk, the least a durable ack can wait. The
// Redis row says when an AOF rewrite ran during the 500/s phase: a call writes about 1.2 KB of AOF,
// and past Redis's auto-aof-rewrite-min-size (64 MB) a rewrite forks; the throughput phase, which
// writes the most, therefore runs after it.
//
//   node bench/delivery.ts [seconds per measurement, default 10]
import { createClient } from '@redis/client';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
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
  /** fdatasync of 16 KiB at the steady rate on the stores' disk (absent in older results). */
  readonly diskSyncMs?: Percentiles;
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
  /** Redis only: AOF rewrites that ran during the 500/s phase (the throughput phase can start one). */
  readonly aofRewritesAtSteadyRate?: number;
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

/**
 * Open loop at `rate`: call i is due at start + i/rate, is sent then (never before: an early call would
 * hide up to a timer tick of its latency), and its latency counts from then.
 */
async function steadyAcks(pool: Pool, rate: number, seconds: number, path?: string): Promise<number[]> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const total = rate * seconds;
  const start = performance.now();
  const dueAt = (i: number) => start + (i * 1000) / rate;
  let sent = 0;
  while (sent < total) {
    for (; sent < total && dueAt(sent) <= performance.now(); sent++) {
      const due = dueAt(sent);
      pending.push(
        post(pool, sent, path).then(async (res) => {
          await res.body.dump();
          latencies.push(performance.now() - due);
        }),
      );
    }
    if (sent < total) await sleep(Math.max(0, dueAt(sent) - performance.now()));
  }
  await Promise.all(pending);
  return latencies;
}

/**
 * What the disk under the stores allows: a durable ack waits for at least one fdatasync, so its p99 is
 * at least this one's. 16 KiB written in place (as a WAL reused from its start is) and synced, at `rate`.
 */
async function diskSync(dir: string, rate: number, seconds: number): Promise<number[]> {
  const fd = openSync(join(dir, 'disk-probe'), 'w+');
  const page = Buffer.alloc(16 * 1024, 1);
  const durations: number[] = [];
  try {
    const start = performance.now();
    for (let i = 0; i < rate * seconds; i++) {
      writeSync(fd, page, 0, page.length, (i % 256) * page.length);
      const started = performance.now();
      fdatasyncSync(fd);
      durations.push(performance.now() - started);
      const wait = start + ((i + 1) * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
    }
  } finally {
    closeSync(fd);
  }
  return durations;
}

async function measure(
  name: string,
  storeUrl: string,
  open: () => DeliveryStore,
  vendor: KeyedVendor,
  dir: string,
  aofRewrites?: () => Promise<AofRewrites>,
): Promise<StoreRun> {
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
    // The 500/s phase first: the throughput phase writes enough AOF to start a rewrite, which would
    // then fall in the phase after it (a rewrite in this one is still said in the row).
    const rewritesBefore = await aofRewrites?.();
    const steady = await steadyAcks(pool, STEADY_RATE, SECONDS);
    const rewritesAfter = await aofRewrites?.();
    const floor = await steadyAcks(pool, STEADY_RATE, SECONDS, FLOOR_PATH);
    const acksPerSecond = await maxAcks(pool, SECONDS);
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
    return {
      store: name,
      acksPerSecond: Math.round(acksPerSecond),
      ackAtSteadyRateMs: percentiles(steady),
      floorAtSteadyRateMs: percentiles(floor),
      drained,
      drainPerSecond,
      // Those that ended during the phase (one running as it began included), and one still running at its end.
      ...(rewritesBefore && rewritesAfter && { aofRewritesAtSteadyRate: rewritesAfter.done - rewritesBefore.done + Number(rewritesAfter.running) }),
    };
  } finally {
    await pool.close();
    sidecar.child.kill('SIGKILL');
  }
}

interface AofRewrites {
  readonly done: number;
  readonly running: boolean;
}

async function aofRewrites(url: string): Promise<AofRewrites> {
  const client = createClient({ url });
  await client.connect();
  try {
    const info = await client.info('persistence');
    const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1]);
    return { done: field('aof_rewrites'), running: field('aof_rewrite_in_progress') === 1 };
  } finally {
    await client.close();
  }
}

const baseline = await readFile(RESULTS, 'utf8').then((text) => JSON.parse(text) as Results, () => undefined);
const dir = await mkdtemp(join(tmpdir(), 'breakwater-bench-delivery-'));
const vendor = await startKeyedVendor();
const redis = await startRedis();
try {
  const sqlitePath = join(dir, 'deliveries.sqlite');
  const disk = percentiles(await diskSync(dir, STEADY_RATE, SECONDS));
  const runs = [
    await measure('sqlite', `sqlite:${sqlitePath}`, () => new SqliteStore(sqlitePath), vendor, dir),
    await measure('redis', redis.url, () => new RedisStore(redis.url), vendor, dir, () => aofRewrites(redis.url)),
  ];
  const results: Results = { seconds: SECONDS, loadAverage: loadavg()[0]!, diskSyncMs: disk, runs };
  const f = (n: number) => n.toFixed(2).padStart(8);
  const row = (label: string, r: StoreRun, load: number, aims: string) => {
    const a = r.ackAtSteadyRateMs;
    const floor = r.floorAtSteadyRateMs ? `${f(r.floorAtSteadyRateMs.p50)} ${f(r.floorAtSteadyRateMs.p99)}` : `${'-'.padStart(8)} ${'-'.padStart(8)}`;
    return `${label.padEnd(16)} ${load.toFixed(1).padStart(4)} ${String(r.acksPerSecond).padStart(7)}   ${f(a.p50)} ${f(a.p99)} ${f(a.max)} ms ${floor} ms ${String(r.drainPerSecond).padStart(7)} (${r.drained})${aims}`;
  };
  console.log(`\ndurable delivery, ${SECONDS}s per measurement; aims: ≥ ${AIM_ACKS_PER_SECOND} acks/s, p99 ≤ ${AIM_P99_MS} ms at ${STEADY_RATE}/s\n`);
  const diskRow = (label: string, d: Percentiles, load: number) => `${label.padEnd(16)} ${load.toFixed(1).padStart(4)}   fdatasync of 16 KiB at ${STEADY_RATE}/s ${f(d.p50)} ${f(d.p99)} ${f(d.max)} ms`;
  if (baseline?.diskSyncMs) console.log(diskRow('disk, previous', baseline.diskSyncMs, baseline.loadAverage));
  console.log(diskRow('disk, this run', disk, results.loadAverage));
  console.log('store            load  acks/s   ack@500/s p50      p99      max   floor p50    p99    drain/s (backlog)');
  for (const r of runs) {
    const before = baseline?.runs.find((b) => b.store === r.store);
    if (before) console.log(row(`${r.store}, previous`, before, baseline!.loadAverage, ''));
    const met = (ok: boolean) => (ok ? 'met' : 'missed');
    const floorMissed = r.floorAtSteadyRateMs !== undefined && r.floorAtSteadyRateMs.p99 > AIM_P99_MS;
    const why = floorMissed ? ' (so is the floor: the machine, not the store)' : disk.p99 > AIM_P99_MS ? " (so is the disk's own fdatasync)" : '';
    const p99 = `p99 ${met(r.ackAtSteadyRateMs.p99 <= AIM_P99_MS)}${why}`;
    const aof = r.aofRewritesAtSteadyRate ? `; an AOF rewrite ran during the ${STEADY_RATE}/s phase` : '';
    console.log(row(`${r.store}, this run`, r, results.loadAverage, `   acks ${met(r.acksPerSecond >= AIM_ACKS_PER_SECOND)}, ${p99}${aof}`));
  }
  await writeFile(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await vendor.close();
  await redis.destroy();
  await rm(dir, { recursive: true, force: true });
}
