import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, integration, sample, startHarness, type Harness } from './harness.ts';

describe('rate limit', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      docs(
        integration('reject', {
          upstream: { url: `${vendor.url}/reject` },
          rateLimit: { requests: 2, per: '1s', burst: 2, whenExceeded: 'reject' },
        }),
        integration('queue', {
          upstream: { url: `${vendor.url}/queue` },
          rateLimit: { requests: 10, per: '1s', burst: 1, whenExceeded: 'queue', maxQueueWait: '500ms' },
        }),
      ),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('reject: answers 429 rate_limited with Retry-After once the burst is spent', async () => {
    const replies = await Promise.all([1, 2, 3].map(() => h.call('/reject/x')));
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429]);
    const limited = replies.find((r) => r.status === 429)!;
    expect(limited.json()).toMatchObject({ error: 'rate_limited', integration: 'reject' });
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.headers['x-breakwater-attempts']).toBeUndefined();
    expect(vendor.requests.filter((r) => r.url.startsWith('/reject'))).toHaveLength(2);
    expect(sample(await h.metrics(), 'breakwater_rate_limited_total{integration="reject"}')).toBe(1);
  });

  it('queue: the vendor sees at most the configured rate, and calls beyond maxQueueWait are rejected at once', async () => {
    const arrivals: number[] = [];
    vendor.otherwise((_req, res, seen) => {
      if (seen.url.startsWith('/queue/x')) arrivals.push(performance.now());
      res.end('ok');
    });
    // The pool's connection is opened first: otherwise the first call alone pays the TCP connect, which
    // under load shortens the spacing measured at the vendor. Then the bucket refills its one token.
    expect((await h.call('/queue/warm-up')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const started = performance.now();
    // 10/s with a burst of 1 and 500 ms of queueing: 1 at once + 5 queued fit; the rest are refused.
    const replies = await Promise.all(Array.from({ length: 10 }, () => h.call('/queue/x')));
    const ok = replies.filter((r) => r.status === 200);
    const limited = replies.filter((r) => r.status === 429);
    expect(ok.length).toBeGreaterThanOrEqual(5);
    expect(ok.length).toBeLessThanOrEqual(7);
    expect(limited.length).toBe(10 - ok.length);
    // Refused calls are refused at once, not after waiting.
    for (const r of limited) expect(r.ms).toBeLessThan(250);
    for (const r of ok) expect(r.ms).toBeLessThan(800);
    // Spacing at the vendor: n calls need at least (n - 1) × 100 ms.
    arrivals.sort((a, b) => a - b);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual((arrivals.length - 1) * 100 - 30);
    expect(arrivals[0]! - started).toBeLessThan(250);
  });

  it('scope global without a Redis store: behaves as fleet (the local bucket), and says why at load', async () => {
    const solo = await startHarness(
      integration('shared', {
        upstream: { url: `${vendor.url}/shared` },
        rateLimit: { requests: 1, per: '10s', burst: 1, whenExceeded: 'reject', scope: 'global' },
      }),
    );
    try {
      const warning = solo.logs.find((l) => l.integration === 'shared' && l.level === 'warn');
      expect(warning?.msg).toBe(
        'rateLimit.scope global needs the Redis of a redis:// delivery store, and this sidecar has none: the quota is split across the pods as with scope fleet',
      );
      expect((await solo.call('/shared/x')).status).toBe(200);
      const limited = await solo.call('/shared/x');
      expect(limited.status).toBe(429);
      expect(limited.headers['retry-after']).toBe('10');
      expect(sample(await solo.metrics(), 'breakwater_rate_limit_fallback_total{integration="shared"}')).toBeUndefined();
    } finally {
      await solo.close();
    }
  });
});
