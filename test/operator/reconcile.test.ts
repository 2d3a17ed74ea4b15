// The reconciler as users meet it: ExternalIntegrations applied to a real API server, a real operator
// process turning them into the sidecar's ConfigMap and each resource's status.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi, EventsV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseIntegrations } from '../../src/api/documents.ts';
import { ANNOTATION_CONFIG_HASH, API_VERSION, CONFIG_KEY, CONFIG_MAP_NAME, GROUP, integrationUrl, KIND, PLURAL, VERSION } from '../../src/api/names.ts';
import type { ExternalIntegrationStatus } from '../../src/api/schema.ts';
import { CONFIG_MAP_DATA_MAX_BYTES } from '../../src/operator/reconcile.ts';
import { installCrd } from '../support/injection.ts';
import { eventually, kubectlFor } from '../support/kube.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';
import { freePort } from '../support/processes.ts';

const kubeconfig = inject('kubeconfig');
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const eventsApi = kc.makeApiClient(EventsV1Api);
const run = Date.now().toString(36);
const namespaces: string[] = [];
let operator: OperatorProcess;

interface Stored {
  metadata: { name: string; generation: number; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: ExternalIntegrationStatus;
}

async function namespace(prefix: string): Promise<string> {
  const name = `${prefix}-${run}`;
  await core.createNamespace({ body: { metadata: { name } } });
  namespaces.push(name);
  return name;
}

function createIntegration(ns: string, name: string, spec: Record<string, unknown>): Promise<unknown> {
  return custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: ns,
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec },
  });
}

async function getIntegration(ns: string, name: string): Promise<Stored> {
  return (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name })) as Stored;
}

function deleteIntegration(ns: string, name: string): Promise<unknown> {
  return custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name });
}

async function configMap(ns: string): Promise<V1ConfigMap | undefined> {
  try {
    return await core.readNamespacedConfigMap({ name: CONFIG_MAP_NAME, namespace: ns });
  } catch {
    return undefined;
  }
}

/** The integrations the sidecar would load from the namespace's ConfigMap, by name. */
async function rendered(ns: string): Promise<Map<string, { spec: unknown; namespace?: string }> | undefined> {
  const cm = await configMap(ns);
  const text = cm?.data?.[CONFIG_KEY];
  if (text === undefined) return undefined;
  const { integrations, problems } = parseIntegrations(text);
  expect(problems).toEqual([]);
  return new Map(integrations.map((i) => [i.metadata.name, { spec: i.spec, namespace: i.metadata.namespace }]));
}

function ready(stored: Stored) {
  return stored.status?.conditions?.find((c) => c.type === 'Ready');
}

/** Waits until the integration's status describes its current generation and Ready has `status`. */
function settled(ns: string, name: string, status: 'True' | 'False'): Promise<Stored> {
  return eventually(`${ns}/${name} Ready=${status} at its generation`, async () => {
    const stored = await getIntegration(ns, name);
    const ok = stored.status?.observedGeneration === stored.metadata.generation && ready(stored)?.status === status;
    return { done: ok ? stored : undefined, seen: stored.status };
  });
}

const STRIPE = { upstream: { url: 'https://api.stripe.example' }, retry: { maxAttempts: 3 } };
const MAILER = { upstream: { url: 'https://mail.example' }, auth: { secretRef: { name: 'mail-key', key: 'token' } } };

beforeAll(async () => {
  await installCrd(kubectlFor(inject('k8sBinDir'), kubeconfig));
  const own = await namespace('bw-operator');
  operator = await startOperator({ kubeconfig, namespace: own });
});

afterAll(async () => {
  await operator?.stop();
  for (const ns of namespaces) await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('one namespace through its lifecycle', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await namespace('shop');
  });

  it('apply: the ConfigMap holds the integration as the sidecar reads it, and Ready=True at the current generation', async () => {
    await createIntegration(ns, 'stripe', STRIPE);
    const stored = await settled(ns, 'stripe', 'True');
    expect(stored.metadata.generation).toBe(1);
    expect(ready(stored)).toMatchObject({ reason: 'Configured', observedGeneration: 1 });
    expect(stored.status?.url).toBe(integrationUrl('stripe'));

    const cm = await configMap(ns);
    const text = cm?.data?.[CONFIG_KEY] ?? '';
    expect(cm?.metadata?.annotations?.[ANNOTATION_CONFIG_HASH]).toBe(createHash('sha256').update(text).digest('hex'));
    const { integrations, problems } = parseIntegrations(text);
    expect(problems).toEqual([]);
    // Exactly what a user would apply: no status, managedFields, uid or resourceVersion.
    expect(integrations).toEqual([{ apiVersion: API_VERSION, kind: KIND, metadata: { name: 'stripe', namespace: ns }, spec: STRIPE }]);
  });

  it('update: the ConfigMap and the status follow the new generation', async () => {
    await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name: 'stripe', body: { spec: { retry: { maxAttempts: 5 } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const stored = await eventually('stripe observedGeneration 2', async () => {
      const s = await getIntegration(ns, 'stripe');
      return { done: s.status?.observedGeneration === 2 ? s : undefined, seen: s.status };
    });
    expect(ready(stored)).toMatchObject({ status: 'True', observedGeneration: 2 });
    const byName = await rendered(ns);
    expect(byName?.get('stripe')?.spec).toEqual({ ...STRIPE, retry: { maxAttempts: 5 } });
  });

  it('a missing Secret: Ready=False SecretNotFound with the field path, still in the ConfigMap so calls say why; the others unaffected', async () => {
    await createIntegration(ns, 'mailer', MAILER);
    const mailer = await settled(ns, 'mailer', 'False');
    expect(ready(mailer)).toMatchObject({
      reason: 'SecretNotFound',
      message: `spec.auth.secretRef.name: Secret "mail-key" not found in namespace "${ns}"; calls get 503 credentials_unavailable until it exists`,
      observedGeneration: 1,
    });
    const byName = await eventually('mailer in the ConfigMap', async () => {
      const r = await rendered(ns);
      return { done: r?.has('mailer') ? r : undefined, seen: [...(r?.keys() ?? [])] };
    });
    expect([...byName.keys()].sort()).toEqual(['mailer', 'stripe']);
    expect(ready(await getIntegration(ns, 'stripe'))).toMatchObject({ status: 'True', observedGeneration: 2 });

    const warning = await eventually('a SecretNotFound Event on mailer', async () => {
      const list = await eventsApi.listNamespacedEvent({ namespace: ns });
      const found = list.items.find((e) => e.regarding?.name === 'mailer' && e.reason === 'SecretNotFound');
      return { done: found, seen: list.items.map((e) => `${e.regarding?.name}:${e.reason}`) };
    });
    expect(warning.type).toBe('Warning');
    expect(warning.note).toContain('mail-key');
  });

  it('creating the Secret makes it Ready; the ConfigMap keeps it', async () => {
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'mail-key' }, stringData: { token: 'not-read-by-the-operator' } } });
    const mailer = await settled(ns, 'mailer', 'True');
    expect(ready(mailer)?.reason).toBe('Configured');
    const byName = (await rendered(ns))!;
    expect([...byName.keys()].sort()).toEqual(['mailer', 'stripe']);
    expect(byName.get('mailer')?.spec).toEqual(MAILER);
  });

  it('a ConfigMap edited by hand is put back', async () => {
    const before = (await configMap(ns))?.data?.[CONFIG_KEY];
    await core.patchNamespacedConfigMap(
      { name: CONFIG_MAP_NAME, namespace: ns, body: { data: { [CONFIG_KEY]: 'garbage: true\n' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await eventually('the ConfigMap restored', async () => {
      const now = (await configMap(ns))?.data?.[CONFIG_KEY];
      return { done: now === before ? true : undefined, seen: now };
    });
  });

  it('a ConfigMap deleted after its first write is put back', async () => {
    // A namespace whose ConfigMap was written once, on creation: nothing has changed it since.
    const other = await namespace('fresh');
    await createIntegration(other, 'stripe', STRIPE);
    await settled(other, 'stripe', 'True');
    const before = (await configMap(other))?.data?.[CONFIG_KEY];
    expect(before).toContain('stripe');
    await core.deleteNamespacedConfigMap({ name: CONFIG_MAP_NAME, namespace: other });
    await eventually('the ConfigMap recreated', async () => {
      const now = (await configMap(other))?.data?.[CONFIG_KEY];
      return { done: now === before ? true : undefined, seen: now ?? '(none)' };
    });
  });

  it('delete: the ConfigMap drops it; after the last one it holds an empty list rather than disappearing', async () => {
    await deleteIntegration(ns, 'stripe');
    await eventually('stripe gone from the ConfigMap', async () => {
      const r = await rendered(ns);
      return { done: r && !r.has('stripe') ? true : undefined, seen: [...(r?.keys() ?? [])] };
    });
    expect([...((await rendered(ns)) ?? new Map()).keys()]).toEqual(['mailer']);

    await deleteIntegration(ns, 'mailer');
    const empty = await eventually('an empty ConfigMap', async () => {
      const r = await rendered(ns);
      return { done: r?.size === 0 ? r : undefined, seen: [...(r?.keys() ?? ['(no ConfigMap)'])] };
    });
    expect(empty.size).toBe(0);
    expect((await configMap(ns))?.data?.[CONFIG_KEY]).toBe('');
  });
});

describe('a namespace whose integrations outgrow one ConfigMap', () => {
  it('says so on every integration and keeps the last ConfigMap that fit, until they fit again', async () => {
    const ns = await namespace('big');
    await createIntegration(ns, 'small', STRIPE);
    await settled(ns, 'small', 'True');
    // 16 fallback bodies of 64 KiB, with the one above: over the 1 MiB a ConfigMap holds.
    const big = (i: number) => ({ ...STRIPE, fallback: { status: 200, body: String(i % 10).repeat(65_536) } });
    const names = Array.from({ length: 16 }, (_, i) => `vendor-${i}`);
    for (const [i, name] of names.entries()) await createIntegration(ns, name, big(i));
    const refused = await settled(ns, 'small', 'False');
    expect(ready(refused)).toMatchObject({ reason: 'ConfigTooLarge' });
    expect(ready(refused)?.message).toMatch(new RegExp(`^this namespace's integrations make \\d+ bytes of sidecar config, more than the ${CONFIG_MAP_DATA_MAX_BYTES} one ConfigMap holds`));
    for (const name of names) expect(ready(await settled(ns, name, 'False'))).toMatchObject({ reason: 'ConfigTooLarge' });
    // The last config that fit stays, as it was written while they were being created.
    const kept = (await configMap(ns))?.data?.[CONFIG_KEY] ?? '';
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(CONFIG_MAP_DATA_MAX_BYTES);
    expect((await rendered(ns))?.has('small')).toBe(true);

    // 15 of them fit.
    await deleteIntegration(ns, 'vendor-15');
    await settled(ns, 'small', 'True');
    expect([...((await rendered(ns)) ?? new Map()).keys()].sort()).toEqual(['small', ...names.slice(0, 15)].sort());
  });
});

describe('level-triggered', () => {
  it('a reconcile with nothing new to do writes nothing', async () => {
    const ns = await namespace('steady');
    await createIntegration(ns, 'geo', { upstream: { url: 'https://geo.example' } });
    await createIntegration(ns, 'courier', { upstream: { url: 'https://courier.example' } });
    await settled(ns, 'geo', 'True');
    await settled(ns, 'courier', 'True');
    const versions = async () => [
      (await configMap(ns))?.metadata?.resourceVersion,
      (await getIntegration(ns, 'geo')).metadata.resourceVersion,
      (await getIntegration(ns, 'courier')).metadata.resourceVersion,
    ];
    const before = await versions();
    const reconciles = () => operator.metric('breakwater_operator_reconcile_total', { result: 'success' });
    const patches = () => operator.metric('breakwater_operator_api_requests_total', { verb: 'PATCH' });
    // The counter covers every namespace. Namespaces that earlier test files deleted may still be
    // terminating: the operator's writes there fail and come back with a growing backoff, longer than
    // any quiet window. Wait for them to be gone, then take the baseline after 2 s without a PATCH
    // (four equal samples 500 ms apart).
    await eventually('no namespace terminating', async () => {
      const terminating = (await core.listNamespace()).items.filter((n) => n.status?.phase === 'Terminating').map((n) => n.metadata?.name);
      return { done: terminating.length === 0 ? true : undefined, seen: terminating };
    }, 120_000, 500);
    const recent: number[] = [];
    await eventually('no PATCH in flight', async () => {
      recent.push(await patches());
      const quiet = recent.length >= 4 && recent.slice(-4).every((n) => n === recent.at(-1));
      return { done: quiet ? true : undefined, seen: recent.slice(-4) };
    }, 30_000, 500);
    const [reconciledBefore, patchesBefore] = [await reconciles(), await patches()];

    // Any Secret event in a namespace with integrations wakes its reconciler.
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'unrelated' }, stringData: { a: 'b' } } });
    await eventually('another reconcile', async () => {
      const n = await reconciles();
      return { done: n > reconciledBefore ? n : undefined, seen: n };
    });
    expect(await patches()).toBe(patchesBefore);
    expect(await versions()).toEqual(before);
  });
});

describe('an operator whose port is taken', () => {
  it('says which port and why, stops, and exits 1, without a stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '0.0.0.0', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const webhookPort = await freePort();
      const r = spawnSync(
        process.execPath,
        [
          fileURLToPath(new URL('../../cmd/breakwater.ts', import.meta.url)),
          'operator',
          `--kubeconfig=${kubeconfig}`,
          `--namespace=${await namespace('taken-port')}`,
          `--admin-port=${port}`,
          `--webhook-port=${webhookPort}`,
          `--webhook-url=https://127.0.0.1:${webhookPort}`,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      const output = r.stdout + r.stderr;
      expect(r.status).toBe(1);
      expect(output).toContain(`cannot listen on 0.0.0.0:${port}: the port is in use by another process`);
      expect(output).not.toMatch(/^\s+at /m);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
