// Breakwater's sidecar, started through its CLI exactly as a user would (`breakwater sidecar --config …`),
// as a child process so its CPU and memory can be read like any other proxy's. Two configurations:
// `minimal` is the least a user can write, an integration with only `upstream` (docs/design.md's defaults still
// apply: timeouts, three attempts, a consecutive-failures breaker); `full` turns every policy on,
// with limits set so that none of them triggers on a healthy vendor. `full` also carries `flaky`, an
// integration whose vendor always fails, for the breaker-open scenario.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { READY_PATH } from '../../src/api/names.ts';
import { startChild } from '../support/children.ts';
import { nodeRuntimeEnv } from '../support/runtime.ts';
import { freePort, HOST, waitForOk } from '../support/net.ts';
import { rssBytes } from '../support/proc.ts';
import { nodeCommand, ORIGIN_PATH, type Target } from '../support/target.ts';

export const INTEGRATION = 'bench';
export const FLAKY = 'flaky';
const SECRET = { name: 'bench-key', key: 'token', value: 'sk_test_benchmark' };

export type Profile = 'minimal' | 'full';

export interface Breakwater extends Target {
  readonly adminUrl: string;
  /** The proxy's base URL, for integrations other than `bench`. */
  readonly proxyUrl: string;
  /**
   * Replaces the config file with the benchmark's integrations plus `extra` ones (each served by the
   * origin) and `perAttempt` as the `bench` integration's per-attempt timeout. `rename` writes a new
   * file and moves it into place, as an atomic deploy does; otherwise the file is rewritten in place.
   */
  rewriteConfig(change: { readonly extra: readonly string[]; readonly perAttempt: string; readonly rename: boolean }): void;
}

function integration(name: string, spec: string): string {
  return `apiVersion: breakwater.dev/v1alpha1
kind: ExternalIntegration
metadata:
  name: ${name}
spec:
${spec.trimEnd().replace(/^/gm, '  ')}
`;
}

function fullPolicy(upstream: string, perAttempt: string, timeouts: string | undefined): string {
  return `upstream: { url: "${upstream}" }
timeouts: ${timeouts ?? `{ connect: 1s, perAttempt: ${perAttempt}, total: 5s }`}
retry:
  maxAttempts: 3
  backoff: { initial: 50ms, max: 1s, multiplier: 2, jitter: full }
  budget: { percent: 20, minPerSecond: 5 }
circuitBreaker: { consecutiveFailures: 5, halfOpenAfter: 30s }
rateLimit: { requests: 1000000, per: 1s, burst: 1000000, whenExceeded: reject }
bulkhead: { maxConcurrent: 1000, maxQueued: 1000 }
auth: { header: Authorization, prefix: "Bearer ", secretRef: { name: ${SECRET.name}, key: ${SECRET.key} } }`;
}

function configFor(profile: Profile, origin: string, timeouts: string | undefined, change = { extra: [] as readonly string[], perAttempt: '2s' }): string {
  if (profile === 'minimal') return integration(INTEGRATION, `upstream: { url: "${origin}" }${timeouts ? `\ntimeouts: ${timeouts}` : ''}`);
  return [
    integration(INTEGRATION, fullPolicy(origin, change.perAttempt, timeouts)),
    // Fails on every call; opens after 5 and stays open for the whole run.
    integration(FLAKY, `upstream: { url: "${origin}/fail" }
retry: { maxAttempts: 1 }
circuitBreaker: { consecutiveFailures: 5, halfOpenAfter: 10m }`),
    ...change.extra.map((name) => integration(name, `upstream: { url: "${origin}" }`)),
  ].join('---\n');
}

/** Why the sidecar cannot be benchmarked yet, or undefined when its CLI answers `sidecar --help`. */
export function unavailable(cli: string): string | undefined {
  const probe = spawnSync(process.execPath, [cli, 'sidecar', '--help'], { encoding: 'utf8', timeout: 15_000 });
  if (probe.status === 0) return undefined;
  return `skipped: \`breakwater sidecar --help\` failed (${(probe.stderr || probe.stdout).trim().split('\n')[0]})`;
}

export interface StartOptions {
  readonly profile: Profile;
  readonly originUrl: string;
  readonly tmp: string;
  /** The `breakwater` CLI to run: cmd/breakwater.ts or its compiled form. */
  readonly cli: string;
  /** Node flags for the sidecar process, e.g. --cpu-prof. */
  readonly nodeFlags?: readonly string[];
  /** A command that runs Node (valgrind), and how long the sidecar may then take to be ready. */
  readonly launcher?: readonly string[];
  readonly readyTimeoutMs?: number;
  /**
   * The `bench` integration's timeouts in place of the profile's, e.g. long enough that a sidecar made
   * many times slower (under valgrind, on a busy machine) never gives up on a healthy origin.
   */
  readonly timeouts?: string;
}

export async function startBreakwater({ profile, originUrl, tmp, cli, nodeFlags = [], launcher = [], readyTimeoutMs = 20_000, timeouts }: StartOptions): Promise<Breakwater> {
  const dir = join(tmp, `breakwater-${profile}`);
  const secretsDir = join(dir, 'secrets');
  mkdirSync(join(secretsDir, SECRET.name), { recursive: true });
  writeFileSync(join(secretsDir, SECRET.name, SECRET.key), SECRET.value);
  const configFile = join(dir, 'integrations.yaml');
  writeFileSync(configFile, configFor(profile, originUrl, timeouts));
  const [port, adminPort] = [await freePort(), await freePort()];
  const args = [
    ...nodeFlags,
    cli,
    'sidecar',
    '--config', configFile,
    '--port', String(port),
    '--admin-port', String(adminPort),
    '--secrets-dir', secretsDir,
    '--log-level', 'info',
  ];
  // Per-call info logs go to /dev/null: written for real, but not to the terminal or a growing file.
  const child = startChild(`breakwater-${profile}`, ...nodeCommand(args, launcher), { env: nodeRuntimeEnv() }, join(dir, 'stderr.log'));
  const adminUrl = `http://${HOST}:${adminPort}`;
  try {
    await waitForOk(`${adminUrl}${READY_PATH}`, readyTimeoutMs, () => child.process.exitCode === null);
  } catch (error) {
    throw new Error(`breakwater-${profile}: ${(error as Error).message}\n${child.stderrTail()}`);
  }
  const proxyUrl = `http://${HOST}:${port}`;
  const description =
    profile === 'minimal'
      ? 'only `upstream` (defaults still apply: timeouts, 3 attempts, breaker); logs at info to /dev/null'
      : 'timeouts, retry, breaker, rate limit 1M/s, bulkhead 1000, credential from file, metrics, logs at info to /dev/null';
  return {
    name: `breakwater-${profile}`,
    description,
    url: `${proxyUrl}/${INTEGRATION}${ORIGIN_PATH}`,
    proxyUrl,
    adminUrl,
    child,
    idleRssBytes: rssBytes(child.pid),
    rewriteConfig({ extra, perAttempt, rename }) {
      const text = configFor(profile, originUrl, timeouts, { extra, perAttempt });
      if (!rename) return writeFileSync(configFile, text);
      writeFileSync(`${configFile}.next`, text);
      renameSync(`${configFile}.next`, configFile);
    },
  };
}
