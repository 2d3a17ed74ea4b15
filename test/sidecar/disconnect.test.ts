import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { eventually, FAST_RETRY, integration, sample, startHarness, type Harness } from './harness.ts';

describe('client disconnect', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      integration('vendor', { upstream: { url: vendor.url }, timeouts: { perAttempt: '5s', total: '10s' }, retry: { maxAttempts: 3, ...FAST_RETRY } }),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
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
});
