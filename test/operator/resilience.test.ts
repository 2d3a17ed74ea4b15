// The operator keeps working through what a real cluster does to a long-running client: the API server
// restarting under it, and watches expiring (410 Gone) because etcd compacted the history they
// needed. A private control plane, since this suite restarts it; the watch cache is off so a
// compaction reaches watchers directly, and the operator re-watches every few seconds.
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../src/api/names.ts';
import type { ExternalIntegrationStatus } from '../../src/api/schema.ts';
import { ControlPlane } from '../support/control-plane.ts';
import { installCrd } from '../support/injection.ts';
import { eventually, kubectlFor } from '../support/kube.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';

let cp: ControlPlane;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let operator: OperatorProcess;
const apps = 'apps';

function createIntegration(name: string): Promise<unknown> {
  return custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: apps,
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec: { upstream: { url: `https://${name}.example` } } },
  });
}

/** Waits for Ready=True describing generation `generation`. */
function reconciled(name: string, generation = 1): Promise<true> {
  return eventually(
    `${name} Ready at generation ${generation}`,
    async () => {
      const stored = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: apps, name })) as {
        status?: ExternalIntegrationStatus;
      };
      const ready = stored.status?.conditions?.find((c) => c.type === 'Ready');
      return { done: ready?.status === 'True' && stored.status?.observedGeneration === generation ? true : undefined, seen: stored.status };
    },
    90_000,
  );
}

const informerEvents = (event: string) =>
  operator.metric('breakwater_operator_informer_events_total', { resource: PLURAL, event });

beforeAll(async () => {
  cp = await ControlPlane.start({ binDir: inject('k8sBinDir'), tier: 1, apiServerArgs: ['--watch-cache=false'] });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  await installCrd(kubectlFor(inject('k8sBinDir'), cp.kubeconfigPath));
  await core.createNamespace({ body: { metadata: { name: 'breakwater-system' } } });
  await core.createNamespace({ body: { metadata: { name: apps } } });
  operator = await startOperator({ kubeconfig: cp.kubeconfigPath, namespace: 'breakwater-system', args: ['--watch-timeout=2s'] });
  await createIntegration('before');
  await reconciled('before');
});

afterAll(async () => {
  await operator?.kill();
  await cp?.stop();
});

describe('kube-apiserver restarted mid-test', () => {
  it('changes made after the restart are reconciled by the same operator process', async () => {
    const pid = operator.pid;
    const errorsBefore = await informerEvents('error');
    await cp.restartApiServer();

    await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: apps, name: 'before', body: { spec: { retry: { maxAttempts: 4 } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await createIntegration('after');
    await reconciled('before', 2);
    await reconciled('after');

    expect(operator.running()).toBe(true);
    expect(operator.pid).toBe(pid);
    // The watch really broke: reconnecting to the stopped server failed at least once.
    expect(await informerEvents('error')).toBeGreaterThan(errorsBefore);
  });
});

describe('an expired watch (410 Gone)', () => {
  it('is answered with a re-list, and later changes are reconciled', async () => {
    const expiredBefore = await informerEvents('expired');
    const listedBefore = await informerEvents('listed');
    // Move etcd on past every resourceVersion the informer holds, then throw that history away: the
    // informer's next watch (at most 4 s away) asks for a compacted revision.
    for (let i = 0; i < 5; i++) {
      await core.createNamespacedConfigMap({ namespace: apps, body: { metadata: { name: `noise-${i}` }, data: { i: String(i) } } });
    }
    await cp.compactEtcd();
    await eventually('a 410 seen by the ExternalIntegration informer', async () => {
      const n = await informerEvents('expired');
      return { done: n > expiredBefore ? n : undefined, seen: n };
    });

    await createIntegration('after-410');
    await reconciled('after-410');
    expect(operator.running()).toBe(true);
    // The 410 was answered by listing again, not by watching from a newer resourceVersion.
    expect(await informerEvents('listed')).toBeGreaterThan(listedBefore);
  });
});
