import { X509Certificate } from 'node:crypto';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  planCertificates,
  serviceDnsNames,
  splitPemBundle,
  type CertificateRequirements,
  type WebhookCertificates,
} from './certs.ts';

const HOUR = 60 * 60 * 1000;
const T0 = new Date('2030-01-01T00:00:00Z');

function want(overrides: Partial<CertificateRequirements> = {}): CertificateRequirements {
  return {
    dnsNames: serviceDnsNames('breakwater-webhook', 'breakwater-system'),
    ipAddresses: ['127.0.0.1'],
    now: T0,
    validityMs: 3 * HOUR,
    caValidityMs: 30 * HOUR,
    ...overrides,
  };
}

async function fresh(overrides: Partial<CertificateRequirements> = {}): Promise<WebhookCertificates> {
  const plan = await planCertificates(undefined, want(overrides));
  if (plan.action !== 'write') throw new Error('expected certificates');
  return plan.certificates;
}

function at(hours: number): Date {
  return new Date(T0.getTime() + hours * HOUR);
}

describe('planCertificates', () => {
  it('bootstraps a CA and a serving certificate for the Service names and 127.0.0.1', async () => {
    const plan = await planCertificates(undefined, want());
    expect(plan).toMatchObject({ action: 'write', why: 'no certificates yet' });
    if (plan.action !== 'write') return;
    const { caBundle, cert } = plan.certificates;
    const [caPem, ...more] = splitPemBundle(caBundle);
    expect(more).toEqual([]);
    const ca = new X509Certificate(caPem!);
    const leaf = new X509Certificate(cert);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName?.split(', ')).toEqual([
      'DNS:breakwater-webhook',
      'DNS:breakwater-webhook.breakwater-system',
      'DNS:breakwater-webhook.breakwater-system.svc',
      'DNS:breakwater-webhook.breakwater-system.svc.cluster.local',
      'IP Address:127.0.0.1',
    ]);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(Date.parse(leaf.validTo)).toBe(T0.getTime() + 3 * HOUR);
    expect(Date.parse(leaf.validFrom)).toBeLessThan(T0.getTime());
  });

  it('keeps certificates that are fresh and match', async () => {
    const current = await fresh();
    expect(await planCertificates(current, want({ now: at(1) }))).toEqual({ action: 'keep' });
  });

  it('renews the serving certificate once a third of its validity is left, with the same CA', async () => {
    const current = await fresh();
    const plan = await planCertificates(current, want({ now: at(2.01) }));
    expect(plan).toMatchObject({ action: 'write', why: 'serving certificate due for renewal' });
    if (plan.action !== 'write') return;
    expect(plan.certificates.caBundle).toBe(current.caBundle);
    expect(plan.certificates.cert).not.toBe(current.cert);
    expect(new X509Certificate(plan.certificates.cert).validTo).not.toBe(new X509Certificate(current.cert).validTo);
  });

  it('reissues when the names change', async () => {
    const current = await fresh();
    const plan = await planCertificates(current, want({ ipAddresses: [] }));
    expect(plan).toMatchObject({ action: 'write', why: 'serving certificate names changed' });
  });

  it('rotates the CA before it expires and keeps the old CA in the bundle until it does', async () => {
    const current = await fresh();
    const plan = await planCertificates(current, want({ now: at(20.5) }));
    expect(plan).toMatchObject({ action: 'write', why: 'CA due for renewal' });
    if (plan.action !== 'write') return;
    const [newCa, oldCa] = splitPemBundle(plan.certificates.caBundle);
    expect(oldCa).toBe(splitPemBundle(current.caBundle)[0]);
    expect(newCa).not.toBe(oldCa);
    expect(new X509Certificate(plan.certificates.cert).checkIssued(new X509Certificate(newCa!))).toBe(true);

    // Past the old CA's expiry it drops out of the bundle at the next leaf renewal.
    const later = await planCertificates(plan.certificates, want({ now: at(30.5) }));
    expect(later).toMatchObject({ action: 'write', why: 'serving certificate due for renewal' });
    if (later.action !== 'write') return;
    expect(splitPemBundle(later.certificates.caBundle)).toEqual([newCa]);
  });

  it('starts over when what is stored cannot be used', async () => {
    const current = await fresh();
    const other = await fresh();
    expect(await planCertificates({ ...current, caKey: other.caKey }, want())).toMatchObject({
      action: 'write',
      why: 'CA key does not match the CA',
    });
    expect(await planCertificates({ ...current, cert: 'garbage' }, want())).toMatchObject({ action: 'write' });
    expect(await planCertificates({ ...current, cert: other.cert, key: other.key }, want())).toMatchObject({
      action: 'write',
      why: 'serving certificate not signed by the current CA',
    });
  });
});

describe('a TLS client that trusts the bundle', () => {
  it('completes a handshake with the serving certificate on 127.0.0.1', async () => {
    const now = new Date();
    const certs = await fresh({ now });
    const server = createServer({ cert: certs.cert, key: certs.key }, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        request({ host: '127.0.0.1', port, ca: certs.caBundle }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        })
          .on('error', reject)
          .end();
      });
      expect(body).toBe('ok');
    } finally {
      server.close();
    }
  });
});
