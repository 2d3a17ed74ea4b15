import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { integration, sample, startHarness, type Harness } from './harness.ts';

describe('retry budget', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      integration('vendor', {
        upstream: { url: vendor.url },
        retry: { maxAttempts: 3, backoff: { initial: '1ms', max: '1ms', jitter: 'none' }, budget: { percent: 10, minPerSecond: 0 } },
        circuitBreaker: { consecutiveFailures: 1000 },
      }),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('caps the extra load retries add to a vendor that keeps failing', async () => {
    vendor.otherwise({ status: 503 });
    const calls = 50;
    for (let i = 0; i < calls; i++) expect((await h.call('/vendor/x')).status).toBe(503);
    // Without the budget: 150 requests (3 attempts each). With 10%: at most 5 retries.
    const extra = vendor.requests.length - calls;
    expect(extra).toBeGreaterThan(0);
    expect(extra).toBeLessThanOrEqual(5);
    expect(sample(await h.metrics(), 'breakwater_retries_total{integration="vendor"}')).toBe(extra);
  });
});
