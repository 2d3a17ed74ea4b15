import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { FAST_RETRY, integration, startHarness, type Harness } from './harness.ts';

describe('Retry-After', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      integration('vendor', {
        upstream: { url: vendor.url },
        retry: { maxAttempts: 2, ...FAST_RETRY, maxRetryAfter: '3s' },
      }),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });
  beforeEach(() => vendor.reset());

  it('waits as long as delta-seconds asks before the next attempt', async () => {
    vendor.script({ status: 429, headers: { 'retry-after': '1' } }, { status: 200, body: 'ok' });
    const reply = await h.call('/vendor/x');
    expect(reply.status).toBe(200);
    expect(reply.headers['x-breakwater-attempts']).toBe('2');
    expect(reply.ms).toBeGreaterThanOrEqual(950);
    expect(reply.ms).toBeLessThan(2000);
  });

  it('waits until an HTTP-date', async () => {
    // HTTP-dates have whole seconds: the first whole second at least 500 ms away, so the wait is
    // between 500 ms and 1.5 s, and known.
    const atMs = Math.ceil((Date.now() + 500) / 1000) * 1000;
    vendor.script({ status: 503, headers: { 'retry-after': new Date(atMs).toUTCString() } }, { status: 200, body: 'ok' });
    const sent = Date.now();
    const reply = await h.call('/vendor/x');
    expect(reply.status).toBe(200);
    expect(reply.headers['x-breakwater-attempts']).toBe('2');
    expect(sent + reply.ms).toBeGreaterThanOrEqual(atMs - 20);
    expect(reply.ms).toBeLessThan(atMs - sent + 1000);
  });

  it('ends the retries at once when Retry-After exceeds maxRetryAfter, returning that response', async () => {
    vendor.script({ status: 503, headers: { 'retry-after': '60' }, body: 'come back later' }, { status: 200 });
    const reply = await h.call('/vendor/x');
    expect(reply.status).toBe(503);
    expect(reply.text).toBe('come back later');
    expect(reply.headers['retry-after']).toBe('60');
    expect(reply.headers['x-breakwater-attempts']).toBe('1');
    expect(reply.ms).toBeLessThan(500);
  });
});
