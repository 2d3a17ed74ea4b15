// What a sidecar tells the operator about each integration it serves, as sent on the wire (JSON, POST
// to REPORT_PATH). The one definition both programs read: the sidecar builds it, the operator checks it
// before anything of it is stored.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import './formats.ts';
import { INTEGRATION_NAME_MAX_LENGTH, INTEGRATION_NAME_PATTERN } from './names.ts';

export const CIRCUIT_STATES = ['closed', 'half-open', 'open'] as const;
export type CircuitStateName = (typeof CIRCUIT_STATES)[number];

/** A report larger than this is refused (413): 256 integrations fit with room to spare. */
export const MAX_REPORT_BYTES = 64 * 1024;
export const MAX_REPORTED_INTEGRATIONS = 256;
/** The heartbeat a sidecar may ask for; the operator counts a pod out after three of them without a report. */
export const REPORT_HEARTBEAT_BOUNDS = { minSeconds: 1, maxSeconds: 300 } as const;
/** The sidecar sends one report per this long at most; the operator refuses one arriving within half of it (arrivals jitter). */
export const REPORT_MIN_INTERVAL_MS = 1_000;
/** A pod missing this many heartbeats in a row is counted out. */
export const MISSED_HEARTBEATS = 3;

// What the status it ends up in takes (the CRD's date-time and int64): a report the API server would
// refuse is refused here, or the write of every integration of its namespace would fail with it. The
// format is registered in formats.ts, so every check of a report (on arrival, and of the stored
// records) applies it.
const Timestamp = Type.String({ maxLength: 40, format: 'date-time' });
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

export const IntegrationReport = Type.Object(
  {
    name: Type.String({ pattern: INTEGRATION_NAME_PATTERN, maxLength: INTEGRATION_NAME_MAX_LENGTH }),
    circuit: Type.Union(CIRCUIT_STATES.map((s) => Type.Literal(s))),
    /** When the breaker entered its current state, as far as this sidecar saw (its start, at the latest). */
    since: Timestamp,
    lastError: Type.Optional(Type.Object({ time: Timestamp, error: Type.String({ maxLength: 64 }) }, { additionalProperties: false })),
    calls: Count,
    failures: Count,
    backlog: Count,
    /** A Secret this integration names is not mounted into the pod: only a new pod gets it. */
    needsRestart: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const FleetReport = Type.Object(
  {
    /** Seconds until the next report at the latest. */
    heartbeatSeconds: Type.Integer({ minimum: REPORT_HEARTBEAT_BOUNDS.minSeconds, maximum: REPORT_HEARTBEAT_BOUNDS.maxSeconds }),
    /** The deliveries' store is shared by every sidecar (redis://): their backlogs are one backlog. */
    sharedStore: Type.Boolean(),
    integrations: Type.Array(IntegrationReport, { maxItems: MAX_REPORTED_INTEGRATIONS }),
    /** The sidecar is shutting down: count the pod out now rather than after three heartbeats. */
    leaving: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/**
 * The operator's 202 answer: for each integration reported, the share of a fleet-scoped quota this pod
 * may use (1 / the pods reporting for it, this one included).
 */
export interface FleetReportAnswer {
  readonly shares: Readonly<Record<string, number>>;
}

export type IntegrationReport = Static<typeof IntegrationReport>;
export type FleetReport = Static<typeof FleetReport>;

/** The report, or the first thing wrong with it, with its path. */
export function parseFleetReport(value: unknown): { ok: true; report: FleetReport } | { ok: false; message: string } {
  if (Value.Check(FleetReport, value)) return { ok: true, report: value };
  const first = Value.Errors(FleetReport, value).First();
  return { ok: false, message: first ? `${first.path || '/'}: ${first.message}` : 'not a report' };
}
