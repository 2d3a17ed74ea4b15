// Exec credential plugins, run for real: a shell script beside the kubeconfig (named by a relative path,
// as kubectl allows) that starts a small Node program printing an ExecCredential.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KubeError } from './errors.ts';
import { loadConnection, type ClusterConnection } from './kubeconfig.ts';

const root = mkdtempSync(join(tmpdir(), 'breakwater-exec-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const V1 = 'client.authentication.k8s.io/v1';

// Each run appends KUBERNETES_EXEC_INFO and its arguments to `runs`, then answers as PLUGIN_MODE says.
const PLUGIN = `
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const [dir, ...rest] = process.argv.slice(2);
const runs = join(dir, 'runs');
appendFileSync(runs, JSON.stringify({ info: JSON.parse(process.env.KUBERNETES_EXEC_INFO), args: rest }) + '\\n');
const n = readFileSync(runs, 'utf8').trim().split('\\n').length;
const version = process.env.PLUGIN_VERSION;
const status = { token: 'token-' + n, ...(process.env.PLUGIN_EXPIRES && { expirationTimestamp: process.env.PLUGIN_EXPIRES }) };
switch (process.env.PLUGIN_MODE) {
  case 'fail':
    process.stderr.write('error: the SSO session has expired\\n');
    process.exit(3);
  case 'cert':
    console.log(JSON.stringify({ apiVersion: version, kind: 'ExecCredential', status: { clientCertificateData: 'CERT ' + n, clientKeyData: 'KEY ' + n } }));
    break;
  case 'wrong-version':
    console.log(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status }));
    break;
  default:
    console.log(JSON.stringify({ apiVersion: version, kind: 'ExecCredential', status }));
}
`;

let counter = 0;
interface Plugin {
  readonly connection: () => ClusterConnection;
  readonly runs: () => { info: { apiVersion: string; kind: string; spec: { interactive: boolean; cluster?: { server: string } } }; args: string[] }[];
}

/** A folder with the plugin and a kubeconfig whose user runs it with these exec settings. */
function plugin(env: Record<string, string>, exec: Record<string, unknown> = {}): Plugin {
  const dir = join(root, `p${counter++}`);
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'plugin.mjs'), PLUGIN);
  writeFileSync(join(bin, 'plugin'), `#!/bin/sh\nexec "${process.execPath}" "${join(bin, 'plugin.mjs')}" "${dir}" "$@"\n`);
  chmodSync(join(bin, 'plugin'), 0o755);
  const user = {
    exec: {
      apiVersion: V1,
      command: './bin/plugin',
      args: ['--region', 'eu-west-1'],
      env: Object.entries({ PLUGIN_VERSION: V1, ...env }).map(([name, value]) => ({ name, value })),
      interactiveMode: 'Never',
      ...exec,
    },
  };
  writeFileSync(
    join(dir, 'config'),
    JSON.stringify({
      'current-context': 'c',
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'eks' } }],
      clusters: [{ name: 'c', cluster: { server: 'https://eks.example:443', 'certificate-authority-data': Buffer.from('CA').toString('base64') } }],
      users: [{ name: 'eks', user }],
    }),
  );
  return {
    connection: () => loadConnection({ file: join(dir, 'config'), env: {}, serviceAccountDir: join(root, 'none') }),
    runs: () => {
      try {
        return readFileSync(join(dir, 'runs'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
      } catch {
        return [];
      }
    },
  };
}

async function failure(promise: Promise<unknown>): Promise<KubeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KubeError);
  return error as KubeError;
}

describe('exec credential plugin', () => {
  it('runs once for requests at the same time, with its args, env and KUBERNETES_EXEC_INFO, and keeps the token until it expires', async () => {
    const p = plugin({ PLUGIN_EXPIRES: new Date(Date.now() + 3_600_000).toISOString() });
    const c = p.connection();
    const credentials = await Promise.all([c.credentials.current(), c.credentials.current(), c.credentials.current()]);
    expect(credentials.map((x) => x.authorization)).toEqual(['Bearer token-1', 'Bearer token-1', 'Bearer token-1']);
    expect(await c.credentials.current()).toEqual({ authorization: 'Bearer token-1' });
    expect(p.runs()).toEqual([{ info: { apiVersion: V1, kind: 'ExecCredential', spec: { interactive: false } }, args: ['--region', 'eu-west-1'] }]);
  });

  it('runs again once the credential has expired', async () => {
    const p = plugin({ PLUGIN_EXPIRES: new Date(Date.now() - 1_000).toISOString() });
    const c = p.connection();
    expect((await c.credentials.current()).authorization).toBe('Bearer token-1');
    expect((await c.credentials.current()).authorization).toBe('Bearer token-2');
  });

  it('runs again after a 401, even before the credential expires', async () => {
    const p = plugin({});
    const c = p.connection();
    expect((await c.credentials.current()).authorization).toBe('Bearer token-1');
    expect((await c.credentials.current()).authorization).toBe('Bearer token-1');
    expect(c.credentials.rejected()).toBe(true);
    expect((await c.credentials.current()).authorization).toBe('Bearer token-2');
  });

  it('hands on a client certificate and key', async () => {
    expect(await plugin({ PLUGIN_MODE: 'cert' }).connection().credentials.current()).toEqual({ cert: 'CERT 1', key: 'KEY 1' });
  });

  it('tells the plugin the cluster when provideClusterInfo is set (v1beta1)', async () => {
    const p = plugin({ PLUGIN_VERSION: 'client.authentication.k8s.io/v1beta1' }, { apiVersion: 'client.authentication.k8s.io/v1beta1', provideClusterInfo: true });
    await p.connection().credentials.current();
    expect(p.runs()[0]?.info.spec.cluster).toEqual({ server: 'https://eks.example:443', 'certificate-authority-data': Buffer.from('CA').toString('base64') });
  });

  it('reports a failing plugin with its exit code and what it printed', async () => {
    const error = await failure(plugin({ PLUGIN_MODE: 'fail' }).connection().credentials.current());
    expect(error.code).toBe('unauthorized');
    expect(error.message).toMatch(/bin\/plugin \(user "eks"\): exited with 3: error: the SSO session has expired$/);
  });

  it('refuses an answer in another apiVersion than asked for', async () => {
    const error = await failure(plugin({ PLUGIN_MODE: 'wrong-version' }).connection().credentials.current());
    expect(error.message).toContain(`answered in client.authentication.k8s.io/v1beta1, asked for ${V1}`);
  });

  it('names the install hint when the command is not installed', async () => {
    const p = plugin({}, { command: 'breakwater-no-such-plugin', installHint: 'Install it with: brew install no-such-plugin' });
    const error = await failure(p.connection().credentials.current());
    expect(error.code).toBe('no_config');
    expect(error.message).toBe('exec credential plugin breakwater-no-such-plugin (user "eks"): not found\nInstall it with: brew install no-such-plugin');
  });

  it('refuses client.authentication.k8s.io/v1alpha1 when the kubeconfig is loaded', () => {
    const p = plugin({}, { apiVersion: 'client.authentication.k8s.io/v1alpha1' });
    expect(() => p.connection()).toThrow(/exec apiVersion "client.authentication.k8s.io\/v1alpha1" is not supported/);
  });
});
