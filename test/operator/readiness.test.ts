// The operator's /readyz says whether this replica does its part. Before, it said ok as soon as the
// informers had listed, while its webhook was not served yet; and its controllers started only after
// every replica runnable had, so a webhook stuck on its certificate also stopped all reconciling.
// Here the webhook cannot start: its certificate Secret belongs in the operator's own namespace, which
// does not exist yet.
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../src/api/names.ts';
import type { ExternalIntegrationStatus } from '../../src/api/schema.ts';
import { installCrd } from '../support/injection.ts';
import { eventually, kubectlFor } from '../support/kube.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';

const kubeconfig = inject('kubeconfig');
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const run = Date.now().toString(36);
const own = `bw-ready-${run}`;
const apps = `ready-apps-${run}`;
let operator: OperatorProcess;

async function readyz(): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${operator.adminPort}/readyz`);
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  await installCrd(kubectlFor(inject('k8sBinDir'), kubeconfig));
  await core.createNamespace({ body: { metadata: { name: apps } } });
  operator = await startOperator({ kubeconfig, namespace: own, args: ['--leader-elect=false'] });
});

afterAll(async () => {
  await operator?.stop();
  await core.deleteNamespace({ name: apps }).catch(() => undefined);
  await core.deleteNamespace({ name: own }).catch(() => undefined);
});

describe('operator readiness', () => {
  it('is not ready while its webhook is not served, reconciles meanwhile, and is ready once the webhook serves', async () => {
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: apps,
      body: { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'vendor' }, spec: { upstream: { url: 'https://vendor.example' } } },
    });
    await eventually('vendor Ready while the webhook cannot start', async () => {
      const stored = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: apps, name: 'vendor' })) as {
        status?: ExternalIntegrationStatus;
      };
      const ready = stored.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      return { done: ready || undefined, seen: stored.status };
    });
    const notReady = await readyz();
    expect(notReady).toEqual({ status: 503, text: 'not ready: admission-webhook: not started yet\n' });

    await core.createNamespace({ body: { metadata: { name: own } } });
    const ready = await eventually(
      'ready once the certificate is stored and the webhook serves',
      async () => {
        const r = await readyz();
        return { done: r.status === 200 ? r : undefined, seen: r };
      },
      60_000,
    );
    expect(ready.text).toBe('ok\n');
    // Log lines are written in batches, at least once a second.
    await eventually('the webhook logged as ready', async () => {
      const logged = operator.logs().some((line) => line.msg === 'admission webhook ready');
      return { done: logged || undefined, seen: operator.logs().length };
    });
  });
});
