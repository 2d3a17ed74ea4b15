// A config reload under load: while an open-loop generator sends a steady rate through the sidecar,
// the config file is replaced (once rewritten in place, once renamed into place), changing the policy
// of the integration being called and adding a new one. Two times are taken from the write: until the
// new integration answers (the reload is in effect) and until `breakwater_config_reloads_total` counts
// it on the admin port. Every non-2xx or failed call of the steady load is a dropped request; the
// contract is zero.
import { setTimeout as sleep } from 'node:timers/promises';
import { METRICS_PATH } from '../src/api/names.ts';
import { METRIC_PREFIX } from '../src/runtime/metrics.ts';
import { sumSamples } from '../src/runtime/metrics-text.ts';
import { get } from './support/net.ts';
import { openLoop } from './support/open-loop.ts';
import { percentiles, type Percentiles } from './support/stats.ts';
import { ORIGIN_PATH } from './support/target.ts';
import type { Breakwater } from './targets/breakwater.ts';

export interface ReloadOptions {
  readonly rate: number;
  readonly reloads: number;
  /** Steady load before the first reload, between reloads and after the last one. */
  readonly gapMs: number;
}

export interface Reload {
  readonly how: 'rewritten in place' | 'renamed into place';
  /** From the write until the added integration answered 200; null if it never did. */
  readonly appliedMs: number | null;
  /** From the write until the success counter moved; null if it never did. */
  readonly countedMs: number | null;
}

export interface ReloadResult {
  readonly reloads: Reload[];
  readonly scheduled: number;
  /** non-2xx, errors and timeouts of the steady load: requests the reloads dropped. */
  readonly failed: number;
  readonly statuses: Record<string, number>;
  readonly latency: Percentiles;
  readonly counted: { readonly success: number; readonly failure: number };
}

const POLL_MS = 5;
const APPLY_TIMEOUT_MS = 5000;

async function reloadCounter(adminUrl: string, result: 'success' | 'failure'): Promise<number> {
  const { body } = await get(`${adminUrl}${METRICS_PATH}`);
  return sumSamples(body, `${METRIC_PREFIX}config_reloads_total`, { result }) ?? 0;
}

async function pollUntil(check: () => Promise<boolean>, everyMs: number, since: number): Promise<number | null> {
  while (performance.now() - since < APPLY_TIMEOUT_MS) {
    try {
      if (await check()) return performance.now() - since;
    } catch {
      // Not there yet.
    }
    await sleep(everyMs);
  }
  return null;
}

export async function configReload(sidecar: Breakwater, options: ReloadOptions): Promise<ReloadResult> {
  const before = { success: await reloadCounter(sidecar.adminUrl, 'success'), failure: await reloadCounter(sidecar.adminUrl, 'failure') };
  const load = openLoop({ url: sidecar.url, rate: options.rate, durationMs: options.gapMs * (options.reloads + 1) });
  const reloads: Reload[] = [];
  const extra: string[] = [];
  for (let k = 1; k <= options.reloads; k++) {
    await sleep(options.gapMs);
    const added = `reload-${k}`;
    extra.push(added);
    const rename = k % 2 === 0;
    const counted = await reloadCounter(sidecar.adminUrl, 'success');
    const since = performance.now();
    sidecar.rewriteConfig({ extra, perAttempt: k % 2 ? '3s' : '2s', rename });
    const [appliedMs, countedMs] = await Promise.all([
      pollUntil(async () => (await get(`${sidecar.proxyUrl}/${added}${ORIGIN_PATH}`)).status === 200, POLL_MS, since),
      pollUntil(async () => (await reloadCounter(sidecar.adminUrl, 'success')) > counted, POLL_MS * 4, since),
    ]);
    reloads.push({ how: rename ? 'renamed into place' : 'rewritten in place', appliedMs, countedMs });
  }
  const result = await load;
  return {
    reloads,
    scheduled: result.scheduled,
    failed: result.non2xx + result.errors + result.timedOut,
    statuses: result.statuses,
    latency: percentiles(result.latencyMs),
    counted: {
      success: (await reloadCounter(sidecar.adminUrl, 'success')) - before.success,
      failure: (await reloadCounter(sidecar.adminUrl, 'failure')) - before.failure,
    },
  };
}
