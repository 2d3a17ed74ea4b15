// The chart against the real control plane (tier 2): the API server accepts what it renders, `helm
// install --wait` completes (kwok marks the operator's pods Running; nothing runs them), and the
// chart's RBAC is enough and not more: the real operator process, authenticated with a token of the
// chart's ServiceAccount, reconciles, manages its certificate and serves the webhook, while verbs it
// does not use are denied.
//
// The webhook the chart registers points at a Service whose endpoints are kwok's fake pod IPs. Right
// after the install the test points it at the operator process on 127.0.0.1 (what --webhook-url is
// for), so that no Pod create ever makes the API server dial one of those addresses.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1ClusterRole, V1ConfigMap, V1Container, V1Deployment, V1MutatingWebhookConfiguration, V1Pod, V1Role, V1Secret } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CONFIG_KEY,
  CONFIG_MAP_NAME,
  CRD_NAME,
  integrationEnvVar,
  LEASE_NAME,
  SIDECAR_CONTAINER_NAME,
  WEBHOOK_CERT_SECRET_NAME,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_PATH,
  WEBHOOK_SERVICE_NAME,
} from '../../src/api/names.ts';
import { CHART_DIR, helmFor, only, parseManifests, VALUE_COMBINATIONS, type K8sObject } from '../support/helm.ts';
import { eventually, kubectlFor, ok } from '../support/kube.ts';
import { freePort, isRunning, logTail, removeDirAtExit, startProcess, stopProcess, type Managed } from '../support/processes.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const binDir = inject('k8sBinDir');
const adminKubeconfig = inject('kubeconfig');
const kubectl = kubectlFor(binDir, adminKubeconfig);
const helm = helmFor(binDir, adminKubeconfig);
const suffix = randomBytes(3).toString('hex');
const NS = `bw-system-${suffix}`;
const APP_NS = `bw-app-${suffix}`;
const RELEASE = 'breakwater';
// Kinds whose CRDs (cert-manager, Prometheus Operator) this control plane does not have; the render
// tests check their structure instead.
const THIRD_PARTY_GROUPS = ['cert-manager.io/', 'monitoring.coreos.com/'];

async function getJson<T>(args: string[]): Promise<T | undefined> {
  const r = await kubectl(['get', ...args, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
}

async function render(...args: string[]): Promise<K8sObject[]> {
  const r = await helm(['template', RELEASE, CHART_DIR, '--namespace', NS, ...args]);
  if (r.code !== 0) throw new Error(`helm template exited ${r.code}: ${r.stderr}`);
  return parseManifests(r.stdout);
}

const toYaml = (objects: readonly K8sObject[]): string => objects.map((o) => JSON.stringify(o)).join('\n---\n');

let rendered: K8sObject[];
let serviceAccount: string;

beforeAll(async () => {
  rendered = await render();
  serviceAccount = only(rendered, 'ServiceAccount').metadata.name;
  await ok(kubectl, ['create', 'namespace', NS]);
  await ok(kubectl, ['create', 'namespace', APP_NS]);
});

afterAll(async () => {
  await helm(['uninstall', RELEASE, '--namespace', NS, '--wait', '--timeout', '60s']);
  await kubectl(['delete', 'mutatingwebhookconfiguration', WEBHOOK_CONFIGURATION_NAME, '--ignore-not-found']);
  await kubectl(['delete', 'namespace', NS, APP_NS, '--wait=false']);
});

describe('the rendered chart', () => {
  for (const combo of VALUE_COMBINATIONS) {
    it(`is accepted by the API server with ${combo.name} values (server-side dry run, strict field validation)`, async () => {
      const objects = (await render(...combo.args)).filter((o) => !THIRD_PARTY_GROUPS.some((g) => o.apiVersion.startsWith(g)));
      expect(objects.length).toBeGreaterThan(8);
      const r = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], toYaml(objects));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(objects.length);
    });
  }

  it('takes the e2e manifests too (the kind script applies them to a real cluster)', async () => {
    const r = await kubectl(
      ['apply', '--dry-run=server', '--validate=strict', '-n', APP_NS, '-f', join(root, 'test/e2e/manifests/vendor.yaml'), '-f', join(root, 'test/e2e/manifests/demo-app.yaml')],
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('helm install', () => {
  let operator: Managed | undefined;
  let adminPort: number;
  let webhookUrl: string;
  let operatorKubeconfig: string;
  const as = (): string => `system:serviceaccount:${NS}:${serviceAccount}`;

  afterAll(async () => {
    if (operator) await stopProcess(operator);
  });

  it('installs the CRD and every object and --wait sees both operator replicas available', async () => {
    const r = await helm(['install', RELEASE, CHART_DIR, '--namespace', NS, '--wait', '--timeout', '120s']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('STATUS: deployed');
    // NOTES.txt: the next two commands.
    expect(r.stdout).toMatch(/kubectl apply -n <your-namespace> -f/);
    expect(r.stdout).toMatch(/breakwater\.dev\/inject/);

    expect(await getJson(['crd', CRD_NAME])).toBeDefined();
    const deployment = await getJson<V1Deployment>(['deployment', '-n', NS, only(rendered, 'Deployment').metadata.name]);
    expect(deployment?.status?.availableReplicas).toBe(2);
    await eventually('the PodDisruptionBudget to count both replicas healthy', async () => {
      const pdb = await getJson<{ status?: { currentHealthy?: number; disruptionsAllowed?: number } }>(['pdb', '-n', NS, only(rendered, 'PodDisruptionBudget').metadata.name]);
      return { done: pdb?.status?.currentHealthy === 2 && pdb.status.disruptionsAllowed === 1 ? true : undefined, seen: pdb?.status };
    });
  });

  it('grants the operator exactly the API calls its code makes', async () => {
    const can = async (args: string[]): Promise<string> => (await kubectl(['auth', 'can-i', ...args, '--as', as()])).stdout.trim();
    const allowed: string[][] = [
      ['list', 'externalintegrations.breakwater.dev', '--all-namespaces'],
      ['watch', 'externalintegrations.breakwater.dev', '--all-namespaces'],
      ['patch', 'externalintegrations.breakwater.dev', '--subresource=status', '-n', APP_NS],
      ['get', 'externalintegrations.breakwater.dev', '-n', APP_NS],
      ['create', 'tokenreviews.authentication.k8s.io'],
      ['patch', `configmaps/${CONFIG_MAP_NAME}`, '-n', APP_NS],
      ['create', 'configmaps', '-n', APP_NS],
      ['create', 'events.events.k8s.io', '-n', APP_NS],
      ['get', 'replicasets.apps', '-n', APP_NS],
      ['list', 'namespaces'],
      ['get', `mutatingwebhookconfigurations.admissionregistration.k8s.io/${WEBHOOK_CONFIGURATION_NAME}`],
      ['patch', `mutatingwebhookconfigurations.admissionregistration.k8s.io/${WEBHOOK_CONFIGURATION_NAME}`],
      ['update', `leases.coordination.k8s.io/${LEASE_NAME}`, '-n', NS],
      ['create', 'leases.coordination.k8s.io', '-n', NS],
      ['list', 'leases.coordination.k8s.io', '-n', NS],
      ['watch', 'leases.coordination.k8s.io', '-n', NS],
      ['patch', 'leases.coordination.k8s.io/fleet-0b5c', '-n', NS],
      ['delete', 'leases.coordination.k8s.io/fleet-0b5c', '-n', NS],
      ['get', `secrets/${WEBHOOK_CERT_SECRET_NAME}`, '-n', NS],
      ['update', `secrets/${WEBHOOK_CERT_SECRET_NAME}`, '-n', NS],
      ['create', 'secrets', '-n', NS],
      ['get', `services/${WEBHOOK_SERVICE_NAME}`, '-n', NS],
    ];
    const denied: string[][] = [
      ['get', 'secrets/stripe-key', '-n', APP_NS],
      ['create', 'secrets', '-n', APP_NS],
      ['update', 'secrets/other', '-n', NS],
      ['delete', `secrets/${WEBHOOK_CERT_SECRET_NAME}`, '-n', NS],
      ['get', 'configmaps/app-settings', '-n', APP_NS],
      ['get', 'services/other', '-n', NS],
      ['delete', `configmaps/${CONFIG_MAP_NAME}`, '-n', APP_NS],
      ['update', 'externalintegrations.breakwater.dev', '-n', APP_NS],
      ['delete', 'externalintegrations.breakwater.dev', '-n', APP_NS],
      ['create', 'pods', '-n', APP_NS],
      ['patch', 'deployments.apps', '-n', APP_NS],
      ['list', 'replicasets.apps', '-n', APP_NS],
      ['create', 'leases.coordination.k8s.io', '-n', APP_NS],
      ['delete', 'leases.coordination.k8s.io/any', '-n', APP_NS],
      ['list', 'leases.coordination.k8s.io', '--all-namespaces'],
      ['update', 'leases.coordination.k8s.io/someone-else', '-n', NS],
      ['patch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-else'],
      ['create', 'mutatingwebhookconfigurations.admissionregistration.k8s.io'],
      ['delete', `mutatingwebhookconfigurations.admissionregistration.k8s.io/${WEBHOOK_CONFIGURATION_NAME}`],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
    ];
    const answers = async (cases: string[][]): Promise<Record<string, string>> =>
      Object.fromEntries(await Promise.all(cases.map(async (c) => [c.join(' '), await can(c)] as const)));
    expect(await answers(allowed)).toEqual(Object.fromEntries(allowed.map((c) => [c.join(' '), 'yes'])));
    expect(await answers(denied)).toEqual(Object.fromEntries(denied.map((c) => [c.join(' '), 'no'])));
  });

  it('pins the names it grants to the ones in src/api/names.ts', () => {
    const clusterRole = only<V1ClusterRole>(rendered, 'ClusterRole');
    const role = only<V1Role>(rendered, 'Role');
    const names = [...(clusterRole.rules ?? []), ...(role.rules ?? [])].flatMap((r) => r.resourceNames ?? []);
    expect(new Set(names)).toEqual(new Set([CONFIG_MAP_NAME, WEBHOOK_CONFIGURATION_NAME, LEASE_NAME, WEBHOOK_CERT_SECRET_NAME, WEBHOOK_SERVICE_NAME]));
  });

  it('runs the real operator as the chart ServiceAccount, with the flags the chart renders', async () => {
    // A token of the ServiceAccount, as the kubelet would mount it: the API server authenticates the
    // operator as system:serviceaccount:<ns>:<sa> and RBAC sees only the chart's rules.
    const token = (await ok(kubectl, ['create', 'token', serviceAccount, '-n', NS, '--duration', '1h'])).trim();
    const admin = parse(readFileSync(adminKubeconfig, 'utf8')) as { clusters: { cluster: { server: string; 'certificate-authority-data': string } }[] };
    const dir = mkdtempSync(join(tmpdir(), 'breakwater-chart-'));
    removeDirAtExit(dir);
    operatorKubeconfig = join(dir, 'operator.kubeconfig');
    writeFileSync(
      operatorKubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'test', cluster: admin.clusters[0]?.cluster }],
        users: [{ name: 'operator', user: { token } }],
        contexts: [{ name: 'test', context: { cluster: 'test', user: 'operator' } }],
        'current-context': 'test',
      }),
      { mode: 0o600 },
    );

    adminPort = await freePort();
    const webhookPort = await freePort();
    webhookUrl = `https://127.0.0.1:${webhookPort}${WEBHOOK_PATH}`;
    // Nothing patched by hand: with --webhook-url the operator itself moves the chart's webhook from
    // the Service to the URL.

    const container = only<V1Deployment>(rendered, 'Deployment').spec?.template.spec?.containers[0] as V1Container;
    const args = (container.args ?? []).map((a) =>
      a.startsWith('--admin-port=') ? `--admin-port=${adminPort}` : a.startsWith('--webhook-port=') ? `--webhook-port=${webhookPort}` : a,
    );
    expect(args[0]).toBe('operator');
    operator = startProcess(
      'breakwater-operator',
      process.execPath,
      [join(root, 'cmd/breakwater.ts'), ...args, `--kubeconfig=${operatorKubeconfig}`, `--webhook-url=${webhookUrl}`],
      join(dir, 'operator.log'),
    );
    await eventually('the operator to report ready on /readyz', async () => {
      if (!isRunning(operator as Managed)) throw new Error(`the operator exited:\n${logTail(operator as Managed)}`);
      const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
      return { done: res?.status === 200 ? true : undefined, seen: res ? `${res.status} ${await res.text()}` : 'no answer' };
    });
    expect((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).status).toBe(200);
  });

  it('…which registers the chart\'s webhook by its URL instead of the Service', async () => {
    const mwc = await eventually('the webhook registered by URL', async () => {
      const m = await getJson<V1MutatingWebhookConfiguration>(['mutatingwebhookconfiguration', WEBHOOK_CONFIGURATION_NAME]);
      return { done: m?.webhooks?.[0]?.clientConfig.url === webhookUrl ? m : undefined, seen: m?.webhooks?.[0]?.clientConfig };
    });
    expect(mwc.webhooks).toHaveLength(1);
    expect(mwc.webhooks?.[0]?.clientConfig.service).toBeUndefined();
  });

  it('…which creates its webhook certificate and puts its CA in the caBundle', async () => {
    const secret = await eventually('the certificate Secret', async () => {
      const s = await getJson<V1Secret>(['secret', '-n', NS, WEBHOOK_CERT_SECRET_NAME]);
      return { done: s?.data?.['tls.crt'] ? s : undefined, seen: s?.metadata?.name };
    });
    const ca = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString();
    expect(ca).toContain('BEGIN CERTIFICATE');
    await eventually('the caBundle to carry that CA', async () => {
      const mwc = await getJson<V1MutatingWebhookConfiguration>(['mutatingwebhookconfiguration', WEBHOOK_CONFIGURATION_NAME]);
      const bundle = Buffer.from(mwc?.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString();
      return { done: bundle.trim() !== '' && ca.includes(bundle.trim().split('-----END CERTIFICATE-----')[0] ?? '') ? true : undefined, seen: bundle.slice(0, 80) };
    });
  });

  it('…which reconciles an ExternalIntegration into the ConfigMap and its status', async () => {
    await ok(kubectl, ['create', 'secret', 'generic', 'stripe-key', '-n', APP_NS, '--from-literal=token=sk_test_123']);
    await ok(kubectl, ['apply', '-n', APP_NS, '-f', join(root, 'examples/payments-stripe.yaml')]);
    const cm = await eventually('ConfigMap breakwater-integrations', async () => {
      const c = await getJson<V1ConfigMap>(['configmap', '-n', APP_NS, CONFIG_MAP_NAME]);
      return { done: c?.data?.[CONFIG_KEY]?.includes('stripe') ? c : undefined, seen: c?.data };
    });
    expect(cm.data?.[CONFIG_KEY]).toContain('https://api.stripe.com');
    await eventually('stripe to be Ready at its generation', async () => {
      const xi = await getJson<{ metadata: { generation: number }; status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] } }>([
        'externalintegration', '-n', APP_NS, 'stripe',
      ]);
      const ready = xi?.status?.conditions?.find((c) => c.type === 'Ready');
      return { done: ready?.status === 'True' && xi?.status?.observedGeneration === xi?.metadata.generation ? true : undefined, seen: xi?.status };
    });
    const lease = await getJson<{ spec?: { holderIdentity?: string } }>(['lease', '-n', NS, LEASE_NAME]);
    expect(lease?.spec?.holderIdentity).toBeTruthy();
  });

  it('…which serves the webhook: an annotated Pod is created with the sidecar', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'shop', namespace: APP_NS, annotations: { 'breakwater.dev/inject': 'true' } },
      spec: { containers: [{ name: 'app', image: 'registry.invalid/shop:1' }] },
    };
    const created = await eventually('the webhook to inject the sidecar', async () => {
      await kubectl(['delete', 'pod', 'shop', '-n', APP_NS, '--ignore-not-found', '--wait=false', '--grace-period=0', '--force']);
      const r = await kubectl(['create', '-f', '-', '-o', 'json'], JSON.stringify(pod));
      const p = r.code === 0 ? (JSON.parse(r.stdout) as V1Pod) : undefined;
      const names = [...(p?.spec?.initContainers ?? []), ...(p?.spec?.containers ?? [])].map((c) => c.name);
      return { done: names.includes(SIDECAR_CONTAINER_NAME) ? p : undefined, seen: r.code === 0 ? names : r.stderr };
    }, 30_000, 1_000);
    const app = created.spec?.containers.find((c) => c.name === 'app');
    expect(app?.env?.map((e) => e.name)).toContain(integrationEnvVar('stripe'));
  });

  it('helm upgrade with changed values keeps the URL registration, its caBundle and injection working', async () => {
    const before = await getJson<V1MutatingWebhookConfiguration>(['mutatingwebhookconfiguration', WEBHOOK_CONFIGURATION_NAME]);
    const r = await helm(['upgrade', RELEASE, CHART_DIR, '--namespace', NS, '--reuse-values', '--set', 'webhook.timeoutSeconds=7', '--set', 'operator.logLevel=debug', '--wait', '--timeout', '120s']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/REVISION: 2/);
    const after = await getJson<V1MutatingWebhookConfiguration>(['mutatingwebhookconfiguration', WEBHOOK_CONFIGURATION_NAME]);
    const webhook = after?.webhooks?.[0];
    expect(webhook?.timeoutSeconds).toBe(7);
    expect(webhook?.clientConfig.url).toBe(webhookUrl);
    expect(webhook?.clientConfig.service).toBeUndefined();
    expect(webhook?.clientConfig.caBundle).toBe(before?.webhooks?.[0]?.clientConfig.caBundle);
    const deployment = await getJson<V1Deployment>(['deployment', '-n', NS, only(rendered, 'Deployment').metadata.name]);
    expect(deployment?.spec?.template.spec?.containers[0]?.args).toContain('--log-level=debug');

    await kubectl(['delete', 'pod', 'shop', '-n', APP_NS, '--ignore-not-found', '--wait=false', '--grace-period=0', '--force']);
    const created = await eventually('a pod created after the upgrade to be injected', async () => {
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'shop-2', namespace: APP_NS, annotations: { 'breakwater.dev/inject': 'true' } }, spec: { containers: [{ name: 'app', image: 'registry.invalid/shop:1' }] } };
      await kubectl(['delete', 'pod', 'shop-2', '-n', APP_NS, '--ignore-not-found', '--wait=false', '--grace-period=0', '--force']);
      const c = await kubectl(['create', '-f', '-', '-o', 'json'], JSON.stringify(pod));
      const p = c.code === 0 ? (JSON.parse(c.stdout) as V1Pod) : undefined;
      const names = [...(p?.spec?.initContainers ?? []), ...(p?.spec?.containers ?? [])].map((x) => x.name);
      return { done: names.includes(SIDECAR_CONTAINER_NAME) ? p : undefined, seen: c.code === 0 ? names : c.stderr };
    }, 30_000, 1_000);
    expect(created.metadata?.name).toBe('shop-2');
  });

  it('denies what the operator does not need, on a real request with its token', async () => {
    const asOperator = kubectlFor(binDir, operatorKubeconfig);
    const get = await asOperator(['get', 'secret', 'stripe-key', '-n', APP_NS]);
    expect(get.code).not.toBe(0);
    expect(get.stderr).toMatch(/forbidden.*cannot get resource "secrets"/i);
    const del = await asOperator(['delete', 'configmap', CONFIG_MAP_NAME, '-n', APP_NS]);
    expect(del.stderr).toMatch(/forbidden.*cannot delete resource "configmaps"/i);
    expect(await getJson(['configmap', '-n', APP_NS, CONFIG_MAP_NAME])).toBeDefined();
  });

  it('…and, stopped cleanly, has logged no request it was refused', async () => {
    const proc = operator as Managed;
    expect(isRunning(proc)).toBe(true);
    // pino buffers; SIGTERM makes the operator drain and flush its log.
    await stopProcess(proc);
    expect(proc.child.exitCode).toBe(0);
    const log = readFileSync(proc.logPath, 'utf8');
    expect(log).toContain('admission webhook ready');
    const refused = log.split('\n').filter((line) => /forbidden|\b403\b/i.test(line));
    expect(refused.map((line) => line.slice(0, 400))).toEqual([]);
  });

  it('helm uninstall takes the certificate Secret and the Lease with it; the labelled ConfigMap stays for the integrations left', async () => {
    const managedBy = { 'app.kubernetes.io/managed-by': 'breakwater-operator', 'app.kubernetes.io/part-of': 'breakwater' };
    const owner = { apiVersion: 'v1', kind: 'Service', name: WEBHOOK_SERVICE_NAME };
    const secret = await getJson<V1Secret>(['secret', '-n', NS, WEBHOOK_CERT_SECRET_NAME]);
    expect(secret?.metadata?.labels).toMatchObject({ ...managedBy, 'app.kubernetes.io/component': 'webhook-certificate' });
    expect(secret?.metadata?.ownerReferences).toEqual([expect.objectContaining(owner)]);
    const lease = await getJson<{ metadata: V1Secret['metadata'] }>(['lease', '-n', NS, LEASE_NAME]);
    expect(lease?.metadata?.labels).toMatchObject({ ...managedBy, 'app.kubernetes.io/component': 'leader-election' });
    expect(lease?.metadata?.ownerReferences).toEqual([expect.objectContaining(owner)]);

    const r = await helm(['uninstall', RELEASE, '--namespace', NS, '--wait', '--timeout', '60s']);
    expect(r.code, r.stderr).toBe(0);
    await eventually('the garbage collector to delete the Secret and the Lease', async () => {
      const left = [await getJson(['secret', '-n', NS, WEBHOOK_CERT_SECRET_NAME]), await getJson(['lease', '-n', NS, LEASE_NAME])].filter(Boolean);
      return { done: left.length === 0 ? true : undefined, seen: left.length };
    });
    expect(await getJson(['mutatingwebhookconfiguration', WEBHOOK_CONFIGURATION_NAME])).toBeUndefined();
    // Pods that run the sidecar still mount it, and the integrations (and the CRD) are the user's.
    const configMaps = JSON.parse(await ok(kubectl, ['get', 'configmaps', '-A', '-l', 'app.kubernetes.io/managed-by=breakwater-operator', '-o', 'json'])) as { items: V1ConfigMap[] };
    expect(configMaps.items.map((c) => `${c.metadata?.namespace}/${c.metadata?.name}`)).toContain(`${APP_NS}/${CONFIG_MAP_NAME}`);
    expect(await getJson(['externalintegration', '-n', APP_NS, 'stripe'])).toBeDefined();
  });
});
