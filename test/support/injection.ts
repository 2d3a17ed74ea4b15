// The sidecar-injection webhook run in the test process against the shared control plane, the way
// envtest runs webhooks: HTTPS on 127.0.0.1 with a certificate carrying an IP SAN, registered with
// `clientConfig.url`. Each suite labels its namespaces and registers its webhook for those only, so a
// suite's failurePolicy never reaches another suite's pods.
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { EVENT_REPORTING_CONTROLLER } from '../../src/api/names.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { EventRecorder } from '../../src/kube/events.ts';
import { Informer } from '../../src/kube/informer.ts';
import { EXTERNAL_INTEGRATIONS, NAMESPACES, type StoredIntegration, type StoredNamespace } from '../../src/kube/resources.ts';
import { serverVersion } from '../../src/kube/server-version.ts';
import {
  applyWebhookConfiguration,
  deleteWebhookConfiguration,
  type FailurePolicy,
} from '../../src/kube/webhook-configuration.ts';
import { cacheLookup } from '../../src/operator/admission-context.ts';
import { AdmissionEvents } from '../../src/operator/admission-events.ts';
import { planCertificates, type WebhookCertificates } from '../../src/operator/certs.ts';
import { SIDECAR_RESOURCES, type InjectSettings } from '../../src/operator/inject.ts';
import { startWebhookServer, type WebhookServer } from '../../src/operator/webhook.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { VERSION } from '../../src/runtime/version.ts';
import { kubectlFor, ok, type Kubectl } from './kube.ts';


export const SUITE_LABEL = 'breakwater.dev/test-suite';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Injection {
  readonly client: KubeClient;
  readonly kubectl: Kubectl;
  readonly server: WebhookServer;
  readonly certificates: WebhookCertificates;
  readonly registry: Registry;
  readonly url: string;
  readonly suite: string;
  /** Registers a webhook configuration for this suite's namespaces (or those matching `extraLabels`). */
  register(name: string, options: { failurePolicy: FailurePolicy; url?: string; extraLabels?: Record<string, string> }): Promise<void>;
  /** A namespace carrying the suite label plus `labels`; deleted by stop(). */
  namespace(prefix: string, labels?: Record<string, string>): Promise<string>;
  /** Creates an ExternalIntegration and waits until the webhook's cache has it. */
  integration(namespace: string, name: string, spec: Record<string, unknown>): Promise<void>;
  /** `kubectl create` of a Pod: the stored object and kubectl's stderr (where warnings show). */
  createPod(namespace: string, pod: V1Pod): Promise<{ pod: V1Pod; stderr: string }>;
  stop(): Promise<void>;
}

export async function installCrd(kubectl: Kubectl): Promise<void> {
  await ok(kubectl, ['apply', '-f', `${ROOT}crds/`]);
  // Right after creation the CRD has no conditions yet, and `kubectl wait` fails instead of waiting.
  await until(async () => (await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/externalintegrations.breakwater.dev'])).code === 0, 'the CRD Established', 60_000);
}

/** A fresh CA and a serving certificate for 127.0.0.1 and localhost, valid for an hour. */
export async function localhostCertificates(): Promise<WebhookCertificates> {
  const plan = await planCertificates(undefined, {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    now: new Date(),
    validityMs: 60 * 60 * 1000,
    caValidityMs: 24 * 60 * 60 * 1000,
  });
  if (plan.action !== 'write') throw new Error('no certificates');
  return plan.certificates;
}

export async function startInjection(binDir: string, kubeconfig: string, suite: string): Promise<Injection> {
  const kubectl = kubectlFor(binDir, kubeconfig);
  await installCrd(kubectl);
  const client = new KubeClient({ kubeconfig, userAgent: `breakwater-test/${suite}` });
  const certificates = await localhostCertificates();
  const version = await serverVersion(client);
  const settings: InjectSettings = {
    image: `breakwater:${VERSION}`,
    mode: 'auto',
    serverVersion: version,
    ...SIDECAR_RESOURCES,
    logLevel: 'info',
    version: VERSION,
  };
  const namespaces = new Informer<StoredNamespace>(client, NAMESPACES);
  const integrations = new Informer<StoredIntegration>(client, EXTERNAL_INTEGRATIONS);
  namespaces.start();
  integrations.start();
  await Promise.all([namespaces.waitForSync(), integrations.waitForSync()]);
  const registry = new Registry();
  const server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    certificate: { cert: certificates.cert, key: certificates.key },
    lookup: cacheLookup(namespaces, integrations),
    settings,
    logger: createLogger({ level: 'silent', name: 'webhook' }),
    registry,
    events: new AdmissionEvents({
      client,
      recorder: new EventRecorder(client, EVENT_REPORTING_CONTROLLER, `test-${suite}`),
      logger: createLogger({ level: 'silent', name: 'webhook-events' }),
    }),
  });
  const url = `https://127.0.0.1:${server.port}/mutate-pods`;
  const registered: string[] = [];
  const created: string[] = [];

  return {
    client,
    kubectl,
    server,
    certificates,
    registry,
    url,
    suite,
    async register(name, options) {
      await applyWebhookConfiguration(client, {
        name,
        target: { url: options.url ?? url },
        caBundle: certificates.caBundle,
        failurePolicy: options.failurePolicy,
        timeoutSeconds: 5,
        excludeNamespaces: [],
        namespaceSelector: { matchLabels: { [SUITE_LABEL]: suite, ...options.extraLabels } },
      });
      registered.push(name);
    },
    async namespace(prefix, labels = {}) {
      const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
      const all = { [SUITE_LABEL]: suite, ...labels };
      await ok(kubectl, ['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: all } }));
      created.push(name);
      // The webhook reads namespace labels from its cache: wait until the cache has this one.
      await until(() => namespaces.get('', name) !== undefined, `namespace ${name} in the webhook's cache`);
      // Pods are refused until the controller-manager has created the namespace's default ServiceAccount.
      await ok(kubectl, ['wait', '-n', name, '--for=create', 'serviceaccount/default', '--timeout=30s']);
      return name;
    },
    async integration(namespace, name, spec) {
      const doc = { apiVersion: 'breakwater.dev/v1alpha1', kind: 'ExternalIntegration', metadata: { name, namespace }, spec };
      await ok(kubectl, ['apply', '-f', '-'], JSON.stringify(doc));
      await until(() => integrations.get(namespace, name) !== undefined, `integration ${namespace}/${name} in the webhook's cache`);
    },
    async createPod(namespace, pod) {
      const r = await kubectl(['create', '-n', namespace, '-o', 'json', '-f', '-'], JSON.stringify(pod));
      if (r.code !== 0) throw new Error(`kubectl create pod exited ${r.code}: ${r.stderr}`);
      return { pod: JSON.parse(r.stdout) as V1Pod, stderr: r.stderr };
    },
    async stop() {
      for (const name of registered) await deleteWebhookConfiguration(client, name).catch(() => undefined);
      await server.close();
      await Promise.all([namespaces.stop(), integrations.stop()]);
      for (const ns of created) await kubectl(['delete', 'namespace', ns, '--wait=false']);
      await client.close();
    },
  };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function podManifest(name: string, annotations: Record<string, string> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, annotations },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1', env: [{ name: 'APP_MODE', value: 'test' }] }] },
  };
}
