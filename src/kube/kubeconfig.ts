// Where the API server is and how to prove who we are: the pod's service account in a cluster, else a
// kubeconfig (--kubeconfig, else $KUBECONFIG merged as kubectl merges it). Only what the operator and
// CLI need is read. A proxy is taken as kubectl takes it (proxy.ts).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { basicAuth, execCredentials, noCredentials, staticToken, tokenFile, type Credentials, type ExecConfig } from './credentials.ts';
import { KubeError } from './errors.ts';
import { parseProxyUrl, proxyFromEnvironment } from './proxy.ts';

/** Where a pod's service-account token, CA bundle and namespace are mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface TlsSettings {
  /** PEM bundle to trust instead of the system roots. */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** false only for `insecure-skip-tls-verify: true`. */
  readonly rejectUnauthorized: boolean;
  readonly servername?: string;
}

export interface ClusterConnection {
  /** The API server's base URL, without a trailing slash. */
  readonly server: string;
  readonly tls: TlsSettings;
  readonly credentials: Credentials;
  /** The current context's namespace, or the pod's own in a cluster; undefined when neither names one. */
  readonly namespace?: string;
  /** The cluster's proxy-url, else the environment's proxy for the server; undefined: connect directly. */
  readonly proxy?: URL;
}

export interface LoadOptions {
  /** The --kubeconfig flag: this file only, even in a cluster. */
  readonly file?: string;
  /** KUBERNETES_SERVICE_HOST/PORT and KUBECONFIG are read from here. */
  readonly env?: NodeJS.ProcessEnv;
  readonly serviceAccountDir?: string;
  /** Where ~/.kube/config is looked for by loadUserConnection. */
  readonly home?: string;
}

/** In-cluster first, then $KUBECONFIG, as docs/design.md's `--kubeconfig` promises; a given file wins. */
export function loadConnection(options: LoadOptions = {}): ClusterConnection {
  const env = options.env ?? process.env;
  return withEnvironmentProxy(findConnection(options, env), env);
}

function findConnection(options: LoadOptions, env: NodeJS.ProcessEnv): ClusterConnection {
  if (options.file) return fromKubeconfig([options.file], options.file, true);
  const inCluster = inClusterConnection(env, options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
  if (inCluster) return inCluster;
  const files = (env.KUBECONFIG ?? '').split(':').filter((f) => f !== '');
  if (files.length > 0) return fromKubeconfig(files, env.KUBECONFIG!, false);
  throw new KubeError(0, 'not in a cluster and no kubeconfig: pass --kubeconfig or set KUBECONFIG', { code: 'no_config' });
}

/**
 * kubectl's order, for a command a person runs: --kubeconfig, else $KUBECONFIG, else ~/.kube/config,
 * and only then the pod's service account (a person's kubeconfig in a pod means that person).
 */
export function loadUserConnection(options: LoadOptions = {}): ClusterConnection {
  const env = options.env ?? process.env;
  return withEnvironmentProxy(findUserConnection(options, env), env);
}

function findUserConnection(options: LoadOptions, env: NodeJS.ProcessEnv): ClusterConnection {
  if (options.file) return fromKubeconfig([options.file], options.file, true);
  const files = (env.KUBECONFIG ?? '').split(':').filter((f) => f !== '');
  if (files.length > 0) return fromKubeconfig(files, env.KUBECONFIG!, false);
  const home = join(options.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromKubeconfig([home], home, true);
  const inCluster = inClusterConnection(env, options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
  if (inCluster) return inCluster;
  throw new KubeError(0, 'no kubeconfig: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config', { code: 'no_config' });
}

/** A cluster without proxy-url goes through the environment's proxy, as client-go's default transport does. */
function withEnvironmentProxy(connection: ClusterConnection, env: NodeJS.ProcessEnv): ClusterConnection {
  if (connection.proxy) return connection;
  const proxy = proxyFromEnvironment(new URL(connection.server), env);
  return proxy ? { ...connection, proxy } : connection;
}

function inClusterConnection(env: NodeJS.ProcessEnv, dir: string): ClusterConnection | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return undefined;
  const token = join(dir, 'token');
  if (!existsSync(token)) return undefined;
  const caFile = join(dir, 'ca.crt');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    // Without the CA file (client-go carries on too) the system roots decide.
    tls: { ...(existsSync(caFile) && { ca: readFileSync(caFile, 'utf8') }), rejectUnauthorized: true },
    // A projected token is rotated by the kubelet and expires: read again each minute and after a 401.
    credentials: tokenFile(token),
    ...(existsSync(join(dir, 'namespace')) && { namespace: readFileSync(join(dir, 'namespace'), 'utf8').trim() || undefined }),
  };
}

interface Named<T> {
  readonly name: string;
  readonly value: T;
  /** The folder relative paths in `value` are relative to. */
  readonly base: string;
}

interface Merged {
  currentContext?: string;
  readonly contexts: Map<string, Named<Record<string, unknown>>>;
  readonly clusters: Map<string, Named<Record<string, unknown>>>;
  readonly users: Map<string, Named<Record<string, unknown>>>;
}

/**
 * kubectl's merge: files in order, the first to set current-context or to define a context, cluster or
 * user of a given name wins. With $KUBECONFIG a file that does not exist is skipped; --kubeconfig must.
 */
function fromKubeconfig(files: readonly string[], label: string, mustExist: boolean): ClusterConnection {
  const fail = (message: string, cause?: unknown): never => {
    throw new KubeError(0, `cannot load kubeconfig ${label}: ${message}`, { code: 'no_config', cause });
  };
  const merged: Merged = { contexts: new Map(), clusters: new Map(), users: new Map() };
  let found = 0;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if (!mustExist && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return fail((error as Error).message, error);
    }
    found++;
    let doc: unknown;
    try {
      doc = parse(text) ?? {};
    } catch (error) {
      return fail(`${file}: ${(error as Error).message}`, error);
    }
    if (typeof doc !== 'object' || Array.isArray(doc)) return fail(`${file} is not a kubeconfig`);
    const config = doc as Record<string, unknown>;
    const base = dirname(resolve(file));
    if (!merged.currentContext && typeof config['current-context'] === 'string' && config['current-context']) {
      merged.currentContext = config['current-context'];
    }
    addEntries(merged.contexts, config.contexts, 'context', base);
    addEntries(merged.clusters, config.clusters, 'cluster', base);
    addEntries(merged.users, config.users, 'user', base);
  }
  if (found === 0) return fail('no such file');
  if (!merged.currentContext) return fail('current-context is not set');
  const context = merged.contexts.get(merged.currentContext);
  if (!context) return fail(`context "${merged.currentContext}" is not defined`);
  const clusterName = String(context.value.cluster ?? '');
  const cluster = merged.clusters.get(clusterName);
  if (!cluster) return fail(`cluster "${clusterName}" of context "${context.name}" is not defined`);
  const userName = context.value.user === undefined ? undefined : String(context.value.user);
  const user = userName === undefined || userName === '' ? undefined : merged.users.get(userName);
  if (userName && !user) return fail(`user "${userName}" of context "${context.name}" is not defined`);
  const namespace = typeof context.value.namespace === 'string' && context.value.namespace ? context.value.namespace : undefined;
  try {
    return { ...connection(cluster, user), ...(namespace && { namespace }) };
  } catch (error) {
    return fail((error as Error).message, error);
  }
}

function addEntries(into: Map<string, Named<Record<string, unknown>>>, list: unknown, field: string, base: string): void {
  if (!Array.isArray(list)) return;
  for (const entry of list as { name?: unknown; [field: string]: unknown }[]) {
    const name = typeof entry?.name === 'string' ? entry.name : undefined;
    const value = entry?.[field];
    if (name === undefined || into.has(name) || typeof value !== 'object' || value === null) continue;
    into.set(name, { name, value: value as Record<string, unknown>, base });
  }
}

function connection(cluster: Named<Record<string, unknown>>, user: Named<Record<string, unknown>> | undefined): ClusterConnection {
  const c = cluster.value;
  const server = typeof c.server === 'string' ? c.server.replace(/\/+$/, '') : '';
  if (!server) throw new Error(`cluster "${cluster.name}" has no server`);
  const u = user?.value ?? {};
  const base = user?.base ?? cluster.base;
  const tls: TlsSettings = {
    ca: pem(c, 'certificate-authority', cluster.base),
    cert: pem(u, 'client-certificate', base),
    key: pem(u, 'client-key', base),
    rejectUnauthorized: c['insecure-skip-tls-verify'] !== true,
    ...(typeof c['tls-server-name'] === 'string' && c['tls-server-name'] && { servername: c['tls-server-name'] }),
  };
  const proxy = typeof c['proxy-url'] === 'string' && c['proxy-url'] ? parseProxyUrl(c['proxy-url'], cluster.name) : undefined;
  return { server, tls, credentials: credentialsFor(user, cluster, server), ...(proxy && { proxy }) };
}

/** `<field>-data` (base64) wins over `<field>` (a file, relative to the kubeconfig that named it). */
function pem(entry: Record<string, unknown>, field: string, base: string): string | undefined {
  const data = entry[`${field}-data`];
  if (typeof data === 'string' && data) return Buffer.from(data, 'base64').toString('utf8');
  const file = entry[field];
  if (typeof file === 'string' && file) return readFileSync(pathFrom(base, file), 'utf8');
  return undefined;
}

function pathFrom(base: string, file: string): string {
  return isAbsolute(file) ? file : join(base, file);
}

function credentialsFor(user: Named<Record<string, unknown>> | undefined, cluster: Named<Record<string, unknown>>, server: string): Credentials {
  if (!user) return noCredentials;
  const u = user.value;
  const provider = u['auth-provider'] as { name?: unknown } | undefined;
  if (provider) {
    throw new Error(
      `user "${user.name}" uses the legacy auth-provider "${String(provider.name)}", which is not supported: ` +
        'switch the kubeconfig to its exec credential plugin (gke-gcloud-auth-plugin, kubelogin, aws eks get-token), e.g. by fetching it again with your cloud CLI',
    );
  }
  if (u.exec) return execCredentials(execConfig(u.exec, user, cluster, server));
  if (typeof u.token === 'string' && u.token) return staticToken(u.token);
  if (typeof u.tokenFile === 'string' && u.tokenFile) return tokenFile(pathFrom(user.base, u.tokenFile));
  if (typeof u.username === 'string' && u.username) return basicAuth(u.username, typeof u.password === 'string' ? u.password : '');
  return noCredentials;
}

function execConfig(raw: unknown, user: Named<Record<string, unknown>>, cluster: Named<Record<string, unknown>>, server: string): ExecConfig {
  const exec = raw as { command?: unknown; args?: unknown; env?: unknown; apiVersion?: unknown; installHint?: unknown; provideClusterInfo?: unknown };
  if (typeof exec.command !== 'string' || !exec.command) throw new Error(`user "${user.name}": exec has no command`);
  // kubectl resolves a command with a path separator against the kubeconfig's folder, and leaves a bare
  // name to $PATH.
  const command = exec.command.includes('/') ? pathFrom(user.base, exec.command) : exec.command;
  const env = Array.isArray(exec.env)
    ? Object.fromEntries((exec.env as { name?: unknown; value?: unknown }[]).map((e) => [String(e.name), String(e.value ?? '')]))
    : {};
  const c = cluster.value;
  return {
    user: user.name,
    command,
    args: Array.isArray(exec.args) ? exec.args.map(String) : [],
    env,
    apiVersion: typeof exec.apiVersion === 'string' ? exec.apiVersion : '',
    installHint: typeof exec.installHint === 'string' ? exec.installHint : undefined,
    ...(exec.provideClusterInfo === true && {
      cluster: {
        server,
        ...(typeof c['certificate-authority-data'] === 'string' && { 'certificate-authority-data': c['certificate-authority-data'] }),
        ...(c['insecure-skip-tls-verify'] === true && { 'insecure-skip-tls-verify': true }),
        ...(typeof c['tls-server-name'] === 'string' && { 'tls-server-name': c['tls-server-name'] }),
      },
    }),
  };
}
