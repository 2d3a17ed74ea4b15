import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { eventually, integration, startHarness, type Harness } from './harness.ts';

const FIRST = 'sk_live_first_0123456789';
const SECOND = 'sk_live_second_9876543210';

describe('credentials', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    // The Secret is not mounted yet when the sidecar starts.
    h = await startHarness(
      integration('stripe', {
        upstream: { url: vendor.url },
        auth: { header: 'Authorization', prefix: 'Bearer ', secretRef: { name: 'stripe-key', key: 'token' } },
      }),
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('while the Secret is not mounted, fails its calls loudly, says a restart mounts it, and stays ready for the rest', async () => {
    // Readiness is the pod's: one vendor's credential must not take the pod out of its Service.
    expect((await h.readyz()).status).toBe(200);

    const reply = await h.call('/stripe/v1/charges', { method: 'POST', headers: { 'x-request-id': 'req-no-secret' }, body: '{"amount":100}' });
    expect(reply.status).toBe(503);
    // Its call line carries the caller's request id, as every call's does.
    await eventually(() => expect(h.logs.find((l) => l.msg === 'call' && l.requestId === 'req-no-secret')).toMatchObject({ outcome: 'credentials_unavailable' }));
    expect(reply.json()).toEqual({
      error: 'credentials_unavailable',
      integration: 'stripe',
      message:
        'cannot read the auth credential (secret stripe-key, key token): secret stripe-key is not mounted into this pod; ' +
        'restart the pod to mount a Secret referenced after it started; the vendor is not called',
    });
    expect(reply.headers['x-breakwater-attempts']).toBeUndefined();
    expect(vendor.requests).toEqual([]);

    // Mounted, but without the key the integration names: the keys it has are listed.
    await h.mountSecret('stripe-key', 'api-key', `${FIRST}\n`);
    await eventually(async () => {
      const wrongKey = await h.call('/stripe/v1/charges');
      expect(wrongKey.json().message).toBe(
        'cannot read the auth credential (secret stripe-key, key token): secret stripe-key has no key "token" (keys: api-key); the vendor is not called',
      );
    });
    expect(vendor.requests).toEqual([]);

    await h.mountSecret('stripe-key', 'token', `${FIRST}\n`);
    await eventually(async () => expect((await h.call('/stripe/v1/charges')).status).toBe(200));
    expect(vendor.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${FIRST}`]);
  });

  it('injects the credential from the mounted Secret, replaces the caller’s, re-reads it on rotation, and never logs it', async () => {
    await h.mountSecret('stripe-key', 'token', `${FIRST}\n`);
    await eventually(async () => {
      await h.call('/stripe/v1/charges', { headers: { authorization: 'Bearer from-the-app' } });
      expect(vendor.requests.at(-1)!.headers.authorization).toBe(`Bearer ${FIRST}`);
    });

    await h.mountSecret('stripe-key', 'token', `${SECOND}\n`);
    await eventually(async () => {
      await h.call('/stripe/v1/charges');
      expect(vendor.requests.at(-1)!.headers.authorization).toBe(`Bearer ${SECOND}`);
    });

    const logged = JSON.stringify(h.logs);
    expect(h.logs.some((l) => l.msg === 'call')).toBe(true);
    expect(logged).not.toContain(FIRST);
    expect(logged).not.toContain(SECOND);
    expect(logged).not.toContain('from-the-app');
  });
});

describe('a sidecar injected for some of the namespace\'s integrations', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    // The namespace's file holds both; only the geocoder was selected, so only its Secret is mounted.
    h = await startHarness(
      [
        integration('geo', { upstream: { url: vendor.url } }),
        integration('stripe', { upstream: { url: vendor.url }, auth: { secretRef: { name: 'stripe-key', key: 'token' } } }),
      ].join('---\n'),
      { integrations: ['geo'] },
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('serves only those, and is ready without the Secrets of the others', async () => {
    expect((await h.readyz()).status).toBe(200);
    expect((await h.call('/geo/v1/lookup')).status).toBe(200);
    const other = await h.call('/stripe/v1/charges');
    expect(other.status).toBe(404);
    expect(other.json()).toMatchObject({ error: 'unknown_integration', integration: 'stripe' });
  });
});
