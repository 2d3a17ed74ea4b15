import { request, type RequestOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATION_INJECT } from '../api/names.ts';
import { createLogger } from '../runtime/logger.ts';
import type { AdmissionReview } from './admission.ts';
import type { WebhookCertificates } from './certs.ts';
import { MAX_REVIEW_BYTES, startWebhookServer, type WebhookServer } from './webhook.ts';
import { TEST_INJECT_SETTINGS } from '../../test/fixtures/inject-settings.ts';
import { localhostCertificates } from '../../test/support/injection.ts';

const SETTINGS = TEST_INJECT_SETTINGS;

interface Reply {
  status: number;
  body: string;
  serial: string;
}

function post(port: number, path: string, body: string, ca: string, extra: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json' }, ...extra },
      (res) => {
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, serial }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function review(annotations: Record<string, string>): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'abc',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      namespace: 'shop',
      operation: 'CREATE',
      object: { metadata: { name: 'p', annotations }, spec: { containers: [{ name: 'app', image: 'a' }] } },
    },
  });
}

let server: WebhookServer;
let certs: WebhookCertificates;
const registry = new Registry();

beforeAll(async () => {
  certs = await localhostCertificates();
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    certificate: { cert: certs.cert, key: certs.key },
    lookup: () => ({ namespace: { metadata: { name: 'shop' } }, integrations: [] }),
    settings: SETTINGS,
    logger: createLogger({ level: 'silent', name: 'webhook-test' }),
    registry,
  });
});

afterAll(() => server.close());

describe('webhook server', () => {
  it('answers an AdmissionReview for an annotated pod with a patch', async () => {
    const reply = await post(server.port, '/mutate-pods', review({ [ANNOTATION_INJECT]: 'true' }), certs.caBundle);
    expect(reply.status).toBe(200);
    const { apiVersion, kind, response } = JSON.parse(reply.body) as AdmissionReview;
    expect({ apiVersion, kind }).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(response).toMatchObject({ uid: 'abc', allowed: true, patchType: 'JSONPatch' });
  });

  it('answers 400 with a reason for a body that is not an AdmissionReview', async () => {
    const reply = await post(server.port, '/mutate-pods', '{"kind":"Pod"}', certs.caBundle);
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.body)).toMatchObject({ error: 'bad_admission_review', message: expect.stringContaining('expected apiVersion') });
  });

  it('serves only POST /mutate-pods', async () => {
    expect((await post(server.port, '/other', '{}', certs.caBundle)).status).toBe(404);
    expect((await post(server.port, '/mutate-pods', '', certs.caBundle, { method: 'GET' })).status).toBe(405);
  });

  it('counts admissions by result and reason', async () => {
    await post(server.port, '/mutate-pods', review({}), certs.caBundle);
    const text = await registry.metrics();
    expect(text).toMatch(/breakwater_webhook_admissions_total\{result="injected",reason="injected"\} [1-9]/);
    expect(text).toMatch(/breakwater_webhook_admissions_total\{result="skipped",reason="not-selected"\} [1-9]/);
    expect(text).toMatch(/breakwater_webhook_admissions_total\{result="error",reason="bad-request"\} [1-9]/);
  });

  it('serves a new certificate on new connections after setCertificate, without restarting', async () => {
    const before = await post(server.port, '/mutate-pods', review({}), certs.caBundle);
    const next = await localhostCertificates();
    server.setCertificate({ cert: next.cert, key: next.key });
    const after = await post(server.port, '/mutate-pods', review({}), next.caBundle);
    expect(after.status).toBe(200);
    expect(after.serial).not.toBe(before.serial);
    await expect(post(server.port, '/mutate-pods', review({}), certs.caBundle)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });
});

describe('webhook server with a failing dependency', () => {
  it('admits the pod unchanged with a warning, and counts the error', async () => {
    const failingRegistry = new Registry();
    const failing = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      certificate: { cert: certs.cert, key: certs.key },
      lookup: () => {
        throw new Error('cache not synced');
      },
      settings: SETTINGS,
      logger: createLogger({ level: 'silent', name: 'webhook-test' }),
      registry: failingRegistry,
    });
    try {
      const reply = await post(failing.port, '/mutate-pods', review({ [ANNOTATION_INJECT]: 'true' }), certs.caBundle);
      expect(reply.status).toBe(200);
      const { response } = JSON.parse(reply.body) as AdmissionReview;
      expect(response).toEqual({
        uid: 'abc',
        allowed: true,
        warnings: ['breakwater: sidecar not injected, pod admitted unchanged: internal error: cache not synced'],
      });
      expect(await failingRegistry.metrics()).toMatch(/breakwater_webhook_admissions_total\{result="error",reason="internal"\} 1/);
    } finally {
      await failing.close();
    }
  });

  it('answers 413 to a body over the limit', async () => {
    // The shared server's certificate was swapped above; which CA signed it does not matter here.
    const reply = await post(server.port, '/mutate-pods', 'x'.repeat(MAX_REVIEW_BYTES + 1), certs.caBundle, { rejectUnauthorized: false });
    expect(reply.status).toBe(413);
  });
});
