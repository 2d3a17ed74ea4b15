// The webhook's certificates against the real API server: bootstrap from nothing into a Secret, the
// caBundle the API server uses, rotation with a short validity, and a second replica that follows.
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import type { V1MutatingWebhookConfiguration, V1Secret } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readSecret } from '../../src/kube/secrets.ts';
import { applyWebhookConfiguration } from '../../src/kube/webhook-configuration.ts';
import { CertRotator, SECRET_KEYS } from '../../src/operator/cert-rotator.ts';
import { splitPemBundle } from '../../src/operator/certs.ts';
import { startWebhookServer, type WebhookServer } from '../../src/operator/webhook.ts';
import { SIDECAR_RESOURCES } from '../../src/operator/inject.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { Registry } from 'prom-client';
import { eventually, ok } from '../support/kube.ts';
import { podManifest, startInjection, SUITE_LABEL, type Injection } from '../support/injection.ts';
import { freePort } from '../support/processes.ts';

const SECRET = 'breakwater-webhook-certs';
const CONFIG = 'breakwater-test-certs';
const CA_SECRET = 'breakwater-webhook-certs-ca-rotation';
const CA_CONFIG = 'breakwater-test-ca-rotation';
const VALIDITY_MS = 8_000;
/** How often the replicas put the caBundle back, changed or not (5 minutes in the operator). */
const REPUBLISH_MS = 1_000;
const logger = createLogger({ level: 'silent', name: 'certs-test' });

let h: Injection;
let system: string;
let apps: string;
let firstPort = 0;
const replicas: { rotator: CertRotator; server: WebhookServer }[] = [];

interface ReplicaOptions {
  readonly port: number;
  /** Where the API server is told to call: by URL it reaches one replica; in a cluster a Service spreads calls. */
  readonly registeredPort: number;
  readonly secretName?: string;
  readonly config?: string;
  readonly caseLabel?: string;
  readonly validityMs?: number;
  readonly caValidityMs?: number;
}

/** One operator replica's certificate half: a rotator feeding its own webhook server. */
async function startReplica(o: ReplicaOptions): Promise<{ rotator: CertRotator; server: WebhookServer }> {
  let server: WebhookServer | undefined = undefined;
  const rotator = new CertRotator({
    client: h.client,
    namespace: system,
    secretName: o.secretName ?? SECRET,
    dnsNames: ['breakwater-webhook', `breakwater-webhook.${system}.svc`],
    ipAddresses: ['127.0.0.1'],
    validityMs: o.validityMs ?? VALIDITY_MS,
    caValidityMs: o.caValidityMs ?? 24 * 60 * 60 * 1000,
    publishCaBundle: async (caBundle) => {
      await applyWebhookConfiguration(h.client, {
        name: o.config ?? CONFIG,
        target: { url: `https://127.0.0.1:${o.registeredPort}/mutate-pods` },
        caBundle,
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
        excludeNamespaces: [system],
        namespaceSelector: { matchLabels: { [SUITE_LABEL]: 'certs', case: o.caseLabel ?? 'leaf' } },
      });
      return 'changed';
    },
    onCertificate: (certificate) => server?.setCertificate(certificate),
    logger,
    republishMs: REPUBLISH_MS,
  });
  const certificate = await rotator.start();
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: o.port,
    certificate,
    lookup: () => ({ namespace: { metadata: { name: apps } }, integrations: [] }),
    settings: { image: 'breakwater:test', mode: 'auto', serverVersion: { major: 1, minor: 35 }, ...SIDECAR_RESOURCES, logLevel: 'info', version: 'test' },
    logger,
    registry: new Registry(),
  });
  const replica = { rotator, server };
  replicas.push(replica);
  return replica;
}

/** Serial number of the certificate a server presents to a new connection. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on('error', reject);
  });
}

async function storedCerts(): Promise<Record<string, string>> {
  const secret = await readSecret(h.client, system, SECRET);
  if (!secret) throw new Error('no certificate Secret');
  return secret.data;
}

async function caBundleInApiServer(name = CONFIG): Promise<string> {
  const config = await h.client.getJson<V1MutatingWebhookConfiguration>(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`);
  return Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8');
}

beforeAll(async () => {
  h = await startInjection(inject('k8sBinDir'), inject('kubeconfig'), 'certs');
  system = `bw-system-${Math.random().toString(36).slice(2, 8)}`;
  await ok(h.kubectl, ['create', 'namespace', system]);
  apps = await h.namespace('apps', { case: 'leaf' });
});

afterAll(async () => {
  for (const r of replicas) {
    await r.rotator.stop();
    await r.server.close();
  }
  await h?.kubectl(['delete', 'mutatingwebhookconfiguration', CONFIG, CA_CONFIG, '--ignore-not-found']);
  await h?.kubectl(['delete', 'namespace', system, '--wait=false']);
  await h?.stop();
});

describe('webhook certificates', () => {
  it('bootstraps a CA and serving certificate into a Secret when there is none', async () => {
    expect(await readSecret(h.client, system, SECRET)).toBeUndefined();
    firstPort = await freePort();
    await startReplica({ port: firstPort, registeredPort: firstPort });
    const secret = await h.client.getJson<V1Secret>(`/api/v1/namespaces/${system}/secrets/${SECRET}`);
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const data = await storedCerts();
    const leaf = new X509Certificate(data[SECRET_KEYS.cert]!);
    expect(leaf.checkIssued(new X509Certificate(data[SECRET_KEYS.caBundle]!))).toBe(true);
    expect(leaf.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(await servedSerial(firstPort)).toBe(leaf.serialNumber);
  });

  it('patches the caBundle, so the API server trusts the webhook', async () => {
    expect(await caBundleInApiServer()).toBe((await storedCerts())[SECRET_KEYS.caBundle]);
    const { pod } = await h.createPod(apps, podManifest('trusted', { 'breakwater.dev/inject': 'true' }));
    expect(pod.spec?.initContainers?.[0]?.name).toBe('breakwater');
  });

  it('puts the caBundle back when the webhook configuration lost it, as a recreated one has', async () => {
    await ok(h.kubectl, ['patch', 'mutatingwebhookconfiguration', CONFIG, '--type=json', '-p', '[{"op":"remove","path":"/webhooks/0/clientConfig/caBundle"}]']);
    expect(await caBundleInApiServer()).toBe('');
    const stored = (await storedCerts())[SECRET_KEYS.caBundle];
    await eventually('the caBundle back', async () => {
      const now = await caBundleInApiServer();
      return { done: now === stored ? true : undefined, seen: now.length };
    }, 10_000, 200);
  });

  it('rotates the serving certificate before it expires, and every replica serves the new one', async () => {
    const second = await startReplica({ port: await freePort(), registeredPort: firstPort });
    const before = new X509Certificate((await storedCerts())[SECRET_KEYS.cert]!);
    // The second replica found the Secret and serves what it holds rather than making its own.
    expect(await servedSerial(second.server.port)).toBe(before.serialNumber);

    const { rotated, detectedAt } = await eventually(
      'a new serving certificate in the Secret',
      async () => {
        const leaf = new X509Certificate((await storedCerts())[SECRET_KEYS.cert]!);
        return { done: leaf.serialNumber !== before.serialNumber ? { rotated: leaf, detectedAt: Date.now() } : undefined, seen: leaf.serialNumber };
      },
      VALIDITY_MS * 3,
    );
    expect(Date.parse(rotated.validTo)).toBeGreaterThan(Date.parse(before.validTo));
    // Renewed with a third of the validity left, not after expiry.
    expect(Date.parse(before.validTo)).toBeGreaterThan(Date.now() - VALIDITY_MS);
    // The write happened no later than its detection, so this bounds the renewal from above.
    expect(detectedAt).toBeLessThan(Date.parse(before.validTo));
    for (const port of [firstPort, second.server.port]) {
      await eventually(`replica on ${port} serving the certificate in the Secret`, async () => {
        const [serial, stored] = [await servedSerial(port), new X509Certificate((await storedCerts())[SECRET_KEYS.cert]!).serialNumber];
        return { done: serial === stored && serial !== before.serialNumber ? serial : undefined, seen: { serial, stored } };
      });
    }
    // Same CA, so the caBundle did not need to change, and admissions keep working.
    expect(await caBundleInApiServer()).toBe((await storedCerts())[SECRET_KEYS.caBundle]);
    const { pod } = await h.createPod(apps, podManifest('after-rotation', { 'breakwater.dev/inject': 'true' }));
    expect(pod.spec?.initContainers?.[0]?.name).toBe('breakwater');
  });

  it('recreates the Secret when it is deleted', async () => {
    await ok(h.kubectl, ['delete', 'secret', SECRET, '-n', system]);
    const data = await eventually('the Secret back', async () => {
      const secret = await readSecret(h.client, system, SECRET);
      return { done: secret?.data[SECRET_KEYS.cert] ? secret.data : undefined, seen: secret === undefined ? 'absent' : 'partial' };
    });
    await eventually('the caBundle following the new CA', async () => {
      const bundle = await caBundleInApiServer();
      return { done: bundle === data[SECRET_KEYS.caBundle] ? true : undefined, seen: bundle.slice(0, 80) };
    });
    // The bundle is published before the replica serves the certificate it signs: until then the API
    // server, trusting only the new CA, would refuse the old certificate.
    const written = new X509Certificate(data[SECRET_KEYS.cert]!).serialNumber;
    await eventually('the replica serving the new certificate', async () => {
      const serial = await servedSerial(firstPort);
      return { done: serial === written ? true : undefined, seen: { serial, written } };
    });
    const { pod } = await h.createPod(apps, podManifest('new-ca', { 'breakwater.dev/inject': 'true' }));
    expect(pod.spec?.initContainers?.[0]?.name).toBe('breakwater');
  });
});

describe('CA rotation', () => {
  it('renews the CA before it expires, keeping the old one in the caBundle, and admissions keep working', async () => {
    const port = await freePort();
    const caValidityMs = 9_000;
    await startReplica({ port, registeredPort: port, secretName: CA_SECRET, config: CA_CONFIG, caseLabel: 'ca', validityMs: 60_000, caValidityMs });
    const ns = await h.namespace('ca', { case: 'ca' });
    const read = async () => (await readSecret(h.client, system, CA_SECRET))!.data;
    const [firstCa] = splitPemBundle((await read())[SECRET_KEYS.caBundle]!);
    expect((await h.createPod(ns, podManifest('before', { 'breakwater.dev/inject': 'true' }))).pod.spec?.initContainers?.[0]?.name).toBe('breakwater');

    const bundle = await eventually(
      'a new CA in front of the old one',
      async () => {
        const cas = splitPemBundle((await read())[SECRET_KEYS.caBundle]!);
        return { done: cas.length === 2 && cas[1] === firstCa ? cas : undefined, seen: cas.length };
      },
      caValidityMs * 2,
    );
    const data = await read();
    expect(new X509Certificate(data[SECRET_KEYS.cert]!).checkIssued(new X509Certificate(bundle[0]!))).toBe(true);
    await eventually('the API server given both CAs', async () => {
      const inApi = await caBundleInApiServer(CA_CONFIG);
      return { done: inApi === data[SECRET_KEYS.caBundle] ? true : undefined, seen: splitPemBundle(inApi).length };
    });
    await eventually('the replica serving the certificate from the new CA', async () => {
      const serial = await servedSerial(port);
      const stored = new X509Certificate((await read())[SECRET_KEYS.cert]!).serialNumber;
      return { done: serial === stored ? true : undefined, seen: { serial, stored } };
    });
    expect((await h.createPod(ns, podManifest('after', { 'breakwater.dev/inject': 'true' }))).pod.spec?.initContainers?.[0]?.name).toBe('breakwater');
  });
});
