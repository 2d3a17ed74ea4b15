import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, eventually, FAST_RETRY, integration, sample, startHarness, type Harness } from './harness.ts';

describe('circuit breaker', () => {
  const vendors: Record<string, ScriptedUpstream> = {};
  let h: Harness;

  beforeAll(async () => {
    for (const name of ['consecutive', 'idle', 'rate', 'midretry', 'client-errors']) vendors[name] = await startUpstream();
    h = await startHarness(
      docs(
        integration('consecutive', {
          upstream: { url: vendors.consecutive!.url },
          retry: { maxAttempts: 1 },
          circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '300ms' },
        }),
        integration('idle', {
          upstream: { url: vendors.idle!.url },
          retry: { maxAttempts: 1 },
          circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '400ms' },
        }),
        integration('rate', {
          upstream: { url: vendors.rate!.url },
          retry: { maxAttempts: 1 },
          circuitBreaker: { failureRate: { threshold: 0.5, window: '10s', minimumRequests: 10 }, halfOpenAfter: '30s' },
        }),
        integration('midretry', {
          upstream: { url: vendors.midretry!.url },
          retry: { maxAttempts: 5, ...FAST_RETRY },
          circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '30s' },
        }),
        integration('client-errors', {
          upstream: { url: vendors['client-errors']!.url },
          retry: { maxAttempts: 1 },
          circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '30s' },
        }),
      ),
    );
  });
  afterAll(async () => {
    await h.close();
    for (const v of Object.values(vendors)) await v.close();
  });

  it('opens after N consecutive failures, fails fast without touching the vendor, half-opens and closes', async () => {
    const vendor = vendors.consecutive!;
    vendor.otherwise({ status: 503, body: 'down' });
    for (let i = 0; i < 3; i++) expect((await h.call('/consecutive/x')).status).toBe(503);
    expect(vendor.requests).toHaveLength(3);
    const connections = vendor.connections;

    const open = await h.call('/consecutive/x');
    expect(open.status).toBe(503);
    expect(open.json()).toMatchObject({ error: 'circuit_open', integration: 'consecutive' });
    expect(Number(open.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(open.headers['x-breakwater-attempts']).toBeUndefined();
    expect(vendor.requests).toHaveLength(3);
    expect(vendor.connections).toBe(connections);
    expect(sample(await h.metrics(), 'breakwater_circuit_state{integration="consecutive"}')).toBe(2);

    // After halfOpenAfter one probe goes through; its success closes the circuit.
    vendor.otherwise({ status: 200, body: 'back' });
    const probe = await eventually(async () => {
      const reply = await h.call('/consecutive/x');
      expect(reply.status).toBe(200);
      return reply;
    });
    expect(probe.text).toBe('back');
    expect(vendor.requests).toHaveLength(4);
    const metrics = await h.metrics();
    expect(sample(metrics, 'breakwater_circuit_state{integration="consecutive"}')).toBe(0);
    for (const to of ['open', 'half-open', 'closed']) {
      expect(sample(metrics, `breakwater_circuit_transitions_total{integration="consecutive",to="${to}"}`), to).toBe(1);
    }
    expect(h.logs.some((l) => l.level === 'warn' && l.integration === 'consecutive' && l.circuit === 'open')).toBe(true);
  });

  it('reports an idle open breaker as half-open once halfOpenAfter has passed, and open again after a failed probe', async () => {
    const vendor = vendors.idle!;
    const state = async () => sample(await h.metrics(), 'breakwater_circuit_state{integration="idle"}');
    vendor.otherwise({ status: 503 });
    for (let i = 0; i < 2; i++) await h.call('/idle/x');
    const openedAt = performance.now();
    expect(await state()).toBe(2);

    // No call arrives, yet the next one would be the probe: the gauge must not read open forever.
    await eventually(async () => expect(await state()).toBe(1), 3000);
    expect(performance.now() - openedAt).toBeGreaterThanOrEqual(390);
    expect(vendor.requests).toHaveLength(2);

    // The probe fails: open again, for another halfOpenAfter.
    expect((await h.call('/idle/x')).status).toBe(503);
    expect(vendor.requests).toHaveLength(3);
    expect(await state()).toBe(2);
    expect(sample(await h.metrics(), 'breakwater_circuit_transitions_total{integration="idle",to="open"}')).toBe(2);
    await eventually(async () => expect(await state()).toBe(1), 3000);

    vendor.otherwise({ status: 200 });
    expect((await h.call('/idle/x')).status).toBe(200);
    expect(await state()).toBe(0);
  });

  it('opens on the failure rate once the window holds the minimum number of calls', async () => {
    const vendor = vendors.rate!;
    vendor.script(...Array.from({ length: 5 }, () => ({ status: 500 })), ...Array.from({ length: 4 }, () => ({ status: 200 })));
    vendor.otherwise({ status: 500 });
    // Five failures in five calls is 100%, but below minimumRequests: the circuit stays closed.
    for (let i = 0; i < 9; i++) await h.call('/rate/x');
    expect(vendor.requests).toHaveLength(9);
    expect((await h.call('/rate/x')).status).toBe(500); // 6 of 10 failed: opens
    const open = await h.call('/rate/x');
    expect(open.json()).toMatchObject({ error: 'circuit_open' });
    expect(vendor.requests).toHaveLength(10);
  });

  it('stops retrying when the breaker opens during the retry loop', async () => {
    const vendor = vendors.midretry!;
    vendor.otherwise({ status: 503 });
    const reply = await h.call('/midretry/x');
    expect(reply.status).toBe(503);
    expect(reply.json()).toMatchObject({ error: 'circuit_open' });
    expect(reply.headers['x-breakwater-attempts']).toBe('2');
    expect(vendor.requests).toHaveLength(2);
  });

  it('never counts a 4xx as a failure', async () => {
    const vendor = vendors['client-errors']!;
    vendor.otherwise({ status: 404 });
    for (let i = 0; i < 5; i++) expect((await h.call('/client-errors/x')).status).toBe(404);
    expect(vendor.requests).toHaveLength(5);
    expect(sample(await h.metrics(), 'breakwater_circuit_state{integration="client-errors"}')).toBe(0);
  });
});
