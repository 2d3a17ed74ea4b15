// The demo runs the real `breakwater sidecar` command as a child process, exactly as a user would,
// and reads what it did from its admin port like a Prometheus scrape would.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'undici';
import { METRICS_PATH, READY_PATH } from '../api/names.ts';
import { METRIC_PREFIX } from '../runtime/metrics.ts';
import { sumSamples } from '../runtime/metrics-text.ts';
import type { CircuitState } from './report.ts';

export interface SidecarProcess {
  readonly proxyPort: number;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export async function startSidecarProcess(cli: string, configFile: string, logFile: string, extraArgs: readonly string[] = []): Promise<SidecarProcess> {
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(
    process.execPath,
    [cli, 'sidecar', '--config', configFile, '--port', String(proxyPort), '--admin-port', String(adminPort), '--log-level', 'info', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const admin = `http://127.0.0.1:${adminPort}`;
  await waitUntilReady(`${admin}${READY_PATH}`, exited, logFile);
  return {
    proxyPort,
    metrics: async () => (await request(`${admin}${METRICS_PATH}`)).body.text(),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      log.end();
    },
  };
}

async function waitUntilReady(url: string, exited: Promise<number | null>, logFile: string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    if (gone) throw new Error(`the sidecar exited before it was ready; see ${logFile}`);
    const ready = await request(url).then(
      async (res) => (await res.body.dump(), res.statusCode === 200),
      () => false,
    );
    if (ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the sidecar was not ready within 15 s; see ${logFile}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const STATES: Record<string, CircuitState> = { '0': 'closed', '1': 'half-open', '2': 'open' };

/** `breakwater_circuit_state{integration="…"}`: 0 closed, 1 half-open, 2 open (docs/design.md). */
export function circuitState(metrics: string, integration: string): CircuitState | undefined {
  const value = sumSamples(metrics, `${METRIC_PREFIX}circuit_state`, { integration });
  return value === undefined ? undefined : STATES[String(value)];
}

/** Sum of `breakwater_retries_total` over every label set of one integration. */
export function retries(metrics: string, integration: string): number {
  return sumSamples(metrics, `${METRIC_PREFIX}retries_total`, { integration }) ?? 0;
}
