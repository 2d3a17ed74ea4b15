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

// Admission warnings go to the ReplicaSet controller, which drops them: the user sees the Event instead.
describe('annotation typos in a Deployment', () => {
  interface CoreEvent {
    type: string;
    reason: string;
    message: string;
    action: string;
    reportingComponent: string;
    involvedObject: { kind: string; name: string };
  }

  const deployment = (name: string, annotations: Record<string, string>) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations },
        spec: { containers: [{ name: 'app', image: `registry.example/${name}:1` }] },
      },
    },
  });

  async function podsOf(name: string): Promise<V1Pod[]> {
    return eventually(`2 pods of ${name}`, async () => {
      const list = JSON.parse(await ok(h.kubectl, ['get', 'pods', '-n', ns, '-l', `app=${name}`, '-o', 'json'])) as { items: V1Pod[] };
      return { done: list.items.length === 2 ? list.items : undefined, seen: list.items.length };
    });
  }

  async function eventsOn(name: string): Promise<CoreEvent[]> {
    return eventually(`a Warning Event on deployment/${name}`, async () => {
      const out = await ok(h.kubectl, ['get', 'events', '-n', ns, '--field-selector', `involvedObject.kind=Deployment,involvedObject.name=${name}`, '-o', 'json']);
      const items = (JSON.parse(out) as { items: CoreEvent[] }).items.filter((e) => e.type === 'Warning');
      return { done: items.length > 0 ? items : undefined, seen: items.length };
    });
  }

  const warned = () => h.registry.getSingleMetricAsString('breakwater_webhook_admission_warnings_total');

  it('inject: "yes" gives pods without the sidecar, and one SidecarNotInjected Event on the Deployment says why', async () => {
    await ok(h.kubectl, ['apply', '-f', '-'], JSON.stringify(deployment('typo', { 'breakwater.dev/inject': 'yes' })));
    const pods = await podsOf('typo');
    for (const pod of pods) expect(pod.spec?.initContainers ?? []).toEqual([]);
    const events = await eventsOn('typo');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ reason: 'SidecarNotInjected', action: 'Admit', reportingComponent: 'breakwater.dev/operator' });
    expect(events[0]!.message).toMatch(/^pod typo-[a-z0-9]+-…: annotation breakwater\.dev\/inject must be "true" or "false", got "yes"; ignored$/);
    // What a user runs first.
    const described = await ok(h.kubectl, ['describe', 'deployment', 'typo', '-n', ns]);
    expect(described).toMatch(/Warning\s+SidecarNotInjected/);
    expect(await warned()).toMatch(/breakwater_webhook_admission_warnings_total\{result="skipped"\} [2-9]/);
  });

  it('an unknown name in breakwater.dev/integrations gives an InjectedWithWarnings Event naming the known ones', async () => {
    await ok(h.kubectl, ['apply', '-f', '-'], JSON.stringify(deployment('misspelt', { 'breakwater.dev/inject': 'true', 'breakwater.dev/integrations': 'stirpe' })));
    await podsOf('misspelt');
    const events = await eventsOn('misspelt');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ reason: 'InjectedWithWarnings' });
    expect(events[0]!.message).toContain('unknown integration "stirpe" in breakwater.dev/integrations (integrations in this namespace: stripe)');
    expect(await warned()).toMatch(/breakwater_webhook_admission_warnings_total\{result="injected"\} [2-9]/);
  });
});
