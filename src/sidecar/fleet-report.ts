// The fleet reporter: samples the sidecar's own state every second and sends the operator one report
// (docs/reference.md, "Fleet reports") when a breaker changes state, when an integration comes or goes,
// and otherwise every heartbeat; the answer carries this pod's share of each fleet-scoped quota, and a
// last report on shutdown counts the pod out. It authenticates with the pod's projected ServiceAccount token, read
// again for every report because kubelet rotates it. Reporting is best effort: a failed report is
// logged and sent again later; it never touches a call.
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import {
  REPORT_HEARTBEAT_BOUNDS,
  REPORT_MIN_INTERVAL_MS,
  type CircuitStateName,
  type FleetReport,
  type FleetReportAnswer,
  type IntegrationReport,
} from '../api/fleet-report.ts';
import type { Logger } from '../runtime/logger.ts';
import type { IntegrationSample, Snapshot } from './fleet-snapshot.ts';

export const FLEET_REPORTER_DEFAULTS = {
  heartbeatMs: 10_000,
  sampleMs: 500,
  windowMs: 60_000,
  requestTimeoutMs: 5_000,
  /** Shutting down waits this long, at most, for the operator to take the leaving report. */
  leavingTimeoutMs: 1_000,
} as const;

export interface FleetReporterOptions {
  /** The operator's report endpoint (https://…/fleet/v1/reports). */
  readonly url: string;
  /** The projected ServiceAccount token (audience breakwater.dev/fleet). */
  readonly tokenFile: string;
  /** PEM bundle the endpoint's certificate chains to; the system roots when absent. */
  readonly ca?: string;
  readonly heartbeatMs?: number;
  readonly sampleMs?: number;
  /** Deliveries are kept in a store every sidecar shares. */
  readonly sharedStore: boolean;
  readonly snapshot: Snapshot;
  /**
   * Called after every sample with the shares of fleet-scoped quotas the operator last answered with
   * (integration → share), so an integration reloaded since gets its share again at once.
   */
  readonly applyShares?: (shares: ReadonlyMap<string, number>) => void;
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface FleetReporter {
  stop(): Promise<void>;
}

interface Tracked {
  circuit: CircuitStateName;
  since: number;
  lastError?: { time: number; error: string };
  /** Cumulative calls and failures at each sample of the last minute, oldest first. */
  history: { at: number; calls: number; failures: number }[];
  failures: ReadonlyMap<string, number>;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function startFleetReporter(options: FleetReporterOptions): FleetReporter {
  const now = options.now ?? Date.now;
  const heartbeatMs = options.heartbeatMs ?? FLEET_REPORTER_DEFAULTS.heartbeatMs;
  const heartbeatSeconds = Math.min(
    REPORT_HEARTBEAT_BOUNDS.maxSeconds,
    Math.max(REPORT_HEARTBEAT_BOUNDS.minSeconds, Math.round(heartbeatMs / 1000)),
  );
  const logger = options.logger.child({ component: 'fleet-report' });
  const dispatcher = new Agent({ connect: { ...(options.ca && { ca: options.ca }) }, connections: 1 });
  const tracked = new Map<string, Tracked>();
  let lastShape = '';
  let lastSentAt = -Infinity;
  let notBefore = 0;
  let failuresInARow = 0;
  let sending: Promise<void> | undefined;
  let shares = new Map<string, number>();
  let stopped = false;

  const track = (sample: IntegrationSample, at: number): IntegrationReport => {
    const failed = [...sample.failures.values()].reduce((a, b) => a + b, 0);
    let t = tracked.get(sample.name);
    if (!t) {
      // Its series began when it came into service, a moment ago: all of them count as this minute's.
      t = { circuit: sample.circuit, since: at, history: [{ at, calls: 0, failures: 0 }], failures: new Map() };
      tracked.set(sample.name, t);
    }
    if (t.circuit !== sample.circuit) Object.assign(t, { circuit: sample.circuit, since: at });
    for (const [error, count] of sample.failures) if (count > (t.failures.get(error) ?? 0)) t.lastError = { time: at, error };
    t.failures = sample.failures;
    t.history.push({ at, calls: sample.calls, failures: failed });
    while (t.history.length > 1 && t.history[1]!.at <= at - FLEET_REPORTER_DEFAULTS.windowMs) t.history.shift();
    const base = t.history[0]!;
    return {
      name: sample.name,
      circuit: t.circuit,
      since: iso(t.since),
      ...(t.lastError && { lastError: { time: iso(t.lastError.time), error: t.lastError.error } }),
      calls: sample.calls - base.calls,
      failures: failed - base.failures,
      backlog: Math.max(0, Math.round(sample.backlog)),
      needsRestart: sample.needsRestart,
    };
  };

  const send = async (report: FleetReport, timeoutMs: number = FLEET_REPORTER_DEFAULTS.requestTimeoutMs): Promise<number | undefined> => {
    const token = (await readFile(options.tokenFile, 'utf8')).trim();
    const response = await request(options.url, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(report),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await response.body.text();
    if (response.statusCode === 202) {
      const answer = JSON.parse(text) as Partial<FleetReportAnswer>;
      shares = new Map(Object.entries(answer.shares ?? {}).filter(([, share]) => typeof share === 'number' && share > 0 && share <= 1));
      return undefined;
    }
    const retryAfter = Number(response.headers['retry-after']);
    const error = new Error(`operator answered ${response.statusCode}: ${text.slice(0, 300)}`);
    if (response.statusCode === 429 && Number.isFinite(retryAfter)) return retryAfter * 1000;
    throw error;
  };

  const tick = async (): Promise<void> => {
    const at = now();
    const samples = await options.snapshot();
    options.applyShares?.(shares);
    const integrations = samples.map((s) => track(s, at));
    for (const name of tracked.keys()) if (!samples.some((s) => s.name === name)) tracked.delete(name);
    // What makes a report urgent: a breaker's state, an integration added or retired, a restart needed.
    const shape = JSON.stringify(integrations.map((i) => [i.name, i.circuit, i.needsRestart]));
    const due = at - lastSentAt >= heartbeatMs || (shape !== lastShape && at - lastSentAt >= REPORT_MIN_INTERVAL_MS);
    if (!due || at < notBefore) return;
    lastSentAt = at;
    try {
      const wait = await send({ heartbeatSeconds, sharedStore: options.sharedStore, integrations });
      if (wait !== undefined) {
        notBefore = at + wait;
        lastSentAt = -Infinity;
        return;
      }
      lastShape = shape;
      if (failuresInARow > 0) logger.info({ after: failuresInARow }, 'fleet report accepted again');
      failuresInARow = 0;
    } catch (error) {
      failuresInARow++;
      // Logged on the first failure and then sparsely: an operator that is down must not flood the log.
      if ((failuresInARow & (failuresInARow - 1)) === 0) logger.warn({ err: (error as Error).message, failures: failuresInARow, url: options.url }, 'fleet report not accepted; retrying');
      // Doubling from a second, but never longer than a heartbeat: waiting longer would let this pod's
      // record lapse (three heartbeats) behind an operator that was away for a moment.
      notBefore = at + Math.min(heartbeatMs, 1000 * 2 ** Math.min(failuresInARow - 1, 5));
      lastSentAt = -Infinity;
    }
  };

  const timer = setInterval(() => {
    if (sending || stopped) return;
    sending = tick()
      .catch((error: unknown) => logger.warn({ err: error }, 'fleet report sample failed'))
      .finally(() => {
        sending = undefined;
      });
  }, options.sampleMs ?? FLEET_REPORTER_DEFAULTS.sampleMs);
  timer.unref();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await sending;
      // Leaving: the operator counts this pod out now, and the others' shares grow with their next report.
      await send({ heartbeatSeconds, sharedStore: options.sharedStore, integrations: [], leaving: true }, FLEET_REPORTER_DEFAULTS.leavingTimeoutMs).catch(
        (error: unknown) => logger.debug({ err: (error as Error).message }, 'leaving report not accepted'),
      );
      await dispatcher.close();
    },
  };
}
