import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSidecar } from '../support/sidecar-process.ts';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, eventually, FAST_RETRY, integration, sample, startHarness, type Harness } from './harness.ts';

const slowSpec = (url: string) =>
  integration('slow', {
    upstream: { url },
    retry: { maxAttempts: 1 },
    circuitBreaker: {
      failureRate: { threshold: 0.5, window: '10s', minimumRequests: 4 },
      slowCall: { duration: '100ms', threshold: 0.5 },
      halfOpenAfter: '30s',
    },
  });

const isolated = (url: string, forceOpen: boolean, withFallback = false, name = withFallback ? 'held-fallback' : 'held') =>
  integration(name, {
    ...(name === 'held-observe' && { mode: 'observe' as const }),
    upstream: { url },
    retry: { maxAttempts: 1 },
    circuitBreaker: { forceOpen },
    ...(withFallback && { fallback: { status: 200, body: 'cached' } }),
  });

const posting = (name: string, url: string, idempotencyKey?: 'generate') =>
  integration(name, { upstream: { url }, retry: { maxAttempts: 3, ...FAST_RETRY, ...(idempotencyKey && { idempotencyKey }) } });

describe('breaker extras', () => {
  const vendors: Record<string, ScriptedUpstream> = {};
  let h: Harness;
  const config = (forceOpen: boolean) =>
    docs(
      slowSpec(vendors.slow!.url),
      isolated(vendors.held!.url, forceOpen),
      isolated(vendors.held!.url, forceOpen, true),
      isolated(vendors.held!.url, forceOpen, true, 'held-observe'),
      posting('keyed', vendors.keyed!.url, 'generate'),
      posting('plain', vendors.plain!.url),
    );

  beforeAll(async () => {
    for (const name of ['slow', 'held', 'keyed', 'plain']) vendors[name] = await startUpstream();
    h = await startHarness(config(true));
  });
  afterAll(async () => {
    await h.close();
    for (const v of Object.values(vendors)) await v.close();
  });

  it('opens on slow successes once their share of the window reaches slowCall.threshold', async () => {
    const vendor = vendors.slow!;
    // Two fast, then slow 200s: 2 slow of 4 calls is 50%, and the fourth call opens the circuit.
    vendor.script({ status: 200 }, { status: 200 }, { status: 200, delayMs: 250 });
    vendor.otherwise({ status: 200, body: 'late', delayMs: 250 });
    for (let i = 0; i < 3; i++) expect((await h.call('/slow/x')).status).toBe(200);
    expect(sample(await h.metrics(), 'breakwater_circuit_state{integration="slow"}')).toBe(0);
    const fourth = await h.call('/slow/x');
    // The slow answer still reaches the caller: it is counted, not discarded.
    expect(fourth.status).toBe(200);
    expect(fourth.text).toBe('late');
    expect(sample(await h.metrics(), 'breakwater_circuit_state{integration="slow"}')).toBe(2);
    const open = await h.call('/slow/x');
    expect(open.json()).toMatchObject({ error: 'circuit_open', integration: 'slow' });
    // Not sent: a call to the vendor would take its 250 ms.
    expect(open.ms).toBeLessThan(250);
    expect(vendor.requests).toHaveLength(4);
  });

  it('fails fast with circuit_open (or the fallback) under forceOpen without calling the vendor, and serves again once it is unset', async () => {
    const vendor = vendors.held!;
    const reply = await h.call('/held/x');
    expect(reply.status).toBe(503);
    expect(reply.json()).toMatchObject({ error: 'circuit_open', integration: 'held' });
    expect(String(reply.json().message)).toContain('circuitBreaker.forceOpen');
    const fallback = await h.call('/held-fallback/x');
    expect(fallback.status).toBe(200);
    expect(fallback.text).toBe('cached');
    expect(fallback.headers['x-breakwater-fallback']).toBe('circuit_open');
    // Observe mode obeys a person's forceOpen too, fallback included.
    const observing = await h.call('/held-observe/x');
    expect(observing.status).toBe(200);
    expect(observing.text).toBe('cached');
    expect(observing.headers['x-breakwater-fallback']).toBe('circuit_open');
    expect(vendor.requests).toHaveLength(0);
    expect(vendor.connections).toBe(0);
    // The gauge, and so the fleet report, says open.
    expect(sample(await h.metrics(), 'breakwater_circuit_state{integration="held"}')).toBe(2);
    expect(h.logs.some((l) => l.level === 'warn' && l.integration === 'held' && l.msg === 'circuit held open by circuitBreaker.forceOpen')).toBe(true);

    await h.writeConfig(config(false));
    await eventually(async () => {
      expect((await h.call('/held/x')).status).toBe(200);
    });
    expect((await h.call('/held-fallback/x')).text).toBe('ok');
    expect(vendor.requests.length).toBeGreaterThanOrEqual(2);
    expect(sample(await h.metrics(), 'breakwater_circuit_state{integration="held"}')).toBe(0);
  });

  it('retries a POST under one generated Idempotency-Key, keeps a key the app sent, and without the option sends a POST once', async () => {
    const keyed = vendors.keyed!;
    keyed.script({ status: 503 });
    const first = await h.call('/keyed/orders', { method: 'POST', body: '{"order":1}' });
    expect(first.status).toBe(200);
    expect(first.headers['x-breakwater-attempts']).toBe('2');
    expect(keyed.requests).toHaveLength(2);
    const [a, b] = keyed.requests.map((r) => r.headers['idempotency-key']);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b).toBe(a);
    expect(keyed.requests[1]!.body.toString()).toBe('{"order":1}');

    // A new call gets a new key.
    await h.call('/keyed/orders', { method: 'POST', body: '{"order":2}' });
    expect(keyed.requests[2]!.headers['idempotency-key']).not.toBe(a);

    keyed.script({ status: 503 });
    const mine = await h.call('/keyed/orders', { method: 'POST', headers: { 'Idempotency-Key': 'order-3' }, body: '{"order":3}' });
    expect(mine.status).toBe(200);
    expect(keyed.requests.slice(3).map((r) => r.headers['idempotency-key'])).toEqual(['order-3', 'order-3']);

    // An idempotent method needs no key, and gets none.
    await h.call('/keyed/orders/1');
    expect(keyed.requests.at(-1)!.headers['idempotency-key']).toBeUndefined();

    const plain = vendors.plain!;
    plain.script({ status: 503 });
    const once = await h.call('/plain/orders', { method: 'POST', body: '{"order":4}' });
    expect(once.status).toBe(503);
    expect(plain.requests).toHaveLength(1);
    expect(plain.requests[0]!.headers['idempotency-key']).toBeUndefined();
  });
});

describe('forceOpen in a sidecar process', () => {
  it('fails fast without calling the vendor, and serves again after a reload without it', async () => {
    const vendor = await startUpstream();
    const dir = await mkdtemp(join(tmpdir(), 'breakwater-force-open-'));
    const config = join(dir, 'integrations.yaml');
    const write = async (forceOpen: boolean) => {
      await writeFile(`${config}.tmp`, isolated(vendor.url, forceOpen));
      await rename(`${config}.tmp`, config);
    };
    await write(true);
    const sidecar = await spawnSidecar(['--config', config, '--port', '0', '--admin-port', '0', '--secrets-dir', dir]);
    try {
      const call = async () => {
        const res = await request(`http://127.0.0.1:${sidecar.port}/held/x`);
        return { status: res.statusCode, body: await res.body.text() };
      };
      const held = await call();
      expect(held.status).toBe(503);
      expect(JSON.parse(held.body)).toMatchObject({ error: 'circuit_open', integration: 'held' });
      expect(vendor.requests).toHaveLength(0);

      await write(false);
      await eventually(async () => expect((await call()).status).toBe(200), 10_000);
      expect(vendor.requests.length).toBeGreaterThanOrEqual(1);
    } finally {
      sidecar.child.kill('SIGTERM');
      await sidecar.exited;
      await vendor.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
