// The fleet view of one integration, from the reports of the pods serving it: pure functions, so the
// counting and the wording are tested without a cluster.
import type { FleetReport, IntegrationReport } from '../api/fleet-report.ts';
import { CONDITION_VENDOR_HEALTHY, REASON_CIRCUIT_CLOSED, REASON_CIRCUIT_FORCED_OPEN, REASON_CIRCUIT_OPEN, REASON_NO_REPORTS } from '../api/names.ts';
import type { Condition, FleetStatus } from '../api/schema.ts';

export interface PodReport {
  readonly pod: string;
  /** Its store is shared with the other sidecars: their backlogs are the same backlog. */
  readonly sharedStore: boolean;
  readonly report: IntegrationReport;
}

type Fleet = Required<Pick<FleetStatus, 'circuit' | 'pods' | 'lastMinute' | 'backlog'>>;

export function aggregate(reports: readonly PodReport[]): Fleet {
  const circuit: Fleet['circuit'] = { open: 0, halfOpen: 0, closed: 0 };
  let since: string | undefined;
  let lastError: NonNullable<Fleet['circuit']['lastError']> | undefined;
  let needRestart = 0;
  let calls = 0;
  let failures = 0;
  let localBacklog = 0;
  let sharedBacklog = 0;
  for (const { pod, sharedStore, report } of reports) {
    if (report.circuit === 'open') circuit.open++;
    else if (report.circuit === 'half-open') circuit.halfOpen++;
    else circuit.closed++;
    if (report.circuit !== 'closed' && (since === undefined || report.since < since)) since = report.since;
    if (report.lastError && (lastError === undefined || report.lastError.time > lastError.time)) lastError = { ...report.lastError, pod };
    if (report.needsRestart) needRestart++;
    calls += report.calls;
    failures += report.failures;
    if (sharedStore) sharedBacklog = Math.max(sharedBacklog, report.backlog);
    else localBacklog += report.backlog;
  }
  return {
    circuit: { ...circuit, ...(since && { since }), ...(lastError && { lastError }) },
    pods: { reporting: reports.length, needRestart },
    lastMinute: { calls, failures },
    backlog: localBacklog + sharedBacklog,
  };
}

/**
 * VendorHealthy without its times: what the fleet says, in words. `forceOpen` is the spec's: breakers
 * it holds open say nothing about the vendor, and the message says who opened them.
 */
export function vendorHealthy(fleet: Fleet, forceOpen = false): Pick<Condition, 'type' | 'status' | 'reason' | 'message'> {
  const { open, halfOpen } = fleet.circuit;
  const pods = fleet.pods.reporting;
  if (pods === 0) {
    return {
      type: CONDITION_VENDOR_HEALTHY,
      status: 'Unknown',
      reason: REASON_NO_REPORTS,
      message: 'no pod reports for this integration: none serves it, or none reported within three heartbeats',
    };
  }
  if (open + halfOpen === 0) {
    return { type: CONDITION_VENDOR_HEALTHY, status: 'True', reason: REASON_CIRCUIT_CLOSED, message: `circuit closed in all ${pods} pods` };
  }
  if (forceOpen && open > 0) {
    return {
      type: CONDITION_VENDOR_HEALTHY,
      status: 'False',
      reason: REASON_CIRCUIT_FORCED_OPEN,
      message: `circuit held open by circuitBreaker.forceOpen in ${open}/${pods} pods`,
    };
  }
  const last = fleet.circuit.lastError;
  return {
    type: CONDITION_VENDOR_HEALTHY,
    status: 'False',
    reason: REASON_CIRCUIT_OPEN,
    message:
      `${headline(fleet)}` +
      (fleet.circuit.since ? ` since ${fleet.circuit.since}` : '') +
      (last ? `; last error ${last.error} at ${last.time} in pod ${last.pod}` : ''),
  };
}

/** "circuit open in 2/3 pods", the words of the Events on fleet transitions. */
export function headline(fleet: Fleet): string {
  const { open, halfOpen } = fleet.circuit;
  const pods = fleet.pods.reporting;
  if (open + halfOpen === 0) return `circuit closed in all ${pods} pods`;
  if (open === 0) return `circuit half-open in ${halfOpen}/${pods} pods`;
  return `circuit open in ${open}/${pods} pods${halfOpen > 0 ? `, half-open in ${halfOpen}/${pods}` : ''}`;
}

/** A pod's record as far as counting it goes: which pod, until when it counts, what it serves. */
export interface LiveRecord {
  readonly podNamespace: string;
  readonly podUid: string;
  readonly lapsesAt: number;
  readonly integrations: readonly string[];
}

/**
 * Each reported integration's share of a fleet-scoped quota for the reporting pod: one over the pods
 * whose records still count and serve it in the same namespace, the reporting pod included.
 */
export function sharesFor(pod: { readonly namespace: string; readonly podUid: string }, report: FleetReport, records: readonly LiveRecord[], now: number): Record<string, number> {
  const others = records.filter((r) => r.podNamespace === pod.namespace && r.podUid !== pod.podUid && r.lapsesAt > now);
  return Object.fromEntries(
    report.integrations.map((i) => [i.name, 1 / (1 + others.filter((r) => r.integrations.includes(i.name)).length)]),
  );
}
