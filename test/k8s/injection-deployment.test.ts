// Tier 2: what a user does. A Deployment whose pod template carries the annotation; the ReplicaSet
// controller creates the Pods, the API server sends them through the webhook, the scheduler binds them
// and kwok runs them.
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/kube.ts';
import { startInjection, type Injection } from '../support/injection.ts';
import { ok } from '../support/kube.ts';

let h: Injection;
let ns: string;

beforeAll(async () => {
  h = await startInjection(inject('k8sBinDir'), inject('kubeconfig'), 'deployment');
  // As the chart ships it: a webhook that fails never blocks a deploy.
  await h.register('breakwater-test-deployment', { failurePolicy: 'Ignore' });
  ns = await h.namespace('shop');
  await h.integration(ns, 'stripe', { upstream: { url: 'https://api.stripe.example' }, auth: { secretRef: { name: 'stripe-key', key: 'token' } } });
});

afterAll(() => h?.stop());

describe('a Deployment annotated breakwater.dev/inject: "true"', () => {
  it("gets injected Pods from its ReplicaSet, and they reach Running", async () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'checkout', namespace: ns },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'checkout' } },
        template: {
          metadata: { labels: { app: 'checkout' }, annotations: { 'breakwater.dev/inject': 'true' } },
          spec: { containers: [{ name: 'app', image: 'registry.example/checkout:1' }] },
        },
      },
    };
    await ok(h.kubectl, ['apply', '-f', '-'], JSON.stringify(deployment));
    await ok(h.kubectl, ['rollout', 'status', '-n', ns, 'deployment/checkout', '--timeout=90s']);

    const pods = await eventually('2 Running pods', async () => {
      const list = JSON.parse(await ok(h.kubectl, ['get', 'pods', '-n', ns, '-l', 'app=checkout', '-o', 'json'])) as { items: V1Pod[] };
      const running = list.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
      return { done: running.length === 2 ? running : undefined, seen: list.items.map((p) => p.status?.phase) };
    });
    for (const pod of pods) {
      expect(pod.metadata?.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
      expect(pod.spec?.nodeName).toBe('kwok-node-0');
      expect(pod.spec?.initContainers?.[0]).toMatchObject({ name: 'breakwater', restartPolicy: 'Always' });
      expect(pod.spec?.containers[0]?.env).toContainEqual({ name: 'BREAKWATER_STRIPE_URL', value: 'http://127.0.0.1:15080/stripe' });
      expect(JSON.parse(pod.metadata?.annotations?.['breakwater.dev/status'] ?? '{}')).toMatchObject({ integrations: ['stripe'] });
      expect((pod.spec?.volumes ?? []).map((v) => v.name)).toEqual(expect.arrayContaining(['breakwater-config', 'bw-secret-stripe-key']));
    }
  });
});
