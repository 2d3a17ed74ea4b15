// rateLimit.scope global: three sidecar processes share one bucket in a real Redis (the delivery
// store's), and a loopback vendor counts what reaches it. Each sidecar is offered more than the whole
// quota; together they send the quota, not three times it. With Redis stopped they keep serving, each
// with its local bucket, and count the fallback; with Redis back, the shared limit holds again. The
// script's arithmetic is checked against the same real Redis.
import { createServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@redis/client';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisRateLimits } from '../../src/sidecar/redis-rate-limits.ts';
import { docs, integration, sample, startHarness } from '../sidecar/harness.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { spawnSidecar, type SidecarProcess } from '../support/sidecar-process.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const RATE = 30;
const BURST = 5;
const OFFERED_PER_SIDECAR = 40;

/** A vendor that answers 200 at once and remembers when each call arrived. */
async function startCountingVendor(): Promise<{ url: string; arrivals: number[]; close(): Promise<void> }> {
  const arrivals: number[] = [];
  const server: Server = createServer((req, res) => {
    arrivals.push(performance.now());
    req.resume();
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Offers `perSecond` calls a second to each sidecar for `ms`; resolves with every answer's status once all are in. */
async function offer(sidecars: readonly SidecarProcess[], path: string, perSecond: number, ms: number): Promise<number[]> {
  const pools = sidecars.map((p) => new Pool(`http://127.0.0.1:${p.port}`, { connections: 64 }));
  const answers: Promise<number>[] = [];
  const started = performance.now();
  for (let n = 0; performance.now() - started < ms; n++) {
    for (const pool of pools) {
      answers.push(
        pool.request({ path, method: 'GET' }).then(async (res) => {
          await res.body.dump();
          return res.statusCode;
        }),
      );
    }
    const next = started + ((n + 1) * 1000) / perSecond;
    await sleep(Math.max(0, next - performance.now()));
  }
  const statuses = await Promise.all(answers);
  await Promise.all(pools.map((pool) => pool.close()));
  return statuses;
}

interface Phase {
  readonly statuses: number[];
  /** Calls that reached the vendor from the first offered to the last answered. */
  readonly arrived: number;
  readonly ms: number;
  /** The most calls the vendor saw in one second, for the figures: arrival times carry each call's latency too. */
  readonly busiestSecond: number;
}

async function phase(sidecars: readonly SidecarProcess[], arrivals: readonly number[], ms: number): Promise<Phase> {
  const from = performance.now();
  const seen = arrivals.length;
  const statuses = await offer(sidecars, '/erp/v1/items', OFFERED_PER_SIDECAR, ms);
  const arrived = arrivals.slice(seen);
  return { statuses, arrived: arrived.length, ms: performance.now() - from, busiestSecond: busiestWindow(arrived, 1000) };
}

function busiestWindow(arrivals: readonly number[], windowMs: number): number {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/**
 * A loopback TCP relay in front of Redis that can stall: while stalled it holds what the client sends,
 * keeping the connection open, as a Redis too busy to answer would.
 */
async function startStallingRelay(port: number): Promise<{ url: string; stall(): void; resume(): void; close(): Promise<void> }> {
  let stalled = false;
  const pairs: { client: Socket; redis: Socket; held: Buffer[] }[] = [];
  const server = createTcpServer((client) => {
    const redis = connect(port, '127.0.0.1');
    const pair = { client, redis, held: [] as Buffer[] };
    pairs.push(pair);
    client.on('data', (chunk: Buffer) => (stalled ? pair.held.push(chunk) : redis.write(chunk)));
    redis.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => redis.destroy());
    redis.on('close', () => client.destroy());
    client.on('error', () => {});
    redis.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stall: () => (stalled = true),
    resume: () => {
      stalled = false;
      for (const pair of pairs) for (const chunk of pair.held.splice(0)) pair.redis.write(chunk);
    },
    close: () => {
      for (const { client, redis } of pairs) {
        client.destroy();
        redis.destroy();
      }
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function fallbacks(p: SidecarProcess): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${p.adminPort}/metrics`);
  return sample(await res.text(), 'breakwater_rate_limit_fallback_total{integration="erp"}') ?? 0;
}

describe('rateLimit.scope global on one Redis', () => {
  let redis: RedisServer;
  let dir: string;
  const sidecars: SidecarProcess[] = [];

  /** Stops every sidecar a test started, so the next one starts with none. */
  const stopSidecars = async (signal: NodeJS.Signals) => {
    for (const p of sidecars.splice(0)) {
      p.child.kill(signal);
      await p.exited;
    }
  };

  beforeAll(async () => {
    redis = await startRedis();
    dir = await mkdtemp(join(tmpdir(), 'breakwater-global-limit-'));
  });
  afterAll(async () => {
    await stopSidecars('SIGKILL');
    await redis?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('the script: burst free, then one token per interval reserved in order; a refusal takes nothing; an idle key expires', async () => {
    const limits = new RedisRateLimits(redis.url);
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      // 2 a second: a token every 500 ms, 3 at once. Each wait is bounded by the time this test has seen
      // go by since the first take (Redis counts from then), so a loaded machine cannot move it out.
      const bucket = limits.bucket('arith', { requests: 2, perMs: 1000, burst: 3 });
      await sleep(200);
      const start = performance.now();
      const since = () => performance.now() - start + 5;
      const taken = [];
      for (let i = 0; i < 3; i++) taken.push(await bucket.take(0));
      expect(taken).toEqual([
        { taken: true, waitMs: 0 },
        { taken: true, waitMs: 0 },
        { taken: true, waitMs: 0 },
      ]);
      // Empty: a reject-mode call (no wait allowed) is refused with the wait it would need, and takes nothing.
      const refused = await bucket.take(0);
      expect(refused.taken).toBe(false);
      expect(refused.waitMs).toBeGreaterThan(500 - since());
      expect(refused.waitMs).toBeLessThanOrEqual(500);
      // Queued calls reserve the next tokens in turn: 500 ms apart.
      const first = await bucket.take(5000);
      expect(first.waitMs).toBeGreaterThan(500 - since());
      const between = performance.now();
      const second = await bucket.take(5000);
      const gap = performance.now() - between + 5;
      expect(first.taken && second.taken).toBe(true);
      expect(first.waitMs).toBeLessThanOrEqual(500);
      // Relative to each call's own moment: the second came a little after the first.
      expect(second.waitMs - first.waitMs).toBeGreaterThan(500 - gap);
      expect(second.waitMs - first.waitMs).toBeLessThanOrEqual(500);
      // A wait beyond the longest allowed is refused, though shorter ones were reserved.
      expect((await bucket.take(750)).taken).toBe(false);
      const ttl = await raw.pTTL('breakwater:ratelimit:arith');
      // Full again once the five tokens taken (three, then two reserved) have come back, 2.5 s after the
      // first was taken; the key lives until then, and no longer.
      expect(ttl).toBeGreaterThan(2500 - since());
      expect(ttl).toBeLessThanOrEqual(2501);
      await sleep(ttl + 50);
      expect(await raw.exists('breakwater:ratelimit:arith')).toBe(0);
      expect(await bucket.take(0)).toEqual({ taken: true, waitMs: 0 });
    } finally {
      await raw.close();
      await limits.close();
    }
  });

  it('three sidecars, each offered more than the quota: the vendor gets the quota; Redis stopped, they keep serving; back, the limit holds', async () => {
    const vendor = await startCountingVendor();
    try {
      const config = join(dir, 'integrations.yaml');
      await writeFile(
        config,
        docs(integration('erp', { upstream: { url: vendor.url }, rateLimit: { requests: RATE, per: '1s', burst: BURST, scope: 'global', maxQueueWait: '500ms' } })),
      );
      const args = ['--config', config, '--port', '0', '--admin-port', '0', '--log-sample-rate', '0', '--delivery-store', redis.url, '--secrets-dir', dir];
      const three = [await spawnSidecar(args), await spawnSidecar(args), await spawnSidecar(args)];
      sidecars.push(...three);

      // One call each first, so every sidecar has reached Redis before the measure starts; then a pause, for a full bucket.
      await offer(three, '/erp/v1/items', 1, 1);
      await sleep(500);
      const before = await Promise.all(three.map(fallbacks));

      const runMs = 3000;
      const shared = await phase(three, vendor.arrivals, runMs);
      // The answers: served, or refused because the wait for a token was longer than maxQueueWait.
      expect(new Set(shared.statuses)).toEqual(new Set([200, 429]));
      // A call whose answer from Redis takes over 50 ms is decided by its sidecar's local bucket (as the
      // next test shows), which a busy machine can make happen now and then: such a call took no token
      // of the shared bucket and may have been admitted. They must be few, or the shared bucket was not
      // what limited the calls.
      const decidedLocally = sum(await Promise.all(three.map(fallbacks))) - sum(before);
      expect(decidedLocally).toBeLessThanOrEqual(0.05 * shared.statuses.length);
      // Every other call admitted took a token of the one bucket between the phase's start and end: at
      // most the burst and the quota of that time, from the three together.
      expect(shared.arrived).toBeLessThanOrEqual(BURST + (RATE * shared.ms) / 1000 + decidedLocally);
      // And the quota is used: at least 80% of it over the time calls were offered.
      expect(shared.arrived).toBeGreaterThanOrEqual(0.8 * RATE * (runMs / 1000));

      // Redis away: each sidecar limits with its local bucket (the whole quota: no fleet share is known
      // without an operator), so calls are still served, more than the shared bucket would let through,
      // and each sidecar counts its fallbacks.
      await redis.stop();
      const away = await phase(three, vendor.arrivals, 2000);
      expect(away.statuses.every((s) => s === 200 || s === 429)).toBe(true);
      expect(away.arrived).toBeGreaterThan(BURST + (RATE * away.ms) / 1000);
      const counted = await Promise.all(three.map(fallbacks));
      for (const [i, n] of counted.entries()) expect(n).toBeGreaterThan(before[i]!);
      expect(three[0]!.output()).toContain('the shared rate-limit bucket does not answer');

      // Back: once the sidecars have reconnected (their backoff is at most 2 s), the shared limit holds again.
      await redis.start();
      await sleep(3000);
      const afterReconnect = await Promise.all(three.map(fallbacks));
      const back = await phase(three, vendor.arrivals, runMs);
      const decidedLocallyBack = sum(await Promise.all(three.map(fallbacks))) - sum(afterReconnect);
      expect(decidedLocallyBack).toBeLessThanOrEqual(0.05 * back.statuses.length);
      expect(back.arrived).toBeLessThanOrEqual(BURST + (RATE * back.ms) / 1000 + decidedLocallyBack);
      expect(back.arrived).toBeGreaterThanOrEqual(0.8 * RATE * (runMs / 1000));
      expect(three[0]!.output()).toContain('the shared rate-limit bucket answers again');
      const figures = (p: Phase) => ({ offered: p.statuses.length, served: p.statuses.filter((s) => s === 200).length, arrived: p.arrived, phaseMs: Math.round(p.ms), busiestSecond: p.busiestSecond });
      console.log(
        `global rate limit figures (quota ${RATE}/s, burst ${BURST}, 3 × ${OFFERED_PER_SIDECAR}/s offered): ${JSON.stringify({ shared: figures(shared), away: figures(away), back: figures(back), fallbacks: counted, decidedLocally: { shared: decidedLocally, back: decidedLocallyBack } })}`,
      );
    } finally {
      await stopSidecars('SIGTERM');
      await vendor.close();
    }
  });

  it('whenExceeded reject: one sidecar spends the shared token, the other answers 429 rate_limited with Retry-After', async () => {
    const vendor = await startCountingVendor();
    try {
      const config = join(dir, 'reject.yaml');
      await writeFile(
        config,
        docs(integration('billing', { upstream: { url: vendor.url }, rateLimit: { requests: 1, per: '10s', burst: 1, scope: 'global', whenExceeded: 'reject' } })),
      );
      const args = ['--config', config, '--port', '0', '--admin-port', '0', '--delivery-store', redis.url, '--secrets-dir', dir];
      const [a, b] = [await spawnSidecar(args), await spawnSidecar(args)];
      sidecars.push(a!, b!);
      const first = await fetch(`http://127.0.0.1:${a!.port}/billing/v1/items`);
      expect(first.status).toBe(200);
      const second = await fetch(`http://127.0.0.1:${b!.port}/billing/v1/items`);
      expect(second.status).toBe(429);
      expect(((await second.json()) as { error: string }).error).toBe('rate_limited');
      const retryAfter = Number(second.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(9);
      expect(retryAfter).toBeLessThanOrEqual(10);
      expect(vendor.arrivals).toHaveLength(1);
    } finally {
      await stopSidecars('SIGTERM');
      await vendor.close();
    }
  });

  it('Redis slow to answer: after 50 ms the local bucket decides, the call is served, and the warning comes once per outage', async () => {
    const vendor = await startCountingVendor();
    const relay = await startStallingRelay(redis.port);
    const h = await startHarness(
      integration('ledger', { upstream: { url: vendor.url }, rateLimit: { requests: 1000, per: '1s', scope: 'global' } }),
      { deliveryStore: relay.url },
    );
    try {
      const fallbackCount = async () => sample(await h.metrics(), 'breakwater_rate_limit_fallback_total{integration="ledger"}') ?? 0;
      expect((await h.call('/ledger/v1/items')).status).toBe(200);
      expect(await fallbackCount()).toBe(0);
      relay.stall();
      const slow = [];
      for (let i = 0; i < 3; i++) slow.push(await h.call('/ledger/v1/items'));
      expect(slow.map((r) => r.status)).toEqual([200, 200, 200]);
      // Each waited for the shared bucket's answer, and no longer than that and a little.
      for (const r of slow) {
        expect(r.ms).toBeGreaterThanOrEqual(49);
        expect(r.ms).toBeLessThan(500);
      }
      expect(await fallbackCount()).toBe(3);
      const warnings = () => h.logs.filter((l) => l.msg === "the shared rate-limit bucket does not answer: this pod's share of the quota limits calls until it does");
      expect(warnings()).toHaveLength(1);
      // The held commands go through first (each an fsync, with the AOF on every write): then Redis answers in time again.
      relay.resume();
      await sleep(250);
      expect((await h.call('/ledger/v1/items')).status).toBe(200);
      expect(await fallbackCount()).toBe(3);
      expect(h.logs.some((l) => l.msg === 'the shared rate-limit bucket answers again')).toBe(true);
      // A second outage is announced again.
      relay.stall();
      expect((await h.call('/ledger/v1/items')).status).toBe(200);
      expect(warnings()).toHaveLength(2);
      relay.resume();
      expect(vendor.arrivals).toHaveLength(6);
    } finally {
      await h.close();
      await relay.close();
      await vendor.close();
    }
  });

  it('observe mode counts the refusals of the shared bucket and sends every call; the key names the namespace', async () => {
    const vendor = await startCountingVendor();
    const spec = { upstream: { url: vendor.url }, mode: 'observe', rateLimit: { requests: 1, per: '10s', burst: 1, whenExceeded: 'reject', scope: 'global' } };
    // As the operator renders it: the namespace travels with the name.
    const config = stringify({ apiVersion: 'breakwater.dev/v1alpha1', kind: 'ExternalIntegration', metadata: { name: 'watched', namespace: 'shop' }, spec });
    const a = await startHarness(config, { deliveryStore: redis.url });
    const b = await startHarness(config, { deliveryStore: redis.url });
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      expect((await a.call('/watched/v1/items')).status).toBe(200);
      expect((await b.call('/watched/v1/items')).status).toBe(200);
      expect(vendor.arrivals).toHaveLength(2);
      const observed = async (h: typeof a) => sample(await h.metrics(), 'breakwater_observed_decisions_total{integration="watched",decision="rate_limited"}');
      expect(await observed(a)).toBeUndefined();
      expect(await observed(b)).toBe(1);
      expect(await raw.exists('breakwater:ratelimit:shop/watched')).toBe(1);
    } finally {
      await raw.close();
      await a.close();
      await b.close();
      await vendor.close();
    }
  });
});
