import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KubeError } from './errors.ts';
import { loadConnection, loadUserConnection, type ClusterConnection } from './kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'breakwater-kubeconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
/** A fresh folder under the test's temp dir, with these files written into it. */
function folder(files: Record<string, string>): string {
  const at = join(dir, `f${counter++}`);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(at, name, '..'), { recursive: true });
    writeFileSync(join(at, name), content);
  }
  return at;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

function kubeconfig(options: { current?: string; clusters?: object[]; users?: object[]; contexts?: object[] }): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    ...(options.current !== undefined && { 'current-context': options.current }),
    clusters: options.clusters ?? [],
    users: options.users ?? [],
    contexts: options.contexts ?? [],
  });
}

function loadError(load: () => unknown): KubeError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(KubeError);
    return error as KubeError;
  }
  throw new Error('loaded without an error');
}

const authorization = async (c: ClusterConnection) => (await c.credentials.current()).authorization;

describe('in a cluster', () => {
  const serviceAccount = () => folder({ token: 'first-token\n', 'ca.crt': 'CLUSTER CA', namespace: 'breakwater-system' });
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

  it('uses the service account: the Service address, its CA and its token', async () => {
    const c = loadConnection({ env, serviceAccountDir: serviceAccount() });
    expect(c.server).toBe('https://10.96.0.1:443');
    expect(c.tls).toEqual({ ca: 'CLUSTER CA', rejectUnauthorized: true });
    expect(await authorization(c)).toBe('Bearer first-token');
  });

  it('reads a rotated token again once the old one is refused', async () => {
    const sa = serviceAccount();
    const c = loadConnection({ env, serviceAccountDir: sa });
    expect(await authorization(c)).toBe('Bearer first-token');
    writeFileSync(join(sa, 'token'), 'rotated-token');
    expect(await authorization(c)).toBe('Bearer first-token');
    expect(c.credentials.rejected()).toBe(true);
    expect(await authorization(c)).toBe('Bearer rotated-token');
  });

  it('brackets an IPv6 service address', () => {
    const c = loadConnection({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, serviceAccountDir: serviceAccount() });
    expect(c.server).toBe('https://[fd00::1]:6443');
  });

  it('comes before $KUBECONFIG, and a --kubeconfig file comes before it', () => {
    const file = join(folder({ config: kubeconfig({ current: 'x', contexts: [{ name: 'x', context: { cluster: 'x' } }], clusters: [{ name: 'x', cluster: { server: 'https://from-file:6443/' } }] }) }), 'config');
    const sa = serviceAccount();
    expect(loadConnection({ env: { ...env, KUBECONFIG: file }, serviceAccountDir: sa }).server).toBe('https://10.96.0.1:443');
    expect(loadConnection({ file, env, serviceAccountDir: sa }).server).toBe('https://from-file:6443');
  });

  it('is not taken without a token file', () => {
    const error = loadError(() => loadConnection({ env, serviceAccountDir: folder({ 'ca.crt': 'CA' }) }));
    expect(error.code).toBe('no_config');
    expect(error.message).toBe('not in a cluster and no kubeconfig: pass --kubeconfig or set KUBECONFIG');
  });
});

describe('a kubeconfig', () => {
  const none = join(dir, 'no-service-account');

  it('fails with the file and the reason when --kubeconfig does not exist', () => {
    const missing = join(dir, 'missing.yaml');
    const error = loadError(() => loadConnection({ file: missing, env: {}, serviceAccountDir: none }));
    expect(error.code).toBe('no_config');
    expect(error.message).toMatch(new RegExp(`^cannot load kubeconfig ${missing}: ENOENT`));
  });

  it('reads the current context: server, CA file relative to the kubeconfig, TLS server name, client certificate data', async () => {
    const at = folder({
      'certs/ca.pem': 'CA FROM FILE',
      config: `# YAML, as kubectl writes it
apiVersion: v1
kind: Config
current-context: prod
contexts:
- name: dev
  context: { cluster: dev, user: dev }
- name: prod
  context: { cluster: prod, user: admin }
clusters:
- name: dev
  cluster: { server: https://dev:6443 }
- name: prod
  cluster:
    server: https://203.0.113.7:6443
    certificate-authority: certs/ca.pem
    tls-server-name: api.prod.internal
users:
- name: dev
  user: { token: dev-token }
- name: admin
  user:
    client-certificate-data: ${b64('CLIENT CERT')}
    client-key-data: ${b64('CLIENT KEY')}
`,
    });
    const c = loadConnection({ file: join(at, 'config'), env: {}, serviceAccountDir: none });
    expect(c.server).toBe('https://203.0.113.7:6443');
    expect(c.tls).toEqual({ ca: 'CA FROM FILE', cert: 'CLIENT CERT', key: 'CLIENT KEY', rejectUnauthorized: true, servername: 'api.prod.internal' });
    expect(await authorization(c)).toBeUndefined();
  });

  it('takes certificate-authority-data over the file, honours insecure-skip-tls-verify, and reads client certificate files', () => {
    const at = folder({ 'client.crt': 'CERT FILE', 'client.key': 'KEY FILE' });
    writeFileSync(
      join(at, 'config'),
      kubeconfig({
        current: 'c',
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        clusters: [{ name: 'c', cluster: { server: 'https://c', 'certificate-authority-data': b64('CA DATA'), 'certificate-authority': 'absent.pem', 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { 'client-certificate': 'client.crt', 'client-key': join(at, 'client.key') } }],
      }),
    );
    const c = loadConnection({ file: join(at, 'config'), env: {}, serviceAccountDir: none });
    expect(c.tls).toEqual({ ca: 'CA DATA', cert: 'CERT FILE', key: 'KEY FILE', rejectUnauthorized: false });
  });

  it.each([
    [{ token: 'abc' }, 'Bearer abc'],
    [{ username: 'admin', password: 's3cret' }, `Basic ${b64('admin:s3cret')}`],
  ])('sends the user %j as %s', async (user, expected) => {
    const at = folder({
      config: kubeconfig({ current: 'c', contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }], clusters: [{ name: 'c', cluster: { server: 'https://c' } }], users: [{ name: 'u', user }] }),
    });
    expect(await authorization(loadConnection({ file: join(at, 'config'), env: {}, serviceAccountDir: none }))).toBe(expected);
  });

  it('reads a tokenFile relative to the kubeconfig', async () => {
    const at = folder({
      'tokens/t': 'file-token\n',
      config: kubeconfig({ current: 'c', contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }], clusters: [{ name: 'c', cluster: { server: 'https://c' } }], users: [{ name: 'u', user: { tokenFile: 'tokens/t' } }] }),
    });
    expect(await authorization(loadConnection({ file: join(at, 'config'), env: {}, serviceAccountDir: none }))).toBe('Bearer file-token');
  });

  it('merges a $KUBECONFIG list as kubectl does: the first to set a name or current-context wins, missing files are skipped', async () => {
    const first = folder({
      'ca.pem': 'FIRST CA',
      config: kubeconfig({
        current: 'merged',
        contexts: [{ name: 'merged', context: { cluster: 'shared', user: 'only-in-second' } }],
        clusters: [{ name: 'shared', cluster: { server: 'https://first', 'certificate-authority': 'ca.pem' } }],
      }),
    });
    const second = folder({
      config: kubeconfig({
        current: 'other',
        contexts: [{ name: 'merged', context: { cluster: 'second-cluster' } }],
        clusters: [{ name: 'shared', cluster: { server: 'https://second' } }],
        users: [{ name: 'only-in-second', user: { token: 'second-token' } }],
      }),
    });
    const KUBECONFIG = [join(dir, 'not-there'), join(first, 'config'), '', join(second, 'config')].join(':');
    const c = loadConnection({ env: { KUBECONFIG }, serviceAccountDir: none });
    expect(c.server).toBe('https://first');
    expect(c.tls.ca).toBe('FIRST CA');
    expect(await authorization(c)).toBe('Bearer second-token');
  });

  it('fails when no file of $KUBECONFIG exists', () => {
    const KUBECONFIG = `${join(dir, 'a')}:${join(dir, 'b')}`;
    expect(loadError(() => loadConnection({ env: { KUBECONFIG }, serviceAccountDir: none })).message).toBe(`cannot load kubeconfig ${KUBECONFIG}: no such file`);
  });

  it.each([
    [{}, 'current-context is not set'],
    [{ current: 'gone' }, 'context "gone" is not defined'],
    [{ current: 'c', contexts: [{ name: 'c', context: { cluster: 'nope' } }] }, 'cluster "nope" of context "c" is not defined'],
    [
      { current: 'c', contexts: [{ name: 'c', context: { cluster: 'c', user: 'nobody' } }], clusters: [{ name: 'c', cluster: { server: 'https://c' } }] },
      'user "nobody" of context "c" is not defined',
    ],
    [{ current: 'c', contexts: [{ name: 'c', context: { cluster: 'c' } }], clusters: [{ name: 'c', cluster: {} }] }, 'cluster "c" has no server'],
  ])('names what is missing in %j', (config, message) => {
    const file = join(folder({ config: kubeconfig(config) }), 'config');
    const error = loadError(() => loadConnection({ file, env: {}, serviceAccountDir: none }));
    expect(error.code).toBe('no_config');
    expect(error.message).toBe(`cannot load kubeconfig ${file}: ${message}`);
  });

  it('refuses a legacy auth-provider and names the fix', () => {
    const file = join(
      folder({
        config: kubeconfig({
          current: 'gke',
          contexts: [{ name: 'gke', context: { cluster: 'gke', user: 'gke' } }],
          clusters: [{ name: 'gke', cluster: { server: 'https://gke' } }],
          users: [{ name: 'gke', user: { 'auth-provider': { name: 'gcp', config: {} } } }],
        }),
      }),
      'config',
    );
    const error = loadError(() => loadConnection({ file, env: {}, serviceAccountDir: none }));
    expect(error.code).toBe('no_config');
    expect(error.message).toContain('user "gke" uses the legacy auth-provider "gcp", which is not supported');
    expect(error.message).toContain('exec credential plugin (gke-gcloud-auth-plugin');
  });
});

describe('for a person (the status command): kubectl\'s order', () => {
  const serviceAccount = () => folder({ token: 'pod-token', 'ca.crt': 'CLUSTER CA', namespace: 'pod-namespace' });
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  const config = (server: string, namespace?: string) =>
    kubeconfig({
      current: 'x',
      contexts: [{ name: 'x', context: { cluster: 'x', ...(namespace && { namespace }) } }],
      clusters: [{ name: 'x', cluster: { server } }],
    });

  it('takes $KUBECONFIG before the pod\'s service account, with the context\'s namespace', () => {
    const file = join(folder({ config: config('https://from-env:6443', 'payments') }), 'config');
    const c = loadUserConnection({ env: { ...env, KUBECONFIG: file }, serviceAccountDir: serviceAccount(), home: folder({}) });
    expect(c.server).toBe('https://from-env:6443');
    expect(c.namespace).toBe('payments');
  });

  it('then ~/.kube/config, and only then the service account and its namespace', () => {
    const home = folder({ '.kube/config': config('https://from-home:6443') });
    const fromHome = loadUserConnection({ env, serviceAccountDir: serviceAccount(), home });
    expect(fromHome.server).toBe('https://from-home:6443');
    expect(fromHome.namespace).toBeUndefined();
    const inPod = loadUserConnection({ env, serviceAccountDir: serviceAccount(), home: folder({}) });
    expect(inPod.server).toBe('https://10.96.0.1:443');
    expect(inPod.namespace).toBe('pod-namespace');
  });

  it('says where it looked when there is nothing', () => {
    const error = loadError(() => loadUserConnection({ env: {}, serviceAccountDir: folder({}), home: folder({}) }));
    expect(error.code).toBe('no_config');
    expect(error.message).toBe('no kubeconfig: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config');
  });
});
