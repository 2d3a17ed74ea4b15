// The harness itself: the shared tier-2 control plane is the pinned Kubernetes and runs workloads,
// and a private tier-1 one can be restarted and made to expire old resourceVersions.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, KubeConfig, VersionApi, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ControlPlane, FAKE_NODE } from '../support/control-plane.ts';
import { eventually, kubectlFor } from '../support/kube.ts';

const pinned = /^K8S_VERSION=(\S+)/m.exec(readFileSync(new URL('../../hack/k8s-tools.sh', import.meta.url), 'utf8'))?.[1];
const binDir = inject('k8sBinDir');
const kubeconfig = inject('kubeconfig');

function client(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc;
}

describe('shared control plane', () => {
  it('runs the pinned Kubernetes version, and so do the binaries', async () => {
    expect(pinned).toMatch(/^v1\.\d+\.\d+$/);
    const server = await client().makeApiClient(VersionApi).getCode();
    expect(server.gitVersion).toBe(pinned);
    expect(execFileSync(join(binDir, 'kube-apiserver'), ['--version'], { encoding: 'utf8' }).trim()).toBe(`Kubernetes ${pinned}`);
    const kubectl = await kubectlFor(binDir, kubeconfig)(['version', '-o', 'json']);
    expect(kubectl.code).toBe(0);
    const versions = JSON.parse(kubectl.stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
    expect(versions.clientVersion.gitVersion).toBe(pinned);
    expect(versions.serverVersion.gitVersion).toBe(pinned);
  });

  describe('a Deployment with 2 replicas', () => {
    const namespace = `cp-${Date.now().toString(36)}`;
    const kc = client();
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);

    beforeAll(async () => {
      await core.createNamespace({ body: { metadata: { name: namespace } } });
    });
    afterAll(async () => {
      await core.deleteNamespace({ name: namespace });
    });

    it('gets a ReplicaSet and 2 Pods that kwok runs on the fake node', async () => {
      await apps.createNamespacedDeployment({
        namespace,
        body: {
          metadata: { name: 'web' },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: 'web' } },
            template: {
              metadata: { labels: { app: 'web' } },
              spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] },
            },
          },
        },
      });

      const running = await eventually<V1Pod[]>('2 Running pods of Deployment web', async () => {
        const pods = (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items;
        const ready = pods.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
        return { done: ready.length === 2 ? ready : undefined, seen: pods.map((p) => [p.metadata?.name, p.status?.phase]) };
      });
      for (const pod of running) {
        expect(pod.spec?.nodeName).toBe(FAKE_NODE);
        expect(pod.metadata?.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
        expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      }

      const available = await eventually('Deployment web available', async () => {
        const d = await apps.readNamespacedDeployment({ namespace, name: 'web' });
        return { done: d.status?.availableReplicas === 2 ? d.status : undefined, seen: d.status };
      });
      expect(available.readyReplicas).toBe(2);
    });
  });
});

describe('a private tier-1 control plane', () => {
  let cp: ControlPlane;

  beforeAll(async () => {
    // Without the watch cache every watch reaches etcd, so a compaction expires it at once.
    cp = await ControlPlane.start({ binDir, minRequestTimeoutSeconds: 1, apiServerArgs: ['--watch-cache=false'] });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('keeps its data across an API server restart', async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'survivor' }, data: { a: '1' } };
    expect((await cp.api('POST', '/api/v1/namespaces/default/configmaps', cm)).status).toBe(201);
    await cp.restartApiServer();
    const res = await cp.api('GET', '/api/v1/namespaces/default/configmaps/survivor');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).data).toEqual({ a: '1' });
  });

  it('closes a watch without timeoutSeconds after --min-request-timeout (1-2s)', async () => {
    const started = Date.now();
    const res = await cp.api('GET', '/api/v1/namespaces/default/configmaps?watch=1');
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('answers a watch from before an etcd compaction with 410 Gone', async () => {
    const path = '/api/v1/namespaces/default/configmaps';
    const created = await cp.api('POST', path, { metadata: { name: 'old' }, data: { v: '0' } });
    const oldRv = JSON.parse(created.body).metadata.resourceVersion as string;
    for (let i = 1; i <= 3; i++) {
      const res = await cp.api('PUT', `${path}/old`, { metadata: { name: 'old' }, data: { v: String(i) } });
      expect(res.status).toBe(200);
    }

    const before = await cp.api('GET', `${path}?watch=1&resourceVersion=${oldRv}&timeoutSeconds=1`);
    expect(before.body).not.toContain('"code":410');

    await cp.compactEtcd();
    const after = await cp.api('GET', `${path}?watch=1&resourceVersion=${oldRv}&timeoutSeconds=1`);
    const event = JSON.parse(after.body.trim().split('\n')[0] ?? '{}') as { type?: string; object?: { code?: number } };
    expect(event.type).toBe('ERROR');
    expect(event.object?.code).toBe(410);
  });
});
