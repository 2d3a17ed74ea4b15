import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { integration, sample, startHarness, type Harness } from './harness.ts';

describe('bulkhead', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      integration('vendor', { upstream: { url: vendor.url }, bulkhead: { maxConcurrent: 3, maxQueued: 2 } }),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('caps the concurrency the vendor sees and rejects calls beyond the queue', async () => {
    vendor.otherwise({ status: 200, body: 'ok', delayMs: 200 });
    const replies = await Promise.all(Array.from({ length: 8 }, () => h.call('/vendor/x')));
    const ok = replies.filter((r) => r.status === 200);
    const full = replies.filter((r) => r.status === 503);
    expect(ok).toHaveLength(5);
    expect(full).toHaveLength(3);
    for (const r of full) {
      expect(r.json()).toMatchObject({ error: 'bulkhead_full', integration: 'vendor' });
      expect(r.ms).toBeLessThan(150);
    }
    expect(vendor.maxInFlight).toBe(3);
    expect(vendor.requests).toHaveLength(5);
    expect(sample(await h.metrics(), 'breakwater_bulkhead_rejected_total{integration="vendor"}')).toBe(3);
  });
});
