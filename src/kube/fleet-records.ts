// The per-pod records of the fleet view: one coordination.k8s.io Lease per reporting pod, in the
// operator's own namespace, holding that pod's last report. Any replica that receives a report writes
// its record; the leader watches them all. A Lease because it is what Kubernetes uses for heartbeats:
// `renewTime` plus `leaseDurationSeconds` says when the pod counts as gone.
import type { V1Lease } from '@kubernetes/client-node';
import {
  ANNOTATION_POD_NAME,
  ANNOTATION_REPORT,
  COMPONENT_FLEET_REPORT,
  FIELD_MANAGER,
  LABEL_COMPONENT,
  LABEL_POD_NAMESPACE,
  managedLabels,
} from '../api/names.ts';
import type { KubeClient } from './client.ts';
import { isNotFound } from './errors.ts';
import type { ResourceType, Stored } from './resources.ts';

export const LEASES: ResourceType = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true };
export type StoredLease = Stored<V1Lease>;

/** The informer's label selector: only fleet records, never the leader Lease. */
export const FLEET_RECORD_SELECTOR = `${LABEL_COMPONENT}=${COMPONENT_FLEET_REPORT}`;

export interface FleetRecord {
  readonly podNamespace: string;
  readonly pod: string;
  readonly podUid: string;
  /** The report as received, already checked. */
  readonly report: unknown;
  readonly renewTime: Date;
  readonly leaseDurationSeconds: number;
}

/** Named by the pod's uid: a pod deleted and recreated under the same name is another pod. */
export function recordName(podUid: string): string {
  return `fleet-${podUid}`;
}

/** Lease times are MicroTime: six fractional digits. */
function microTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

/** Creates or replaces the pod's record by server-side apply (one request, no read first). */
export async function writeFleetRecord(client: KubeClient, namespace: string, record: FleetRecord, signal?: AbortSignal): Promise<void> {
  const name = recordName(record.podUid);
  await client.requestJson('PATCH', `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases/${name}`, {
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: FIELD_MANAGER, force: true },
    body: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name,
        namespace,
        labels: { ...managedLabels(COMPONENT_FLEET_REPORT), [LABEL_POD_NAMESPACE]: record.podNamespace },
        annotations: { [ANNOTATION_POD_NAME]: record.pod, [ANNOTATION_REPORT]: JSON.stringify(record.report) },
      },
      spec: {
        holderIdentity: `${record.podNamespace}/${record.pod}`,
        leaseDurationSeconds: record.leaseDurationSeconds,
        renewTime: microTime(record.renewTime),
      },
    },
    signal,
  });
}

/** Removes a lapsed record; one already gone is fine. */
export async function deleteFleetRecord(client: KubeClient, namespace: string, name: string, signal?: AbortSignal): Promise<void> {
  try {
    await client.requestJson('DELETE', `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases/${name}`, { signal });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** A stored record as the leader reads it; undefined for a Lease that is not one of ours. */
export function readFleetRecord(lease: StoredLease): FleetRecord | undefined {
  const podNamespace = lease.metadata.labels?.[LABEL_POD_NAMESPACE];
  const pod = lease.metadata.annotations?.[ANNOTATION_POD_NAME];
  const text = lease.metadata.annotations?.[ANNOTATION_REPORT];
  const renewTime = lease.spec?.renewTime;
  if (!podNamespace || !pod || text === undefined || !renewTime) return undefined;
  let report: unknown;
  try {
    report = JSON.parse(text);
  } catch {
    return undefined;
  }
  return {
    podNamespace,
    pod,
    podUid: lease.metadata.name.replace(/^fleet-/, ''),
    report,
    renewTime: new Date(renewTime),
    leaseDurationSeconds: lease.spec?.leaseDurationSeconds ?? 0,
  };
}
