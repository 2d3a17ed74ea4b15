import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, eventually, FAST_RETRY, integration, sample, startHarness, type Harness } from './harness.ts';

describe('client disconnect', () => {
  let vendor: ScriptedUpstream;
  let limited: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    limited = await startUpstream();
    h = await startHarness(
      docs(
        integration('vendor', { upstream: { url: vendor.url }, timeouts: { perAttempt: '5s', total: '10s' }, retry: { maxAttempts: 3, ...FAST_RETRY } }),
        integration('one-at-a-time', { upstream: { url: limited.url }, bulkhead: { maxConcurrent: 1 }, retry: { maxAttempts: 2, ...FAST_RETRY } }),
      ),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
    await limited.close();
  });

  it('aborts the vendor call when the caller goes away, and retries nothing', async () => {
    vendor.otherwise('hang');
    const req = httpRequest(h.url('/vendor/slow'));
    req.on('error', () => {});
    req.end();
    const seen = await eventually(() => {
      expect(vendor.requests).toHaveLength(1);
      return vendor.requests[0]!;
    });
    const left = performance.now();
    req.destroy();
    await seen.done;
    expect(seen.aborted).toBe(true);
    expect(performance.now() - left).toBeLessThan(500);
    await eventually(async () => {
      expect(sample(await h.metrics(), 'breakwater_requests_total{integration="vendor",method="GET",code_class="4xx",outcome="cancelled"}')).toBe(1);
    });
    expect(vendor.requests).toHaveLength(1);
  });

  it('ends a Retry-After wait when the caller goes away, freeing its bulkhead slot at once', async () => {
    limited.script({ status: 503, headers: { 'retry-after': '20' } });
    const req = httpRequest(h.url('/one-at-a-time/first'));
    req.on('error', () => {});
    req.end();
    // The vendor has answered the first attempt: the call now waits 20 s for its retry, holding the only slot.
    await eventually(async () => {
      expect(limited.requests).toHaveLength(1);
      await limited.requests[0]!.done;
    });
    req.destroy();
    await eventually(async () => {
      const metrics = await h.metrics();
      expect(sample(metrics, 'breakwater_requests_total{integration="one-at-a-time",method="GET",code_class="4xx",outcome="cancelled"}')).toBe(1);
    });
    const next = await h.call('/one-at-a-time/second');
    expect(next.status).toBe(200);
    expect(limited.requests.map((r) => r.url)).toEqual(['/first', '/second']);
  });
});
