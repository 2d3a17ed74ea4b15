import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, eventually, integration, rawRequest, sample, startHarness, type Harness } from './harness.ts';

describe('routing', () => {
  let vendor: ScriptedUpstream;
  let other: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    other = await startUpstream();
    h = await startHarness(
      docs(
        integration('payments', { upstream: { url: `${vendor.url}/api/v2` } }),
        integration('geo', { upstream: { url: other.url } }),
      ),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
    await other.close();
  });

  it('strips the first segment, appends the rest to the upstream base path and keeps the query', async () => {
    const reply = await h.call('/payments/v1/charges?limit=3&cursor=a%2Fb');
    expect(reply.status).toBe(200);
    expect(vendor.requests.at(-1)!.url).toBe('/api/v2/v1/charges?limit=3&cursor=a%2Fb');
    // The access log leaves the query out: vendors' APIs put keys and personal data there.
    await eventually(() => expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'call', integration: 'payments', path: '/v1/charges' })));
    await h.call('/geo?q=x');
    expect(other.requests.at(-1)!.url).toBe('/?q=x');
    await h.call('/payments');
    expect(vendor.requests.at(-1)!.url).toBe('/api/v2');
  });

  it('drops hop-by-hop headers, adds nothing revealing, and keeps or creates x-request-id', async () => {
    await rawRequest(
      h.sidecar.port,
      'GET /geo/x HTTP/1.1\r\nHost: app\r\nConnection: close, x-private\r\nX-Private: p\r\nX-App: a\r\n' +
        'X-Request-Id: req-1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\r\n',
    );
    const kept = other.requests.at(-1)!.headers;
    expect(kept['x-app']).toBe('a');
    expect(kept['x-private']).toBeUndefined();
    expect(kept['keep-alive']).toBeUndefined();
    expect(kept.te).toBeUndefined();
    expect(kept['x-request-id']).toBe('req-1');
    expect(kept.host).toBe(`127.0.0.1:${other.port}`);
    for (const name of Object.keys(kept)) expect(name).not.toMatch(/^(x-forwarded|forwarded$|via$)/);

    await h.call('/geo/y');
    expect(other.requests.at(-1)!.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 404 unknown_integration for a name it does not know, counts it and logs the name once', async () => {
    const reply = await h.call('/stripe/v1/charges');
    expect(reply.status).toBe(404);
    expect(reply.json()).toMatchObject({ error: 'unknown_integration', integration: 'stripe' });
    for (const path of ['/stripe/v1/refunds', '/strpie/x']) expect((await h.call(path)).status).toBe(404);
    expect(sample(await h.metrics(), 'breakwater_unknown_integration_total')).toBe(3);
    const warned = h.logs.filter((l) => l.level === 'warn' && String(l.msg).includes('unknown_integration'));
    expect(warned.map((l) => l.integration)).toEqual(['stripe', 'strpie']);
    expect(warned[0]!.msg).toMatch(/known: payments, geo/);
  });

  it('answers 400 bad_request for paths that could escape the base path or name nothing', async () => {
    for (const path of ['/payments/../admin', '/payments/%2e%2E/admin', '/payments/./x', '/', 'http://evil.example/x']) {
      const raw = await rawRequest(h.sidecar.port, `GET ${path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`);
      expect(raw, path).toMatch(/^HTTP\/1.1 400 /);
      expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'bad_request' });
    }
    expect(vendor.requests.some((r) => r.url.includes('admin'))).toBe(false);
  });

  it.each([
    ['an authority', 'api.stripe.com:443'],
    ['an integration path', '/payments/x'],
  ])('answers a CONNECT to %s with 400 bad_request and a reason, without calling a vendor', async (_, target) => {
    const before = vendor.requests.length;
    const raw = await rawRequest(h.sidecar.port, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    expect(raw).toMatch(/^HTTP\/1.1 400 /);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'bad_request' });
    expect(body.message).toMatch(/CONNECT is not proxied/);
    expect(vendor.requests.length).toBe(before);
  });

  it('answers 400 bad_request to a malformed HTTP request', async () => {
    const raw = await rawRequest(h.sidecar.port, 'GET /payments/x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1.1 400 /);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'bad_request' });
  });
});
