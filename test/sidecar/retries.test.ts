import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { FAST_RETRY, integration, startHarness, type Harness } from './harness.ts';

describe('retries', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;
  let before: number;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      integration('vendor', {
        upstream: { url: vendor.url },
        retry: { maxAttempts: 3, ...FAST_RETRY },
        // Out of the way: these tests are about retries, not about the breaker.
        circuitBreaker: { consecutiveFailures: 1000 },
      }),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });
  beforeEach(() => {
    vendor.reset();
    before = vendor.requests.length;
  });
  const hits = () => vendor.requests.length - before;

  it('retries a reset and a 503 until the vendor answers', async () => {
    vendor.script('destroy', { status: 503 }, { status: 200, body: 'third time' });
    const reply = await h.call('/vendor/thing');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('third time');
    expect(reply.headers['x-breakwater-attempts']).toBe('3');
    expect(hits()).toBe(3);
  });

  it('returns the last upstream response as it was once the attempts run out', async () => {
    vendor.script({ status: 503, body: 'one' }, { status: 502, body: 'two' }, { status: 503, headers: { 'x-vendor': 'v' }, body: 'last' });
    const reply = await h.call('/vendor/thing');
    expect(reply.status).toBe(503);
    expect(reply.text).toBe('last');
    expect(reply.headers['x-vendor']).toBe('v');
    expect(reply.headers['x-breakwater-attempts']).toBe('3');
    expect(hits()).toBe(3);
  });

  it('answers upstream_unreachable when no attempt got a response', async () => {
    vendor.script('destroy', 'destroy', 'destroy');
    const reply = await h.call('/vendor/thing');
    expect(reply.status).toBe(502);
    expect(reply.json()).toMatchObject({ error: 'upstream_unreachable', integration: 'vendor' });
    expect(reply.headers['x-breakwater-attempts']).toBe('3');
  });

  it('does not retry a POST without the idempotency header', async () => {
    vendor.script({ status: 503 }, { status: 200 });
    const reply = await h.call('/vendor/charges', { method: 'POST', body: '{"amount":1}' });
    expect(reply.status).toBe(503);
    expect(reply.headers['x-breakwater-attempts']).toBe('1');
    expect(hits()).toBe(1);
  });

  it.each([
    ['empty', ''],
    ['blank', '  '],
  ])('does not retry a POST whose idempotency header is %s', async (_, key) => {
    vendor.script({ status: 503 }, { status: 200 });
    const reply = await h.call('/vendor/charges', { method: 'POST', headers: { 'idempotency-key': key }, body: '{"amount":1}' });
    expect(reply.status).toBe(503);
    expect(reply.headers['x-breakwater-attempts']).toBe('1');
    expect(hits()).toBe(1);
    // The header did reach the vendor as sent: the sidecar only declined to replay the call.
    expect(vendor.requests.at(-1)!.headers['idempotency-key']).toBe(key.trim());
  });

  it('retries a POST that carries the idempotency header, replaying its body', async () => {
    vendor.script({ status: 503 }, { status: 200, body: 'charged' });
    const reply = await h.call('/vendor/charges', {
      method: 'POST',
      headers: { 'idempotency-key': 'k-1', 'content-type': 'application/json' },
      body: '{"amount":1}',
    });
    expect(reply.headers['x-breakwater-attempts']).toBe('2');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('charged');
    expect(vendor.requests.slice(before).map((r) => r.body.toString())).toEqual(['{"amount":1}', '{"amount":1}']);
  });

  it('does not retry a 4xx', async () => {
    vendor.script({ status: 404, body: 'no such thing' }, { status: 200 });
    const reply = await h.call('/vendor/thing');
    expect(reply.status).toBe(404);
    expect(reply.headers['x-breakwater-attempts']).toBe('1');
    expect(hits()).toBe(1);
  });
});
