// `make demo`: two identical misbehaving vendors on loopback, one called directly and one through the
// real sidecar, the same open-loop traffic against both, and what each did to the app, second by second.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { integrationUrl, parseIntegrations, renderIntegrations } from '../api/index.ts';
import { LINE_HEADER, line, summary, type CircuitState } from './report.ts';
import { circuitState, retries, startSidecarProcess } from './sidecar-process.ts';
import { startTraffic, type Sample } from './traffic.ts';
import { PHASES, phaseAt, startVendor } from './vendor.ts';

export interface DemoOptions {
  /** The `breakwater` entry point to run as the sidecar. */
  readonly cli: string;
  readonly configFile: string;
  readonly phaseMs: number;
  readonly ratePerSecond: number;
  readonly out: (text: string) => void;
  readonly signal: AbortSignal;
}

/** The app's own patience: what a caller without Breakwater would configure. */
const CLIENT_TIMEOUT_MS = 2000;
const FALLBACK_MARKER = '"source":"fallback"';
const BREAKER_POLL_MS = 50;
/** Seconds a row waits: the slowest call it counts gives up after CLIENT_TIMEOUT_MS. */
const ROW_LAG_S = Math.ceil(CLIENT_TIMEOUT_MS / 1000) + 1;

export async function runDemo(options: DemoOptions): Promise<void> {
  const { integrations, problems } = parseIntegrations(await readFile(options.configFile, 'utf8'));
  const integration = integrations[0];
  if (!integration || problems.length > 0) throw new Error(`${options.configFile} must hold one valid integration`);
  const name = integration.metadata.name;

  const work = await mkdtemp(join(tmpdir(), 'breakwater-demo-'));
  const clock = { phaseMs: options.phaseMs, startedAt: 0 };
  const [direct, proxied] = [await startVendor(clock), await startVendor(clock)];
  const config = join(work, 'integrations.yaml');
  await writeFile(config, renderIntegrations([{ ...integration, spec: { ...integration.spec, upstream: { url: proxied.url } } }]));
  const sidecar = await startSidecarProcess(options.cli, config, join(work, 'sidecar.log'));

  const tallies = { direct: [] as Sample[], proxied: [] as Sample[] };
  const transitions: string[] = [];
  let breaker: CircuitState = 'closed';
  let changedThisSecond = false;
  const pollBreaker = setInterval(() => {
    void sidecar.metrics().then((text) => {
      const state = circuitState(text, name);
      if (state && state !== breaker) {
        breaker = state;
        changedThisSecond = true;
        transitions.push(state);
      }
    }, () => undefined);
  }, BREAKER_POLL_MS);

  try {
    options.out(`vendor ${direct.url} called directly; vendor ${proxied.url} behind ${integrationUrl(name, sidecar.proxyPort)}`);
    options.out(`phases of ${options.phaseMs / 1000}s: ${PHASES.join(' → ')}; ${options.ratePerSecond} calls/s to each; sidecar log: ${join(work, 'sidecar.log')}`);
    options.out(`each row appears once every call started in its second has finished (${ROW_LAG_S}s later)\n`);
    options.out(LINE_HEADER);
    clock.startedAt = Date.now();
    const intervalMs = 1000 / options.ratePerSecond;
    const traffic = [
      startTraffic({ url: `${direct.url}/quote`, intervalMs, clientTimeoutMs: CLIENT_TIMEOUT_MS, onSample: (s) => tallies.direct.push(s) }),
      startTraffic({
        url: `${integrationUrl(name, sidecar.proxyPort)}/quote`,
        intervalMs,
        clientTimeoutMs: CLIENT_TIMEOUT_MS,
        fallbackMarker: FALLBACK_MARKER,
        onSample: (s) => tallies.proxied.push(s),
      }),
    ];
    const seconds = Math.round((PHASES.length * options.phaseMs) / 1000);
    // A call that hangs is counted in the second it started, so its row waits until it has finished.
    const breakerAt: string[] = [];
    const printRow = (second: number) => {
      const from = clock.startedAt + (second - 1) * 1000;
      const window = (samples: readonly Sample[]) => samples.filter((s) => s.at >= from && s.at < from + 1000);
      options.out(line(second, phaseAt(clock, from), window(tallies.direct), window(tallies.proxied), breakerAt[second] ?? breaker));
    };
    for (let second = 1; second <= seconds && !options.signal.aborted; second++) {
      await delay(Math.max(0, clock.startedAt + second * 1000 - Date.now()), undefined, { signal: options.signal }).catch(() => undefined);
      breakerAt[second] = `${breaker}${changedThisSecond ? ' ←' : ''}`;
      changedThisSecond = false;
      if (second > ROW_LAG_S) printRow(second - ROW_LAG_S);
    }
    await Promise.all(traffic.map((t) => t.stop()));
    if (options.signal.aborted) return;
    for (let second = Math.max(1, seconds - ROW_LAG_S + 1); second <= seconds; second++) printRow(second);
    options.out(`\nSummary over ${seconds}s\n`);
    options.out(
      summary({
        direct: tallies.direct,
        proxied: tallies.proxied,
        directVendorCalls: direct.calls,
        proxiedVendorCalls: proxied.calls,
        retries: retries(await sidecar.metrics(), name),
        transitions,
      }),
    );
  } finally {
    clearInterval(pollBreaker);
    await sidecar.stop();
    await Promise.all([direct.close(), proxied.close()]);
    if (!options.signal.aborted) await rm(work, { recursive: true, force: true });
  }
}
