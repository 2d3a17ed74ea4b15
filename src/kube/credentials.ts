// How a request proves who sent it: a bearer token (fixed, or a file read again as it rotates), a
// username and password, or an exec credential plugin (aws eks get-token, gke-gcloud-auth-plugin,
// kubelogin) whose answer is kept until it expires. A 401 drops what is kept, so the next try asks again.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { KubeError } from './errors.ts';

export interface Credential {
  /** The Authorization header's value. */
  readonly authorization?: string;
  /** A client certificate and key (PEM) from an exec plugin, used instead of the kubeconfig's. */
  readonly cert?: string;
  readonly key?: string;
}

export interface Credentials {
  current(): Promise<Credential>;
  /** After a 401: forget what is kept. True when asking again may give a different credential. */
  rejected(): boolean;
}

/** client-go keeps a token file for a minute; the kubelet rotates a projected token long before expiry. */
export const TOKEN_FILE_REREAD_MS = 60_000;
/** A plugin that has not answered in this long is killed (one waiting for a login that cannot happen). */
export const EXEC_TIMEOUT_MS = 60_000;
export const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] as const;

export const noCredentials: Credentials = { current: async () => ({}), rejected: () => false };

export function staticToken(token: string): Credentials {
  const credential = { authorization: `Bearer ${token}` };
  return { current: async () => credential, rejected: () => false };
}

export function basicAuth(username: string, password: string): Credentials {
  const credential = { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
  return { current: async () => credential, rejected: () => false };
}

export function tokenFile(path: string, rereadMs = TOKEN_FILE_REREAD_MS): Credentials {
  let kept: { credential: Credential; readAt: number } | undefined;
  return {
    async current() {
      if (kept && performance.now() - kept.readAt < rereadMs) return kept.credential;
      let token: string;
      try {
        token = readFileSync(path, 'utf8').trim();
      } catch (error) {
        throw new KubeError(0, `cannot read token file ${path}: ${(error as Error).message}`, { code: 'no_config', cause: error });
      }
      kept = { credential: { authorization: `Bearer ${token}` }, readAt: performance.now() };
      return kept.credential;
    },
    rejected() {
      kept = undefined;
      return true;
    },
  };
}

export interface ExecConfig {
  /** The kubeconfig user, for messages. */
  readonly user: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Added to our own environment. */
  readonly env: Record<string, string>;
  readonly apiVersion: string;
  readonly installHint?: string;
  /** Passed to the plugin when the kubeconfig sets provideClusterInfo. */
  readonly cluster?: Record<string, unknown>;
}

interface ExecCredentialStatus {
  readonly token?: string;
  readonly clientCertificateData?: string;
  readonly clientKeyData?: string;
  readonly expirationTimestamp?: string;
}

export function execCredentials(config: ExecConfig): Credentials {
  if (!(EXEC_API_VERSIONS as readonly string[]).includes(config.apiVersion)) {
    throw new Error(
      `user "${config.user}": exec apiVersion "${config.apiVersion}" is not supported; use ${EXEC_API_VERSIONS.join(' or ')}`,
    );
  }
  let kept: { credential: Credential; expiresAt: number } | undefined;
  let running: Promise<Credential> | undefined;
  return {
    current() {
      if (kept && Date.now() < kept.expiresAt) return Promise.resolve(kept.credential);
      // Requests that find no credential share one run of the plugin.
      running ??= runPlugin(config)
        .then((status) => {
          const credential: Credential = {
            ...(status.token && { authorization: `Bearer ${status.token}` }),
            ...(status.clientCertificateData && { cert: status.clientCertificateData, key: status.clientKeyData }),
          };
          const expiresAt = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) : Number.POSITIVE_INFINITY;
          kept = { credential, expiresAt: Number.isNaN(expiresAt) ? 0 : expiresAt };
          return credential;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    },
    rejected() {
      kept = undefined;
      return true;
    },
  };
}

function runPlugin(config: ExecConfig): Promise<ExecCredentialStatus> {
  const fail = (message: string, code: 'no_config' | 'unauthorized', cause?: unknown) =>
    new KubeError(0, `exec credential plugin ${config.command} (user "${config.user}"): ${message}`, { code, cause });
  const info = { apiVersion: config.apiVersion, kind: 'ExecCredential', spec: { interactive: false, ...(config.cluster && { cluster: config.cluster }) } };
  return new Promise((resolve, reject) => {
    const child = spawn(config.command, config.args, {
      env: { ...process.env, ...config.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) },
      // No terminal to log in on: a plugin that would prompt must fail instead of waiting.
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: EXEC_TIMEOUT_MS,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      const hint = error.code === 'ENOENT' && config.installHint ? `\n${config.installHint.trim()}` : '';
      reject(fail(`${error.code === 'ENOENT' ? 'not found' : error.message}${hint}`, 'no_config', error));
    });
    child.on('close', (code, signal) => {
      if (code !== 0) {
        const why = signal ? `killed by ${signal}` : `exited with ${code}`;
        reject(fail(`${why}${stderr.trim() ? `: ${stderr.trim().slice(-500)}` : ''}`, 'unauthorized'));
        return;
      }
      try {
        resolve(parseExecCredential(stdout, config.apiVersion));
      } catch (error) {
        reject(fail((error as Error).message, 'unauthorized', error));
      }
    });
  });
}

function parseExecCredential(stdout: string, apiVersion: string): ExecCredentialStatus {
  let parsed: { apiVersion?: unknown; kind?: unknown; status?: ExecCredentialStatus };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch {
    throw new Error(`printed no JSON ExecCredential: ${stdout.trim().slice(0, 200)}`);
  }
  if (parsed.kind !== 'ExecCredential') throw new Error(`printed kind ${String(parsed.kind)}, not ExecCredential`);
  if (parsed.apiVersion !== apiVersion) throw new Error(`answered in ${String(parsed.apiVersion)}, asked for ${apiVersion}`);
  const status = parsed.status ?? {};
  if (!status.token && !(status.clientCertificateData && status.clientKeyData)) {
    throw new Error('gave neither status.token nor status.clientCertificateData and clientKeyData');
  }
  return status;
}
