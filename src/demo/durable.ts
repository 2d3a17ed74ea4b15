// `make demo`, second scene: the same bad day, but the app sends its orders with Prefer: respond-async
// to an integration with `delivery`. Every order is acknowledged at once whatever the vendor does; the
// sidecar keeps them in its SQLite file and delivers each once, at the vendor's pace, after the bad
// phases; the orders the vendor refuses end as dead letters, listed with `breakwater deliveries`.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { integrationUrl, renderIntegrations, type ExternalIntegration } from '../api/index.ts';
import { METRIC_PREFIX } from '../runtime/metrics.ts';
import { sumSamples } from '../runtime/metrics-text.ts';
import type { CircuitState } from './report.ts';
import { circuitState, startSidecarProcess } from './sidecar-process.ts';
import { PHASES, phaseAt, REFUSED_PATH, startVendor } from './vendor.ts';

export interface DurableSceneOptions {
  readonly cli: string;
  readonly integration: ExternalIntegration;
  readonly phaseMs: number;
  readonly ratePerSecond: number;
  readonly out: (text: string) => void;
  readonly signal: AbortSignal;
}

/** One order in this many is invalid: the vendor refuses it, and it ends a dead letter. */
const INVALID_EVERY = 25;
/** How long the scene waits, after the traffic, for the backlog to drain. */
const DRAIN_LIMIT_MS = 60_000;

const HEADER = '  time  vendor          │ app: sent  accepted  not accepted  p99 ack │ vendor: took │ backlog │ breaker';

export async function runDurableScene(options: DurableSceneOptions): Promise<void> {
  const name = options.integration.metadata.name;
  const work = await mkdtemp(join(tmpdir(), 'breakwater-demo-durable-'));
  const clock = { phaseMs: options.phaseMs, startedAt: 0 };
  const vendor = await startVendor(clock);
  const config = join(work, 'integrations.yaml');
  const store = `sqlite:${join(work, 'deliveries.sqlite')}`;
  const spec = { ...options.integration.spec, upstream: { url: vendor.url }, delivery: { maxAge: '5m', maxBackoff: '2s' } };
  await writeFile(config, renderIntegrations([{ ...options.integration, spec }]));
  const sidecar = await startSidecarProcess(options.cli, config, join(work, 'sidecar.log'), ['--delivery-store', store]);
  const dispatcher = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
  const base = integrationUrl(name, sidecar.proxyPort);
  const sent: { at: number; status: number; ms: number }[] = [];
  const inFlight = new Set<Promise<void>>();
  let order = 0;
  const metric = async (text: string | undefined, series: string) => sumSamples(text ?? (await sidecar.metrics()), `${METRIC_PREFIX}${series}`, { integration: name }) ?? 0;

  try {
    options.out(`\nDurable scene: the same phases; the app sends each order once with Prefer: respond-async and an Idempotency-Key`);
    options.out(`(one in ${INVALID_EVERY} is invalid and refused by the vendor); the sidecar keeps them in ${store}\n`);
    options.out(HEADER);
    clock.startedAt = Date.now();
    const timer = setInterval(() => {
      const n = ++order;
      const at = Date.now();
      const started = performance.now();
      const call = request(`${base}${n % INVALID_EVERY === 0 ? REFUSED_PATH : '/orders'}`, {
        dispatcher,
        method: 'POST',
        headers: { prefer: 'respond-async', 'idempotency-key': `order-${n}`, 'content-type': 'application/json' },
        body: JSON.stringify({ order: n }),
      }).then(
        async (res) => {
          await res.body.dump();
          sent.push({ at, status: res.statusCode, ms: performance.now() - started });
        },
        () => void sent.push({ at, status: 0, ms: performance.now() - started }),
      );
      inFlight.add(call);
      void call.finally(() => inFlight.delete(call));
    }, 1000 / options.ratePerSecond);

    const seconds = Math.round((PHASES.length * options.phaseMs) / 1000);
    let tookBefore = 0;
    for (let second = 1; second <= seconds && !options.signal.aborted; second++) {
      await delay(Math.max(0, clock.startedAt + second * 1000 - Date.now()), undefined, { signal: options.signal }).catch(() => undefined);
      const from = clock.startedAt + (second - 1) * 1000;
      const text = await sidecar.metrics();
      const took = vendor.processed.size;
      options.out(row(second, phaseAt(clock, from), sent.filter((s) => s.at >= from && s.at < from + 1000), took - tookBefore, await metric(text, 'delivery_backlog'), circuitState(text, name)));
      tookBefore = took;
    }
    clearInterval(timer);
    await Promise.all(inFlight);
    if (options.signal.aborted) return;

    const drainStarted = Date.now();
    options.out(`\nThe vendor is healthy again; the sidecar drains what it accepted at the vendor's pace:`);
    while (!options.signal.aborted && Date.now() - drainStarted < DRAIN_LIMIT_MS) {
      await delay(1000, undefined, { signal: options.signal }).catch(() => undefined);
      const backlog = await metric(undefined, 'delivery_backlog');
      options.out(`  +${Math.round((Date.now() - drainStarted) / 1000)}s  vendor took ${vendor.processed.size - tookBefore} more, backlog ${backlog}`);
      tookBefore = vendor.processed.size;
      if (backlog === 0) break;
    }
    const accepted = sent.filter((s) => s.status === 202).length;
    const dead = await metric(undefined, 'dead_letters');
    options.out(`\nSummary: ${sent.length} orders sent, ${accepted} accepted (202), ${sent.length - accepted} not accepted`);
    options.out(
      `  the vendor took ${vendor.processed.size} distinct orders, ${vendor.unkeyed} without an Idempotency-Key; ` +
        `${vendor.repeats} repeated attempts carried a key it had processed and were not processed again; ${dead} dead letters (refused by the vendor):\n`,
    );
    options.out(await deadLetters(options.cli, store));
  } finally {
    await dispatcher.close();
    await sidecar.stop();
    await vendor.close();
    if (!options.signal.aborted) await rm(work, { recursive: true, force: true });
  }
}

function row(second: number, phase: string, sent: readonly { status: number; ms: number }[], took: number, backlog: number, breaker: CircuitState | undefined): string {
  const accepted = sent.filter((s) => s.status === 202).length;
  const p99 = sent.length === 0 ? 0 : sent.map((s) => s.ms).sort((a, b) => a - b)[Math.ceil(0.99 * sent.length) - 1]!;
  const n = (v: number, width: number) => String(v).padStart(width);
  return `${n(second, 5)}s  ${phase.padEnd(15)} │ ${n(sent.length, 9)} ${n(accepted, 9)} ${n(sent.length - accepted, 13)} ${`${Math.round(p99)}ms`.padStart(8)} │ ${n(took, 12)} │ ${n(backlog, 7)} │ ${breaker ?? ''}`;
}

/** `breakwater deliveries list --state dead`, as a user would run it. */
function deadLetters(cli: string, store: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'deliveries', 'list', '--state', 'dead', '--store', store], (error, stdout, stderr) => {
      resolve(`$ breakwater deliveries list --state dead\n${(error ? stderr : stdout).trimEnd()}`);
    });
  });
}
