// Durable delivery, per store (sqlite: on a file, redis:// on a local redis-server with AOF and fsync
// on every write): how many Prefer: respond-async calls a sidecar acknowledges per second, the ack
// latency at a steady 500/s (open loop: each call is sent when it is due, whatever the answers, and
// timed from its send; how late the generator sent behind the due times is a row of its own), and how fast the backlog
// drains once the vendor is back (no rate limit: the store and the sidecar are the limit). The open
// loops at 500/s run in interleaved rounds (see below), the closed loops and drains after them. Aims: ≥ 2,000
// acks/s, p99 ack ≤ 10 ms at 500/s. A benchmark, not a test: it prints figures and asserts nothing.
// Each store's row is printed beside the same row of the previous run (bench/results/delivery.json,
// which this run then replaces), with the load average each was measured under, and beside the floor:
// the same open loop against the same sidecar for a path it answers 404 at once, with no store in the
// way, so a tail that the machine puts on every request is told apart from the store's; and beside the
// store alone: the same open loop calling a second store of the same kind (its own file, or its own
// integration in the same Redis) in this process, with no HTTP in the way. Where /dev/shm is a
// memory file system, a `sqlite:` store there is measured the same way: its thread, its transactions,
// no disk, so what the disk adds to the store alone is told apart from the rest. Rows before the table:
// the WAL bytes one submission writes to a `sqlite:` store (a count, which the machine's load does not
// move), the generator's lateness, that store on memory, and the disk's own floor: as many bytes written
// and fsynced per batch, in the same open loop at the same rate, the least a durable ack can wait on
// this disk with one sync at a time. The
// Redis row says when an AOF rewrite ran during the 500/s phase: a call writes about 1.2 KB of AOF,
// and past Redis's auto-aof-rewrite-min-size (64 MB) a rewrite forks; the throughput phase, which
// writes the most, therefore runs after it.
//
//   node bench/delivery.ts [seconds per measurement, default 10]
import { createClient } from '@redis/client';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { RedisStore } from '../src/delivery/redis-store.ts';
import { SqliteDatabase } from '../src/delivery/sqlite-database.ts';
import { SqliteStore } from '../src/delivery/sqlite-store.ts';
import type { DeliveryStore, NewDelivery, SubmitOptions } from '../src/delivery/store.ts';
import { startKeyedVendor, type KeyedVendor } from '../test/support/keyed-vendor.ts';
import { startRedis } from '../test/support/redis.ts';
import { spawnSidecar, type SidecarProcess } from '../test/support/sidecar-process.ts';
import { percentiles, type Percentiles } from './support/stats.ts';

const SECONDS = Number(process.argv[2] ?? 10);
if (process.argv.length > 3 || !(SECONDS > 0)) {
  console.error(`usage: node bench/delivery.ts [seconds per measurement, default 10]; got ${JSON.stringify(process.argv.slice(2).join(' '))}`);
  process.exit(64);
}
const CONCURRENCY = 32;
/** The 500/s open loops are split into this many interleaved rounds. */
const ROUNDS = 3;
const STEADY_RATE = 500;
const AIM_ACKS_PER_SECOND = 2000;
const AIM_P99_MS = 10;
const RESULTS = join('bench', 'results', 'delivery.json');
/** Width of the rows' labels. */
const LABEL = 19;
/** A memory file system on most Linux machines. */
const SHM = '/dev/shm';

interface Results {
  readonly seconds: number;
  readonly loadAverage: number;
  /** durableFloor(): one thread writing and fsyncing a commit's bytes per batch, at the steady rate (absent in older results). */
  readonly diskFloorMs?: Percentiles;
  /** How late the open loops sent behind their due times (absent in older results, whose latencies count from the due time, this included). */
  readonly generatorLagMs?: Percentiles;
  /** A `sqlite:` store on /dev/shm, called directly at the steady rate (absent where there is none, and in older results). */
  readonly sqliteInMemoryMs?: Percentiles;
  /** WAL bytes one submission alone in its commit writes to the `sqlite:` store (absent in older results). */
  readonly walBytesPerSubmission?: number;
  readonly runs: readonly StoreRun[];
}

interface StoreRun {
  readonly store: string;
  readonly acksPerSecond: number;
  readonly ackAtSteadyRateMs: Percentiles;
  /** The open loop against a path the sidecar answers 404 without its store (absent in older results). */
  readonly floorAtSteadyRateMs?: Percentiles;
  /** The open loop calling a store of the same kind directly, without the sidecar (absent in older results). */
  readonly storeAtSteadyRateMs?: Percentiles;
  readonly drainPerSecond: number;
  readonly drained: number;
  /** Redis only: AOF rewrites that ran during the 500/s phase (the throughput phase can start one). */
  readonly aofRewritesAtSteadyRate?: number;
}

/** What the sidecar keeps of the benchmark's calls (it drops Prefer, Host and the framing headers). */
const SUBMITTED_HEADERS: [string, string][] = [['content-type', 'application/json']];

/** The direct store rows' integration: apart from the sidecar's, whose backlog the drain counts. */
const DIRECT_INTEGRATION = 'direct';
/** Every submission's maxAge: none expires during the run. */
const DAY_MS = 86_400_000;

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
 * How late each call of the open loops left behind its due time: the generator's own error (its timer's
 * lateness, its event loop busy with answers), not the store's. Runs before this row existed timed their
 * calls from the due time, and so counted it in.
 */
const generatorLag: number[] = [];

/**
 * Open loop at `rate` for `seconds`: call i is due at start + i/rate and `send(i, sentAt)` runs then (never
 * before), whether or not earlier calls were answered, so a stalled store has every call due meanwhile
 * waiting on it; latencies count from `sentAt`, what the caller would time, and the lateness behind the
 * due time goes to generatorLag.
 */
async function paced(rate: number, seconds: number, send: (i: number, sentAt: number) => void): Promise<void> {
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const dueAt = (i: number) => start + (i * 1000) / rate;
  for (let sent = 0; sent < total; ) {
    for (; sent < total; sent++) {
      const now = performance.now();
      if (dueAt(sent) > now) break;
      generatorLag.push(now - dueAt(sent));
      send(sent, now);
    }
    if (sent < total) await sleep(Math.max(0, dueAt(sent) - performance.now()));
  }
}

/** Each call's latency in an open loop at STEADY_RATE: from its send to the end of `call(i)`. */
async function steady(seconds: number, call: (i: number) => Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  await paced(STEADY_RATE, seconds, (i, sentAt) => pending.push(call(i).then(() => void latencies.push(performance.now() - sentAt))));
  await Promise.all(pending);
  return latencies;
}

/** The sidecar's acknowledgement of call i, its body read. */
const ack = (pool: Pool, path?: string) => (i: number) => post(pool, i, path).then((res) => res.body.dump());

/** Call i as the sidecar stores it, under `integration`: the submission and its options. */
function submission(integration: string, i: number): [NewDelivery, SubmitOptions] {
  const id = randomUUID();
  const now = Date.now();
  return [
    { id, integration, idempotencyKey: id, request: { method: 'POST', path: '/v1/orders', headers: SUBMITTED_HEADERS, body: Buffer.from(`{"order":${i}}`) }, expiresAt: now + DAY_MS },
    { now, maxBacklog: 1_000_000, sidecar: 'bench' },
  ];
}

/** Submission i straight to `store`, with no sidecar in the way. */
const submit = (store: DeliveryStore) => (i: number) => store.submit(...submission(DIRECT_INTEGRATION, i));

/**
 * The least a durable ack can take on this disk at `rate`, whatever the store: calls sent at `rate` (open
 * loop, timed from their send, as the stores' rows are) are answered by one thread that, like the
 * `sqlite:` store's, takes every call waiting, writes `bytes` (what one commit of one submission writes
 * to the WAL) in place in a file reused from its start, and fsyncs it (SQLite's call), one batch at a
 * time. A sync that stalls delays every call that arrives meanwhile, as it does the stores'.
 */
async function durableFloor(dir: string, rate: number, seconds: number, bytes: number): Promise<number[]> {
  const syncer = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const { openSync, writeSync, fsyncSync } = require('node:fs');
     const slots = 256;
     const fd = openSync(workerData.path, 'w+');
     const page = Buffer.alloc(workerData.bytes, 1);
     // Written once before the loop starts, so every write in it lands on blocks the file already has.
     for (let slot = 0; slot < slots; slot++) writeSync(fd, page, 0, page.length, slot * page.length);
     fsyncSync(fd);
     let waiting = [], scheduled = false, commits = 0;
     parentPort.on('message', (id) => {
       waiting.push(id);
       if (scheduled) return;
       scheduled = true;
       setImmediate(() => {
         scheduled = false;
         const batch = waiting;
         waiting = [];
         writeSync(fd, page, 0, page.length, (commits++ % slots) * page.length);
         fsyncSync(fd);
         parentPort.postMessage(batch);
       });
     });
     parentPort.postMessage('ready');`,
    { eval: true, workerData: { path: join(dir, 'disk-probe'), bytes } },
  );
  const total = Math.round(rate * seconds);
  const sent = new Float64Array(total);
  const latencies: number[] = [];
  const all = Promise.withResolvers<void>();
  try {
    // Its first message; `once` rejects if the thread fails instead.
    await once(syncer, 'message');
    syncer.on('message', (ids: number[]) => {
      const now = performance.now();
      for (const id of ids) latencies.push(now - sent[id]!);
      if (latencies.length === total) all.resolve();
    });
    await paced(rate, seconds, (i, sentAt) => {
      sent[i] = sentAt;
      syncer.postMessage(i);
    });
    await all.promise;
  } finally {
    await syncer.terminate();
  }
  return latencies;
}

/**
 * WAL bytes one submission commits when it is alone in its transaction, as at a low rate: every page
 * it changes (the row, each index, the idempotency key, the history line, the backlog count) is one
 * frame. Counted from the WAL's length with checkpoints off, so it does not move with the machine.
 */
function walBytesPerSubmission(dir: string): number {
  const path = join(dir, 'pages.sqlite');
  const db = new SqliteDatabase(path);
  const submissions = 500;
  try {
    db.autoCheckpoint(0);
    const before = statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0;
    for (let i = 0; i < submissions; i++) db.submit(...submission('erp', i));
    return (statSync(`${path}-wal`).size - before) / submissions;
  } finally {
    db.close();
  }
}

interface StoreUnderTest {
  readonly name: string;
  readonly storeUrl: string;
  readonly open: () => DeliveryStore;
  /** A second store of the same kind, not the sidecar's, for the row of the store alone. */
  readonly direct: DeliveryStore;
  readonly config: string;
  readonly sidecar: SidecarProcess;
  readonly pool: Pool;
  /** Its row says whether an AOF rewrite ran during the 500/s rounds. */
  readonly redis?: true;
}

const sidecarArgs = (config: string, storeUrl: string, dir: string) => [
  '--config', config, '--port', '0', '--admin-port', '0', '--log-sample-rate', '0', '--delivery-store', storeUrl, '--secrets-dir', dir,
];

/** A sidecar on the store with the vendor down, warmed up. */
async function startStore(name: string, storeUrl: string, open: () => DeliveryStore, direct: DeliveryStore, vendor: KeyedVendor, dir: string, redis?: true): Promise<StoreUnderTest> {
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
  const sidecar = await spawnSidecar(sidecarArgs(config, storeUrl, dir));
  const pool = new Pool(`http://127.0.0.1:${sidecar.port}`, { connections: CONCURRENCY });
  await maxAcks(pool, 1);
  await steady(1, submit(direct));
  return { name, storeUrl, open, direct, config, sidecar, pool, ...(redis && { redis }) };
}

/**
 * The closed-loop maximum, then the drain: the vendor comes back, and a fresh sidecar (closed breaker)
 * drains what the first one accepted.
 */
async function maxAcksAndDrain(s: StoreUnderTest, vendor: KeyedVendor, dir: string): Promise<{ acksPerSecond: number; drained: number; drainPerSecond: number }> {
  const acksPerSecond = await maxAcks(s.pool, SECONDS);
  await s.pool.close();
  s.sidecar.child.kill('SIGTERM');
  await s.sidecar.exited;
  const store = s.open();
  try {
    const backlog = (await store.stats('erp')).backlog;
    vendor.setDown(false);
    const drainer = await spawnSidecar(sidecarArgs(s.config, s.storeUrl, dir));
    const started = performance.now();
    const deadline = started + 300_000;
    while ((await store.stats('erp')).backlog > 0 && performance.now() < deadline) await sleep(100);
    const drainSeconds = (performance.now() - started) / 1000;
    const left = (await store.stats('erp')).backlog;
    drainer.child.kill('SIGTERM');
    await drainer.exited;
    vendor.setDown(true);
    return { acksPerSecond: Math.round(acksPerSecond), drained: backlog - left, drainPerSecond: Math.round((backlog - left) / drainSeconds) };
  } finally {
    await store.close();
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
const shmDir = existsSync(SHM) ? await mkdtemp(join(SHM, 'breakwater-bench-delivery-')) : undefined;
const stores: StoreUnderTest[] = [];
let inMemory: SqliteStore | undefined;
try {
  const sqlitePath = join(dir, 'deliveries.sqlite');
  const walBytes = walBytesPerSubmission(dir);
  // Each one kept as soon as it runs, so a failure to start the next stops it too.
  stores.push(await startStore('sqlite', `sqlite:${sqlitePath}`, () => new SqliteStore(sqlitePath), new SqliteStore(join(dir, 'direct.sqlite')), vendor, dir));
  stores.push(await startStore('redis', redis.url, () => new RedisStore(redis.url), new RedisStore(redis.url), vendor, dir, true));
  if (shmDir) {
    inMemory = new SqliteStore(join(shmDir, 'deliveries.sqlite'));
    await steady(1, submit(inMemory));
  }
  // The open loops at 500/s in interleaved rounds, the order rotated each round, so a stretch of
  // slow disk or a busy neighbour falls on every row alike rather than on whichever ran then: the
  // store on memory, the disk alone, and for each store its acks, its sidecar's floor and the store
  // alone. They come before the closed-loop maxima, whose AOF could start a rewrite in Redis.
  const phases: { readonly key: string; readonly run: (seconds: number) => Promise<number[]> }[] = [
    ...(inMemory ? [{ key: 'memory', run: (seconds: number) => steady(seconds, submit(inMemory!)) }] : []),
    { key: 'disk', run: (seconds) => durableFloor(dir, STEADY_RATE, seconds, walBytes) },
    ...stores.flatMap((s) => [
      { key: `${s.name}:acks`, run: (seconds: number) => steady(seconds, ack(s.pool)) },
      { key: `${s.name}:floor`, run: (seconds: number) => steady(seconds, ack(s.pool, FLOOR_PATH)) },
      { key: `${s.name}:store`, run: (seconds: number) => steady(seconds, submit(s.direct)) },
    ]),
  ];
  const samples = new Map(phases.map((phase) => [phase.key, [] as number[]]));
  const rewritesBefore = await aofRewrites(redis.url);
  // The warm-ups' sends are not the measurement's.
  generatorLag.length = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < phases.length; i++) {
      const phase = phases[(i + round) % phases.length]!;
      samples.get(phase.key)!.push(...(await phase.run(SECONDS / ROUNDS)));
    }
  }
  const rewritesAfter = await aofRewrites(redis.url);
  const disk = percentiles(samples.get('disk')!);
  const memory = inMemory && percentiles(samples.get('memory')!);
  const lag = percentiles(generatorLag);
  const runs: StoreRun[] = [];
  for (const s of stores) {
    runs.push({
      store: s.name,
      ...(await maxAcksAndDrain(s, vendor, dir)),
      ackAtSteadyRateMs: percentiles(samples.get(`${s.name}:acks`)!),
      floorAtSteadyRateMs: percentiles(samples.get(`${s.name}:floor`)!),
      storeAtSteadyRateMs: percentiles(samples.get(`${s.name}:store`)!),
      // Those that ended during the rounds (one running as they began included), and one still running at their end.
      ...(s.redis && { aofRewritesAtSteadyRate: rewritesAfter.done - rewritesBefore.done + Number(rewritesAfter.running) }),
    });
  }
  const results: Results = { seconds: SECONDS, loadAverage: loadavg()[0]!, generatorLagMs: lag, diskFloorMs: disk, ...(memory && { sqliteInMemoryMs: memory }), walBytesPerSubmission: walBytes, runs };
  const f = (n: number) => n.toFixed(2).padStart(8);
  const row = (label: string, r: StoreRun, load: number, aims: string) => {
    const a = r.ackAtSteadyRateMs;
    const pair = (p: Percentiles | undefined) => (p ? `${f(p.p50)} ${f(p.p99)}` : `${'-'.padStart(8)} ${'-'.padStart(8)}`);
    return `${label.padEnd(LABEL)} ${load.toFixed(1).padStart(4)} ${String(r.acksPerSecond).padStart(7)}   ${f(a.p50)} ${f(a.p99)} ${f(a.max)} ms ${pair(r.floorAtSteadyRateMs)} ms ${pair(r.storeAtSteadyRateMs)} ms ${String(r.drainPerSecond).padStart(7)} (${r.drained})${aims}`;
  };
  console.log(`\ndurable delivery, ${SECONDS}s per measurement (the ${STEADY_RATE}/s ones in ${ROUNDS} interleaved rounds); aims: ≥ ${AIM_ACKS_PER_SECOND} acks/s, p99 ≤ ${AIM_P99_MS} ms at ${STEADY_RATE}/s\n`);
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const walRow = (label: string, bytes: number) => `${label.padEnd(LABEL)}        sqlite: WAL written per submission alone in its commit: ${kib(bytes)} (${Math.round(bytes / 4120)} pages)`;
  // A previous run without the generator's row timed its calls from their due times, its lateness included.
  const previous = baseline?.generatorLagMs ? 'previous' : 'previous*';
  if (baseline?.walBytesPerSubmission) console.log(walRow('pages, previous', baseline.walBytesPerSubmission));
  console.log(walRow('pages, this run', walBytes));
  /** A row of one figure's p50, p99 and max, after what it measures. */
  const figureRow = (label: string, load: number, what: string, p: Percentiles) =>
    `${label.padEnd(LABEL)} ${load.toFixed(1).padStart(4)}   ${what.padEnd(56)} ${f(p.p50)} ${f(p.p99)} ${f(p.max)} ms`;
  const lagWhat = "the open loops' own lateness behind the due times";
  if (baseline?.generatorLagMs) console.log(figureRow('generator, previous', baseline.loadAverage, lagWhat, baseline.generatorLagMs));
  console.log(figureRow('generator, this run', results.loadAverage, lagWhat, lag));
  const diskWhat = (bytes: number) => `${kib(bytes)} written and fsynced per batch at ${STEADY_RATE}/s`;
  if (baseline?.diskFloorMs && baseline.walBytesPerSubmission) console.log(figureRow(`disk, ${previous}`, baseline.loadAverage, diskWhat(baseline.walBytesPerSubmission), baseline.diskFloorMs));
  console.log(figureRow('disk, this run', results.loadAverage, diskWhat(walBytes), disk));
  const memoryWhat = `sqlite: store alone on ${SHM}, no disk, at ${STEADY_RATE}/s`;
  if (baseline?.sqliteInMemoryMs) console.log(figureRow(`memory, ${previous}`, baseline.loadAverage, memoryWhat, baseline.sqliteInMemoryMs));
  if (memory) console.log(figureRow('memory, this run', results.loadAverage, memoryWhat, memory));
  const head = (...cells: string[]) => cells.map((c) => c.padStart(8)).join(' ');
  console.log(`${'store'.padEnd(LABEL)} load  acks/s   ${head('ack p50', 'p99', 'max')}    ${head('floor 50', 'p99')}    ${head('store 50', 'p99')}    drain/s (backlog)`);
  for (const r of runs) {
    const before = baseline?.runs.find((b) => b.store === r.store);
    if (before) console.log(row(`${r.store}, ${previous}`, before, baseline!.loadAverage, ''));
    const met = (ok: boolean) => (ok ? 'met' : 'missed');
    const p99Met = r.ackAtSteadyRateMs.p99 <= AIM_P99_MS;
    const [floor, store] = [r.floorAtSteadyRateMs!.p99, r.storeAtSteadyRateMs!.p99];
    // The first part of the ack that misses on its own says why; the disk row writes what a sqlite:
    // commit writes, so it speaks for that store only.
    const reasons: [boolean, string][] = [
      [floor > AIM_P99_MS, 'so is the floor: the machine, not the store'],
      [r.store === 'sqlite' && disk.p99 > AIM_P99_MS, 'so is the disk alone'],
      [store > AIM_P99_MS, 'so is the store alone'],
      [store + floor > AIM_P99_MS, 'the store alone and the floor add up past it'],
    ];
    const why = p99Met ? undefined : reasons.find(([holds]) => holds)?.[1];
    const p99 = `p99 ${met(p99Met)}${why ? ` (${why})` : ''}`;
    const aof = r.aofRewritesAtSteadyRate ? `; an AOF rewrite ran during the ${STEADY_RATE}/s phase` : '';
    console.log(row(`${r.store}, this run`, r, results.loadAverage, `   acks ${met(r.acksPerSecond >= AIM_ACKS_PER_SECOND)}, ${p99}${aof}`));
  }
  if (baseline && !baseline.generatorLagMs) console.log(`* timed from each call's due time, so with the generator's own lateness in every figure`);
  await writeFile(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
} finally {
  for (const s of stores) {
    s.sidecar.child.kill('SIGKILL');
    // Closed already when its drain ran.
    if (!s.pool.closed) await s.pool.close();
    await s.direct.close();
  }
  await inMemory?.close();
  if (shmDir) await rm(shmDir, { recursive: true, force: true });
  await vendor.close();
  await redis.destroy();
  await rm(dir, { recursive: true, force: true });
}
