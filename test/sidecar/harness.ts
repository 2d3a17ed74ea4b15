// Runs the sidecar in-process on ephemeral loopback ports with a config file in a temp directory, and
// captures its log lines. Calls go through a dedicated undici Agent so each suite closes its sockets.
import { mkdtemp, rm, writeFile, mkdir, rename, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import type { ExternalIntegrationSpec } from '../../src/api/schema.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { startSidecar, type Sidecar, type SidecarOptions } from '../../src/sidecar/index.ts';

export interface Harness {
  readonly sidecar: Sidecar;
  readonly dir: string;
  readonly configPath: string;
  readonly secretsDir: string;
  readonly logs: Record<string, unknown>[];
  /** `http://127.0.0.1:<proxy port><path>` */
  url(path: string): string;
  call(path: string, init?: CallInit): Promise<Reply>;
  writeConfig(docs: string): Promise<void>;
  /** Mounts `value` as key `key` of Secret `name`, laid out and swapped in as a kubelet does. */
  mountSecret(name: string, key: string, value: string): Promise<void>;
  metrics(): Promise<string>;
  /** Status and body of the admin server's /readyz. */
  readyz(): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

export interface CallInit {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: () => Record<string, unknown>;
  readonly ms: number;
}

/** One ExternalIntegration document. */
export function integration(name: string, spec: ExternalIntegrationSpec): string {
  return stringify({ apiVersion: 'breakwater.dev/v1alpha1', kind: 'ExternalIntegration', metadata: { name }, spec });
}

export function docs(...documents: string[]): string {
  return documents.join('---\n');
}

/**
 * Tight retry backoff so suites stay fast, and a budget wide enough that it never interferes (the
 * budget suite sets its own); tests that measure backoff set their own too.
 */
export const FAST_RETRY = {
  backoff: { initial: '10ms', max: '20ms', jitter: 'none' as const },
  budget: { percent: 100, minPerSecond: 1000 },
};

/** Secrets mounted before the sidecar starts: `{ [name]: { [key]: value } }`. */
export type Secrets = Record<string, Record<string, string>>;

/** `config` undefined starts the sidecar with no config file, as in a namespace without integrations. */
export async function startHarness(
  config: string | undefined,
  options: Partial<SidecarOptions> = {},
  secrets: Secrets = {},
  logLevel = 'info',
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'breakwater-sidecar-'));
  const configPath = join(dir, 'config', 'integrations.yaml');
  const secretsDir = join(dir, 'secrets');
  await mkdir(join(dir, 'config'));
  await mkdir(secretsDir);
  if (config !== undefined) await writeFile(configPath, config);
  let versions = 0;
  const mountSecret = async (name: string, key: string, value: string): Promise<void> => {
    // key → ..data/key, and ..data → a new version directory renamed over the old link in one step.
    const secretDir = join(secretsDir, name);
    const version = `..v${++versions}`;
    await mkdir(join(secretDir, version), { recursive: true });
    await writeFile(join(secretDir, version, key), value);
    await symlink(version, join(secretDir, '..data_tmp'));
    await rename(join(secretDir, '..data_tmp'), join(secretDir, '..data'));
    await symlink(join('..data', key), join(secretDir, key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  };
  for (const [name, keys] of Object.entries(secrets)) for (const [key, value] of Object.entries(keys)) await mountSecret(name, key, value);
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: logLevel,
    name: 'test-sidecar',
    destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const sidecar = await startSidecar({
    configPath,
    port: 0,
    adminPort: 0,
    adminHost: '127.0.0.1',
    secretsDir,
    logger,
    secretPollMs: 50,
    configDebounceMs: 20,
    ...options,
  });
  const agent = new Agent({ keepAliveTimeout: 1000 });
  const base = `http://127.0.0.1:${sidecar.port}`;
  return {
    sidecar,
    dir,
    configPath,
    secretsDir,
    logs,
    url: (path) => base + path,
    async call(path, init = {}) {
      const started = performance.now();
      const res = await request(base + path, {
        dispatcher: agent,
        method: (init.method ?? 'GET') as 'GET',
        headers: init.headers,
        body: init.body,
      });
      const text = await res.body.text();
      return {
        status: res.statusCode,
        headers: res.headers,
        text,
        json: () => JSON.parse(text) as Record<string, unknown>,
        ms: performance.now() - started,
      };
    },
    async writeConfig(text) {
      // Write-then-rename, so the watcher never reads a half-written file.
      const tmp = `${configPath}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, configPath);
    },
    mountSecret,
    async metrics() {
      const res = await request(`http://127.0.0.1:${sidecar.adminPort}/metrics`, { dispatcher: agent });
      return res.body.text();
    },
    async readyz() {
      const res = await request(`http://127.0.0.1:${sidecar.adminPort}/readyz`, { dispatcher: agent });
      return { status: res.statusCode, text: await res.body.text() };
    },
    async close() {
      await sidecar.drain(1000);
      await agent.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Sends `head` (and `body`) as written, on a fresh connection, and returns the whole raw response. */
export function rawRequest(port: number, head: string, body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head + body));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      // One response is enough: stop at the end of a Content-Length body.
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text);
      if (end !== -1 && length && text.length >= end + 4 + Number(length[1])) socket.end();
    });
    socket.on('end', () => resolve(text));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

/** Polls `check` until it returns without throwing, or throws its last error after `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

/** The value of one sample in Prometheus text, or undefined when it is absent. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
