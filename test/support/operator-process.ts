// `breakwater operator` as a real process, the way a Deployment runs it: spawned from the CLI against a
// test kubeconfig, observed through its admin port (/metrics, /readyz) and its JSON log.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdmissionregistrationV1Api, KubeConfig } from '@kubernetes/client-node';
import { WEBHOOK_CONFIGURATION_NAME } from '../../src/api/names.ts';
import { sumSamples } from '../../src/runtime/metrics-text.ts';
import { freePort, isRunning, logTail, removeDirAtExit, startProcess, stopProcess, type Managed } from './processes.ts';

const CLI = fileURLToPath(new URL('../../cmd/breakwater.ts', import.meta.url));
const STARTUP_TIMEOUT_MS = 30_000;

export interface OperatorProcess {
  readonly name: string;
  readonly pid: number;
  readonly adminPort: number;
  /** The webhook's HTTPS port, which also serves the fleet reports. */
  readonly webhookPort: number;
  readonly proc: Managed;
  running(): boolean;
  /** Parsed /metrics: sum of every series of `name` whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Log lines (parsed JSON) written so far; the logger buffers, so recent lines may be missing. */
  logs(): Record<string, unknown>[];
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
  exitCode(): number | null;
}

export interface OperatorProcessOptions {
  readonly kubeconfig: string;
  /** The operator's own namespace: where its Lease lives. */
  readonly namespace: string;
  readonly args?: readonly string[];
  readonly name?: string;
  /** The CLI to run: the TypeScript source by default, or a compiled build of it. */
  readonly cli?: string;
}

/** Operators still running per kubeconfig: the last one to stop removes the webhook they registered. */
const running = new Map<string, number>();

/**
 * An operator started with `--webhook-url` registers the cluster-wide MutatingWebhookConfiguration and,
 * as in production, leaves it for the other replicas when it stops. The control plane is shared by
 * every test file, so the last operator a file stops takes the registration with it.
 */
async function released(kubeconfig: string): Promise<void> {
  const left = (running.get(kubeconfig) ?? 1) - 1;
  running.set(kubeconfig, left);
  if (left > 0) return;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  await kc
    .makeApiClient(AdmissionregistrationV1Api)
    .deleteMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME })
    .catch((error: { code?: number }) => {
      if (error.code !== 404) throw error;
    });
}

export async function startOperator(options: OperatorProcessOptions): Promise<OperatorProcess> {
  running.set(options.kubeconfig, (running.get(options.kubeconfig) ?? 0) + 1);
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-operator-'));
  removeDirAtExit(dir);
  const adminPort = await freePort();
  const webhookPort = await freePort();
  const name = options.name ?? 'operator';
  const logPath = join(dir, `${name}.log`);
  const proc = startProcess(
    name,
    process.execPath,
    [
      options.cli ?? CLI,
      'operator',
      `--kubeconfig=${options.kubeconfig}`,
      `--namespace=${options.namespace}`,
      `--admin-port=${adminPort}`,
      // Registered by URL on loopback, so it never points the cluster at a Service that does not exist.
      `--webhook-port=${webhookPort}`,
      `--webhook-url=https://127.0.0.1:${webhookPort}`,
      '--log-level=debug',
      ...(options.args ?? []),
    ],
    logPath,
  );
  const logs = (): Record<string, unknown>[] =>
    readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(proc)) throw new Error(`${name} exited during startup:\n${logTail(proc)}`);
    if ((await status(adminPort, '/healthz')) === 200) break;
    if (Date.now() > deadline) throw new Error(`${name} did not start in ${STARTUP_TIMEOUT_MS / 1000}s:\n${logTail(proc)}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    name,
    pid: proc.child.pid ?? 0,
    adminPort,
    webhookPort,
    proc,
    running: () => isRunning(proc),
    metric: async (metric, labels = {}) => sumSamples(await text(adminPort, '/metrics'), metric, labels) ?? 0,
    logs,
    stop: async (graceMs = 10_000) => {
      if (!isRunning(proc)) return;
      await stopProcess(proc, graceMs);
      await released(options.kubeconfig);
    },
    kill: async () => {
      if (!isRunning(proc)) return;
      process.kill(-(proc.child.pid ?? 0), 'SIGKILL');
      await proc.exited;
      await released(options.kubeconfig);
    },
    exitCode: () => proc.child.exitCode,
  };
}

async function status(port: number, path: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

async function text(port: number, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
  return res.text();
}

