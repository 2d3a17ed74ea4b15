// Durable delivery through a real sidecar, a real SQLite file and a loopback vendor that fails on
// purpose: acceptance, idempotency, the vendor's view of each attempt, dead letters, expiry, the
// status endpoint, callbacks, backlog limits, an unwritable store and a reload.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExternalIntegrationSpec } from '../../src/api/schema.ts';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, eventually, integration, startHarness, type Harness, type Reply } from './harness.ts';

const ASYNC = { prefer: 'respond-async' };
/** Quick retries, so a suite rides out a failing vendor in milliseconds. */
const QUICK = {
  retry: { backoff: { initial: '10ms', max: '20ms', jitter: 'none' as const } },
  circuitBreaker: { halfOpenAfter: '50ms' },
  delivery: { maxBackoff: '40ms' },
};

type Json = Record<string, unknown>;

describe('durable delivery', () => {
  let vendor: ScriptedUpstream;
  let dir: string;
  let h: Harness | undefined;

  beforeEach(async () => {
    vendor = await startUpstream();
    dir = await mkdtemp(join(tmpdir(), 'breakwater-delivery-'));
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    await vendor.close();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (spec: Partial<ExternalIntegrationSpec> = {}, secrets = {}) => {
    h = await startHarness(
      integration('invoicing', { upstream: { url: `${vendor.url}/api` }, ...QUICK, ...spec, delivery: { ...QUICK.delivery, ...spec.delivery } }),
      { deliveryStore: `sqlite:${join(dir, 'deliveries.sqlite')}` },
      secrets,
    );
    // The store's thread has booted (a 404 comes from the store), so a short maxAge counts from there.
    expect((await h.call('/_breakwater/deliveries/warm-up')).status).toBe(404);
    return h;
  };
  const status = async (id: string): Promise<Json> => (await h!.call(`/_breakwater/deliveries/${id}`)).json();
  const ended = (id: string, timeoutMs = 5000) =>
    eventually(async () => {
      const view = await status(id);
      expect(['delivered', 'dead']).toContain(view.state);
      return view;
    }, timeoutMs);

  it('stores the call, answers 202 at once, and delivers it with its idempotency key and the credential', async () => {
    vendor.otherwise({ status: 201, headers: { 'content-type': 'application/json' }, body: '{"invoice":"F-1"}' });
    await start({ auth: { header: 'X-Api-Key', secretRef: { name: 'key', key: 'token' } } }, { key: { token: 'secret-value-123' } });
    const reply = await h!.call('/invoicing/v1/invoices?draft=1', {
      method: 'POST',
      headers: { ...ASYNC, 'content-type': 'application/json', 'x-api-key': 'from-the-app', 'breakwater-ordering-key': 'c-1' },
      body: '{"amount":100}',
    });
    expect(reply.status).toBe(202);
    expect(reply.headers['preference-applied']).toBe('respond-async');
    const id = (reply.json() as { delivery: string }).delivery;
    expect(reply.json()).toEqual({ delivery: id, integration: 'invoicing', state: 'queued' });
    expect(reply.headers.location).toBe(`/_breakwater/deliveries/${id}`);

    const view = await ended(id);
    expect(view).toMatchObject({ state: 'delivered', attempts: 1, idempotencyKey: id, orderingKey: 'c-1', request: { method: 'POST', path: '/v1/invoices?draft=1' } });
    expect(view.response).toMatchObject({ status: 201, body: '{"invoice":"F-1"}' });
    expect((view.history as Json[]).map((e) => [e.event, e.outcome])).toEqual([['queued', undefined], ['attempt', '201'], ['delivered', undefined]]);

    expect(vendor.requests).toHaveLength(1);
    const seen = vendor.requests[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/api/v1/invoices?draft=1');
    expect(seen.body.toString()).toBe('{"amount":100}');
    expect(seen.headers['idempotency-key']).toBe(id);
    expect(seen.headers['x-api-key']).toBe('secret-value-123');
    expect(seen.headers.prefer).toBeUndefined();
    expect(seen.headers['breakwater-ordering-key']).toBeUndefined();
    // The credential is written per attempt: neither the store's view nor any log line holds it.
    expect(JSON.stringify(view)).not.toContain('secret-value-123');
    expect(JSON.stringify(h!.logs)).not.toContain('secret-value-123');
    expect(JSON.stringify(h!.logs)).not.toContain('"amount"');
  });

  it('holds deliveries while circuitBreaker.forceOpen is set, claiming none, and delivers them once a reload removes it', async () => {
    await start({ circuitBreaker: { ...QUICK.circuitBreaker, forceOpen: true } });
    const reply = await h!.call('/invoicing/v1/invoices', { method: 'POST', headers: ASYNC, body: '{"amount":5}' });
    expect(reply.status).toBe(202);
    const id = (reply.json() as { delivery: string }).delivery;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const held = await status(id);
    expect(held).toMatchObject({ state: 'queued', attempts: 0 });
    expect((held.history as Json[]).map((e) => e.event)).toEqual(['queued']);
    expect(vendor.requests).toHaveLength(0);

    await h!.writeConfig(
      integration('invoicing', { upstream: { url: `${vendor.url}/api` }, ...QUICK, delivery: QUICK.delivery }),
    );
    expect(await ended(id)).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(vendor.requests).toHaveLength(1);
  });

  it('answers a call without Prefer: respond-async synchronously, as before', async () => {
    vendor.otherwise({ status: 200, body: 'sync' });
    await start();
    const reply = await h!.call('/invoicing/v1/x', { method: 'POST', body: 'a' });
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('sync');
    expect(reply.headers['preference-applied']).toBeUndefined();
  });

  it('returns the same delivery (200) for a second submission with the same Idempotency-Key, and sends it once', async () => {
    vendor.otherwise({ status: 200 });
    await start();
    const send = () => h!.call('/invoicing/v1/invoices', { method: 'POST', headers: { ...ASYNC, 'idempotency-key': 'inv-2026-0042' }, body: '{}' });
    const first = await send();
    const second = await send();
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    const id = (first.json() as { delivery: string }).delivery;
    expect((second.json() as { delivery: string }).delivery).toBe(id);
    await ended(id);
    const third = await send();
    expect(third.status).toBe(200);
    expect(third.json()).toMatchObject({ delivery: id, state: 'delivered' });
    expect(vendor.requests.map((r) => r.headers['idempotency-key'])).toEqual(['inv-2026-0042']);
  });

  // Node drops the spaces and tabs around a header value; a no-break space (Latin-1 A0) it keeps, and
  // String.prototype.trim, which decides whether a synchronous call carries a key, counts it as blank.
  it.each([
    ['empty', ''],
    ['blank', '   '],
    ['a no-break space alone', '\u00a0'],
    ['no-break spaces around a tab', '\u00a0\t\u00a0'],
  ])('refuses a respond-async call whose Idempotency-Key is %s with 400, and stores nothing', async (_, key) => {
    await start();
    const reply = await h!.call('/invoicing/v1/invoices', { method: 'POST', headers: { ...ASYNC, 'idempotency-key': key }, body: '{}' });
    expect(reply.status).toBe(400);
    expect(reply.json()).toEqual({
      error: 'bad_request',
      integration: 'invoicing',
      message: 'the idempotency-key header must be 1 to 256 characters, not all of them whitespace',
    });
    expect(await h!.call('/_breakwater/deliveries/x')).toMatchObject({ status: 404 });
    expect(vendor.requests).toHaveLength(0);
  });

  it('retries what retryOn names with the same key until the vendor takes it, recording every attempt in order', async () => {
    vendor.script({ status: 503 }, 'destroy', { status: 429, headers: { 'retry-after': '0' } }, { status: 200 });
    await start();
    const id = ((await h!.call('/invoicing/v1/x', { method: 'PUT', headers: ASYNC, body: 'x' })).json() as { delivery: string }).delivery;
    const view = await ended(id);
    expect(view).toMatchObject({ state: 'delivered', attempts: 4 });
    expect((view.history as Json[]).filter((e) => e.event === 'attempt').map((e) => [e.attempt, e.outcome])).toEqual([
      [1, '503'],
      [2, 'reset'],
      [3, '429'],
      [4, '200'],
    ]);
    expect(new Set(vendor.requests.map((r) => r.headers['idempotency-key']))).toEqual(new Set([id]));
    const metrics = await h!.metrics();
    expect(metrics).toContain('breakwater_deliveries_total{integration="invoicing",result="delivered"} 1');
    expect(metrics).toContain('breakwater_delivery_attempts_total{integration="invoicing",outcome="5xx"} 1');
    expect(metrics).toContain('breakwater_delivery_attempts_total{integration="invoicing",outcome="reset"} 1');
  });

  it("ends a delivery dead on a 4xx with the vendor's response kept", async () => {
    vendor.otherwise({ status: 422, headers: { 'content-type': 'application/json' }, body: '{"error":"bad vat number"}' });
    await start();
    const id = ((await h!.call('/invoicing/v1/x', { method: 'POST', headers: ASYNC, body: '{}' })).json() as { delivery: string }).delivery;
    const view = await ended(id);
    expect(view).toMatchObject({ state: 'dead', deadReason: 'refused', attempts: 1, lastError: 'the vendor answered 422' });
    expect(view.response).toMatchObject({ status: 422, body: '{"error":"bad vat number"}' });
    await eventually(async () => expect(await h!.metrics()).toContain('breakwater_dead_letters{integration="invoicing"} 1'));
  });

  it('ends a delivery the vendor never takes dead (expired) once maxAge passes', async () => {
    vendor.otherwise({ status: 503 });
    await start({ delivery: { maxAge: '400ms', maxBackoff: '40ms' } });
    const id = ((await h!.call('/invoicing/v1/x', { method: 'POST', headers: ASYNC, body: '{}' })).json() as { delivery: string }).delivery;
    const view = await ended(id);
    expect(view).toMatchObject({ state: 'dead', deadReason: 'expired' });
    expect((view.attempts as number) >= 2).toBe(true);
    expect((view.history as Json[]).at(-1)).toMatchObject({ event: 'dead', outcome: 'expired' });
  });

  it('refuses a call past maxBacklog with 503 backlog_full, and stores nothing for it', async () => {
    vendor.otherwise('hang');
    await start({ timeouts: { perAttempt: '5s', total: '5s' }, delivery: { maxBacklog: 2 } });
    const replies: Reply[] = [];
    for (let i = 0; i < 3; i++) replies.push(await h!.call('/invoicing/v1/x', { method: 'POST', headers: ASYNC, body: `${i}` }));
    expect(replies.map((r) => r.status)).toEqual([202, 202, 503]);
    expect(replies[2]!.json()).toEqual({
      error: 'backlog_full',
      integration: 'invoicing',
      message: 'invoicing holds 2 deliveries not yet ended (delivery.maxBacklog)',
    });
  });

  it('answers 503 store_unavailable when the store cannot be written, and still serves synchronous calls', async () => {
    await writeFile(join(dir, 'a-file'), '');
    h = await startHarness(integration('invoicing', { upstream: { url: vendor.url }, delivery: {} }), {
      deliveryStore: `sqlite:${join(dir, 'a-file', 'deliveries.sqlite')}`,
    });
    const reply = await h.call('/invoicing/v1/x', { method: 'POST', headers: ASYNC, body: '{}' });
    expect(reply.status).toBe(503);
    expect(reply.json()).toMatchObject({ error: 'store_unavailable', integration: 'invoicing' });
    expect(vendor.requests).toHaveLength(0);
    expect((await h.call('/invoicing/v1/x')).status).toBe(200);
  });

  it('answers 404 delivery_not_found for an unknown id', async () => {
    await start();
    const reply = await h!.call('/_breakwater/deliveries/no-such-id');
    expect(reply.status).toBe(404);
    expect(reply.json()).toMatchObject({ error: 'delivery_not_found' });
  });

  it('POSTs the outcome to callback.url when a delivery ends, retrying until the app answers 2xx', async () => {
    const received: Json[] = [];
    let calls = 0;
    const app: Server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        calls++;
        if (calls === 1) return void res.writeHead(500).end();
        received.push(JSON.parse(Buffer.concat(chunks).toString()) as Json);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    try {
      vendor.otherwise({ status: 200, body: 'ok' });
      await start({ delivery: { callback: { url: `http://127.0.0.1:${(app.address() as AddressInfo).port}/deliveries` } } });
      const id = ((await h!.call('/invoicing/v1/x', { method: 'POST', headers: ASYNC, body: '{}' })).json() as { delivery: string }).delivery;
      await eventually(() => expect(received).toHaveLength(1), 8000);
      expect(received[0]).toMatchObject({ delivery: id, integration: 'invoicing', state: 'delivered', response: { status: 200 } });
      const view = await status(id);
      expect(view.callback).toMatchObject({ state: 'done', attempts: 2 });
      expect((view.history as Json[]).filter((e) => e.event === 'callback').map((e) => e.outcome)).toEqual(['500', '204']);
    } finally {
      await new Promise((resolve) => app.close(resolve));
    }
  });

  it("delivers while the app's callback endpoint hangs: callbacks run beside the deliveries", async () => {
    let callbacks = 0;
    let closed = 0;
    // Takes the POST and never answers, for as long as the sidecar waits (10 s).
    const app: Server = createServer((req: IncomingMessage) => {
      callbacks++;
      req.resume();
      req.socket.once('close', () => closed++);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    try {
      vendor.otherwise({ status: 200, body: 'ok' });
      await start({ delivery: { callback: { url: `http://127.0.0.1:${(app.address() as AddressInfo).port}/deliveries` } } });
      const submit = async () => ((await h!.call('/invoicing/v1/x', { method: 'POST', headers: ASYNC, body: '{}' })).json() as { delivery: string }).delivery;
      expect(await ended(await submit())).toMatchObject({ state: 'delivered' });
      await eventually(() => expect(callbacks).toBe(1));
      expect(await ended(await submit(), 3000)).toMatchObject({ state: 'delivered' });
      // A shutdown ends the POST in flight rather than waiting for it; its lease brings it back.
      await h!.close();
      h = undefined;
      // Every POST in flight then, the second delivery's too if it was claimed already.
      await eventually(() => expect(closed).toBe(callbacks));
    } finally {
      app.closeAllConnections();
      await new Promise((resolve) => app.close(resolve));
    }
  });

  it("cuts a vendor's body that outlasts the call's deadline and keeps what came", async () => {
    // The answer comes at once; its body never ends. Read on, it would outlast the lease (the
    // deadline and 5 s) and the delivery would be claimed and sent again.
    vendor.otherwise((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    });
    await start({ timeouts: { perAttempt: '200ms', total: '400ms' } });
    const id = ((await h!.call('/invoicing/v1/x', { method: 'POST', headers: ASYNC, body: '{}' })).json() as { delivery: string }).delivery;
    expect(await ended(id, 3000)).toMatchObject({ state: 'delivered', attempts: 1, response: { status: 200, body: 'partial', truncated: true } });
    expect(vendor.requests).toHaveLength(1);
  });

  it('keeps the backlog across a reload and delivers it with the new policy', async () => {
    vendor.otherwise({ status: 503 });
    // The breaker opens for longer than the test: the reload's fresh policy is what lets the backlog go.
    await start({ circuitBreaker: { halfOpenAfter: '1h' } });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(((await h!.call('/invoicing/v1/x', { method: 'POST', headers: ASYNC, body: `${i}` })).json() as { delivery: string }).delivery);
    await h!.writeConfig(
      docs(integration('invoicing', { upstream: { url: `${vendor.url}/v2` }, ...QUICK, rateLimit: { requests: 50 }, delivery: { maxBackoff: '40ms' } })),
    );
    await eventually(async () => {
      await h!.call('/invoicing/probe');
      expect(vendor.requests.at(-1)!.url).toBe('/v2/probe');
    });
    vendor.otherwise({ status: 200 });
    for (const id of ids) expect(await ended(id)).toMatchObject({ state: 'delivered' });
    const delivered = vendor.requests.filter((r) => r.url === '/v2/v1/x');
    expect(new Set(delivered.map((r) => r.headers['idempotency-key']))).toEqual(new Set(ids));
  });

  it('delivers 3 ordering keys × 50 in submission order per key while the vendor fails at random', async () => {
    // Each attempt fails one time in three, with a 503 or a dropped connection.
    const received = new Map<string, number[]>();
    vendor.otherwise((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const roll = Math.random();
        if (roll < 0.15) return void req.socket.destroy();
        if (roll < 0.33) return void res.writeHead(503).end();
        const { key, n } = JSON.parse(Buffer.concat(chunks).toString()) as { key: string; n: number };
        received.set(key, [...(received.get(key) ?? []), n]);
        res.writeHead(200).end();
      });
    });
    await start({ circuitBreaker: { consecutiveFailures: 50, halfOpenAfter: '50ms' } });
    const keys = ['customer-a', 'customer-b', 'customer-c'];
    // One client per key, each waiting for its 202 before the next: that is the submission order.
    const statuses = await Promise.all(
      keys.map(async (key) => {
        const seen: number[] = [];
        for (let n = 0; n < 50; n++) {
          const reply = await h!.call('/invoicing/v1/x', { method: 'POST', headers: { ...ASYNC, 'breakwater-ordering-key': key }, body: JSON.stringify({ key, n }) });
          seen.push(reply.status);
        }
        return seen;
      }),
    );
    expect(statuses.flat()).toEqual(Array(150).fill(202));
    await eventually(() => expect([...received.values()].flat()).toHaveLength(150), 30_000, 100);
    for (const key of keys) expect(received.get(key)).toEqual(Array.from({ length: 50 }, (_, n) => n));
  }, 40_000);
});
