// The injected pod really works. The real operator (a process, registered by URL) renders the
// namespace's ConfigMap and injects a Pod through the real API server; then this test takes the stored
// Pod's sidecar container (command, args, env, and the ConfigMap and Secret behind its mounts, read back
// from the API server), lays those mounts out in a temp folder, starts the real `breakwater sidecar`
// with exactly that spec, rewriting only the mount paths, and makes the app's call through the URL in
// the app container's BREAKWATER_<NAME>_URL to a loopback vendor that fails on purpose.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1ConfigMap, V1Container, V1EnvVar, V1Pod, V1Secret } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient } from '../../src/kube/client.ts';
import { eventually, kubectlFor } from '../support/kube.ts';
import { installCrd, podManifest } from '../support/injection.ts';
import { ok } from '../support/kube.ts';
import { freePort, logTail, startProcess, stopProcess, type Managed } from '../support/processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'cmd', 'breakwater.ts');
const kubeconfig = inject('kubeconfig');
const kubectl = kubectlFor(inject('k8sBinDir'), kubeconfig);
const suffix = Math.random().toString(36).slice(2, 8);
const system = `bw-operator-${suffix}`;
const apps = `bw-runs-${suffix}`;
const work = mkdtempSync(join(tmpdir(), 'bw-injected-pod-'));

let client: KubeClient;
let operator: Managed | undefined;
let sidecar: Managed | undefined;
let vendor: Server;
const vendorCalls: { path: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  client = new KubeClient({ kubeconfig, userAgent: 'breakwater-test/injected-pod-runs' });
  await installCrd(kubectl);
  await ok(kubectl, ['create', 'namespace', system]);
  await ok(kubectl, ['create', 'namespace', apps]);
  await ok(kubectl, ['wait', '-n', apps, '--for=create', 'serviceaccount/default', '--timeout=30s']);

  // Fails twice on purpose, then answers; every attempt must carry the credential from the Secret.
  vendor = createServer((req, res) => {
    vendorCalls.push({ path: req.url ?? '', headers: req.headers });
    if (vendorCalls.length <= 2) res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"overloaded"}');
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"charge":"ch_1"}');
  });
  await new Promise<void>((resolve) => vendor.listen(0, '127.0.0.1', resolve));
  const vendorPort = (vendor.address() as AddressInfo).port;

  await ok(kubectl, ['create', 'secret', 'generic', 'vendor-key', '-n', apps, '--from-literal=token=s3cret']);
  const integration = {
    apiVersion: 'breakwater.dev/v1alpha1',
    kind: 'ExternalIntegration',
    metadata: { name: 'vendor', namespace: apps },
    spec: {
      upstream: { url: `http://127.0.0.1:${vendorPort}` },
      retry: { maxAttempts: 3, backoff: { initial: '10ms', max: '20ms' }, budget: { percent: 100, minPerSecond: 10 } },
      auth: { header: 'Authorization', prefix: 'Bearer ', secretRef: { name: 'vendor-key', key: 'token' } },
    },
  };
  await ok(kubectl, ['apply', '-f', '-'], JSON.stringify(integration));

  const [webhookPort, adminPort] = [await freePort(), await freePort()];
  mkdirSync(join(work, 'logs'));
  operator = startProcess(
    'operator',
    process.execPath,
    [
      CLI,
      'operator',
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${system}`,
      `--webhook-url=https://127.0.0.1:${webhookPort}`,
      `--webhook-port=${webhookPort}`,
      `--admin-port=${adminPort}`,
      '--sidecar-image=breakwater:test',
    ],
    join(work, 'logs', 'operator.log'),
  );
  await eventually('the operator ready (caches synced, webhook registered)', async () => {
    if (operator?.child.exitCode !== null) throw new Error(`operator exited:\n${logTail(operator!)}`);
    const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
    const registered = (await kubectl(['get', 'mutatingwebhookconfiguration', 'breakwater', '-o', 'name'])).code === 0;
    return { done: res?.status === 200 && registered ? true : undefined, seen: { readyz: res?.status, registered } };
  });
  await eventually('the ConfigMap rendered with the integration', async () => {
    const r = await kubectl(['get', 'configmap', 'breakwater-integrations', '-n', apps, '-o', 'jsonpath={.data.integrations\\.yaml}']);
    return { done: r.code === 0 && r.stdout.includes('name: vendor') ? true : undefined, seen: r.stderr || r.stdout };
  });
});

afterAll(async () => {
  if (sidecar) await stopProcess(sidecar);
  if (operator) await stopProcess(operator);
  vendor?.close();
  await kubectl(['delete', 'mutatingwebhookconfiguration', 'breakwater', '--ignore-not-found']);
  await kubectl(['delete', 'namespace', apps, system, '--wait=false']);
  await client?.close();
  rmSync(work, { recursive: true, force: true });
});

function envValue(env: V1EnvVar[] | undefined, name: string): string {
  const value = env?.find((e) => e.name === name)?.value;
  if (value === undefined) throw new Error(`no ${name} in ${JSON.stringify(env)}`);
  return value;
}

/** The container's filesystem, as far as its mounts go: mountPath `/a/b` is the folder `<root>/a/b`. */
const root = join(work, 'rootfs');

/** Writes what the kubelet would mount for each ConfigMap or Secret volume; returns the mount paths. */
async function materialiseMounts(pod: V1Pod, container: V1Container): Promise<string[]> {
  const mounted: string[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.spec?.volumes?.find((v) => v.name === mount.name);
    let files: Record<string, string>;
    if (volume?.configMap) {
      files = (await client.getJson<V1ConfigMap>(`/api/v1/namespaces/${apps}/configmaps/${volume.configMap.name!}`)).data ?? {};
    } else if (volume?.secret) {
      const secret = await client.getJson<V1Secret>(`/api/v1/namespaces/${apps}/secrets/${volume.secret.secretName!}`);
      files = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    } else continue; // the API server's service-account token: the sidecar never talks to Kubernetes
    const dir = join(root, mount.mountPath);
    mkdirSync(dir, { recursive: true });
    for (const [key, content] of Object.entries(files)) writeFileSync(join(dir, key), content);
    mounted.push(mount.mountPath);
  }
  return mounted;
}

/**
 * Rewrites a flag value (`--x=/path` or `/path`) that names a mount, a file in one, or a folder holding
 * mounts (the secrets dir) to the same path under the temp root. Nothing else changes.
 */
function rewriteMountPaths(value: string, mounts: readonly string[]): string {
  const match = /^(--[a-z-]+=)?(\/.*)$/.exec(value);
  if (!match) return value;
  const [, flag = '', path = ''] = match;
  const related = mounts.some((m) => path === m || path.startsWith(`${m}/`) || m.startsWith(`${path}/`));
  return related ? `${flag}${join(root, path)}` : value;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createNetServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

describe('an injected Pod', () => {
  it("runs: the app's call through BREAKWATER_VENDOR_URL gets the integration's retries and credential", async () => {
    const { stdout, stderr } = await kubectl(['create', '-n', apps, '-o', 'json', '-f', '-'], JSON.stringify(podManifest('checkout', { 'breakwater.dev/inject': 'true' })));
    expect(stderr).toBe('');
    const pod = JSON.parse(stdout) as V1Pod;
    const spec = pod.spec?.initContainers?.find((c) => c.name === 'breakwater');
    expect(spec, 'the stored Pod has the sidecar').toBeDefined();
    const app = pod.spec?.containers.find((c) => c.name === 'app');
    const appUrl = envValue(app?.env, 'BREAKWATER_VENDOR_URL');
    expect(appUrl).toBe('http://127.0.0.1:15080/vendor');

    const mounts = await materialiseMounts(pod, spec!);
    expect([...mounts].sort()).toEqual(['/etc/breakwater/config', '/etc/breakwater/secrets/vendor-key']);
    expect(spec!.command).toEqual(['breakwater']);
    const args = (spec!.args ?? []).map((a) => rewriteMountPaths(a, mounts));
    const env = Object.fromEntries((spec!.env ?? []).map((e) => [e.name, rewriteMountPaths(e.value ?? '', mounts)]));
    const adminPort = spec!.ports?.find((p) => p.name === spec!.readinessProbe?.httpGet?.port)?.containerPort;
    expect(adminPort).toBe(15090);
    for (const port of [15080, adminPort!]) expect(await portFree(port), `127.0.0.1:${port} must be free for the sidecar`).toBe(true);

    // `breakwater` in the image is this CLI; the environment is the container's, nothing of ours.
    sidecar = startProcess('sidecar', process.execPath, [CLI, ...args], join(work, 'logs', 'sidecar.log'), env);
    const readyPath = spec!.readinessProbe?.httpGet?.path;
    await eventually('the sidecar ready on its readiness probe', async () => {
      if (sidecar?.child.exitCode !== null) throw new Error(`sidecar exited:\n${logTail(sidecar!)}`);
      const res = await fetch(`http://127.0.0.1:${adminPort}${readyPath}`).catch(() => undefined);
      return { done: res?.status === 200 ? true : undefined, seen: res?.status };
    }, 20_000);

    const res = await fetch(`${appUrl}/v1/charges?limit=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ charge: 'ch_1' });
    expect(res.headers.get('x-breakwater-attempts')).toBe('3');
    expect(vendorCalls.map((c) => c.path)).toEqual(['/v1/charges?limit=1', '/v1/charges?limit=1', '/v1/charges?limit=1']);
    expect(vendorCalls.map((c) => c.headers.authorization)).toEqual(['Bearer s3cret', 'Bearer s3cret', 'Bearer s3cret']);
  });
});
