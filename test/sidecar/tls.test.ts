import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalIntegrationSpec } from '../../src/api/schema.ts';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { createVendorCa, type VendorCa } from '../support/vendor-ca.ts';
import { docs, eventually, FAST_RETRY, integration, startHarness, type Harness } from './harness.ts';

const CA_REF = { name: 'vendor-ca', key: 'ca.crt' };

describe('TLS to the vendor', () => {
  let ca: VendorCa;
  /** Serves a certificate for vendor.test only; reached at 127.0.0.1 with serverName vendor.test. */
  let named: ScriptedUpstream;
  /** Serves a certificate for localhost; reached as https://localhost. */
  let local: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    ca = await createVendorCa('vendor-test-ca');
    named = await startUpstream({ tls: await ca.issue(['vendor.test']) });
    local = await startUpstream({ tls: await ca.issue(['localhost']) });
    const retry = { maxAttempts: 3, ...FAST_RETRY };
    const spec = (tls: NonNullable<ExternalIntegrationSpec['upstream']['tls']>, url = named.url): ExternalIntegrationSpec => ({
      upstream: { url, tls },
      retry,
    });
    h = await startHarness(
      docs(
        integration('trusted', spec({ serverName: 'vendor.test', caSecretRef: CA_REF })),
        integration('untrusted', spec({ serverName: 'vendor.test' })),
        integration('insecure', spec({ insecureSkipVerify: true })),
        integration('by-host', spec({ caSecretRef: CA_REF }, `https://localhost:${local.port}`)),
      ),
      {},
      { [CA_REF.name]: { [CA_REF.key]: ca.certPem } },
    );
  });
  afterAll(async () => {
    await h.close();
    await named.close();
    await local.close();
  });

  it('verifies the vendor against the CA from the Secret and sends serverName as SNI', async () => {
    named.script({ status: 200, body: 'over tls' });
    const reply = await h.call('/trusted/v1/x?q=1');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('over tls');
    expect(named.requests.at(-1)).toMatchObject({ url: '/v1/x?q=1', servername: 'vendor.test' });
  });

  it('answers 502 upstream_unreachable for a certificate it cannot verify, without retrying it', async () => {
    const requests = named.requests.length;
    const connections = named.connections;
    const failed = named.failedHandshakes;
    const reply = await h.call('/untrusted/x');
    expect(reply.status).toBe(502);
    expect(reply.json()).toMatchObject({ error: 'upstream_unreachable', integration: 'untrusted' });
    expect(reply.json().message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    // retryOn includes connect-failure, but the next handshake would get the same certificate.
    expect(reply.headers['x-breakwater-attempts']).toBe('1');
    expect(named.connections).toBe(connections + 1);
    await eventually(() => expect(named.failedHandshakes).toBe(failed + 1));
    expect(named.requests.length).toBe(requests);
  });

  it('accepts any certificate with insecureSkipVerify, and warns about it at startup', async () => {
    const reply = await h.call('/insecure/x');
    expect(reply.status).toBe(200);
    const warning = h.logs.find((l) => l.integration === 'insecure' && l.level === 'warn');
    expect(warning?.msg).toMatch(/verification is off \(insecureSkipVerify\)/);
    expect(h.logs.filter((l) => l.level === 'warn' && /insecureSkipVerify/.test(String(l.msg))).map((l) => l.integration)).toEqual(['insecure']);
  });

  it('sends the upstream URL’s host as SNI and verifies the certificate against it by default', async () => {
    const reply = await h.call('/by-host/x');
    expect(reply.status).toBe(200);
    expect(local.requests.at(-1)?.servername).toBe('localhost');
  });
});

describe('CA rotation', () => {
  let first: VendorCa;
  let second: VendorCa;
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    [first, second] = await Promise.all([createVendorCa('first-ca'), createVendorCa('second-ca')]);
    vendor = await startUpstream({ tls: await first.issue(['vendor.test']) });
    h = await startHarness(
      integration('vendor', { upstream: { url: vendor.url, tls: { serverName: 'vendor.test', caSecretRef: CA_REF } }, retry: { maxAttempts: 1 } }),
      {},
      { [CA_REF.name]: { [CA_REF.key]: first.certPem } },
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('trusts the new CA once the Secret is rotated, while a call in flight finishes on the old connection', async () => {
    let release!: () => void;
    vendor.script((_req, res) => {
      release = () => res.end('finished on the old pool');
    });
    const inFlight = h.call('/vendor/slow');
    await eventually(() => expect(vendor.inFlight).toBe(1));

    // The vendor moves to a certificate from the second CA, and the Secret follows.
    vendor.setCertificate(await second.issue(['vendor.test']));
    await h.mountSecret(CA_REF.name, CA_REF.key, second.certPem);
    // A new call needs a new connection (the old one is busy): it verifies against the second CA.
    const reply = await eventually(async () => {
      const r = await h.call('/vendor/new');
      expect(r.status).toBe(200);
      return r;
    });
    expect(reply.text).toBe('ok');
    expect(h.logs.some((l) => l.integration === 'vendor' && l.msg === 'CA bundle reloaded')).toBe(true);

    release();
    const old = await inFlight;
    expect(old.status).toBe(200);
    expect(old.text).toBe('finished on the old pool');
  });

  it('fails calls with 503 credentials_unavailable while the CA file is missing, and stays ready', async () => {
    await h.writeConfig(
      integration('vendor', { upstream: { url: vendor.url, tls: { serverName: 'vendor.test', caSecretRef: { name: 'missing-ca', key: 'ca.crt' } } } }),
    );
    await eventually(async () => expect((await h.call('/vendor/x')).status).toBe(503));
    const requests = vendor.requests.length;
    const reply = await h.call('/vendor/x');
    expect(reply.status).toBe(503);
    expect(reply.json()).toMatchObject({ error: 'credentials_unavailable', integration: 'vendor' });
    expect(reply.json().message).toMatch(/CA bundle \(secret missing-ca, key ca\.crt\): secret missing-ca is not mounted into this pod/);
    expect(vendor.requests.length).toBe(requests);
    expect((await h.readyz()).status).toBe(200);
  });
});
