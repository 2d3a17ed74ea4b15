// Draining with both kinds of work in flight: a proxied call and a durable delivery, each waiting for a
// vendor that never answers. The drain timeout bounds the whole drain, not each kind of work in turn.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { eventually, integration, startHarness, type Harness } from './harness.ts';

describe('drain', () => {
  let vendor: ScriptedUpstream;
  let dir: string;
  let h: Harness | undefined;

  beforeEach(async () => {
    vendor = await startUpstream();
    dir = await mkdtemp(join(tmpdir(), 'breakwater-drain-'));
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    await vendor.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('waits for the calls and the deliveries in flight together at most the drain timeout, then cuts both', async () => {
    vendor.otherwise('hang');
    h = await startHarness(
      integration('invoicing', { upstream: { url: vendor.url }, timeouts: { perAttempt: '20s', total: '30s' }, retry: { maxAttempts: 1 }, delivery: {} }),
      { deliveryStore: `sqlite:${join(dir, 'deliveries.sqlite')}` },
    );
    const call = h.call('/invoicing/v1/quote').then(
      (reply) => reply.status,
      () => 'cut',
    );
    const accepted = await h.call('/invoicing/v1/invoices', { method: 'POST', headers: { prefer: 'respond-async', 'idempotency-key': 'inv-1' }, body: '{}' });
    expect(accepted.status).toBe(202);
    await eventually(() => expect(vendor.inFlight).toBe(2));

    const started = performance.now();
    await h.sidecar.drain(1000);
    const tookMs = performance.now() - started;
    // One deadline for both: not the timeout for the call, then the timeout again for the delivery.
    expect(tookMs).toBeGreaterThanOrEqual(950);
    expect(tookMs).toBeLessThan(1800);
    expect(await call).toBe('cut');
  });
});
