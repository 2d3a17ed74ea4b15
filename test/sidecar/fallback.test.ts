import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, FAST_RETRY, integration, sample, startHarness, type Harness } from './harness.ts';

const fallback = { status: 200, headers: { 'content-type': 'application/json', 'x-degraded': 'yes' }, body: '{"rates":"cached"}' };

describe('fallback', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      docs(
        integration('open', {
          upstream: { url: `${vendor.url}/open` },
          retry: { maxAttempts: 1 },
          circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '30s' },
          fallback,
        }),
        integration('limited', {
          upstream: { url: `${vendor.url}/limited` },
          rateLimit: { requests: 1, per: '10s', whenExceeded: 'reject' },
          fallback,
        }),
        integration('slow', {
          upstream: { url: `${vendor.url}/slow` },
          // Equal, so the call's deadline (started first) always fires before the attempt's timeout.
          timeouts: { perAttempt: '300ms', total: '300ms' },
          fallback,
        }),
        integration('unreachable', {
          upstream: { url: 'http://127.0.0.1:1' },
          retry: { maxAttempts: 2, ...FAST_RETRY },
          fallback,
        }),
      ),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('is served instead of circuit_open, while the vendor is not called', async () => {
    vendor.otherwise({ status: 500, body: 'vendor error' });
    // The vendor's own answers pass through untouched, even failures, and unmarked.
    for (let i = 0; i < 2; i++) {
      const answer = await h.call('/open/x');
      expect(answer.text).toBe('vendor error');
      expect(answer.headers['x-breakwater-fallback']).toBeUndefined();
    }
    const reply = await h.call('/open/x');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('{"rates":"cached"}');
    expect(reply.headers['x-degraded']).toBe('yes');
    expect(reply.headers['content-length']).toBe(String(Buffer.byteLength(fallback.body)));
    expect(reply.headers['x-breakwater-fallback']).toBe('circuit_open');
    expect(vendor.requests).toHaveLength(2);
    expect(sample(await h.metrics(), 'breakwater_fallbacks_total{integration="open"}')).toBe(1);
  });

  it('is served instead of upstream_unreachable', async () => {
    const reply = await h.call('/unreachable/x');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('{"rates":"cached"}');
    expect(reply.headers['x-breakwater-attempts']).toBe('2');
    expect(reply.headers['x-breakwater-fallback']).toBe('upstream_unreachable');
  });

  it('is served instead of deadline_exceeded, marked and with the attempts sent', async () => {
    vendor.otherwise('hang');
    const reply = await h.call('/slow/x');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('{"rates":"cached"}');
    expect(reply.headers['x-breakwater-fallback']).toBe('deadline_exceeded');
    expect(reply.headers['x-breakwater-attempts']).toBe('1');
  });

  it('does not replace rate_limited: the caller must back off', async () => {
    vendor.otherwise({ status: 200, body: 'ok' });
    expect((await h.call('/limited/x')).status).toBe(200);
    const reply = await h.call('/limited/x');
    expect(reply.status).toBe(429);
    expect(reply.json()).toMatchObject({ error: 'rate_limited' });
    expect(reply.headers['x-breakwater-fallback']).toBeUndefined();
  });
});
