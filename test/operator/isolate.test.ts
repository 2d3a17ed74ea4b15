// `breakwater isolate` against a real API server: it sets and removes circuitBreaker.forceOpen on the
// stored resource with the user's kubeconfig (as kubectl finds it), and answers with its exit codes.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../src/api/names.ts';
import type { ExternalIntegrationSpec } from '../../src/api/schema.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { commandAt } from '../support/commands.ts';
import { installCrd } from '../support/injection.ts';
import { kubectlFor, kubectlPlugin, ok } from '../support/kube.ts';
import { removeDirAtExit } from '../support/processes.ts';

const kubeconfig = inject('kubeconfig');
const kubectl = kubectlFor(inject('k8sBinDir'), kubeconfig);
const CLI = fileURLToPath(new URL('../../cmd/breakwater.ts', import.meta.url));
const client = new KubeClient({ kubeconfig, userAgent: 'isolate-test' });
const namespace = `isolate-${Date.now().toString(36)}`;
const dir = mkdtempSync(join(tmpdir(), 'breakwater-isolate-'));
removeDirAtExit(dir);
const SPEC: ExternalIntegrationSpec = { upstream: { url: 'http://127.0.0.1:9' }, circuitBreaker: { consecutiveFailures: 3 } };

/** The CLI as kubectl's plugin, with only KUBECONFIG to find the cluster by. */
const kubectlBreakwater = kubectlPlugin(inject('k8sBinDir'), dir, { KUBECONFIG: kubeconfig });

const breakwater = (args: string[], env: Record<string, string> = {}) =>
  commandAt(process.execPath, [CLI], { env: { PATH: '/usr/bin:/bin', HOME: dir, ...env } })(args);

async function storedSpec(name: string): Promise<ExternalIntegrationSpec> {
  return (await client.getJson<{ spec: ExternalIntegrationSpec }>(`/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}/${name}`)).spec;
}

beforeAll(async () => {
  await installCrd(kubectl);
  await ok(kubectl, ['create', 'namespace', namespace]);
  await client.requestJson('POST', `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`, {
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'payments' }, spec: SPEC },
  });
});

afterAll(async () => {
  await kubectl(['delete', 'namespace', namespace, '--wait=false']);
  await client.close();
});

describe('breakwater isolate', { timeout: 60_000 }, () => {
  it('sets circuitBreaker.forceOpen through kubectl, and --off removes it, leaving the rest of the spec as it was', async () => {
    const on = await kubectlBreakwater(['isolate', 'payments', '-n', namespace]);
    expect(on.stderr).toBe('');
    expect(on.code).toBe(0);
    expect(on.stdout).toContain(`${namespace}/payments: isolated`);
    expect(await storedSpec('payments')).toEqual({ ...SPEC, circuitBreaker: { consecutiveFailures: 3, forceOpen: true } });

    // Again: nothing changes, and it still succeeds.
    expect((await kubectlBreakwater(['isolate', 'payments', '-n', namespace])).code).toBe(0);
    expect(await storedSpec('payments')).toEqual({ ...SPEC, circuitBreaker: { consecutiveFailures: 3, forceOpen: true } });

    const off = await breakwater(['isolate', 'payments', `--namespace=${namespace}`, '--off'], { KUBECONFIG: kubeconfig });
    expect(off.code).toBe(0);
    expect(off.stdout).toContain(`${namespace}/payments: released`);
    expect(await storedSpec('payments')).toEqual(SPEC);
  });

  it('exits 66 for an integration that does not exist, 64 on bad usage, 69 when the API server cannot be reached', async () => {
    const missing = await kubectlBreakwater(['isolate', 'nothing-here', '-n', namespace]);
    expect(missing.code).toBe(66);
    expect(missing.stderr).toContain(`no ExternalIntegration nothing-here in namespace ${namespace}`);

    const noName = await breakwater(['isolate', '-n', namespace], { KUBECONFIG: kubeconfig });
    expect(noName.code).toBe(64);
    expect(noName.stderr).toContain('name the ExternalIntegration to isolate');
    const two = await breakwater(['isolate', 'a', 'b'], { KUBECONFIG: kubeconfig });
    expect(two.code).toBe(64);
    expect(two.stderr).toContain('unexpected argument "b"');
    const noConfig = await breakwater(['isolate', 'payments'], { KUBECONFIG: join(dir, 'absent') });
    expect(noConfig.code).toBe(64);

    // A kubeconfig whose server is a closed loopback port.
    const closed = join(dir, 'closed.kubeconfig');
    writeFileSync(
      closed,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]\n' +
        'users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: ' + namespace + '}}]\ncurrent-context: x\n',
    );
    const unreachable = await breakwater(['isolate', 'payments'], { KUBECONFIG: closed });
    expect(unreachable.code).toBe(69);
    expect(unreachable.stderr).toContain('breakwater isolate:');
    // Nothing was changed by the failed runs.
    expect(await storedSpec('payments')).toEqual(SPEC);
  });
});
