// The fleet controller (leader only): turns the per-pod records that any replica wrote into each
// ExternalIntegration's status — breaker counts, pods reporting, calls in the last minute, backlog and
// the VendorHealthy condition — counts out pods whose records lapsed (and deletes those records), and
// records an Event when the fleet's breaker changes ("circuit open in 2/3 pods").
//
// The key is the app namespace, as for the integration controller. A namespace with live records is
// reconciled again when the next record would lapse, so a killed pod is counted out without any event.
import { FleetReport } from '../api/fleet-report.ts';
import { Value } from '@sinclair/typebox/value';
import {
  API_VERSION,
  CONDITION_VENDOR_HEALTHY,
  EVENT_REPORTING_CONTROLLER,
  KIND,
  LABEL_POD_NAMESPACE,
  REASON_CIRCUIT_CLOSED,
  REASON_CIRCUIT_OPEN,
} from '../api/names.ts';
import type { Condition, ExternalIntegrationStatus } from '../api/schema.ts';
import { isConflict, isNotFound } from '../kube/errors.ts';
import { EventRecorder } from '../kube/events.ts';
import { deleteFleetRecord, FLEET_RECORD_SELECTOR, LEASES, readFleetRecord, type StoredLease } from '../kube/fleet-records.ts';
import type { Informer, InformerOptions } from '../kube/informer.ts';
import { patchIntegrationStatusAt, readIntegration } from '../kube/integration-status.ts';
import { EXTERNAL_INTEGRATIONS, type StoredIntegration } from '../kube/resources.ts';
import type { Logger } from '../runtime/logger.ts';
import { Controller, type Result } from './controller.ts';
import { enqueueNamespace } from './event-handler.ts';
import { aggregate, headline, vendorHealthy, type PodReport } from './fleet-aggregate.ts';
import type { Manager } from './manager.ts';
import type { OperatorMetrics } from './metrics.ts';
import { generationChanged } from './predicate.ts';
import { watch } from './source.ts';

export const FLEET_CONTROLLER_DEFAULTS = {
  /** Calls and backlog change with every heartbeat; they are written at most this often per integration. */
  trafficWriteIntervalMs: 5_000,
  /** While pods report, their namespace is looked at again at least this often. */
  resyncMs: 5_000,
  conflictRetries: 5,
} as const;

export interface FleetControllerOptions {
  /** The operator's namespace, where the records live. */
  readonly namespace: string;
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  readonly identity: string;
  readonly informer?: Pick<InformerOptions, 'watchTimeoutSeconds' | 'watchdogMs' | 'backoff'>;
  readonly now?: () => number;
}

type FleetPart = Pick<ExternalIntegrationStatus, 'circuit' | 'pods' | 'lastMinute' | 'backlog'> & { readonly condition: Condition };

/** Our own write shows in the cache a moment late; while the cache still shows what we wrote over, the write is what counts. */
interface Written {
  /** The cached resourceVersion the write was based on. */
  readonly resourceVersion: string;
  readonly at: number;
  readonly value: FleetPart;
}

/** The records informer, one per process: the controller aggregates from it, the report endpoint counts shares from it. */
export function fleetRecords(manager: Manager, namespace: string, informer?: FleetControllerOptions['informer']): Informer<StoredLease> {
  return manager.informer<StoredLease>(LEASES, { ...informer, namespace, labelSelector: FLEET_RECORD_SELECTOR });
}

export function addFleetController(manager: Manager, options: FleetControllerOptions): Controller {
  const now = options.now ?? Date.now;
  const integrations = manager.informer<StoredIntegration>(EXTERNAL_INTEGRATIONS, options.informer);
  const records = fleetRecords(manager, options.namespace, options.informer);
  const logger = options.logger.child({ controller: 'fleet' });
  const recorder = new EventRecorder(manager.client, EVENT_REPORTING_CONTROLLER, options.identity);
  const written = new Map<string, Written>();

  const current = (stored: StoredIntegration): FleetPart | undefined => {
    const memo = written.get(stored.metadata.uid ?? '');
    if (memo && memo.resourceVersion === stored.metadata.resourceVersion) return memo.value;
    const status = stored.status;
    const condition = status?.conditions?.find((c) => c.type === CONDITION_VENDOR_HEALTHY);
    if (!condition) return undefined;
    return { circuit: status?.circuit, pods: status?.pods, lastMinute: status?.lastMinute, backlog: status?.backlog, condition };
  };

  const write = async (stored: StoredIntegration, desired: Omit<FleetPart, 'condition'>, health: ReturnType<typeof vendorHealthy>, signal: AbortSignal): Promise<FleetPart | undefined> => {
    const namespace = stored.metadata.namespace ?? '';
    const name = stored.metadata.name;
    for (let attempt = 0; ; attempt++) {
      let fresh: StoredIntegration;
      try {
        fresh = await readIntegration(manager.client, namespace, name, signal);
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
      const previous = fresh.status?.conditions?.find((c) => c.type === CONDITION_VENDOR_HEALTHY);
      const condition: Condition = {
        ...health,
        lastTransitionTime: previous?.status === health.status && previous.lastTransitionTime ? previous.lastTransitionTime : rfc3339(new Date(now())),
      };
      const conditions = [...(fresh.status?.conditions ?? []).filter((c) => c.type !== CONDITION_VENDOR_HEALTHY), condition];
      // A merge patch removes a field only when told to with null.
      const circuit = { since: null, lastError: null, ...desired.circuit };
      try {
        await patchIntegrationStatusAt(
          manager.client,
          { namespace, name, resourceVersion: fresh.metadata.resourceVersion ?? '' },
          { circuit, pods: desired.pods, lastMinute: desired.lastMinute, backlog: desired.backlog, conditions },
          signal,
        );
      } catch (error) {
        if (isNotFound(error)) return undefined;
        if (isConflict(error) && attempt < FLEET_CONTROLLER_DEFAULTS.conflictRetries) continue;
        throw error;
      }
      const value = { ...desired, condition };
      written.set(stored.metadata.uid ?? '', { resourceVersion: stored.metadata.resourceVersion ?? '', at: now(), value });
      return value;
    }
  };

  const announce = (stored: StoredIntegration, before: FleetPart | undefined, after: FleetPart, signal: AbortSignal): void => {
    const was = before?.condition;
    const is = after.condition;
    const opened = is.status === 'False' && (was?.status !== 'False' || before?.circuit?.open !== after.circuit?.open || before?.circuit?.halfOpen !== after.circuit?.halfOpen);
    const closed = is.status === 'True' && was?.status === 'False';
    if (!opened && !closed) return;
    const namespace = stored.metadata.namespace ?? '';
    const name = stored.metadata.name;
    const fleet = after as Required<FleetPart>;
    const target = { apiVersion: API_VERSION, kind: KIND, namespace, name, uid: stored.metadata.uid };
    const details = opened
      ? { type: 'Warning' as const, reason: REASON_CIRCUIT_OPEN, action: 'Aggregate', note: `${headline(fleet)}${fleet.circuit.lastError ? `; last error ${fleet.circuit.lastError.error} in pod ${fleet.circuit.lastError.pod}` : ''}` }
      : { type: 'Normal' as const, reason: REASON_CIRCUIT_CLOSED, action: 'Aggregate', note: headline(fleet) };
    logger.info({ namespace, name, event: details.reason }, details.note);
    recorder.record(target, details, signal).catch((error: unknown) => {
      if (!signal.aborted) logger.warn({ namespace, name, err: error }, 'could not record event');
    });
  };

  const reconcile = async (namespace: string, signal: AbortSignal): Promise<Result> => {
    const at = now();
    const live: { pod: string; report: FleetReport }[] = [];
    let nextLapse = Infinity;
    for (const lease of records.list(options.namespace)) {
      if (lease.metadata.labels?.[LABEL_POD_NAMESPACE] !== namespace) continue;
      const record = readFleetRecord(lease);
      const lapsesAt = record ? record.renewTime.getTime() + record.leaseDurationSeconds * 1000 : 0;
      if (!record || lapsesAt <= at || !Value.Check(FleetReport, record.report)) {
        await deleteFleetRecord(manager.client, options.namespace, lease.metadata.name, signal);
        if (record) logger.info({ namespace, pod: record.pod }, 'pod stopped reporting; counted out');
        continue;
      }
      nextLapse = Math.min(nextLapse, lapsesAt);
      live.push({ pod: record.pod, report: record.report });
    }
    let requeueAfterMs = live.length > 0 ? Math.min(FLEET_CONTROLLER_DEFAULTS.resyncMs, nextLapse - at + 100) : undefined;
    for (const stored of integrations.list(namespace)) {
      if (stored.metadata.deletionTimestamp) continue;
      const name = stored.metadata.name;
      const reports: PodReport[] = live.flatMap(({ pod, report }) => {
        const mine = report.integrations.find((i) => i.name === name);
        return mine ? [{ pod, sharedStore: report.sharedStore, report: mine }] : [];
      });
      const before = current(stored);
      // An integration no pod ever reported for keeps a status without the fleet's fields.
      if (reports.length === 0 && before === undefined) continue;
      const desired = aggregate(reports);
      const health = vendorHealthy(desired, stored.spec.circuitBreaker?.forceOpen === true);
      if (before && sameFleet(before, desired, health)) continue;
      const trafficOnly = before && sameFleet(before, { ...desired, lastMinute: before.lastMinute ?? desired.lastMinute, backlog: before.backlog ?? desired.backlog }, health);
      const memo = written.get(stored.metadata.uid ?? '');
      if (trafficOnly && memo && at - memo.at < FLEET_CONTROLLER_DEFAULTS.trafficWriteIntervalMs) {
        requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, memo.at + FLEET_CONTROLLER_DEFAULTS.trafficWriteIntervalMs - at);
        continue;
      }
      const after = await write(stored, desired, health, signal);
      if (after) announce(stored, before, after, signal);
    }
    return requeueAfterMs === undefined ? {} : { requeueAfterMs: Math.max(50, requeueAfterMs) };
  };

  const controller = new Controller({
    name: 'fleet',
    logger,
    metrics: options.metrics,
    reconciler: reconcile,
    watches: [
      watch({
        informer: records,
        handler: (event) => {
          const namespace = event.object.metadata.labels?.[LABEL_POD_NAMESPACE];
          return namespace ? [namespace] : [];
        },
      }),
      watch({ informer: integrations, handler: enqueueNamespace, predicates: [generationChanged] }),
    ],
  });
  manager.addController(controller);
  return controller;
}

function sameFleet(current: FleetPart, desired: Omit<FleetPart, 'condition'>, health: ReturnType<typeof vendorHealthy>): boolean {
  const c = current.condition;
  return (
    c.status === health.status &&
    c.reason === health.reason &&
    c.message === health.message &&
    canonical(current.circuit) === canonical(desired.circuit) &&
    canonical(current.pods) === canonical(desired.pods) &&
    canonical(current.lastMinute) === canonical(desired.lastMinute) &&
    current.backlog === desired.backlog
  );
}

/** JSON with sorted keys: the API server does not keep the order we wrote. */
function canonical(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

/** Kubernetes' metav1.Time: seconds precision. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
