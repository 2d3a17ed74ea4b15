// The injection webhook as the real API server calls it: Pods created with kubectl come back stored
// with (or without) the sidecar, and kubectl shows the webhook's warnings.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../support/processes.ts';
import { podManifest, startInjection, type Injection } from '../support/injection.ts';

let h: Injection;
let shop: string;

const STRIPE = { upstream: { url: 'https://api.stripe.example' }, auth: { secretRef: { name: 'stripe-key', key: 'token' } } };
const GEO = { upstream: { url: 'https://geo.example' }, retry: { maxAttempts: 2 } };

beforeAll(async () => {
  h = await startInjection(inject('k8sBinDir'), inject('kubeconfig'), 'webhook');
  await h.register('breakwater-test-webhook', { failurePolicy: 'Fail' });
  shop = await h.namespace('shop');
  await h.integration(shop, 'stripe', STRIPE);
  await h.integration(shop, 'geo', GEO);
});

afterAll(() => h?.stop());

function containers(pod: V1Pod): V1Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
}

function sidecars(pod: V1Pod): V1Container[] {
  return containers(pod).filter((c) => c.name === 'breakwater');
}

function statusOf(pod: V1Pod): unknown {
  const raw = pod.metadata?.annotations?.['breakwater.dev/status'];
  return raw === undefined ? undefined : JSON.parse(raw);
}

describe('a Pod annotated breakwater.dev/inject: "true"', () => {
  let stored: V1Pod;
  beforeAll(async () => {
    stored = (await h.createPod(shop, podManifest('annotated', { 'breakwater.dev/inject': 'true' }))).pod;
  });

  it('is stored with the native sidecar first among its init containers', () => {
    const [first] = stored.spec?.initContainers ?? [];
    expect(first?.name).toBe('breakwater');
    expect(first?.restartPolicy).toBe('Always');
    expect(first?.command).toEqual(['breakwater']);
    expect(first?.args?.[0]).toBe('sidecar');
    expect(first?.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(stored.spec?.containers.map((c) => c.name)).toEqual(['app']);
  });

  it('has the ConfigMap and the referenced Secret as volumes, mounted into the sidecar only', () => {
    const volumes = stored.spec?.volumes ?? [];
    expect(volumes).toContainEqual({ name: 'breakwater-config', configMap: { name: 'breakwater-integrations', optional: true, defaultMode: 420 } });
    expect(volumes).toContainEqual({ name: 'bw-secret-stripe-key', secret: { secretName: 'stripe-key', optional: true, defaultMode: 420 } });
    expect(volumes).toContainEqual({ name: 'breakwater-data', emptyDir: {} });
    // The API server's ServiceAccount admission adds its token mount to every container; ours are these.
    const ours = (sidecars(stored)[0]?.volumeMounts ?? []).filter((m) => !m.mountPath.startsWith('/var/run/secrets/kubernetes.io'));
    expect(ours).toEqual([
      { name: 'breakwater-config', mountPath: '/etc/breakwater/config', readOnly: true },
      { name: 'bw-secret-stripe-key', mountPath: '/etc/breakwater/secrets/stripe-key', readOnly: true },
      { name: 'breakwater-data', mountPath: '/var/lib/breakwater' },
    ]);
    const appMounts = (stored.spec?.containers[0]?.volumeMounts ?? []).map((m) => m.mountPath);
    expect(appMounts.filter((p) => p.startsWith('/etc/breakwater'))).toEqual([]);
  });

  it('gives the app container the proxy URLs and keeps its own env', () => {
    expect(stored.spec?.containers[0]?.env).toEqual([
      { name: 'APP_MODE', value: 'test' },
      { name: 'BREAKWATER_URL', value: 'http://127.0.0.1:15080' },
      { name: 'BREAKWATER_GEO_URL', value: 'http://127.0.0.1:15080/geo' },
      { name: 'BREAKWATER_STRIPE_URL', value: 'http://127.0.0.1:15080/stripe' },
    ]);
  });

  it('records what was injected in the status annotation', () => {
    expect(statusOf(stored)).toEqual({ version: expect.any(String), sidecar: 'native', integrations: ['geo', 'stripe'] });
  });
});

describe('selection', () => {
  it('leaves a Pod without the annotation unchanged', async () => {
    const { pod } = await h.createPod(shop, podManifest('plain'));
    expect(sidecars(pod)).toEqual([]);
    expect(pod.spec?.initContainers).toBeUndefined();
    expect(statusOf(pod)).toBeUndefined();
    expect(pod.spec?.containers[0]?.env).toEqual([{ name: 'APP_MODE', value: 'test' }]);
    expect((pod.spec?.volumes ?? []).map((v) => v.name).filter((n) => n.startsWith('b'))).toEqual([]);
  });

  it('injects every Pod of a namespace labelled breakwater.dev/injection=enabled', async () => {
    const ns = await h.namespace('labelled', { 'breakwater.dev/injection': 'enabled' });
    await h.integration(ns, 'geo', GEO);
    const { pod } = await h.createPod(ns, podManifest('by-label'));
    expect(sidecars(pod)).toHaveLength(1);
    expect(statusOf(pod)).toMatchObject({ integrations: ['geo'] });
  });

  it('lets a Pod opt out with breakwater.dev/inject: "false" in such a namespace', async () => {
    const ns = await h.namespace('optout', { 'breakwater.dev/injection': 'enabled' });
    const { pod } = await h.createPod(ns, podManifest('opted-out', { 'breakwater.dev/inject': 'false' }));
    expect(sidecars(pod)).toEqual([]);
    expect(statusOf(pod)).toBeUndefined();
  });

  it('injects only the integrations a Pod names, and warns about names it does not know', async () => {
    const { pod, stderr } = await h.createPod(
      shop,
      podManifest('picky', { 'breakwater.dev/inject': 'true', 'breakwater.dev/integrations': 'geo,stirpe' }),
    );
    expect(stderr).toMatch(/Warning: breakwater: unknown integration "stirpe" in breakwater.dev\/integrations \(integrations in this namespace: geo, stripe\)/);
    expect(statusOf(pod)).toMatchObject({ integrations: ['geo'] });
    expect((pod.spec?.volumes ?? []).map((v) => v.name)).not.toContain('bw-secret-stripe-key');
  });
});

describe('idempotence', () => {
  it('does not inject twice when an injected Pod is submitted again', async () => {
    const first = (await h.createPod(shop, podManifest('once', { 'breakwater.dev/inject': 'true' }))).pod;
    const again = structuredClone(first);
    again.metadata = { name: 'once-again', annotations: first.metadata?.annotations };
    delete again.status;
    delete again.spec?.nodeName;
    const second = (await h.createPod(shop, again)).pod;
    expect(sidecars(second)).toHaveLength(1);
    expect(second.spec?.volumes?.map((v) => v.name)).toEqual(first.spec?.volumes?.map((v) => v.name));
    expect(second.spec?.containers[0]?.env).toEqual(first.spec?.containers[0]?.env);
    expect(second.metadata?.annotations).toEqual(first.metadata?.annotations);
  });
});

describe('when the webhook is down', () => {
  it('Pods are still admitted with failurePolicy: Ignore', async () => {
    const nowhere = `https://127.0.0.1:${await freePort()}/mutate-pods`;
    await h.register('breakwater-test-down-ignore', { failurePolicy: 'Ignore', url: nowhere, extraLabels: { down: 'ignore' } });
    const ns = await h.namespace('down-ignore', { down: 'ignore' });
    const { pod, stderr } = await h.createPod(ns, podManifest('admitted'));
    expect(pod.metadata?.uid).toBeTruthy();
    expect(stderr).toBe('');
  });

  it('and refused with failurePolicy: Fail, which shows the webhook was consulted', async () => {
    const nowhere = `https://127.0.0.1:${await freePort()}/mutate-pods`;
    await h.register('breakwater-test-down-fail', { failurePolicy: 'Fail', url: nowhere, extraLabels: { down: 'fail' } });
    const ns = await h.namespace('down-fail', { down: 'fail' });
    const r = await h.kubectl(['create', '-n', ns, '-f', '-'], JSON.stringify(podManifest('refused')));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/failed calling webhook "inject.breakwater.dev"/);
  });
});

describe('metrics', () => {
  it('counts what the API server sent', async () => {
    const text = await h.registry.metrics();
    expect(text).toMatch(/breakwater_webhook_admissions_total\{result="injected",reason="injected"\} [3-9]/);
    expect(text).toMatch(/breakwater_webhook_admissions_total\{result="skipped",reason="already-injected"\} [1-9]/);
    expect(text).toMatch(/breakwater_webhook_admissions_total\{result="skipped",reason="opted-out"\} [1-9]/);
  });
});
