import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, FAST_RETRY, integration, startHarness, type Harness } from './harness.ts';

describe('timeouts', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      docs(
        integration('per-attempt', {
          upstream: { url: vendor.url },
          timeouts: { perAttempt: '200ms', total: '5s' },
          retry: { maxAttempts: 3, ...FAST_RETRY },
        }),
        integration('total', {
          upstream: { url: vendor.url },
          timeouts: { perAttempt: '300ms', total: '500ms' },
          retry: { maxAttempts: 5, ...FAST_RETRY },
        }),
      ),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('abandons an attempt that has no response headers within perAttempt and tries again', async () => {
    vendor.reset();
    vendor.script({ status: 200, body: 'too late', delayMs: 3000 }, { status: 200, body: 'in time' });
    const reply = await h.call('/per-attempt/x');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('in time');
    expect(reply.headers['x-breakwater-attempts']).toBe('2');
    expect(reply.ms).toBeGreaterThanOrEqual(190);
    expect(reply.ms).toBeLessThan(1500);
  });

  it('answers 504 deadline_exceeded when timeouts.total passes, within a tolerance', async () => {
    vendor.reset();
    vendor.otherwise('hang');
    const reply = await h.call('/total/x');
    expect(reply.status).toBe(504);
    expect(reply.json()).toMatchObject({ error: 'deadline_exceeded', integration: 'total' });
    expect(reply.headers['x-breakwater-attempts']).toBe('2');
    expect(reply.ms).toBeGreaterThanOrEqual(490);
    expect(reply.ms).toBeLessThan(900);
  });
});
