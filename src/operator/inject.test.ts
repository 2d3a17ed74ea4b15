import type { V1Container, V1Namespace, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  ANNOTATION_INJECT,
  ANNOTATION_INTEGRATIONS,
  ANNOTATION_SIDECAR_CPU,
  ANNOTATION_SIDECAR_MEMORY,
  ANNOTATION_SIDECAR_MEMORY_LIMIT,
  ANNOTATION_STATUS,
  CONFIG_DIR,
  CONFIG_MAP_NAME,
  DATA_DIR,
  LABEL_INJECTION,
  SECRETS_DIR,
  SIDECAR_ADMIN_PORT,
  SIDECAR_CONTAINER_NAME,
} from '../api/names.ts';
import type { ExternalIntegration } from '../api/schema.ts';
import { inject, secretVolumeName, sidecarMode, type InjectInput, type InjectionStatus } from './inject.ts';
import { TEST_INJECT_SETTINGS } from '../../test/fixtures/inject-settings.ts';

const SETTINGS = TEST_INJECT_SETTINGS;
/** The sidecar's memory settings for the default 256Mi limit. */
const RUNTIME_ENV = [
  { name: 'NODE_OPTIONS', value: '--enable-source-maps --max-semi-space-size=1 --max-old-space-size=128' },
  { name: 'MALLOC_ARENA_MAX', value: '2' },
];

function integration(name: string, spec: Partial<ExternalIntegration['spec']> = {}): ExternalIntegration {
  return {
    apiVersion: 'breakwater.dev/v1alpha1',
    kind: 'ExternalIntegration',
    metadata: { name, namespace: 'shop' },
    spec: { upstream: { url: `https://${name}.example` }, ...spec },
  };
}

const STRIPE = integration('stripe', { auth: { secretRef: { name: 'stripe-key', key: 'token' } } });
const COURIER = integration('fan-courier', {
  upstream: { url: 'https://courier.example', tls: { caSecretRef: { name: 'courier-ca', key: 'ca.crt' } } },
});
const GEO = integration('geo');

function pod(annotations: Record<string, string> = {}, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', namespace: 'shop', annotations },
    spec: {
      containers: [
        { name: 'app', image: 'app:1', env: [{ name: 'KEEP', value: 'me' }] },
        { name: 'worker', image: 'app:1' },
      ],
      ...extra,
    },
  };
}

const NS: V1Namespace = { metadata: { name: 'shop' } };
const NS_ENABLED: V1Namespace = { metadata: { name: 'shop', labels: { [LABEL_INJECTION]: 'enabled' } } };

function run(p: V1Pod, overrides: Partial<InjectInput> = {}) {
  return inject({ pod: p, namespace: NS, integrations: [STRIPE, COURIER, GEO], settings: SETTINGS, ...overrides });
}

function sidecarOf(p: V1Pod): V1Container {
  const found = [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === SIDECAR_CONTAINER_NAME);
  if (!found) throw new Error('no sidecar');
  return found;
}

function status(p: V1Pod): InjectionStatus {
  return JSON.parse(p.metadata?.annotations?.[ANNOTATION_STATUS] ?? 'null') as InjectionStatus;
}

describe('eligibility', () => {
  it('leaves a pod without the annotation in a plain namespace unchanged, and says why', () => {
    const input = pod();
    const r = run(input);
    expect(r).toMatchObject({ injected: false, reason: 'not-selected', warnings: [] });
    expect(r.pod).toEqual(input);
    expect(r.pod).not.toBe(input);
  });

  it('injects a pod annotated inject: "true"', () => {
    expect(run(pod({ [ANNOTATION_INJECT]: 'true' }))).toMatchObject({ injected: true, reason: 'injected' });
  });

  it('injects every pod of a namespace labelled injection=enabled', () => {
    expect(run(pod(), { namespace: NS_ENABLED })).toMatchObject({ injected: true, reason: 'injected' });
  });

  it('skips pods of a labelled namespace that has no integration, unless the pod asks by annotation', () => {
    const r = run(pod(), { namespace: NS_ENABLED, integrations: [] });
    expect(r).toMatchObject({
      injected: false,
      reason: 'no-integrations',
      message: 'namespace label breakwater.dev/injection=enabled, but the namespace has no ExternalIntegration',
    });
    expect(r.pod.spec?.initContainers).toBeUndefined();
    expect(run(pod({ [ANNOTATION_INJECT]: 'true' }), { namespace: NS_ENABLED, integrations: [] })).toMatchObject({ injected: true });
  });

  it('lets a pod opt out with inject: "false", even in an enabled namespace', () => {
    const r = run(pod({ [ANNOTATION_INJECT]: 'false' }), { namespace: NS_ENABLED });
    expect(r).toMatchObject({ injected: false, reason: 'opted-out', warnings: [] });
  });

  it('warns about an inject value that is neither "true" nor "false" and does not inject for it', () => {
    const r = run(pod({ [ANNOTATION_INJECT]: 'yes' }));
    expect(r).toMatchObject({ injected: false, reason: 'not-selected' });
    expect(r.warnings).toEqual([expect.stringContaining('must be "true" or "false", got "yes"')]);
  });

  it('skips a hostNetwork pod that asked for the sidecar, with a warning', () => {
    const r = run(pod({ [ANNOTATION_INJECT]: 'true' }, { hostNetwork: true }));
    expect(r).toMatchObject({ injected: false, reason: 'host-network' });
    expect(r.warnings).toEqual([expect.stringContaining('hostNetwork')]);
  });

  it("skips a Job's pod when the sidecar would be a regular container, which would keep it from completing", () => {
    const container = { ...SETTINGS, mode: 'container' as const };
    for (const restartPolicy of ['Never', 'OnFailure']) {
      const r = run(pod({ [ANNOTATION_INJECT]: 'true' }, { restartPolicy }), { settings: container });
      expect(r).toMatchObject({ injected: false, reason: 'runs-to-completion' });
      expect(r.warnings).toEqual([expect.stringContaining(`the pod runs to completion (restartPolicy ${restartPolicy})`)]);
      // Native sidecars end with the pod.
      expect(run(pod({ [ANNOTATION_INJECT]: 'true' }, { restartPolicy })).injected).toBe(true);
    }
    expect(run(pod({ [ANNOTATION_INJECT]: 'true' }, { restartPolicy: 'Always' }), { settings: container }).injected).toBe(true);
  });

  it('is idempotent: injecting an injected pod changes nothing', () => {
    const once = run(pod({ [ANNOTATION_INJECT]: 'true' })).pod;
    const twice = run(once);
    expect(twice).toMatchObject({ injected: false, reason: 'already-injected' });
    expect(twice.pod).toEqual(once);
  });

  it('is idempotent in container mode too, and when only the sidecar container is present', () => {
    const settings = { ...SETTINGS, mode: 'container' as const };
    const once = run(pod({ [ANNOTATION_INJECT]: 'true' }), { settings }).pod;
    expect(run(once, { settings }).pod).toEqual(once);
    const { [ANNOTATION_STATUS]: _dropped, ...rest } = once.metadata?.annotations ?? {};
    const withoutStatus = { ...once, metadata: { ...once.metadata, annotations: rest } };
    expect(run(withoutStatus, { settings })).toMatchObject({ injected: false, reason: 'already-injected' });
  });
});

describe('what gets injected', () => {
  const injected = run(pod({ [ANNOTATION_INJECT]: 'true' })).pod;
  const sidecar = sidecarOf(injected);

  it('adds a native sidecar first among the init containers on >= 1.29', () => {
    expect(injected.spec?.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER_NAME);
    expect(sidecar.restartPolicy).toBe('Always');
    expect(injected.spec?.containers.map((c) => c.name)).toEqual(['app', 'worker']);
  });

  it('keeps existing init containers after the sidecar', () => {
    const p = run(pod({ [ANNOTATION_INJECT]: 'true' }, { initContainers: [{ name: 'migrate', image: 'm:1' }] })).pod;
    expect(p.spec?.initContainers?.map((c) => c.name)).toEqual([SIDECAR_CONTAINER_NAME, 'migrate']);
  });

  it('runs `breakwater sidecar` with the config file, secrets dir and ports', () => {
    expect(sidecar.command).toEqual(['breakwater']);
    expect(sidecar.args?.[0]).toBe('sidecar');
    expect(sidecar.args).toContain(`--config=${CONFIG_DIR}/integrations.yaml`);
    expect(sidecar.args).toContain(`--secrets-dir=${SECRETS_DIR}`);
    expect(sidecar.args).toContain('--port=15080');
    expect(sidecar.args).toContain(`--admin-port=${SIDECAR_ADMIN_PORT}`);
    expect(sidecar.image).toBe('breakwater:test');
  });

  it('tells the sidecar the pod\'s selection, resolved at run time: the named ones, or every one (*)', () => {
    const selected = run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_INTEGRATIONS]: 'stripe' })).pod;
    expect(sidecarOf(selected).args).toContain('--integrations=stripe');
    expect(sidecar.args).toContain('--integrations=*');
  });

  it('mounts the ConfigMap (optional) and each referenced Secret read-only into the sidecar only', () => {
    expect(injected.spec?.volumes).toEqual([
      { name: 'breakwater-config', configMap: { name: CONFIG_MAP_NAME, optional: true } },
      { name: 'bw-secret-courier-ca', secret: { secretName: 'courier-ca', optional: true } },
      { name: 'bw-secret-stripe-key', secret: { secretName: 'stripe-key', optional: true } },
      { name: 'breakwater-data', emptyDir: {} },
    ]);
    expect(sidecar.volumeMounts).toEqual([
      { name: 'breakwater-config', mountPath: CONFIG_DIR, readOnly: true },
      { name: 'bw-secret-courier-ca', mountPath: `${SECRETS_DIR}/courier-ca`, readOnly: true },
      { name: 'bw-secret-stripe-key', mountPath: `${SECRETS_DIR}/stripe-key`, readOnly: true },
      { name: 'breakwater-data', mountPath: DATA_DIR },
    ]);
    for (const c of injected.spec?.containers ?? []) expect(c.volumeMounts).toBeUndefined();
  });

  it('gives the sidecar the report endpoint, its CA and a token for our audience, when the pod names its ServiceAccount', () => {
    const report = { url: 'https://breakwater-webhook.breakwater-system.svc/fleet/v1/reports', caBundle: () => 'PEM' };
    const settings = { ...SETTINGS, report };
    const withAccount = run(pod({ [ANNOTATION_INJECT]: 'true' }, { serviceAccountName: 'default' }), { settings }).pod;
    expect(withAccount.spec?.volumes).toContainEqual({
      name: 'breakwater-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'breakwater.dev/fleet', expirationSeconds: 3600, path: 'token' } }] },
    });
    expect(sidecarOf(withAccount).volumeMounts).toContainEqual({ name: 'breakwater-token', mountPath: '/var/run/secrets/breakwater.dev/fleet', readOnly: true });
    expect(sidecarOf(withAccount).env).toEqual([
      ...RUNTIME_ENV,
      { name: 'BREAKWATER_REPORT_URL', value: report.url },
      { name: 'BREAKWATER_REPORT_CA', value: 'PEM' },
    ]);
    for (const c of withAccount.spec?.containers ?? []) expect(c.volumeMounts).toBeUndefined();
    // The API server refuses a token volume in a pod without a ServiceAccount: such a pod does not report.
    const without = run(pod({ [ANNOTATION_INJECT]: 'true' }), { settings }).pod;
    expect(without.spec?.volumes?.map((v) => v.name)).not.toContain('breakwater-token');
    expect(sidecarOf(without).env).toEqual(RUNTIME_ENV);
  });

  it('probes the admin port: startup on /healthz, readiness on /readyz', () => {
    expect(sidecar.ports).toEqual([{ name: 'bw-admin', containerPort: SIDECAR_ADMIN_PORT, protocol: 'TCP' }]);
    expect(sidecar.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'bw-admin' });
    expect(sidecar.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'bw-admin' });
  });

  it('locks the sidecar down', () => {
    expect(sidecar.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('takes resources from the settings', () => {
    expect(sidecar.resources).toEqual({ requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } });
  });

  it('sets BREAKWATER_URL and one URL per integration in every app container, keeping their env', () => {
    const expected = [
      { name: 'BREAKWATER_URL', value: 'http://127.0.0.1:15080' },
      { name: 'BREAKWATER_FAN_COURIER_URL', value: 'http://127.0.0.1:15080/fan-courier' },
      { name: 'BREAKWATER_GEO_URL', value: 'http://127.0.0.1:15080/geo' },
      { name: 'BREAKWATER_STRIPE_URL', value: 'http://127.0.0.1:15080/stripe' },
    ];
    expect(injected.spec?.containers[0]?.env).toEqual([{ name: 'KEEP', value: 'me' }, ...expected]);
    expect(injected.spec?.containers[1]?.env).toEqual(expected);
    expect(sidecar.env).toEqual(RUNTIME_ENV);
  });

  it('records the version, sidecar kind and integrations in the status annotation', () => {
    expect(status(injected)).toEqual({ version: '9.9.9', sidecar: 'native', integrations: ['fan-courier', 'geo', 'stripe'] });
    expect(injected.metadata?.annotations?.[ANNOTATION_INJECT]).toBe('true');
  });

  it('does not touch the input pod', () => {
    const input = pod({ [ANNOTATION_INJECT]: 'true' });
    const copy = structuredClone(input);
    run(input);
    expect(input).toEqual(copy);
  });

  it('keeps an app-defined value of an injected variable', () => {
    const p = pod({ [ANNOTATION_INJECT]: 'true' });
    p.spec!.containers[0]!.env = [{ name: 'BREAKWATER_GEO_URL', value: 'http://mock' }];
    const env = run(p).pod.spec?.containers[0]?.env ?? [];
    expect(env.filter((e) => e.name === 'BREAKWATER_GEO_URL')).toEqual([{ name: 'BREAKWATER_GEO_URL', value: 'http://mock' }]);
  });
});

describe('selection of integrations', () => {
  it('injects only the named ones and mounts only their Secrets', () => {
    const r = run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_INTEGRATIONS]: ' stripe , geo' }));
    expect(r.warnings).toEqual([]);
    expect(status(r.pod).integrations).toEqual(['stripe', 'geo']);
    expect(r.pod.spec?.volumes?.map((v) => v.name)).toEqual(['breakwater-config', 'bw-secret-stripe-key', 'breakwater-data']);
    expect(r.pod.spec?.containers[1]?.env?.map((e) => e.name)).toEqual(['BREAKWATER_URL', 'BREAKWATER_STRIPE_URL', 'BREAKWATER_GEO_URL']);
  });

  it('warns about unknown names, still injects the known ones, and has the sidecar serve the others once created', () => {
    const r = run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_INTEGRATIONS]: 'stripe,strype' }));
    expect(r.injected).toBe(true);
    expect(status(r.pod).integrations).toEqual(['stripe']);
    expect(sidecarOf(r.pod).args).toContain('--integrations=stripe,strype');
    expect(r.pod.spec?.containers[1]?.env?.map((e) => e.name)).toEqual(['BREAKWATER_URL', 'BREAKWATER_STRIPE_URL', 'BREAKWATER_STRYPE_URL']);
    expect(r.warnings).toEqual([
      'breakwater: unknown integration "strype" in breakwater.dev/integrations (integrations in this namespace: fan-courier, geo, stripe)',
    ]);
  });

  it('injects with only BREAKWATER_URL when the namespace has no integration yet', () => {
    const r = run(pod({ [ANNOTATION_INJECT]: 'true' }), { integrations: [] });
    expect(r.injected).toBe(true);
    expect(status(r.pod).integrations).toEqual([]);
    expect(r.pod.spec?.containers[1]?.env).toEqual([{ name: 'BREAKWATER_URL', value: 'http://127.0.0.1:15080' }]);
  });

  it('mounts a Secret shared by two integrations once', () => {
    const a = integration('a', { auth: { secretRef: { name: 'shared', key: 'a' } } });
    const b = integration('b', { auth: { secretRef: { name: 'shared', key: 'b' } } });
    const r = run(pod({ [ANNOTATION_INJECT]: 'true' }), { integrations: [a, b] });
    expect(r.pod.spec?.volumes?.map((v) => v.name)).toEqual(['breakwater-config', 'bw-secret-shared', 'breakwater-data']);
  });
});

describe('settings and overrides', () => {
  it('uses a regular container, appended last, before 1.29 or when told to', () => {
    for (const settings of [
      { ...SETTINGS, serverVersion: { major: 1, minor: 28 } },
      { ...SETTINGS, mode: 'container' as const },
    ]) {
      const p = run(pod({ [ANNOTATION_INJECT]: 'true' }), { settings }).pod;
      expect(p.spec?.initContainers).toBeUndefined();
      expect(p.spec?.containers.map((c) => c.name)).toEqual(['app', 'worker', SIDECAR_CONTAINER_NAME]);
      expect(p.spec?.containers[2]?.restartPolicy).toBeUndefined();
      expect(status(p).sidecar).toBe('container');
    }
  });

  it('picks native from 1.29 on, in auto mode', () => {
    expect(sidecarMode({ mode: 'auto', serverVersion: { major: 1, minor: 29 } })).toBe('native');
    expect(sidecarMode({ mode: 'auto', serverVersion: { major: 2, minor: 0 } })).toBe('native');
    expect(sidecarMode({ mode: 'native', serverVersion: { major: 1, minor: 20 } })).toBe('native');
  });

  it('lets a pod override CPU, memory request and memory limit by annotation', () => {
    const p = run(
      pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_SIDECAR_CPU]: '250m', [ANNOTATION_SIDECAR_MEMORY]: '200Mi', [ANNOTATION_SIDECAR_MEMORY_LIMIT]: '0.5Gi' }),
    ).pod;
    expect(sidecarOf(p).resources).toEqual({ requests: { cpu: '250m', memory: '200Mi' }, limits: { memory: '0.5Gi' } });
  });

  it('never writes a memory request above the limit, which would have the pod refused: the override wins', () => {
    const bigRequest = run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_SIDECAR_MEMORY]: '1.5Gi' })).pod;
    expect(sidecarOf(bigRequest).resources).toEqual({ requests: { cpu: '50m', memory: '1.5Gi' }, limits: { memory: '1.5Gi' } });
    const smallLimit = run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_SIDECAR_MEMORY_LIMIT]: '100M' })).pod;
    expect(sidecarOf(smallLimit).resources).toEqual({ requests: { cpu: '50m', memory: '100M' }, limits: { memory: '100M' } });
    const equal = run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_SIDECAR_MEMORY]: '268435456' })).pod;
    expect(sidecarOf(equal).resources).toEqual({ requests: { cpu: '50m', memory: '268435456' }, limits: { memory: '256Mi' } });
  });

  it('sizes the sidecar\'s V8 heap from the memory limit it gets: an old generation of half of it, 64 MB at least', () => {
    const nodeOptions = (p: V1Pod) => sidecarOf(p).env?.find((e) => e.name === 'NODE_OPTIONS')?.value;
    expect(nodeOptions(run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_SIDECAR_MEMORY_LIMIT]: '0.5Gi' })).pod)).toBe(
      '--enable-source-maps --max-semi-space-size=1 --max-old-space-size=256',
    );
    // The limit that follows a larger request.
    expect(nodeOptions(run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_SIDECAR_MEMORY]: '1.5Gi' })).pod)).toMatch(/ --max-old-space-size=768$/);
    expect(nodeOptions(run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_SIDECAR_MEMORY_LIMIT]: '100M' })).pod)).toMatch(/ --max-old-space-size=64$/);
  });

  it('ignores an override that is not a quantity, with a warning, rather than have the pod rejected', () => {
    const r = run(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_SIDECAR_MEMORY]: 'lots' }));
    expect(sidecarOf(r.pod).resources?.limits).toEqual({ memory: '256Mi' });
    expect(r.warnings).toEqual([expect.stringContaining('breakwater.dev/sidecar-memory is not a resource quantity: "lots"')]);
  });
});

describe('a shared delivery store', () => {
  it('gives the sidecar, and only the sidecar, the store URL and its password from the pod namespace\'s Secret', () => {
    const settings = { ...SETTINGS, deliveryStore: { url: 'redis://redis.infra:6379', passwordSecret: { name: 'breakwater-redis', key: 'password' } } };
    const p = run(pod({ [ANNOTATION_INJECT]: 'true' }), { settings }).pod;
    expect(sidecarOf(p).env).toEqual([
      ...RUNTIME_ENV,
      { name: 'BREAKWATER_DELIVERY_STORE', value: 'redis://redis.infra:6379' },
      // Optional: a namespace without the Secret still runs its pods (their async calls get 503 store_unavailable).
      { name: 'BREAKWATER_DELIVERY_STORE_PASSWORD', valueFrom: { secretKeyRef: { name: 'breakwater-redis', key: 'password', optional: true } } },
    ]);
    for (const c of p.spec?.containers ?? []) expect(JSON.stringify(c.env ?? [])).not.toContain('DELIVERY_STORE');
  });

  it('sets nothing when there is none: each sidecar keeps its sqlite: file on the emptyDir', () => {
    expect(sidecarOf(run(pod({ [ANNOTATION_INJECT]: 'true' })).pod).env).toEqual(RUNTIME_ENV);
  });
});

describe('secretVolumeName', () => {
  it('uses the Secret name when it makes a DNS label, a hash otherwise', () => {
    expect(secretVolumeName('stripe-key')).toBe('bw-secret-stripe-key');
    const dotted = secretVolumeName('tls.example.com');
    expect(dotted).toMatch(/^bw-secret-[0-9a-f]{16}$/);
    expect(secretVolumeName('x'.repeat(60))).toMatch(/^bw-secret-[0-9a-f]{16}$/);
    expect(secretVolumeName('tls.example.com')).toBe(dotted);
  });
});